// Package version implements XEP-0092 Software Version (version 1.1) for the
// host: <query xmlns='jabber:iq:version'/> sent to the server's domain is
// answered with the server's name and version, and with the operating
// system only when show_os is set (§5 of XEP-0092 recommends letting
// administrators hide it).
//
// It does not answer on behalf of users: a version request to a full JID is
// routed to the client.
package version

import (
	"context"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// NS is the XEP-0092 namespace.
const NS = "jabber:iq:version"

func init() { module.Register(Version{}) }

// Version is the module and its configuration ([modules.version]).
type Version struct {
	// ShowOS includes the operating system in answers.
	ShowOS bool `json:"show_os"`

	h module.Host
}

// Info implements module.Module.
func (Version) Info() module.Info {
	return module.Info{ID: "mod.version", New: func() module.Module { return new(Version) }}
}

// Provision implements module.Provisioner.
func (v *Version) Provision(h module.Host) error {
	v.h = h
	h.AddFeature(NS)
	module.OnIQ(h, "host", stanza.Get, NS, "query", event.PrioDefault, v.handle)
	return nil
}

func (v *Version) handle(ctx context.Context, ev *event.Event) event.Verdict {
	return module.Reply(ctx, v.h, ev, v.query())
}

func (v *Version) query() *stanza.Element {
	si := v.h.Server()
	q := stanza.New(NS, "query")
	name := si.Name
	if name == "" {
		name = "Metronome"
	}
	q.AddChild(stanza.New(NS, "name")).AddText(name)
	q.AddChild(stanza.New(NS, "version")).AddText(si.Version)
	if v.ShowOS && si.OS != "" {
		q.AddChild(stanza.New(NS, "os")).AddText(si.OS)
	}
	return q
}
