// Package adhoc implements XEP-0050 Ad-Hoc Commands (version 1.3) on the
// host's JID, and the XEP-0133 Service Administration commands (version
// 1.3) for the configured server admins: add-user, delete-user,
// change-user-password, get-registered-users-num/-list,
// get-online-users-num/-list and announce.
//
// Commands are discovered with disco#items on the node
// "http://jabber.org/protocol/commands" (§2.2) and described with disco#info
// on their own node (also §2.2), through the disco module's registry when the
// disco module is loaded. Each request without sessionid starts a session;
// the module keeps the session (its id, owner and the command's state)
// until the command completes, is canceled (§2.4.3) or stays idle for ten
// minutes. Only the full JID that started a session may continue it.
//
// Other modules add commands through the Registry published as "adhoc"
// (Host.Provide). Sessions live in memory: a reload or a restart ends
// them, which XEP-0050 allows (session-expired).
//
// Not implemented: the "prev" action for multi-stage commands (answered
// bad-action), xml:lang localisation, commands on users' JIDs.
package adhoc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// NS is the XEP-0050 namespace; it is also the disco node listing commands.
const NS = "http://jabber.org/protocol/commands"

// ProvideName is the name the Registry is published under.
const ProvideName = "adhoc"

// Command statuses (XEP-0050 §4.1).
const (
	StatusExecuting = "executing"
	StatusCompleted = "completed"
	StatusCanceled  = "canceled"
)

// sessionTimeout is how long an idle command session is kept.
const sessionTimeout = 10 * time.Minute

func init() { module.Register(new(Adhoc)) }

// RunFunc runs one step of a command for from. action is "execute" for the
// first step, then the client's action ("execute", "next", "complete" or
// "prev"; "cancel" is handled by the module). req is the request's
// <command/> element (with the submitted form, if any). state is the
// session's own map, empty at the first step, for the command to keep what
// it needs between steps. The returned element is the <command/> answer
// (namespace NS) with its status ("executing" keeps the session, anything
// else ends it; empty means completed), actions, form and notes; the module
// sets node and sessionid. An error that is a stanza.Error is returned to
// the client as is; any other error becomes internal-server-error.
type RunFunc = func(ctx context.Context, from jid.JID, action string, req *stanza.Element, state map[string]any) (*stanza.Element, error)

type command struct {
	node, name string
	allowed    func(from jid.JID) bool
	run        RunFunc
	id         uint64
	undisco    []func()
}

type session struct {
	mu      sync.Mutex // held while the command runs a step
	id      string
	node    string
	owner   jid.JID
	state   map[string]any
	expires time.Time
}

// discoNodes is the part of the disco module's registry adhoc uses.
type discoNodes interface {
	AddNode(node string, info, items func(ctx context.Context, from jid.JID) ([]*stanza.Element, error)) (remove func())
}

// Registry holds the commands of a host. It is published as "adhoc"; other
// modules declare an interface with the methods they use, e.g.
//
//	type commands interface {
//		Add(node, name string, allowed func(jid.JID) bool,
//			run func(context.Context, jid.JID, string, *stanza.Element, map[string]any) (*stanza.Element, error)) (remove func())
//	}
type Registry struct {
	a *Adhoc

	mu       sync.Mutex
	seq      uint64
	commands []*command // in registration order
	disco    discoNodes
}

// Add registers a command on node with a human-readable name. allowed
// decides who may see and run it (nil: everybody). A command added on an
// existing node replaces it. remove unregisters it.
func (r *Registry) Add(node, name string, allowed func(from jid.JID) bool,
	run func(ctx context.Context, from jid.JID, action string, req *stanza.Element, state map[string]any) (*stanza.Element, error)) (remove func()) {
	if allowed == nil {
		allowed = func(jid.JID) bool { return true }
	}
	r.mu.Lock()
	r.seq++
	c := &command{node: node, name: name, allowed: allowed, run: run, id: r.seq}
	var old *command
	r.commands = slices.DeleteFunc(r.commands, func(o *command) bool {
		if o.node == node {
			old = o
			return true
		}
		return false
	})
	r.commands = append(r.commands, c)
	if r.disco != nil {
		c.undisco = r.discoCommand(c)
	}
	r.mu.Unlock()
	if old != nil {
		for _, u := range old.undisco {
			u()
		}
	}
	return func() {
		r.mu.Lock()
		var gone *command
		r.commands = slices.DeleteFunc(r.commands, func(o *command) bool {
			if o.id == c.id {
				gone = o
				return true
			}
			return false
		})
		r.mu.Unlock()
		if gone != nil {
			for _, u := range gone.undisco {
				u()
			}
		}
	}
}

