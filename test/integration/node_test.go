package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodePackage is a folder of Node.js client scenarios with its own
// package.json and package-lock.json (xmppjs/, strophe/). Its scripts
// print "OK ..." lines, then PASS or FAIL <reason>; they log every byte
// each client sent and received on stderr.
type nodePackage struct {
	name  string // the library, for messages ("xmpp.js")
	dir   string // the folder, relative to this package
	probe string // a file under dir that exists once `npm ci` ran

	once sync.Once
	node string   // path of node
	abs  string   // absolute path of dir
	env  []string // extra environment for node
	err  error
}

var (
	xmppjs  = &nodePackage{name: "xmpp.js", dir: "xmppjs", probe: "node_modules/@xmpp/client/package.json"}
	strophe = &nodePackage{name: "Strophe.js", dir: "strophe", probe: "node_modules/strophe.js/package.json"}
)

// require skips the test when node, npm or the folder's packages are not
// available, or fails it when METRONOME_REQUIRE_ALL=1 (as in CI). When
// node_modules is missing it runs `npm ci` there once.
func (p *nodePackage) require(t *testing.T) {
	t.Helper()
	p.once.Do(func() { p.err = p.setup() })
	if p.err != nil {
		if os.Getenv("METRONOME_REQUIRE_ALL") == "1" {
			t.Fatal(p.err)
		}
		t.Skip(p.err)
	}
}

func (p *nodePackage) setup() error {
	node, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("%s tests need node (apt install nodejs npm): %v", p.name, err)
	}
	// @xmpp/client 0.14 and these scripts need node >= 20.10
	// (globalThis.crypto, util.parseArgs); Debian 12's nodejs is 18.
	out, err := exec.Command(node, "-p", "process.versions.node").Output()
	if err != nil {
		return fmt.Errorf("%s tests: %s -p process.versions.node: %v", p.name, node, err)
	}
	v := strings.TrimSpace(string(out))
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil || major < 20 || major == 20 && minor < 10 {
		return fmt.Errorf("%s tests need node >= 20.10, %s is %q", p.name, node, v)
	}
	if major < 22 {
		// A global WebSocket is behind a flag before node 22.
		p.env = append(p.env, "NODE_OPTIONS=--experimental-websocket")
	}
	dir, err := filepath.Abs(p.dir)
	if err != nil {
		return err
	}
	p.node, p.abs = node, dir
	probe := filepath.Join(dir, p.probe)
	if _, err := os.Stat(probe); err == nil {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("%s tests: %s is missing and there is no npm to install it (apt install npm): %v", p.name, probe, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s tests: `npm ci --no-audit --no-fund` in %s: %v\n%s", p.name, dir, err, out)
	}
	if _, err := os.Stat(probe); err != nil {
		return fmt.Errorf("%s tests: no %s after `npm ci` in %s: %v", p.name, p.probe, dir, err)
	}
	return nil
}

// run runs the folder's NAME.js with args against s, killing it after
// limit (the scripts bound themselves; this is the backstop), and returns
// its stdout lines. The test fails unless the script printed PASS last and
// exited with status 0; the failure shows the script's stderr and the end
// of the daemon's log.
func (p *nodePackage) run(t *testing.T, s *server, name string, limit time.Duration, args ...string) []string {
	t.Helper()
	p.require(t)
	stderr, err := os.CreateTemp(s.dir, p.dir+"-"+name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.node, append([]string{filepath.Join(p.abs, name+".js")}, args...)...)
	cmd.Dir = p.abs
	cmd.Stderr = stderr
	// The server's certificate is self-signed.
	cmd.Env = append(append(os.Environ(), "NODE_TLS_REJECT_UNAUTHORIZED=0"), p.env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	r := bufio.NewScanner(out)
	for r.Scan() {
		t.Logf("%s.js: %s", name, r.Text())
		lines = append(lines, r.Text())
	}
	err = cmd.Wait()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("killed after %s: %v", limit, err)
	}
	if err != nil || len(lines) == 0 || lines[len(lines)-1] != "PASS" {
		log, _ := os.ReadFile(stderr.Name())
		t.Fatalf("%s.js: no PASS (exit: %v)\nclient log:\n%s\ndaemon log (end):\n%s", name, err, log, s.logTail(40))
	}
	return lines
}
