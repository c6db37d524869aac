// Package app turns a loaded configuration into a running server: it sets
// up logging, opens the storage driver, translates the configuration into
// core options, and runs the daemon (pidfile, admin socket, signals).
// Both binaries use it, so metronomectl opens exactly the stores the daemon
// uses.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/metronome-xmpp/metronome/internal/c2s"
	"github.com/metronome-xmpp/metronome/internal/config"
	"github.com/metronome-xmpp/metronome/internal/core"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/storage/memory"
	"github.com/metronome-xmpp/metronome/storage/postgres"
	"github.com/metronome-xmpp/metronome/storage/sqlite"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/sasl"
)

// LoadConfig finds and loads the configuration: the explicit path, else
// ./metronome.toml, else /etc/metronome/metronome.toml, else the built-in
// defaults (host "localhost"). Module sections are checked against the
// registered modules.
func LoadConfig(explicit string) (*config.Config, error) {
	path, err := config.Find(explicit)
	if err != nil {
		return nil, err
	}
	var cfg *config.Config
	if path == "" {
		cfg = config.Default()
	} else if cfg, err = config.Load(path); err != nil {
		return nil, err
	}
	known, err := activatePlugins(cfg)
	if err != nil {
		return nil, err
	}
	if err := cfg.CheckModules(known); err != nil {
		return nil, err
	}
	return cfg, nil
}

// levelVar parses a log level name.
func level(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// moduleLevels is a slog.Handler that applies per-module level overrides.
type moduleLevels struct {
	slog.Handler
	base   slog.Level
	levels map[string]slog.Level
	mod    string
}

func (h *moduleLevels) Enabled(_ context.Context, l slog.Level) bool {
	if lv, ok := h.levels[h.mod]; ok {
		return l >= lv
	}
	return l >= h.base
}

func (h *moduleLevels) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	for _, a := range as {
		if a.Key == "module" {
			n.mod = a.Value.String()
		}
	}
	n.Handler = h.Handler.WithAttrs(as)
	return &n
}

func (h *moduleLevels) WithGroup(name string) slog.Handler {
	n := *h
	n.Handler = h.Handler.WithGroup(name)
	return &n
}

// NewLogger builds the logger described by the [server] section.
func NewLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	base := level(cfg.Server.LogLevel)
	min := base
	levels := map[string]slog.Level{}
	for m, l := range cfg.Server.LogLevels {
		levels[m] = level(l)
		if levels[m] < min {
			min = levels[m]
		}
	}
	opts := &slog.HandlerOptions{Level: min}
	var h slog.Handler
	if cfg.Server.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(&moduleLevels{Handler: h, base: base, levels: levels})
}

// OpenStorage opens the configured storage driver.
func OpenStorage(ctx context.Context, cfg *config.Config) (storage.Driver, error) {
	switch cfg.Storage.Default {
	case "memory":
		return memory.New(), nil
	case "postgres":
		if cfg.Storage.Postgres.DSN == "" {
			return nil, errors.New("storage: postgres needs [storage] postgres = { dsn = \"...\" }")
		}
		return postgres.Open(ctx, cfg.Storage.Postgres.DSN)
	default:
		path := cfg.Storage.SQLite.Path
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		return sqlite.OpenOptions(path, sqlite.Options{Synchronous: cfg.Storage.SQLite.Synchronous})
	}
}

// Options translates a configuration into core options.
func Options(cfg *config.Config) (*core.Options, error) {
	o := &core.Options{
		DataDir: cfg.Server.DataDir,
		C2S: c2s.Config{
			RequireEncryption: cfg.C2S.RequireEncryption,
			StreamOpenTimeout: cfg.C2S.StreamOpenTimeout,
			AuthTimeout:       cfg.C2S.AuthTimeout,
			IdleTimeout:       cfg.C2S.IdleTimeout,
			PingTimeout:       cfg.C2S.PingTimeout,
			MaxStanzaSize:     int(cfg.C2S.MaxStanzaSize),
			MaxQueue:          4 << 20,
			MaxAuthFailures:   3,
			ReadRate:          cfg.C2S.ReadRate,
			ReadBurst:         cfg.C2S.ReadBurst,
			ResumeTimeout:     cfg.C2S.SMResumeTimeout,
			MaxUnacked:        cfg.C2S.SMMaxUnacked,
			AckTimeout:        cfg.C2S.SMAckTimeout,
		},
		ResourceConflict: cfg.C2S.ResourceConflict,
		MaxSessions:      cfg.C2S.MaxSessionsPerUser,
		MaxConnsPerIP:    cfg.C2S.MaxConnectionsPerIP,
		ThrottlePerIP:    cfg.C2S.AuthThrottle.PerIP,
		ThrottlePerUser:  cfg.C2S.AuthThrottle.PerAccount,
		ThrottleWindow:   cfg.C2S.AuthThrottle.Window,
		ListenC2S:        cfg.Listen.C2S,
		ListenC2STLS:     cfg.Listen.C2STLS,
		DecodeModule:     cfg.DecodeModule,
		ModuleError:      cfg.ModuleError,
		DecodeComponent:  cfg.DecodeComponent,
	}
	for _, cp := range cfg.Components {
		o.Components = append(o.Components, core.ComponentOptions{Name: cp.Name, Module: cp.Module, Modules: cp.Modules})
	}
	for _, h := range cfg.Server.SCRAMHashes {
		o.SCRAMHashes = append(o.SCRAMHashes, sasl.Hash(h))
	}
	for _, a := range cfg.Server.Admins {
		j, err := jid.Parse(a)
		if err != nil {
			return nil, fmt.Errorf("[server] admins: %q: %w", a, err)
		}
		o.Admins = append(o.Admins, j.Bare())
	}
	for _, h := range cfg.Hosts {
		tf := h.TLS
		if tf.IsZero() {
			tf = cfg.TLS
		}
		o.Hosts = append(o.Hosts, core.HostOptions{
			Name:    h.Name,
			Cert:    core.CertSpec{Cert: tf.Cert, Key: tf.Key},
			Modules: cfg.EnabledModules(h.Name),
		})
	}
	addPluginModules(o)
	return o, nil
}

// AdminSocketLenient reads the admin socket path from a configuration file
// that may not validate: only [server] data_dir and admin_socket are read.
func AdminSocketLenient(explicit string) (string, error) {
	path, err := config.Find(explicit)
	if err != nil || path == "" {
		return "", errors.New("no configuration file")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var doc struct {
		Server struct {
			DataDir     string `toml:"data_dir"`
			AdminSocket string `toml:"admin_socket"`
		} `toml:"server"`
	}
	if err := toml.Unmarshal(b, &doc); err != nil {
		return "", err
	}
	if doc.Server.AdminSocket != "" {
		return doc.Server.AdminSocket, nil
	}
	dd := doc.Server.DataDir
	if dd == "" {
		dd = config.Default().Server.DataDir
	}
	return filepath.Join(dd, "admin.sock"), nil
}