func (r *Registry) lookup(node string) *command {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.commands {
		if c.node == node {
			return c
		}
	}
	return nil
}

func (r *Registry) visible(from jid.JID) []*command {
	r.mu.Lock()
	cs := slices.Clone(r.commands)
	r.mu.Unlock()
	return slices.DeleteFunc(cs, func(c *command) bool { return !c.allowed(from) })
}

// attachDisco registers the commands node and every command's node with
// the disco registry (once).
func (r *Registry) attachDisco(d discoNodes) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.disco != nil {
		return
	}
	r.disco = d
	host := r.a.h.Name()
	d.AddNode(NS, func(context.Context, jid.JID) ([]*stanza.Element, error) {
		return []*stanza.Element{
			stanza.New("http://jabber.org/protocol/disco#info", "identity", "category", "automation", "type", "command-list", "name", "Commands"),
			stanza.New("http://jabber.org/protocol/disco#info", "feature", "var", NS),
		}, nil
	}, func(_ context.Context, from jid.JID) ([]*stanza.Element, error) {
		var out []*stanza.Element
		for _, c := range r.visible(from) {
			out = append(out, stanza.New("http://jabber.org/protocol/disco#items", "item", "jid", host, "node", c.node, "name", c.name))
		}
		return out, nil
	})
	for _, c := range r.commands {
		c.undisco = r.discoCommand(c)
	}
}

// discoCommand registers one command's node (§2.2); r.mu is held.
func (r *Registry) discoCommand(c *command) []func() {
	const nsInfo = "http://jabber.org/protocol/disco#info"
	rm := r.disco.AddNode(c.node, func(_ context.Context, from jid.JID) ([]*stanza.Element, error) {
		if !c.allowed(from) {
			return nil, stanza.Err(stanza.Forbidden)
		}
		return []*stanza.Element{
			stanza.New(nsInfo, "identity", "category", "automation", "type", "command-node", "name", c.name),
			stanza.New(nsInfo, "feature", "var", NS),
			stanza.New(nsInfo, "feature", "var", NSData),
		}, nil
	}, nil)
	return []func(){rm}
}

// Adhoc is the module and its configuration ([modules.adhoc]).
type Adhoc struct {
	// AdminCommands enables the XEP-0133 commands for server admins.
	AdminCommands bool `json:"admin_commands"`

	h   module.Host
	reg *Registry

	mu       sync.Mutex
	sessions map[string]*session
	now      func() time.Time
}

// Info implements module.Module.
func (*Adhoc) Info() module.Info {
	return module.Info{ID: "mod.adhoc", New: func() module.Module { return &Adhoc{AdminCommands: true} }}
}

// Provision implements module.Provisioner.
func (a *Adhoc) Provision(h module.Host) error {
	a.h = h
	if a.now == nil {
		a.now = time.Now
	}
	a.sessions = map[string]*session{}
	a.reg = &Registry{a: a}
	h.Provide(ProvideName, a.reg)
	h.AddFeature(NS)
	module.OnIQ(h, "host", stanza.Set, NS, "command", event.PrioDefault, a.handle)
	if a.AdminCommands {
		a.addAdminCommands()
	}
	// The disco module may be provisioned after this one: look it up again
	// once the whole host is provisioned.
	a.findDisco()
	h.Hook(module.EventHostActivated, event.PrioDefault, func(context.Context, *event.Event) event.Verdict {
		a.findDisco()
		return event.Continue
	})
	h.Every(time.Minute, func(context.Context) { a.expire() })
	return nil
}

func (a *Adhoc) findDisco() {
	if v, ok := a.h.Lookup("disco"); ok {
		if d, ok := v.(discoNodes); ok {
			a.reg.attachDisco(d)
		}
	}
}

// expire drops sessions idle for longer than sessionTimeout.
func (a *Adhoc) expire() {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, s := range a.sessions {
		if now.After(s.expires) {
			delete(a.sessions, id)
		}
	}
}

