// Package ping implements XEP-0199 XMPP Ping (version 2.0.1) on the server
// side: it answers pings addressed to the host and pings a client sends to
// its own account (no 'to', or its bare JID: §4.2 "handled by the server on
// behalf of the connected user's bare JID"), and pings idle clients (§4.1,
// server to client) when the core reports a silent session.
//
// Idle pings: the core fires session/idle when a bound session sent nothing
// for [c2s] idle_timeout. The module sends <ping/> to the client's full JID
// and returns Handled, which gives the session a grace period
// ([c2s] ping_timeout); if the client still sends nothing, the core closes
// the stream with connection-timeout. The reply itself needs no handling:
// any traffic counts as activity.
//
// Pings to another user's bare JID are not answered on that user's behalf
// (the core answers service-unavailable), so they reveal nothing about the
// account.
package ping

import (
	"context"
	"strconv"
	"sync/atomic"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// NS is the XEP-0199 namespace.
const NS = "urn:xmpp:ping"

func init() { module.Register(new(Ping)) }

// Ping is the module and its configuration ([modules.ping]).
type Ping struct {
	// IdlePing pings clients the core reports as idle.
	IdlePing bool `json:"idle_ping"`

	h   module.Host
	seq atomic.Uint64
}

// Info implements module.Module.
func (*Ping) Info() module.Info {
	return module.Info{ID: "mod.ping", New: func() module.Module { return &Ping{IdlePing: true} }}
}

// Provision implements module.Provisioner.
func (p *Ping) Provision(h module.Host) error {
	p.h = h
	h.AddFeature(NS)
	module.OnIQ(h, "host", stanza.Get, NS, "ping", event.PrioDefault, p.pong)
	module.OnIQ(h, "bare", stanza.Get, NS, "ping", event.PrioDefault, func(ctx context.Context, ev *event.Event) event.Verdict {
		if !ev.From.Bare().Equal(ev.To.Bare()) {
			return event.Continue
		}
		return p.pong(ctx, ev)
	})
	if p.IdlePing {
		h.Hook(module.EventIdleCheck, event.PrioDefault, p.idle)
	}
	return nil
}

func (p *Ping) pong(ctx context.Context, ev *event.Event) event.Verdict {
	return module.Reply(ctx, p.h, ev, nil)
}

// idle pings a silent session and claims it (Handled) so that the core
// grants the grace period instead of closing it at once.
func (p *Ping) idle(ctx context.Context, ev *event.Event) event.Verdict {
	s, ok := ev.Data.(module.Session)
	if !ok || s.JID().IsZero() {
		return event.Continue
	}
	iq := stanza.New(stanza.NSClient, "iq", "type", stanza.Get,
		"id", "idle-ping-"+strconv.FormatUint(p.seq.Add(1), 36),
		"from", p.h.Name(), "to", s.JID().String())
	iq.AddChild(stanza.New(NS, "ping"))
	if err := p.h.Deliver(ctx, s, iq); err != nil {
		return event.Continue // the session is closing; let the core end it
	}
	return event.Handled
}
