// Package push implements XEP-0357 Push Notifications (version 0.4) on the
// user's server: clients enable and disable XMPP Push Services for their
// account, and the server publishes a notification to every enabled
// service when a message is stored offline for the user.
//
// Registrations are kept per user in the "push" map store (key: the
// service JID and node). A client enables one with
// <iq type='set'><enable xmlns='urn:xmpp:push:0' jid='…' node='…'/></iq> sent
// to its own account, optionally with a data form of FORM_TYPE
// http://jabber.org/protocol/pubsub#publish-options that is stored verbatim
// and sent back as <publish-options/> with every publish (§5); enabling the
// same JID and node again replaces the options. <disable jid='…'/> removes
// every node of that service, <disable jid='…' node='…'/> only that one.
//
// Notifications: mod.offline fires message/offline/stored once it stored a
// message, and the core fires message/hibernated when a message is kept
// for a session whose connection was lost and that waits for the client
// to resume it (XEP-0198: a phone asleep); the module then counts the message (the count is kept in memory
// and reset when one of the user's sessions binds a resource or is resumed) and, on a
// goroutine, sends to each registration an IQ set with a pubsub publish to
// the node whose item is a <notification/> carrying a urn:xmpp:push:summary
// form (message-count, last-message-sender as a bare JID unless
// include_sender is off, last-message-body only with include_body). A
// publish answered with an error of type cancel or auth, or with
// item-not-found, disables that registration (§6.1); other errors and
// timeouts are logged.
//
// Not implemented: notifications for anything but messages (subscription
// requests, messages archived by mod.mam when the offline
// queue is full), per-registration body settings (§9 recommends against
// in-band settings), and re-enabling a registration disabled after errors.
package push

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// Namespaces and names used by the module.
const (
	// NS is the XEP-0357 namespace, also the account's disco feature.
	NS = "urn:xmpp:push:0"
	// NSSummary is the FORM_TYPE of the notification's summary form.
	NSSummary = "urn:xmpp:push:summary"
	// NSPubSub is the XEP-0060 namespace.
	NSPubSub = "http://jabber.org/protocol/pubsub"
	// NSPublishOptions is the FORM_TYPE of publish options.
	NSPublishOptions = "http://jabber.org/protocol/pubsub#publish-options"
	// NSData is the XEP-0004 namespace.
	NSData = "jabber:x:data"

	// eventStored is mod.offline's offline.EventStored.
	eventStored = "message/offline/stored"
	// storeName is the map store of the registrations.
	storeName = "push"

	// DefaultMaxRegistrations is max_registrations when not configured.
	DefaultMaxRegistrations = 5
	// DefaultTimeout is timeout when not configured.
	DefaultTimeout = 10 * time.Second
	// maxInFlight bounds the notifications being sent at once; beyond it
	// notifications are dropped (and logged) rather than queued.
	maxInFlight = 256
)

func init() { module.Register(new(Push)) }

// Push is the module and its configuration ([modules.push]).
type Push struct {
	// IncludeBody sends the message body as last-message-body.
	IncludeBody bool `json:"include_body"`
	// IncludeSender sends the sender's bare JID as last-message-sender.
	IncludeSender bool `json:"include_sender"`
	// MaxRegistrations bounds the services (JID and node) one user may enable.
	MaxRegistrations int `json:"max_registrations"`
	// Timeout bounds the wait for an app server's answer to a publish.
	Timeout module.Duration `json:"timeout"`

	h      module.Host
	store  storage.Map
	sem    chan struct{}
	mu     sync.Mutex
	counts map[string]int // bare JID → messages stored since the last bind
}

// registration is one enabled service, as stored (JSON).
type registration struct {
	JID     string `json:"jid"`
	Node    string `json:"node,omitempty"`
	Options string `json:"options,omitempty"` // the publish-options form, verbatim XML
}

// Info implements module.Module.
func (*Push) Info() module.Info {
	return module.Info{ID: "mod.push", New: func() module.Module {
		return &Push{
			IncludeSender:    true,
			MaxRegistrations: DefaultMaxRegistrations,
			Timeout:          module.Duration(DefaultTimeout),
		}
	}}
}

// Validate implements module.Validator.
func (p *Push) Validate() error {
	if p.MaxRegistrations < 1 {
		return errors.New("max_registrations: must be at least 1 (disable the module to turn push off)")
	}
	if p.Timeout.D() <= 0 {
		return errors.New("timeout: must be positive")
	}
	return nil
}

