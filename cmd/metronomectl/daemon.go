package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/metronome-xmpp/metronome/internal/admin"
	"github.com/metronome-xmpp/metronome/internal/app"
)

// daemonBinary finds the metronome executable: beside metronomectl, then $PATH.
func daemonBinary() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "metronome")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath("metronome")
	if err != nil {
		return "", errors.New("cannot find the metronome binary beside metronomectl or in $PATH")
	}
	return p, nil
}

// running asks the daemon for its status. It returns an error only when
// the daemon cannot even be looked for (no admin socket path).
func (c *ctl) running() (app.Status, bool, error) {
	var st app.Status
	err := c.call("status", nil, &st)
	if err != nil && !errors.Is(err, admin.ErrNotRunning) {
		return st, false, err
	}
	return st, err == nil, nil
}

func (c *ctl) start(cmd *cobra.Command) error {
	cfg, err := c.load()
	if err != nil {
		return err
	}
	if st, ok, _ := c.running(); ok {
		fmt.Fprintf(cmd.OutOrStdout(), "metronome is already running (pid %d)\n", st.PID)
		return nil
	}
	bin, err := daemonBinary()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Server.DataDir, 0o750); err != nil {
		return err
	}
	logPath := filepath.Join(cfg.Server.DataDir, "metronome.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{}
	if cfg.File != "" {
		abs, _ := filepath.Abs(cfg.File)
		args = append(args, "--config", abs)
	}
	p := exec.Command(bin, args...)
	p.Stdout, p.Stderr = logf, logf
	p.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := p.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- p.Wait() }()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("metronome exited during start-up (%v); see %s:\n%s", err, logPath, tail(logPath, 10))
		case <-deadline:
			return fmt.Errorf("metronome did not answer within 30s; see %s", logPath)
		case <-tick.C:
			if st, ok, _ := c.running(); ok {
				fmt.Fprintf(cmd.OutOrStdout(), "metronome started (pid %d), log: %s\n", st.PID, logPath)
				return nil
			}
		}
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *ctl) stop(cmd *cobra.Command) error {
	cfg, err := c.load()
	if err != nil {
		return err
	}
	st, ok, err := c.running()
	if err != nil {
		return err
	}
	pid := st.PID
	if !ok {
		if pid, err = app.ReadPID(cfg.Server.PIDFile); err != nil {
			fmt.Fprintln(cmd.OutOrStdout(), "metronome is not running")
			return nil
		}
		// The socket is gone but the process lives: ask it with SIGTERM.
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			return err
		}
	} else if err := c.call("stop", nil, nil); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			fmt.Fprintf(cmd.OutOrStdout(), "metronome stopped (pid %d)\n", pid)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("metronome (pid %d) did not stop within 30s", pid)
}

func (c *ctl) startCmd() *cobra.Command {
	return &cobra.Command{Use: "start", Short: "Start the server in the background", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.start(cmd) }}
}

func (c *ctl) stopCmd() *cobra.Command {
	return &cobra.Command{Use: "stop", Short: "Stop the server gracefully (clients get <system-shutdown/>)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.stop(cmd) }}
}

func (c *ctl) restartCmd() *cobra.Command {
	return &cobra.Command{Use: "restart", Short: "Stop, then start the server", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.stop(cmd); err != nil {
				return err
			}
			return c.start(cmd)
		}}
}

func (c *ctl) reloadCmd() *cobra.Command {
	return &cobra.Command{Use: "reload", Short: "Re-read the configuration and certificates without dropping sessions", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.call("reload", nil, nil); err != nil {
				if errors.Is(err, admin.ErrNotRunning) {
					return &exitError{3, err}
				}
				return fmt.Errorf("reload refused, the running configuration stays in force:\n%w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "configuration reloaded")
			return nil
		}}
}

func (c *ctl) statusCmd() *cobra.Command {
	return &cobra.Command{Use: "status", Short: "Show whether the server runs, and its sessions", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, ok, err := c.running()
			if err != nil {
				return err
			}
			if !ok {
				return &exitError{3, errors.New("metronome is not running")}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "metronome is running\n  pid:      %d\n  version:  %s\n  uptime:   %s\n  hosts:    %s\n  sessions: %d\n",
				st.PID, st.Version, time.Since(st.Started).Round(time.Second), strings.Join(st.Hosts, ", "), st.Sessions)
			if st.Config != "" {
				fmt.Fprintf(out, "  config:   %s\n", st.Config)
			}
			return nil
		}}
}

func (c *ctl) hooksCmd() *cobra.Command {
	return &cobra.Command{Use: "hooks HOST EVENT", Short: "Show the live handler chain of an event (HOST \"\" for the global bus)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var hs []struct {
				Priority int
				Owner    string
			}
			if err := c.call("hooks", map[string]string{"Host": args[0], "Event": args[1]}, &hs); err != nil {
				return err
			}
			if len(hs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no handlers")
			}
			for _, h := range hs {
				fmt.Fprintf(cmd.OutOrStdout(), "%6d  %s\n", h.Priority, h.Owner)
			}
			return nil
		}}
}

var _ = context.Background
