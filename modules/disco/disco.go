// Package disco implements XEP-0030 Service Discovery (version 2.5) for the
// host and for users' bare JIDs, with XEP-0128 extended information forms,
// XEP-0157 contact addresses and XEP-0115 entity capabilities of the server
// advertised as a stream feature (§6.3 of XEP-0115).
//
// The host's identities, features and forms are what every module of the
// host advertised through Host.AddIdentity/AddFeature/AddExtension. Nodes
// and extra items are added by other modules through the Registry published
// as "disco" (see registry.go); the ad-hoc commands module uses it for the
// "http://jabber.org/protocol/commands" node.
//
// Requests to a bare JID follow the security rules of XEP-0030 §8: only
// the user and contacts with a "from" or "both" subscription (looked up
// through the roster module when loaded) see the account; everyone else
// gets service-unavailable for disco#info and an empty disco#items,
// whether or not the account exists.
//
// Not implemented: disco#items paging (XEP-0059), nodes on bare JIDs (PEP
// answers its own nodes), per-language identities.
package disco

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Namespaces.
const (
	NSInfo       = "http://jabber.org/protocol/disco#info"
	NSItems      = "http://jabber.org/protocol/disco#items"
	NSServerInfo = "http://jabber.org/network/serverinfo" // XEP-0157 FORM_TYPE
)

// DefaultCapsNode is the XEP-0115 node advertised by default.
const DefaultCapsNode = "https://metronome.im"

func init() { module.Register(new(Disco)) }

// Item is a configured entry of the host's disco#items.
type Item struct {
	JID  string `json:"jid"`
	Name string `json:"name"`
	Node string `json:"node"`
}

// ContactInfo holds the XEP-0157 addresses (URIs such as "mailto:..." or
// "xmpp:...") per role.
type ContactInfo struct {
	Abuse    []string `json:"abuse"`
	Admin    []string `json:"admin"`
	Feedback []string `json:"feedback"`
	Sales    []string `json:"sales"`
	Security []string `json:"security"`
	Status   []string `json:"status"`
	Support  []string `json:"support"`
}

func (c ContactInfo) fields() [][2]any {
	return [][2]any{
		{"abuse-addresses", c.Abuse}, {"admin-addresses", c.Admin},
		{"feedback-addresses", c.Feedback}, {"sales-addresses", c.Sales},
		{"security-addresses", c.Security}, {"status-addresses", c.Status},
		{"support-addresses", c.Support},
	}
}

func (c ContactInfo) empty() bool {
	for _, f := range c.fields() {
		if len(f[1].([]string)) > 0 {
			return false
		}
	}
	return true
}

// Disco is the module and its configuration ([modules.disco]).
type Disco struct {
	// Name is the name of the host's server/im identity.
	Name string `json:"name"`
	// Items are extra disco#items of the host (components, services).
	Items []Item `json:"items"`
	// ContactInfo is published as a XEP-0157 serverinfo form.
	ContactInfo ContactInfo `json:"contact_info"`
	// Caps advertises XEP-0115 server capabilities as a stream feature.
	Caps bool `json:"caps"`
	// CapsNode is the XEP-0115 node.
	CapsNode string `json:"caps_node"`

	h   module.Host
	reg *Registry

	mu  sync.RWMutex
	ver string // caps ver computed at host/activated
}

// Info implements module.Module.
func (*Disco) Info() module.Info {
	return module.Info{ID: "mod.disco", New: func() module.Module {
		return &Disco{Name: "Metronome", Caps: true, CapsNode: DefaultCapsNode}
	}}
}

// Validate implements module.Validator.
func (d *Disco) Validate() error {
	for i, it := range d.Items {
		if _, err := jid.Parse(it.JID); err != nil {
			return fmt.Errorf("items[%d].jid: %w", i, err)
		}
	}
	if d.Caps && d.CapsNode == "" {
		return errors.New("caps_node: must not be empty when caps is enabled")
	}
	return nil
}