// Provision implements module.Provisioner.
func (p *Push) Provision(h module.Host) error {
	p.h = h
	p.store = h.Store(storeName).Map()
	p.sem = make(chan struct{}, maxInFlight)
	p.counts = make(map[string]int)
	h.AddAccountFeature(NS)
	module.OnIQ(h, "bare", stanza.Set, NS, "enable", event.PrioDefault, module.Bounded(p.enable))
	module.OnIQ(h, "bare", stanza.Set, NS, "disable", event.PrioDefault, module.Bounded(p.disable))
	h.Hook(eventStored, event.PrioDefault, p.stored)
	h.Hook(module.EventMessageHibernated, event.PrioDefault, p.stored)
	h.Hook(module.EventSessionBound, event.PrioDefault, p.bound)
	h.Hook(module.EventSessionResumed, event.PrioDefault, p.bound)
	module.OnUserDeleted(h, p.userDeleted)
	return nil
}

// key is the map key of a registration: unambiguous for any JID and node.
func key(service, node string) string {
	return strconv.Itoa(len(service)) + ":" + service + node
}

// own reports whether ev is a request of the account to itself (§5: the
// request goes to the user's bare JID).
func own(ev *event.Event) bool {
	return ev.From.Local() != "" && ev.From.Bare().Equal(ev.To.Bare())
}

// serviceJID reads the mandatory 'jid' attribute of enable/disable.
func serviceJID(el *stanza.Element) (jid.JID, *stanza.Error) {
	s := el.Attr("jid")
	if s == "" {
		e := stanza.ErrText(stanza.BadRequest, "missing 'jid' attribute")
		return jid.JID{}, &e
	}
	j, err := jid.Parse(s)
	if err != nil {
		e := stanza.ErrText(stanza.JIDMalformed, "invalid 'jid' attribute")
		return jid.JID{}, &e
	}
	return j, nil
}

// enable handles <enable/> (§5).
func (p *Push) enable(ctx context.Context, ev *event.Event) event.Verdict {
	if !own(ev) {
		return event.Continue
	}
	el := ev.Stanza.Child(NS, "enable")
	service, e := serviceJID(el)
	if e != nil {
		return module.ReplyError(ctx, p.h, ev, *e)
	}
	reg := registration{JID: service.String(), Node: el.Attr("node")}
	if x := el.Child(NSData, "x"); x != nil {
		if formType(x) != NSPublishOptions {
			return module.ReplyError(ctx, p.h, ev, stanza.ErrText(stanza.BadRequest, "the data form must be of FORM_TYPE "+NSPublishOptions))
		}
		reg.Options = x.String()
	}
	user := ev.From.Local()
	all, err := p.store.All(ctx, user)
	if err != nil {
		p.h.Logger().Error("push registrations load failed", "user", ev.From.Bare().String(), "err", err)
		return module.ReplyError(ctx, p.h, ev, stanza.Err(stanza.InternalServerError))
	}
	k := key(reg.JID, reg.Node)
	if _, replace := all[k]; !replace && len(all) >= p.MaxRegistrations {
		return module.ReplyError(ctx, p.h, ev, stanza.ErrText(stanza.ResourceConstraint, "too many push services enabled"))
	}
	v, err := json.Marshal(reg)
	if err == nil {
		err = p.store.Set(ctx, user, k, v)
	}
	if err != nil {
		p.h.Logger().Error("push registration store failed", "user", ev.From.Bare().String(), "err", err)
		return module.ReplyError(ctx, p.h, ev, stanza.Err(stanza.InternalServerError))
	}
	return module.Reply(ctx, p.h, ev, nil)
}

// disable handles <disable/> (§6): one node, or every node of the service.
func (p *Push) disable(ctx context.Context, ev *event.Event) event.Verdict {
	if !own(ev) {
		return event.Continue
	}
	el := ev.Stanza.Child(NS, "disable")
	service, e := serviceJID(el)
	if e != nil {
		return module.ReplyError(ctx, p.h, ev, *e)
	}
	user := ev.From.Local()
	var err error
	if el.HasAttr("node") {
		err = p.store.Delete(ctx, user, key(service.String(), el.Attr("node")))
	} else {
		var all map[string][]byte
		all, err = p.store.All(ctx, user)
		if err == nil {
			del := make(map[string][]byte)
			for k, v := range all {
				var r registration
				if json.Unmarshal(v, &r) != nil || r.JID == service.String() {
					del[k] = nil
				}
			}
			if len(del) > 0 {
				err = p.store.SetKeys(ctx, user, del)
			}
		}
	}
	if err != nil {
		p.h.Logger().Error("push disable failed", "user", ev.From.Bare().String(), "err", err)
		return module.ReplyError(ctx, p.h, ev, stanza.Err(stanza.InternalServerError))
	}
	return module.Reply(ctx, p.h, ev, nil)
}

// formType returns a data form's FORM_TYPE value.
func formType(x *stanza.Element) string {
	for f := range x.Elements {
		if f.Name == "field" && f.Attr("var") == "FORM_TYPE" {
			return strings.TrimSpace(f.ChildText("", "value"))
		}
	}
	return ""
}

// summary is what one notification reports.
type summary struct {
	count  int
	sender string
	body   string
}

