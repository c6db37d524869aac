package integration

import (
	"errors"
	"fmt"
	"github.com/metronome-xmpp/metronome/internal/testbin"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCtlStartRestartStop drives the daemon only through metronomectl:
// start (backgrounded, detached), status, restart (a new process), reload,
// stop, and status's exit code 3 once it is gone.
func TestCtlStartRestartStop(t *testing.T) {
	daemon, ctl := testbin.Binaries(t)
	_ = daemon // metronomectl finds it beside itself
	dir, err := os.MkdirTemp("", "metronome-ctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ports := testbin.FreePorts(t, 2)
	cfgPath := filepath.Join(dir, "metronome.toml")
	cfg := fmt.Sprintf("[server]\ndata_dir = %q\n[listen]\nc2s = [\"127.0.0.1:%d\"]\nc2s_tls = [\"127.0.0.1:%d\"]\n",
		filepath.Join(dir, "data"), ports[0], ports[1])
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(ctl, append([]string{"--config", cfgPath}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	pidfile := filepath.Join(dir, "data", "metronome.pid")
	// Whatever happens, end the daemons this test started (by pid).
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidfile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	pidRe := regexp.MustCompile(`pid:\s+(\d+)`)
	statusPID := func() int {
		t.Helper()
		out, err := run("status")
		if err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
		m := pidRe.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("status shows no pid:\n%s", out)
		}
		pid, _ := strconv.Atoi(m[1])
		return pid
	}

	if out, err := run("start"); err != nil || !strings.Contains(out, "metronome started") {
		t.Fatalf("start: %v\n%s", err, out)
	}
	first := statusPID()
	if out, err := run("start"); err != nil || !strings.Contains(out, "already running") {
		t.Fatalf("second start: %v\n%s", err, out)
	}
	if out, err := run("reload"); err != nil || !strings.Contains(out, "reloaded") {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	if out, err := run("restart"); err != nil || !strings.Contains(out, "stopped") || !strings.Contains(out, "started") {
		t.Fatalf("restart: %v\n%s", err, out)
	}
	second := statusPID()
	if second == first {
		t.Fatalf("restart kept pid %d", first)
	}
	if syscall.Kill(first, 0) == nil {
		t.Fatalf("the first daemon (pid %d) still runs after restart", first)
	}
	if out, err := run("stop"); err != nil || !strings.Contains(out, "stopped") {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(second, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	out, err := run("status")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("status after stop: %v, want exit status 3\n%s", err, out)
	}
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Fatalf("pidfile left behind: %v", err)
	}
}
