package testbin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Daemon is a metronome process run by a test from the built binaries,
// with its configuration, data and log in a directory of its own.
type Daemon struct {
	t          testing.TB
	bin, ctl   string
	Dir        string // removed at the end of the test
	ConfigPath string // Dir/metronome.toml, written by the test before Start
	LogPath    string // Dir/metronome.log: the daemon's output, appended across restarts

	cmd     *exec.Cmd
	done    chan struct{} // closed when the daemon exited
	waitErr error         // its exit status, valid after done
}

// NewDaemon builds the binaries if needed and makes the daemon's
// directory (prefix names it). At the end of the test the daemon is
// stopped — killed by pid if it does not stop — and the test fails if it
// reported a data race; a failed test gets the end of its log.
func NewDaemon(t testing.TB, prefix string) *Daemon {
	t.Helper()
	bin, ctl := Binaries(t)
	// Not t.TempDir(): the admin socket lives in the data directory and a
	// unix socket path must stay under ~100 bytes.
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &Daemon{t: t, bin: bin, ctl: ctl, Dir: dir,
		ConfigPath: filepath.Join(dir, "metronome.toml"), LogPath: filepath.Join(dir, "metronome.log")}
	t.Cleanup(d.cleanup)
	return d
}

// Start starts the daemon with ConfigPath and waits until `metronomectl
// status` answers.
func (d *Daemon) Start() {
	t := d.t
	t.Helper()
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	d.done = make(chan struct{})
	d.cmd = exec.Command(d.bin, "--config", d.ConfigPath)
	d.cmd.Dir = d.Dir
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	cmd, done := d.cmd, d.done
	go func() {
		// Reap at once: `metronomectl stop` polls kill(pid, 0), which
		// also succeeds for a zombie.
		d.waitErr = cmd.Wait()
		logf.Close()
		close(done)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := d.Ctl("status"); err == nil {
			return
		}
		select {
		case <-done:
			t.Fatalf("metronome exited during start-up (%v):\n%s", d.waitErr, d.LogTail(50))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("metronome did not answer `metronomectl status` within 20s:\n%s", d.LogTail(50))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Ctl runs metronomectl with the daemon's configuration and returns its
// combined output.
func (d *Daemon) Ctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.ctl, append([]string{"--config", d.ConfigPath}, args...)...)
	cmd.Dir = d.Dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// AddUser creates an account with `metronomectl user add`.
func (d *Daemon) AddUser(jid, password string) {
	d.t.Helper()
	if out, err := d.Ctl("user", "add", jid, "--password", password); err != nil {
		d.t.Fatalf("metronomectl user add %s: %v\n%s", jid, err, out)
	}
}

// Stop runs `metronomectl stop` and checks that the daemon exits with
// status 0 and that `metronomectl status` then reports it stopped.
func (d *Daemon) Stop() {
	d.t.Helper()
	if out, err := d.Ctl("stop"); err != nil {
		d.t.Errorf("metronomectl stop: %v\n%s", err, out)
	}
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.t.Fatalf("metronome still runs 20s after `metronomectl stop`:\n%s", d.LogTail(50))
	}
	if d.waitErr != nil {
		d.t.Errorf("metronome exited with %v after `metronomectl stop`:\n%s", d.waitErr, d.LogTail(50))
	}
	if out, err := d.Ctl("status"); err == nil {
		d.t.Errorf("metronomectl status succeeds after stop:\n%s", out)
	} else if ee := new(exec.ExitError); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		d.t.Errorf("metronomectl status after stop: %v, want exit status 3\n%s", err, out)
	}
}

// Restart stops the daemon, with `metronomectl stop` or, if crash, by
// SIGKILL, and starts it again on the same configuration and data.
func (d *Daemon) Restart(crash bool) {
	d.t.Helper()
	if crash {
		_ = d.cmd.Process.Kill()
		<-d.done
	} else {
		d.Stop()
	}
	d.Start()
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig os.Signal) error { return d.cmd.Process.Signal(sig) }

// cleanup stops the daemon if the test did not, kills it (by pid) if it
// does not stop, and reports data races and the log of a failed test.
func (d *Daemon) cleanup() {
	if d.cmd == nil {
		return // never started
	}
	select {
	case <-d.done:
	default:
		_, _ = d.Ctl("stop")
		select {
		case <-d.done:
		case <-time.After(15 * time.Second):
			d.t.Errorf("metronome (pid %d) did not stop; killing it", d.cmd.Process.Pid)
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	}
	log, _ := os.ReadFile(d.LogPath)
	if bytes.Contains(log, []byte("WARNING: DATA RACE")) {
		d.t.Errorf("the daemon reported a data race:\n%s", log)
	} else if d.t.Failed() {
		d.t.Logf("metronome log (last 150 lines):\n%s", d.LogTail(150))
	}
}

// WaitLog polls the daemon's log until a line contains substr, and
// returns that line; the test fails after timeout.
func (d *Daemon) WaitLog(substr string, timeout time.Duration) string {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(d.LogPath)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, substr) {
				return l
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no %q in the daemon's log after %s:\n%s", substr, timeout, d.LogTail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LogTail returns the last n lines of the daemon's log.
func (d *Daemon) LogTail(n int) string {
	b, _ := os.ReadFile(d.LogPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