// stored handles message/offline/stored and message/hibernated: it counts the message and hands
// the notifications to a goroutine so that delivery never waits for them.
func (p *Push) stored(ctx context.Context, ev *event.Event) event.Verdict {
	user := ev.To.Bare()
	if user.Local() == "" || ev.Stanza == nil {
		return event.Continue
	}
	lctx, cancel := context.WithTimeout(ctx, module.StoreTimeout)
	all, err := p.store.All(lctx, user.Local())
	cancel()
	if err != nil {
		p.h.Logger().Error("push registrations load failed", "user", user.String(), "err", err)
		return event.Continue
	}
	if len(all) == 0 {
		return event.Continue
	}
	regs := make(map[string]registration, len(all))
	for k, v := range all {
		var r registration
		if err := json.Unmarshal(v, &r); err != nil || r.JID == "" {
			p.h.Logger().Warn("push registration unreadable, skipped", "user", user.String(), "key", k)
			continue
		}
		regs[k] = r
	}
	sum := summary{count: p.bump(user.String())}
	if p.IncludeSender {
		sum.sender = ev.From.Bare().String()
	}
	if p.IncludeBody {
		sum.body = ev.Stanza.ChildText("", "body")
	}
	select {
	case p.sem <- struct{}{}:
	default:
		p.h.Logger().Warn("push notifications overloaded, notification dropped", "user", user.String())
		return event.Continue
	}
	p.h.Go(func(ctx context.Context) error {
		defer func() { <-p.sem }()
		for k, r := range regs {
			p.notify(ctx, user, k, r, sum)
		}
		return nil
	})
	return event.Continue
}

// bump counts one more message for user and returns the new count.
func (p *Push) bump(user string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[user]++
	return p.counts[user]
}

// reset forgets user's count.
func (p *Push) reset(user string) {
	p.mu.Lock()
	delete(p.counts, user)
	p.mu.Unlock()
}

// bound handles session/bound: the user is online, the count starts over.
func (p *Push) bound(_ context.Context, ev *event.Event) event.Verdict {
	if s, ok := ev.Data.(module.Session); ok {
		p.reset(s.JID().Bare().String())
	}
	return event.Continue
}

// notify publishes one notification to one registration (§7) and disables
// the registration if the service rejects it (§7.1).
func (p *Push) notify(ctx context.Context, user jid.JID, k string, r registration, sum summary) {
	iq := stanza.New(stanza.NSClient, "iq", "type", stanza.Set, "from", p.h.Name(), "to", r.JID)
	ps := iq.AddChild(stanza.New(NSPubSub, "pubsub"))
	item := ps.AddChild(stanza.New(NSPubSub, "publish", "node", r.Node)).AddChild(stanza.New(NSPubSub, "item"))
	x := item.AddChild(stanza.New(NS, "notification")).AddChild(stanza.New(NSData, "x", "type", "submit"))
	field := func(name, value string) {
		x.AddChild(stanza.New(NSData, "field", "var", name)).AddChild(stanza.New(NSData, "value")).AddText(value)
	}
	field("FORM_TYPE", NSSummary)
	field("message-count", strconv.Itoa(sum.count))
	if sum.sender != "" {
		field("last-message-sender", sum.sender)
	}
	if sum.body != "" {
		field("last-message-body", sum.body)
	}
	if r.Options != "" {
		if opts, err := xmlstream.ParseNS([]byte(r.Options), NSData); err == nil {
			ps.AddChild(stanza.New(NSPubSub, "publish-options")).AddChild(opts)
		} else {
			p.h.Logger().Warn("push publish options unreadable, left out", "user", user.String(), "service", r.JID, "err", err)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, p.Timeout.D())
	reply, err := p.h.SendIQ(sctx, iq)
	cancel()
	if err == nil {
		return
	}
	log := p.h.Logger().With("user", user.String(), "service", r.JID, "node", r.Node)
	if reply == nil {
		log.Warn("push notification failed", "err", err)
		return
	}
	e := stanza.ParseError(reply)
	switch {
	case e.Condition == stanza.ItemNotFound, e.Type == stanza.Cancel, e.Type == stanza.Auth:
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), module.StoreTimeout)
		defer cancel()
		if err := p.store.Delete(dctx, user.Local(), k); err != nil {
			log.Error("push registration removal failed", "err", err)
			return
		}
		log.Info("push service rejected a notification; registration disabled", "err", e.Error())
	default:
		log.Warn("push notification failed", "err", e.Error())
	}
}

// userDeleted removes a deleted account's registrations and count.
func (p *Push) userDeleted(ctx context.Context, user jid.JID) {
	p.reset(user.Bare().String())
	if err := p.store.DeleteUser(ctx, user.Local()); err != nil {
		p.h.Logger().Error("push registrations purge failed", "user", user.String(), "err", err)
	}
}
