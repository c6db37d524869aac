// Package integration drives the built metronome and metronomectl binaries
// over real sockets with third-party clients (STYLE.md §8).
//
// Every test builds nothing itself: the binaries are built once per test
// binary run from the working tree (so server fixes show up at the next run),
// with -race when the tests run with -race. Each test then starts its own
// daemon on free loopback ports with a temporary configuration and data
// directory, creates its accounts with `metronomectl user add`, and stops the
// daemon with `metronomectl stop`.
package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// serverConfig is what a test wants in the daemon's configuration.
type serverConfig struct {
	Modules      []string // [modules] enabled
	Registration bool     // [modules.register] allow_registration
	Extra        string   // appended verbatim
}

var defaultModules = []string{"roster", "presence", "message", "offline", "disco", "ping", "register"}

// server is one metronome daemon started by a test (testbin.Daemon), with
// its domain and client ports.
type server struct {
	*testbin.Daemon
	t      *testing.T
	dir    string
	Domain string
	C2S    int // STARTTLS port
	C2STLS int // direct TLS port
}

// startServer starts a daemon with cfg and waits until `metronomectl
// status` answers. It is stopped at the end of the test.
func startServer(t *testing.T, cfg serverConfig) *server {
	t.Helper()
	d := testbin.NewDaemon(t, "metronome-it-")
	s := &server{Daemon: d, t: t, dir: d.Dir, Domain: "localhost"}
	ports := testbin.FreePorts(t, 2)
	s.C2S, s.C2STLS = ports[0], ports[1]
	s.writeConfig(cfg)
	d.Start()
	return s
}

func (s *server) writeConfig(cfg serverConfig) {
	s.t.Helper()
	mods := cfg.Modules
	if mods == nil {
		mods = defaultModules
	}
	quoted := make([]string, len(mods))
	for i, m := range mods {
		quoted[i] = fmt.Sprintf("%q", m)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\ndata_dir = %q\nlog_level = \"debug\"\n\n", filepath.Join(s.dir, "data"))
	fmt.Fprintf(&b, "[listen]\nc2s = [\"127.0.0.1:%d\"]\nc2s_tls = [\"127.0.0.1:%d\"]\n\n", s.C2S, s.C2STLS)
	fmt.Fprintf(&b, "[modules]\nenabled = [%s]\n", strings.Join(quoted, ", "))
	if cfg.Registration {
		b.WriteString("\n[modules.register]\nallow_registration = true\n")
	}
	if cfg.Extra != "" {
		b.WriteString("\n" + cfg.Extra + "\n")
	}
	s.writeConfigText(b.String())
}

// writeConfigText replaces the configuration file.
func (s *server) writeConfigText(text string) {
	s.t.Helper()
	if err := os.WriteFile(s.ConfigPath, []byte(text), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// The daemon's operations, under the names the tests use.
func (s *server) ctl(args ...string) (string, error) { return s.Ctl(args...) }
func (s *server) stop()                              { s.t.Helper(); s.Stop() }
func (s *server) restart(crash bool)                 { s.t.Helper(); s.Restart(crash) }
func (s *server) logTail(n int) string               { return s.LogTail(n) }
func (s *server) waitLog(substr string, timeout time.Duration) string {
	s.t.Helper()
	return s.WaitLog(substr, timeout)
}

// addUser creates user@Domain with `metronomectl user add` and returns
// the JID.
func (s *server) addUser(user, password string) string {
	s.t.Helper()
	jid := user + "@" + s.Domain
	s.AddUser(jid, password)
	return jid
}

// --- slixmpp ---------------------------------------------------------

const python = "/usr/bin/python3"

var (
	slixmppOnce sync.Once
	slixmppErr  error
)

// requireSlixmpp skips the test when /usr/bin/python3 cannot import
// slixmpp, or fails it when METRONOME_REQUIRE_ALL=1 (as in CI).
func requireSlixmpp(t *testing.T) {
	t.Helper()
	slixmppOnce.Do(func() {
		out, err := exec.Command(python, "-c", "import slixmpp; print(slixmpp.__version__)").CombinedOutput()
		if err != nil {
			slixmppErr = fmt.Errorf("%s cannot import slixmpp (apt install python3-slixmpp): %v\n%s", python, err, out)
		}
	})
	if slixmppErr != nil {
		if os.Getenv("METRONOME_REQUIRE_ALL") == "1" {
			t.Fatal(slixmppErr)
		}
		t.Skip(slixmppErr)
	}
}

// script is a running slixmpp scenario (slixmpp/NAME.py).
type script struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser
	lines  chan string // stdout, line by line; closed at EOF
	stdout []string    // every line read so far
	stderr *os.File
	done   chan struct{}
	err    error
}

// startScript starts slixmpp/NAME.py against s with the connection
// arguments and args. Its stderr (slixmpp's DEBUG log with every stanza)
// goes to a file that is shown when the test fails.
func (s *server) startScript(t *testing.T, name string, args ...string) *script {
	t.Helper()
	requireSlixmpp(t)
	path, err := filepath.Abs(filepath.Join("slixmpp", name+".py"))
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := os.CreateTemp(s.dir, name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	// Scripts bound themselves to ~20s; this is the backstop.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	full := append([]string{path, "--host", "localhost", "--domain", s.Domain,
		"--port", fmt.Sprint(s.C2S), "--tls-port", fmt.Sprint(s.C2STLS)}, args...)
	cmd := exec.CommandContext(ctx, python, full...)
	cmd.Dir = filepath.Dir(path)
	cmd.Stderr = stderr
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1")
	sc := &script{t: t, name: name, cmd: cmd, cancel: cancel, stderr: stderr,
		lines: make(chan string, 100), done: make(chan struct{})}
	if sc.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r := bufio.NewScanner(out)
		for r.Scan() {
			sc.lines <- r.Text()
		}
		close(sc.lines)
		sc.err = cmd.Wait()
		close(sc.done)
	}()
	t.Cleanup(func() {
		sc.stdin.Close()
		select {
		case <-sc.done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s.py (pid %d) still runs; killing it", name, cmd.Process.Pid)
			cancel() // kills this process only
			<-sc.done
		}
		cancel()
		stderr.Close()
	})
	return sc
}

