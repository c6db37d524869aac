package plugin

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/metronome-xmpp/metronome/internal/config"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/storage/memory"
)

// CheckReport is what a dry run found.
type CheckReport struct {
	Hooks     []string // "event (priority)"
	Features  []string
	Started   time.Duration // instantiation and init
	MemoryCap int64
	Init      bool // init ran with the plugin's options
}

// Check runs a plugin the way the server would, without touching the
// server: compile with the memory cap of settings, instantiate, and, when
// options is not nil (a JSON object, "{}" for none), run init with them on
// a scratch host named host whose stores are in memory. It refuses what
// the server would refuse: a module not built with the SDK, an unsupported
// ABI, a memory need over the cap, an init that fails, traps or overruns
// its time limit, a hook on an event the manifest does not declare.
func Check(ctx context.Context, e *Engine, settings config.Plugins, m *Manifest, wasm []byte, host string, options []byte) (*CheckReport, error) {
	s := &Set{Settings: settings}
	c, err := e.Compile(ctx, wasm, sha256Hex(wasm), settings.MemoryLimit)
	if err != nil {
		return nil, err
	}
	defer c.Release()
	rep := &CheckReport{MemoryCap: c.MemoryLimit()}
	h := &scratchHost{name: host, log: slog.New(slog.DiscardHandler), drv: memory.New()}
	cfg := []byte("{}")
	if options != nil {
		if cfg, err = m.ApplyConfig(options); err != nil {
			return nil, err
		}
	}
	pl := newPool(c, m, h, cfg, s.limits())
	pl.probe = options == nil
	defer pl.close()
	t0 := time.Now()
	regs, err := pl.start(ctx)
	if err != nil {
		return nil, err
	}
	rep.Started = time.Since(t0)
	rep.Init = options != nil
	for _, r := range regs.hooks {
		rep.Hooks = append(rep.Hooks, fmt.Sprintf("%s (%d)", r.name, r.prio))
	}
	rep.Features = append(rep.Features, regs.features...)
	rep.Features = append(rep.Features, regs.accountFeatures...)
	return rep, nil
}

// scratchHost is the host of a dry run: it has a name, a logger and
// in-memory stores; nothing else is reachable during init.
type scratchHost struct {
	module.Host
	name string
	log  *slog.Logger
	drv  storage.Driver
}

func (h *scratchHost) Name() string         { return h.name }
func (h *scratchHost) Logger() *slog.Logger { return h.log }
func (h *scratchHost) Store(name string) storage.Stores {
	return storage.Stores{Host: h.name, Name: name, Driver: h.drv}
}
