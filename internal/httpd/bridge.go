package httpd

import (
	"context"
	"slices"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/internal/admin"
	"github.com/metronome-xmpp/metronome/internal/metrics"
	"github.com/metronome-xmpp/metronome/module"
)

// ModuleName is the configuration name of the module that connects a
// host's modules to the HTTP server. The app loads it first on every host;
// modules that serve HTTP list it in Info.Requires.
const ModuleName = "http"

func init() { module.Register(new(bridge)) }

// bridge is the "http" module. One instance per host and generation
// publishes the host's module.Router and data directory, tells the server
// about the host (admin operations), and counts sessions for the metrics.
// Its routes are removed when its generation unloads (Cleanup).
type bridge struct {
	srv   *Server // injected by WrapDecoder; nil in offline tools
	owner uint64
}

// Info implements module.Module.
func (*bridge) Info() module.Info {
	return module.Info{ID: "core.http", New: func() module.Module { return new(bridge) }}
}

// Provision implements module.Provisioner.
func (b *bridge) Provision(h module.Host) error {
	if b.srv == nil {
		return nil // no HTTP server in this process: module.HTTP reports false
	}
	b.owner = b.srv.routes.owners.Add(1)
	h.Provide(module.ProvideHTTP, &hostRouter{s: b.srv, host: h.Name(), owner: b.owner})
	if dd := b.srv.settings().cfg.DataDir; dd != "" {
		h.Provide(module.ProvideDataDir, dd)
	}
	b.srv.hosts.set(h.Name(), h, b.owner)
	// Counting only, always Continue: at policy priority so that no
	// handler that stops the chain hides a session from the gauge.
	h.Hook(module.EventSessionBound, event.PrioPolicy, func(_ context.Context, ev *event.Event) event.Verdict {
		if s, ok := ev.Data.(module.Session); ok {
			metrics.SessionOpened(admin.Transport(s))
		}
		return event.Continue
	})
	h.Hook(module.EventSessionClosed, event.PrioPolicy, func(_ context.Context, ev *event.Event) event.Verdict {
		if s, ok := ev.Data.(module.Session); ok {
			metrics.SessionClosed(admin.Transport(s))
		}
		return event.Continue
	})
	return nil
}

// Cleanup implements module.CleanerUpper: the generation is gone.
func (b *bridge) Cleanup() error {
	if b.srv != nil {
		b.srv.routes.drop(b.owner)
		b.srv.hosts.drop(b.owner)
		b.srv.dropShutdownHooks(b.owner)
	}
	return nil
}

// WrapDecoder returns a module option decoder that hands this server to
// the "http" module of every host and passes every other module to next.
// The "http" module has no options of its own: [http] configures it.
func (s *Server) WrapDecoder(next func(host, name string, dst any) error) func(host, name string, dst any) error {
	return func(host, name string, dst any) error {
		if b, ok := dst.(*bridge); ok && name == ModuleName {
			b.srv = s
			return nil
		}
		if next == nil {
			return nil
		}
		return next(host, name, dst)
	}
}

// WithModule returns modules with the "http" module first (once).
func WithModule(modules []string) []string {
	out := make([]string, 0, len(modules)+1)
	out = append(out, ModuleName)
	for _, m := range modules {
		if m != ModuleName {
			out = append(out, m)
		}
	}
	return slices.Clip(out)
}