// next returns the next stdout line, or false at EOF or after timeout.
func (sc *script) next(timeout time.Duration) (string, bool) {
	select {
	case l, ok := <-sc.lines:
		if ok {
			sc.stdout = append(sc.stdout, l)
			sc.t.Logf("%s.py: %s", sc.name, l)
		}
		return l, ok
	case <-time.After(timeout):
		return "", false
	}
}

// expect reads stdout until a line starting with prefix and returns it. A
// FAIL line, the end of the output or the timeout fail the test.
func (sc *script) expect(prefix string, timeout time.Duration) string {
	sc.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		l, ok := sc.next(time.Until(deadline))
		if !ok {
			sc.fail("no line starting with %q", prefix)
		}
		if strings.HasPrefix(l, prefix) {
			return l
		}
		if strings.HasPrefix(l, "FAIL") {
			sc.fail("%s", l)
		}
	}
}

// send writes one command line to the script's stdin.
func (sc *script) send(line string) {
	sc.t.Helper()
	if _, err := io.WriteString(sc.stdin, line+"\n"); err != nil {
		sc.fail("writing %q to stdin: %v", line, err)
	}
}

// wait reads the rest of stdout, waits for the exit and fails the test
// unless the script printed PASS and exited with status 0.
func (sc *script) wait() []string {
	sc.t.Helper()
	for {
		if _, ok := sc.next(60 * time.Second); !ok {
			break
		}
	}
	select {
	case <-sc.done:
	case <-time.After(30 * time.Second):
		sc.fail("did not exit")
	}
	if sc.err != nil || len(sc.stdout) == 0 || sc.stdout[len(sc.stdout)-1] != "PASS" {
		sc.fail("no PASS (exit: %v)", sc.err)
	}
	return sc.stdout
}

// fail stops the test with the script's XML log.
func (sc *script) fail(format string, args ...any) {
	sc.t.Helper()
	// The stdout lines were logged as they came.
	sc.t.Fatalf("%s.py: %s\nclient log (slixmpp internals left out):\n%s",
		sc.name, fmt.Sprintf(format, args...), sc.log())
}

// log is the script's stderr without slixmpp's internal DEBUG chatter: the
// "xml:" lines (every byte each client sent and received), warnings,
// errors and tracebacks.
func (sc *script) log() string {
	b, err := os.ReadFile(sc.stderr.Name())
	if err != nil {
		return err.Error()
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, " DEBUG   slixmpp.") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// runScript runs a scenario to completion and returns its stdout lines.
func (s *server) runScript(t *testing.T, name string, args ...string) []string {
	t.Helper()
	sc := s.startScript(t, name, args...)
	sc.stdin.Close()
	return sc.wait()
}
