// Package event is the typed event bus that every feature of the server is
// built on, after Prosody's util/events: string-named events, handlers with
// integer priorities (higher first, equal priorities in registration
// order), and a verdict that stops the chain.
//
// Handler lists are immutable slices swapped atomically when a handler is
// added or removed, so firing an event takes no lock and a handler may hook
// or unhook others while it runs. A panicking handler is recovered, logged
// and turned into an internal-server-error verdict.
package event

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Priority bands. Anything else needs a comment on what must run before or after it.
const (
	PrioPolicy   = 1000  // filters and policy: blocking, anti-spam
	PrioRewrite  = 500   // stanza rewriting
	PrioDefault  = 0     // the handler that does the work
	PrioFallback = -1000 // fallbacks and logging
)

// Origin is where a stanza came from: a client session, a server stream, a
// component or the server itself. Richer interfaces (module.Session) are
// reached by type assertion.
type Origin interface {
	// JID is the origin's address: a c2s session's full JID, a domain otherwise.
	JID() jid.JID
	// Kind is "c2s", "s2s", "component" or "local".
	Kind() string
}

// Event is what handlers receive. Stanza events carry Stanza with To/From
// already parsed; other events carry Data.
type Event struct {
	Name   string
	Host   string // the host whose bus fired the event ("" for the global bus)
	Origin Origin
	Stanza *stanza.Element
	To     jid.JID
	From   jid.JID
	Data   any
}

// Verdict is a handler's answer: go on, stop, or stop and bounce an error.
type Verdict struct {
	stop bool
	err  *stanza.Error
}

// Continue lets the next handler run.
var Continue = Verdict{}

// Handled stops the chain: the handler answered or deliberately dropped the stanza.
var Handled = Verdict{stop: true}

// Error stops the chain and asks the router to bounce e to the sender.
func Error(e stanza.Error) Verdict { return Verdict{stop: true, err: &e} }

// Stopped reports whether the chain stopped (Handled or Error).
func (v Verdict) Stopped() bool { return v.stop }

// Err returns the error of an Error verdict.
func (v Verdict) Err() (stanza.Error, bool) {
	if v.err == nil {
		return stanza.Error{}, false
	}
	return *v.err, true
}

// Handler handles an event. The event (not the stanza) may be reused once
// the handler returns: a handler that hands work to another goroutine
// copies the fields it needs.
type Handler func(ctx context.Context, ev *Event) Verdict

type entry struct {
	prio  int
	seq   uint64
	owner string
	fn    Handler
}

type list struct {
	handlers atomic.Pointer[[]entry]
}

// Bus is a set of named events with their handlers. The zero Bus is not
// usable; call NewBus.
type Bus struct {
	name   string
	log    *slog.Logger
	mu     sync.Mutex // serialises changes; readers never lock
	seq    uint64
	events sync.Map // string → *list
}

// NewBus returns an empty bus. name labels log lines (a host name or "global").
func NewBus(name string, log *slog.Logger) *Bus {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bus{name: name, log: log}
}

// Hook adds fn to event name with priority prio and returns a function that
// removes it. owner names the module for logs and introspection.
func (b *Bus) Hook(name string, prio int, owner string, fn Handler) (unhook func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e := entry{prio: prio, seq: b.seq, owner: owner, fn: fn}
	v, _ := b.events.LoadOrStore(name, new(list))
	l := v.(*list)
	var cur []entry
	if p := l.handlers.Load(); p != nil {
		cur = *p
	}
	next := make([]entry, 0, len(cur)+1)
	next = append(next, cur...)
	next = append(next, e)
	slices.SortStableFunc(next, func(a, b entry) int {
		if a.prio != b.prio {
			return b.prio - a.prio
		}
		return int(a.seq - b.seq)
	})
	l.handlers.Store(&next)
	seq := e.seq
	var once sync.Once
	return func() { once.Do(func() { b.remove(name, seq) }) }
}

func (b *Bus) remove(name string, seq uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.events.Load(name)
	if !ok {
		return
	}
	l := v.(*list)
	cur := *l.handlers.Load()
	next := make([]entry, 0, len(cur))
	for _, e := range cur {
		if e.seq != seq {
			next = append(next, e)
		}
	}
	l.handlers.Store(&next)
}

// Has reports whether event name has at least one handler.
func (b *Bus) Has(name string) bool {
	v, ok := b.events.Load(name)
	if !ok {
		return false
	}
	p := v.(*list).handlers.Load()
	return p != nil && len(*p) > 0
}

// HandlerInfo describes one hooked handler (for `metronomectl hooks`).
type HandlerInfo struct {
	Priority int
	Owner    string
}

// Handlers lists the live chain of event name, in firing order.
func (b *Bus) Handlers(name string) []HandlerInfo {
	v, ok := b.events.Load(name)
	if !ok {
		return nil
	}
	p := v.(*list).handlers.Load()
	if p == nil {
		return nil
	}
	out := make([]HandlerInfo, len(*p))
	for i, e := range *p {
		out[i] = HandlerInfo{Priority: e.prio, Owner: e.owner}
	}
	return out
}

// Fire runs the handlers of ev.Name in order until one stops the chain, and
// returns that verdict (Continue when none did, or none exist).
func (b *Bus) Fire(ctx context.Context, ev *Event) Verdict {
	v, ok := b.events.Load(ev.Name)
	if !ok {
		return Continue
	}
	p := v.(*list).handlers.Load()
	if p == nil {
		return Continue
	}
	for i := range *p {
		if r := b.call(ctx, &(*p)[i], ev); r.stop {
			return r
		}
	}
	return Continue
}

func (b *Bus) call(ctx context.Context, e *entry, ev *Event) (v Verdict) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("event handler panicked", "bus", b.name, "event", ev.Name, "module", e.owner,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			v = Error(stanza.Err(stanza.InternalServerError))
		}
	}()
	return e.fn(ctx, ev)
}