func cmdErr(c stanza.Condition, app string) stanza.Error {
	e := stanza.Err(c)
	if app != "" {
		e.App = stanza.New(NS, app)
	}
	return e
}

func newSessionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// handle executes a command request (§2.4, §3.3 sessions, §4.4 errors).
func (a *Adhoc) handle(ctx context.Context, ev *event.Event) event.Verdict {
	req := ev.Stanza.FirstChild()
	nodeName := req.Attr("node")
	action := req.Attr("action")
	switch action {
	case "", "execute", "next", "prev", "complete", "cancel":
	default:
		return module.ReplyError(ctx, a.h, ev, cmdErr(stanza.BadRequest, "malformed-action"))
	}
	c := a.reg.lookup(nodeName)
	if c == nil {
		return module.ReplyError(ctx, a.h, ev, stanza.Err(stanza.ItemNotFound))
	}
	if !c.allowed(ev.From) {
		return module.ReplyError(ctx, a.h, ev, stanza.Err(stanza.Forbidden))
	}

	var s *session
	if sid := req.Attr("sessionid"); sid != "" {
		a.mu.Lock()
		s = a.sessions[sid]
		a.mu.Unlock()
		switch {
		case s == nil:
			return module.ReplyError(ctx, a.h, ev, cmdErr(stanza.NotAllowed, "session-expired"))
		case !s.owner.Equal(ev.From) || s.node != nodeName:
			return module.ReplyError(ctx, a.h, ev, cmdErr(stanza.BadRequest, "bad-sessionid"))
		}
		if action == "" {
			action = "execute"
		}
	} else {
		if action != "" && action != "execute" {
			// Only execute may start a session.
			return module.ReplyError(ctx, a.h, ev, cmdErr(stanza.BadRequest, "bad-action"))
		}
		action = "execute"
		s = &session{id: newSessionID(), node: nodeName, owner: ev.From, state: map[string]any{}}
	}

	if action == "cancel" {
		a.drop(s.id)
		return module.Reply(ctx, a.h, ev, stanza.New(NS, "command", "node", nodeName, "sessionid", s.id, "status", StatusCanceled))
	}

	s.mu.Lock()
	resp, err := c.run(ctx, ev.From, action, req, s.state)
	s.mu.Unlock()
	if err != nil {
		var se stanza.Error
		if !errors.As(err, &se) {
			a.h.Logger().Error("command failed", "node", nodeName, "err", err)
			se = stanza.Err(stanza.InternalServerError)
		}
		// A failed step keeps the session only if it was started earlier
		// (the client may correct its form); a failing first step ends it.
		return module.ReplyError(ctx, a.h, ev, se)
	}
	if resp == nil {
		resp = stanza.New(NS, "command")
	}
	resp = resp.ShallowCopy()
	resp.SetAttr("node", nodeName)
	resp.SetAttr("sessionid", s.id)
	if resp.Attr("status") == "" {
		resp.SetAttr("status", StatusCompleted)
	}
	if resp.Attr("status") == StatusExecuting {
		s.expires = a.now().Add(sessionTimeout)
		a.mu.Lock()
		a.sessions[s.id] = s
		a.mu.Unlock()
	} else {
		a.drop(s.id)
	}
	return module.Reply(ctx, a.h, ev, resp)
}

func (a *Adhoc) drop(id string) {
	a.mu.Lock()
	delete(a.sessions, id)
	a.mu.Unlock()
}

// Response helpers for commands.

// executing returns a <command status='executing'/> carrying form, with
// the single allowed action "complete" (§3.4).
func executing(f form) *stanza.Element {
	c := stanza.New(NS, "command", "status", StatusExecuting)
	acts := c.AddChild(stanza.New(NS, "actions", "execute", "complete"))
	acts.AddChild(stanza.New(NS, "complete"))
	c.AddChild(f.x)
	return c
}

// completed returns a <command status='completed'/> with an optional note
// (type info) and an optional result form.
func completed(note string, f *form) *stanza.Element {
	c := stanza.New(NS, "command", "status", StatusCompleted)
	if note != "" {
		c.AddChild(stanza.New(NS, "note", "type", "info")).AddText(note)
	}
	if f != nil {
		c.AddChild(f.x)
	}
	return c
}
