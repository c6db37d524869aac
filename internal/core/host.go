package core

import (
	"context"
	"errors"
	"fmt"
	"github.com/metronome-xmpp/metronome/internal/c2s"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metronome-xmpp/metronome/account"
	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/sasl"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// host is one virtual host. It outlives reloads; its module instances live
// in a generation that is replaced whole.
type host struct {
	srv      *Server
	name     string
	jid      jid.JID
	log      *slog.Logger
	accounts *account.Manager // nil on a component host
	gen      atomic.Pointer[generation]
	// component is the module serving a component host ("" for a
	// virtual host); see component.go.
	component string
}

// generation is the set of module instances of a host and their bus.
type generation struct {
	bus       *event.Bus
	instances []*instance
	mu        sync.Mutex
	provided  map[string]any
}

func (h *host) Name() string { return h.name }

func (h *host) bus() *event.Bus { return h.gen.Load().bus }

// SASL implements c2s.Host.
func (h *host) SASL(secure bool, cb sasl.ChannelBinding) sasl.Config {
	return sasl.Config{Backend: h.accounts, TLS: secure, CB: cb, Downgrade: true, Secret: h.srv.secret,
		Mechanisms: h.srv.mechanisms}
}

// StreamFeatures implements c2s.Host.
func (h *host) StreamFeatures(preAuth bool) []*stanza.Element {
	var out []*stanza.Element
	for _, in := range h.gen.Load().instances {
		in.mu.Lock()
		for _, f := range in.streamFeatures {
			if f.preAuth == preAuth {
				out = append(out, f.el)
			}
		}
		in.mu.Unlock()
	}
	return out
}

func (h *host) disco() module.DiscoInfo {
	var d module.DiscoInfo
	for _, in := range h.gen.Load().instances {
		in.mu.Lock()
		d.Identities = append(d.Identities, in.identities...)
		d.Features = append(d.Features, in.features...)
		d.AccountFeatures = append(d.AccountFeatures, in.accountFeatures...)
		d.Extensions = append(d.Extensions, in.extensions...)
		in.mu.Unlock()
	}
	if len(d.Identities) == 0 {
		d.Identities = []module.Identity{{Category: "server", Type: "im", Name: "Metronome"}}
	}
	sort.Strings(d.Features)
	d.Features = slices.Compact(d.Features)
	sort.Strings(d.AccountFeatures)
	d.AccountFeatures = slices.Compact(d.AccountFeatures)
	return d
}

type streamFeature struct {
	el      *stanza.Element
	preAuth bool
}

// instance is one module loaded on one host; it implements module.Host and
// tracks what the module registered so unloading removes it.
type instance struct {
	h      *host
	gen    *generation
	name   string
	mod    module.Module
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu              sync.Mutex
	unhooks         []func()
	features        []string
	accountFeatures []string
	identities      []module.Identity
	extensions      []*stanza.Element
	streamFeatures  []streamFeature
}

var _ module.Host = (*instance)(nil)

func (in *instance) Name() string         { return in.h.name }
func (in *instance) JID() jid.JID         { return in.h.jid }
func (in *instance) Logger() *slog.Logger { return in.log }

func (in *instance) track(unhook func()) {
	in.mu.Lock()
	in.unhooks = append(in.unhooks, unhook)
	in.mu.Unlock()
}

func (in *instance) Hook(name string, prio int, fn event.Handler) {
	in.track(in.gen.bus.Hook(name, prio, in.name, fn))
}

func (in *instance) HookGlobal(name string, prio int, fn event.Handler) {
	in.track(in.h.srv.global.Hook(name, prio, in.h.name+"/"+in.name, fn))
}

func (in *instance) Fire(ctx context.Context, ev *event.Event) event.Verdict {
	if ev.Host == "" {
		ev.Host = in.h.name
	}
	return in.h.bus().Fire(ctx, ev)
}

func (in *instance) AddFeature(ns string) {
	in.mu.Lock()
	in.features = append(in.features, ns)
	in.mu.Unlock()
}

func (in *instance) AddAccountFeature(ns string) {
	in.mu.Lock()
	in.accountFeatures = append(in.accountFeatures, ns)
	in.mu.Unlock()
}

func (in *instance) AddIdentity(category, typ, name string) {
	in.mu.Lock()
	in.identities = append(in.identities, module.Identity{Category: category, Type: typ, Name: name})
	in.mu.Unlock()
}

func (in *instance) AddExtension(form *stanza.Element) {
	in.mu.Lock()
	in.extensions = append(in.extensions, form)
	in.mu.Unlock()
}

func (in *instance) Disco() module.DiscoInfo { return in.h.disco() }

func (in *instance) AddStreamFeature(el *stanza.Element, preAuth bool) {
	in.mu.Lock()
	in.streamFeatures = append(in.streamFeatures, streamFeature{el, preAuth})
	in.mu.Unlock()
}

func (in *instance) Store(name string) storage.Stores {
	return storage.Stores{Host: in.h.name, Name: name, Driver: in.h.srv.driver}
}

func (in *instance) Accounts() *account.Manager { return in.h.accounts }

func (in *instance) CreateUser(ctx context.Context, bare jid.JID, password string) error {
	if bare.Domain() != in.h.name {
		return fmt.Errorf("%s is not an account of %s", bare, in.h.name)
	}
	return in.h.srv.CreateUser(ctx, bare, password)
}

func (in *instance) DeleteUser(ctx context.Context, bare jid.JID) error {
	if bare.Domain() != in.h.name {
		return fmt.Errorf("%s is not an account of %s", bare, in.h.name)
	}
	return in.h.srv.DeleteUser(ctx, bare)
}

func (in *instance) Route(ctx context.Context, st *stanza.Element) error {
	return in.h.srv.RouteFromServer(ctx, st)
}

func (in *instance) Deliver(ctx context.Context, s module.Session, st *stanza.Element) error {
	return s.Send(st)
}

func (in *instance) SendIQ(ctx context.Context, iq *stanza.Element) (*stanza.Element, error) {
	return in.h.srv.sendIQ(ctx, iq)
}

// Sessions returns the directory's own slice: it is never modified in
// place (binding and unbinding replace it), so callers must not modify it.
func (in *instance) Sessions(bare jid.JID) []module.Session {
	return in.h.srv.dir.sessions(bare.String())
}

func (in *instance) Session(full jid.JID) module.Session {
	if s := in.h.srv.dir.lookupFull(full.String()); s != nil {
		return s
	}
	return nil
}

func (in *instance) AllSessions() []module.Session {
	ss := in.h.srv.dir.all(in.h.name)
	out := make([]module.Session, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (in *instance) IsLocal(domain string) bool { return in.h.srv.lookupHost(domain) != nil }

func (in *instance) IsAdmin(j jid.JID) bool { return in.h.srv.isAdmin(j) }

func (in *instance) Server() module.ServerInfo { return in.h.srv.info }

func (in *instance) Provide(name string, v any) {
	in.gen.mu.Lock()
	in.gen.provided[name] = v
	in.gen.mu.Unlock()
}

func (in *instance) Lookup(name string) (any, bool) {
	g := in.gen // the instance's own generation, also while it is being built
	g.mu.Lock()
	defer g.mu.Unlock()
	v, ok := g.provided[name]
	return v, ok
}

func (in *instance) Go(fn func(ctx context.Context) error) {
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		if err := fn(in.ctx); err != nil && !errors.Is(err, context.Canceled) {
			in.log.Error("module goroutine failed", "err", err)
		}
	}()
}

func (in *instance) Every(d time.Duration, fn func(ctx context.Context)) {
	in.Go(func(ctx context.Context) error {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				fn(ctx)
			}
		}
	})
}

