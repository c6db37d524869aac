package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/metronome-xmpp/metronome/internal/admin"
	"github.com/metronome-xmpp/metronome/internal/core"
	"github.com/metronome-xmpp/metronome/internal/httpd"
	"github.com/metronome-xmpp/metronome/internal/metrics"
)

// Status is what `metronomectl status` shows.
type Status struct {
	PID      int       `json:"pid"`
	Version  string    `json:"version"`
	Started  time.Time `json:"started"`
	Hosts    []string  `json:"hosts"`
	Sessions int       `json:"sessions"`
	Config   string    `json:"config"`
}

// Run runs the daemon until SIGINT/SIGTERM or an admin "stop".
func Run(configPath string, logw io.Writer) error {
	cfg, err := LoadConfig(configPath)
	if err != nil {
		return err
	}
	log := NewLogger(cfg, logw)
	if err := os.MkdirAll(cfg.Server.DataDir, 0o750); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	ctx := context.Background()
	driver, err := OpenStorage(ctx, cfg)
	if err != nil {
		return err
	}
	defer driver.Close()
	opts, err := Options(cfg)
	if err != nil {
		return err
	}
	hs, err := httpd.New(HTTPConfig(cfg), log)
	if err != nil {
		return err
	}
	AttachHTTP(opts, hs)
	srv, err := core.New(opts, metrics.MeasureDriver(driver), log)
	if err != nil {
		return err
	}
	ops := NewOps(srv, hs)
	hs.SetOps(ops)
	metrics.SetBuildInfo(core.Version, srv.Started())
	stop := make(chan string, 1)
	reload := func() error {
		ncfg, err := LoadConfig(configPath)
		if err != nil {
			return err
		}
		nopts, err := Options(ncfg)
		if err != nil {
			return err
		}
		AttachHTTP(nopts, hs)
		prev := hs.Config()
		if err := hs.Reload(HTTPConfig(ncfg)); err != nil {
			return err
		}
		if err := srv.Reload(nopts); err != nil {
			_ = hs.Reload(prev)
			return err
		}
		return nil
	}
	adm, err := admin.Listen(cfg.Server.AdminSocket, func(ctx context.Context, op string, args json.RawMessage) (any, error) {
		switch op {
		case "status":
			hosts := srv.Hosts()
			sort.Strings(hosts)
			return Status{PID: os.Getpid(), Version: core.Version, Started: srv.Started(), Hosts: hosts,
				Sessions: srv.SessionCount(), Config: cfg.File}, nil
		case "reload":
			return nil, reload()
		case "stop":
			select {
			case stop <- "admin request":
			default:
			}
			return nil, nil
		case "hooks":
			var a struct{ Host, Event string }
			if err := json.Unmarshal(args, &a); err != nil {
				return nil, err
			}
			return srv.Hooks(a.Host, a.Event)
		}
		// Users, sessions, messages, statistics: the operations the HTTP
		// admin API runs too.
		if v, handled, err := ops.Call(ctx, op, args); handled {
			return v, err
		}
		return nil, fmt.Errorf("unknown admin command %q", op)
	}, log)
	if err != nil {
		_ = srv.Shutdown(ctx)
		return err
	}
	defer adm.Close()
	if err := srv.Start(); err != nil {
		_ = srv.Shutdown(ctx)
		return err
	}
	if err := hs.Start(srv.TLSConfig().GetCertificate); err != nil {
		_ = srv.Shutdown(ctx)
		return err
	}
	if err := writePID(cfg.Server.PIDFile); err != nil {
		_ = srv.Shutdown(ctx)
		return err
	}
	defer os.Remove(cfg.Server.PIDFile)
	log.Info("server started", "version", core.Version, "pid", os.Getpid(), "config", cfg.File)
	tctx, stopTrim := context.WithCancel(ctx)
	defer stopTrim()
	go trimMemory(tctx, log)

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var why string
loop:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if err := reload(); err != nil {
					log.Error("reload refused; the running configuration stays", "err", err)
				}
				continue
			}
			why = sig.String()
			break loop
		case why = <-stop:
			break loop
		}
	}
	log.Info("shutting down", "reason", why)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("HTTP shutdown deadline passed; remaining requests were dropped", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown deadline passed; remaining connections were dropped", "err", err)
	}
	log.Info("server stopped")
	return nil
}

// writePID writes the pidfile, refusing when another live process owns it.
func writePID(path string) error {
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid != os.Getpid() && processAlive(pid) {
			return fmt.Errorf("pidfile %s: metronome is already running as pid %d", path, pid)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// ReadPID returns the pid in the pidfile if that process is alive.
func ReadPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("pidfile %s: %w", path, err)
	}
	if !processAlive(pid) {
		return 0, errors.New("stale pidfile")
	}
	return pid, nil
}

func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return p.Signal(syscall.Signal(0)) == nil
}