// Provision implements module.Provisioner.
func (d *Disco) Provision(h module.Host) error {
	d.h = h
	d.reg = newRegistry()
	for _, it := range d.Items {
		d.reg.AddItem(it.JID, it.Node, it.Name)
	}
	h.Provide(ProvideName, d.reg)
	h.AddIdentity("server", "im", d.Name)
	h.AddFeature(NSInfo)
	h.AddFeature(NSItems)
	h.AddAccountFeature(NSInfo)
	h.AddAccountFeature(NSItems)
	if !d.ContactInfo.empty() {
		h.AddExtension(d.serverInfoForm())
	}
	module.OnIQ(h, "host", stanza.Get, NSInfo, "query", event.PrioDefault, d.hostInfo)
	module.OnIQ(h, "host", stanza.Get, NSItems, "query", event.PrioDefault, d.hostItems)
	module.OnIQ(h, "bare", stanza.Get, NSInfo, "query", event.PrioDefault, d.accountInfo)
	module.OnIQ(h, "bare", stanza.Get, NSItems, "query", event.PrioDefault, d.accountItems)
	if d.Caps {
		// Every module of the generation is provisioned by now, so the
		// hash covers all features.
		h.Hook(module.EventHostActivated, event.PrioDefault, func(ctx context.Context, _ *event.Event) event.Verdict {
			ver := d.computeVer()
			d.mu.Lock()
			first := d.ver == ""
			d.ver = ver
			d.mu.Unlock()
			if first {
				h.AddStreamFeature(stanza.New(NSCaps, "c", "hash", "sha-1", "node", d.CapsNode, "ver", ver), false)
			}
			return event.Continue
		})
	}
	return nil
}

// serverInfoForm builds the XEP-0157 form.
func (d *Disco) serverInfoForm() *stanza.Element {
	x := stanza.New(NSData, "x", "type", "result")
	ft := x.AddChild(stanza.New(NSData, "field", "var", "FORM_TYPE", "type", "hidden"))
	ft.AddChild(stanza.New(NSData, "value")).AddText(NSServerInfo)
	for _, f := range d.ContactInfo.fields() {
		vals := f[1].([]string)
		if len(vals) == 0 {
			continue
		}
		fe := x.AddChild(stanza.New(NSData, "field", "var", f[0].(string)))
		for _, v := range vals {
			fe.AddChild(stanza.New(NSData, "value")).AddText(v)
		}
	}
	return x
}

func (d *Disco) computeVer() string {
	di := d.h.Disco()
	ids := make([]capsIdentity, len(di.Identities))
	for i, id := range di.Identities {
		ids[i] = capsIdentity{Category: id.Category, Type: id.Type, Name: id.Name}
	}
	return capsVer(ids, di.Features, di.Extensions)
}

// Ver returns the XEP-0115 verification string advertised in the stream
// features ("" before the host is activated or with caps disabled).
func (d *Disco) Ver() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.ver
}

// hostInfoQuery is the disco#info of the host.
func (d *Disco) hostInfoQuery(nodeName string) *stanza.Element {
	di := d.h.Disco()
	q := stanza.New(NSInfo, "query", "node", nodeName)
	for _, id := range di.Identities {
		q.AddChild(stanza.New(NSInfo, "identity", "category", id.Category, "type", id.Type, "name", id.Name))
	}
	for _, f := range di.Features {
		q.AddChild(stanza.New(NSInfo, "feature", "var", f))
	}
	for _, x := range di.Extensions {
		q.AddChild(x.Copy())
	}
	return q
}

// isCapsNode reports whether n is "<caps node>#<ver>" for the advertised
// or the current ver.
func (d *Disco) isCapsNode(n string) bool {
	if !d.Caps {
		return false
	}
	if v := d.Ver(); v != "" && n == d.CapsNode+"#"+v {
		return true
	}
	return n == d.CapsNode+"#"+d.computeVer()
}

func (d *Disco) hostInfo(ctx context.Context, ev *event.Event) event.Verdict {
	q := ev.Stanza.FirstChild()
	n := q.Attr("node")
	if n == "" || d.isCapsNode(n) {
		return module.Reply(ctx, d.h, ev, d.hostInfoQuery(n))
	}
	nd, ok := d.reg.node(n)
	if !ok || nd.info == nil {
		return module.ReplyError(ctx, d.h, ev, stanza.Err(stanza.ItemNotFound))
	}
	children, err := nd.info(ctx, ev.From)
	if err != nil {
		return d.replyErr(ctx, ev, err)
	}
	return module.Reply(ctx, d.h, ev, query(NSInfo, n, children))
}