// unload removes everything the instance registered and waits for its goroutines.
func (in *instance) unload() {
	in.cancel()
	in.mu.Lock()
	unhooks := in.unhooks
	in.unhooks = nil
	in.mu.Unlock()
	for _, u := range unhooks {
		u()
	}
	in.wg.Wait()
	if c, ok := in.mod.(module.CleanerUpper); ok {
		if err := c.Cleanup(); err != nil {
			in.log.Warn("module cleanup failed", "err", err)
		}
	}
}

// buildGeneration loads the modules enabled on a host into a new generation.
// On any error everything already loaded is unloaded and the error names
// the module and host.
func (h *host) buildGeneration(names []string, decode func(host, name string, dst any) error,
	position func(host, name string, err error) error) (*generation, error) {
	if position == nil {
		position = func(host, name string, err error) error {
			return fmt.Errorf("module %q on host %q: %w", name, host, err)
		}
	}
	order, err := resolveOrder(names)
	if err != nil {
		return nil, fmt.Errorf("host %q: %w", h.name, err)
	}
	g := &generation{bus: event.NewBus(h.name, h.log), provided: map[string]any{c2s.ProvideName: h.srv}}
	for _, name := range order {
		info, _ := module.Lookup(name)
		m := info.New()
		if decode != nil {
			if err := decode(h.name, name, m); err != nil {
				g.unload()
				return nil, err
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		in := &instance{h: h, gen: g, name: name, mod: m, ctx: ctx, cancel: cancel,
			log: h.log.With("module", name)}
		g.instances = append(g.instances, in)
		if p, ok := m.(module.Provisioner); ok {
			if err := p.Provision(in); err != nil {
				g.unload()
				return nil, position(h.name, name, err)
			}
		}
		if v, ok := m.(module.Validator); ok {
			if err := v.Validate(); err != nil {
				g.unload()
				return nil, position(h.name, name, err)
			}
		}
	}
	return g, nil
}

func (g *generation) unload() {
	for i := len(g.instances) - 1; i >= 0; i-- {
		g.instances[i].unload()
	}
}

// resolveOrder orders module names so that each comes after its Requires,
// keeping the configured order otherwise.
func resolveOrder(names []string) ([]string, error) {
	var out []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, from string) error
	visit = func(n, from string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("module %q: dependency cycle through %q", from, n)
		case 2:
			return nil
		}
		info, ok := module.Lookup(n)
		if !ok {
			if from != "" {
				return fmt.Errorf("module %q requires unknown module %q", from, n)
			}
			return fmt.Errorf("unknown module %q (known: %v)", n, module.Registered())
		}
		state[n] = 1
		for _, r := range info.Requires {
			if err := visit(r, n); err != nil {
				return err
			}
		}
		state[n] = 2
		out = append(out, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n, ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}