func (d *Disco) hostItems(ctx context.Context, ev *event.Event) event.Verdict {
	n := ev.Stanza.FirstChild().Attr("node")
	if n == "" {
		q := stanza.New(NSItems, "query")
		for _, it := range d.reg.hostItems() {
			q.AddChild(stanza.New(NSItems, "item", "jid", it.jid, "node", it.node, "name", it.name))
		}
		return module.Reply(ctx, d.h, ev, q)
	}
	nd, ok := d.reg.node(n)
	if !ok {
		return module.ReplyError(ctx, d.h, ev, stanza.Err(stanza.ItemNotFound))
	}
	var children []*stanza.Element
	if nd.items != nil {
		var err error
		if children, err = nd.items(ctx, ev.From); err != nil {
			return d.replyErr(ctx, ev, err)
		}
	}
	return module.Reply(ctx, d.h, ev, query(NSItems, n, children))
}

func query(ns, nodeName string, children []*stanza.Element) *stanza.Element {
	q := stanza.New(ns, "query", "node", nodeName)
	for _, c := range children {
		q.AddChild(c)
	}
	return q
}

func (d *Disco) replyErr(ctx context.Context, ev *event.Event, err error) event.Verdict {
	var se stanza.Error
	if errors.As(err, &se) {
		return module.ReplyError(ctx, d.h, ev, se)
	}
	d.h.Logger().Error("disco node failed", "node", ev.Stanza.FirstChild().Attr("node"), "err", err)
	return module.ReplyError(ctx, d.h, ev, stanza.Err(stanza.InternalServerError))
}

// rosterView is what disco needs from the roster module, published as
// "roster" (Host.Provide). Without it only the user sees their account.
type rosterView interface {
	// Subscribed reports whether contact receives user's presence
	// (subscription "from" or "both").
	Subscribed(ctx context.Context, user, contact jid.JID) bool
}

// access reports whether from may see the account user (XEP-0030 §8): it
// must exist, and from must be the user or a contact the user shares
// presence with.
func (d *Disco) access(ctx context.Context, user, from jid.JID) (bool, error) {
	exists, err := d.h.Accounts().Exists(ctx, user.Local())
	if err != nil || !exists {
		return false, err
	}
	if from.Bare().Equal(user) {
		return true, nil
	}
	v, ok := d.h.Lookup("roster")
	if !ok {
		return false, nil
	}
	rv, ok := v.(rosterView)
	if !ok {
		return false, nil
	}
	return rv.Subscribed(ctx, user, from.Bare()), nil
}

func (d *Disco) accountInfo(ctx context.Context, ev *event.Event) event.Verdict {
	user := ev.To.Bare()
	allowed, err := d.access(ctx, user, ev.From)
	if err != nil {
		return d.replyErr(ctx, ev, err)
	}
	if !allowed {
		// XEP-0030 §8: the same answer whether the account is missing or hidden.
		return module.ReplyError(ctx, d.h, ev, stanza.Err(stanza.ServiceUnavailable))
	}
	n := ev.Stanza.FirstChild().Attr("node")
	if n != "" {
		return module.ReplyError(ctx, d.h, ev, stanza.Err(stanza.ItemNotFound))
	}
	typ := "registered"
	if d.h.IsAdmin(user) {
		typ = "admin"
	}
	q := stanza.New(NSInfo, "query")
	q.AddChild(stanza.New(NSInfo, "identity", "category", "account", "type", typ))
	for _, f := range d.h.Disco().AccountFeatures {
		q.AddChild(stanza.New(NSInfo, "feature", "var", f))
	}
	return module.Reply(ctx, d.h, ev, q)
}

func (d *Disco) accountItems(ctx context.Context, ev *event.Event) event.Verdict {
	user := ev.To.Bare()
	n := ev.Stanza.FirstChild().Attr("node")
	q := stanza.New(NSItems, "query", "node", n)
	allowed, err := d.access(ctx, user, ev.From)
	if err != nil {
		return d.replyErr(ctx, ev, err)
	}
	if !allowed || n != "" {
		// XEP-0030 §8: an empty result, never an error that would reveal
		// whether the account exists.
		return module.Reply(ctx, d.h, ev, q)
	}
	self := ev.From.Bare().Equal(user)
	for _, s := range d.h.Sessions(user) {
		if self || s.Available() {
			q.AddChild(stanza.New(NSItems, "item", "jid", s.JID().String()))
		}
	}
	for _, fn := range d.reg.accountProviders() {
		items, err := fn(ctx, user, ev.From)
		if err != nil {
			d.h.Logger().Warn("account disco items failed", "user", user.String(), "err", err)
			continue
		}
		for _, it := range items {
			q.AddChild(it)
		}
	}
	return module.Reply(ctx, d.h, ev, q)
}
