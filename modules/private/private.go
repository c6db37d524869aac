// Package private implements XEP-0049 (Private XML Storage, version 1.2):
// a user stores arbitrary XML fragments on the server, each under its
// element name and namespace, and gets them back later.
//
//   - Only the owner may get or set (IQs without 'to' or to their own bare
//     JID); requests for another account get forbidden.
//   - The <query/> must carry a child element in its own namespace, else
//     not-acceptable (XEP-0049 §2.3). A get names exactly one fragment
//     (several: bad-request); it returns the stored fragment, or the
//     requested empty element when nothing is stored.
//   - Namespaces starting with "jabber:" are reserved: not-acceptable.
//   - A set stores every child (atomically); an empty child element (no
//     attributes besides xmlns, no content) deletes that fragment.
//
// Fragments live in the Map store "private", keyed "{namespace}name".
// Not implemented: XEP-0048/XEP-0402 bookmark synchronisation with PEP.
package private

import (
	"context"
	"errors"
	"strings"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// NS is the jabber:iq:private namespace.
const NS = "jabber:iq:private"

const storeName = "private"

func init() { module.Register(Private{}) }

// Private is the private XML storage module. It has no options.
type Private struct {
	h     module.Host
	store storage.Map
}

// Info implements module.Module.
func (Private) Info() module.Info {
	return module.Info{ID: "mod.private", New: func() module.Module { return new(Private) }}
}

// Provision wires the module to the host.
func (p *Private) Provision(h module.Host) error {
	p.h = h
	p.store = h.Store(storeName).Map()
	h.AddFeature(NS)
	module.OnIQ(h, "bare", stanza.Get, NS, "query", event.PrioDefault, module.Bounded(p.handleGet))
	module.OnIQ(h, "bare", stanza.Set, NS, "query", event.PrioDefault, module.Bounded(p.handleSet))
	module.OnUserDeleted(h, p.userDeleted)
	return nil
}

// Key is the storage key of a fragment: "{namespace}name".
func Key(el *stanza.Element) string { return "{" + el.Space + "}" + el.Name }

// check validates the fragments of a query and returns them.
func check(ev *event.Event) ([]*stanza.Element, *stanza.Error) {
	if ev.From.IsZero() || ev.From.Bare() != ev.To.Bare() {
		e := stanza.Err(stanza.Forbidden)
		return nil, &e
	}
	var out []*stanza.Element
	for c := range ev.Stanza.FirstChild().Elements {
		switch {
		case c.Space == "" || c.Space == NS || c.Space == stanza.NSClient || c.Space == stanza.NSServer:
			e := stanza.ErrText(stanza.NotAcceptable, "the stored element needs its own namespace")
			return nil, &e
		case strings.HasPrefix(c.Space, "jabber:"):
			e := stanza.ErrText(stanza.NotAcceptable, "reserved namespace "+c.Space)
			return nil, &e
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		e := stanza.ErrText(stanza.NotAcceptable, "the query needs a child element")
		return nil, &e
	}
	return out, nil
}

func (p *Private) handleGet(ctx context.Context, ev *event.Event) event.Verdict {
	frags, perr := check(ev)
	if perr != nil {
		return module.ReplyError(ctx, p.h, ev, *perr)
	}
	if len(frags) > 1 {
		return module.ReplyError(ctx, p.h, ev, stanza.ErrText(stanza.BadRequest, "get one namespace at a time"))
	}
	user := ev.To.Bare()
	want := frags[0]
	q := stanza.New(NS, "query")
	b, err := p.store.Get(ctx, user.Local(), Key(want))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		q.AddChild(stanza.New(want.Space, want.Name))
	case err != nil:
		p.h.Logger().Error("private load failed", "user", user.String(), "err", err)
		return module.ReplyError(ctx, p.h, ev, stanza.Err(stanza.InternalServerError))
	default:
		el, err := xmlstream.ParseNS(b, want.Space)
		if err != nil {
			p.h.Logger().Error("stored private data unreadable", "user", user.String(), "key", Key(want), "err", err)
			return module.ReplyError(ctx, p.h, ev, stanza.Err(stanza.InternalServerError))
		}
		q.AddChild(el)
	}
	return module.Reply(ctx, p.h, ev, q)
}

func (p *Private) handleSet(ctx context.Context, ev *event.Event) event.Verdict {
	frags, perr := check(ev)
	if perr != nil {
		return module.ReplyError(ctx, p.h, ev, *perr)
	}
	user := ev.To.Bare()
	kv := make(map[string][]byte, len(frags))
	for _, f := range frags {
		if len(f.Children) == 0 && len(f.Attrs) == 0 {
			kv[Key(f)] = nil // deletes
			continue
		}
		kv[Key(f)] = f.Append(nil, "") // with its xmlns
	}
	if err := p.store.SetKeys(ctx, user.Local(), kv); err != nil {
		p.h.Logger().Error("private save failed", "user", user.String(), "err", err)
		return module.ReplyError(ctx, p.h, ev, stanza.Err(stanza.InternalServerError))
	}
	return module.Reply(ctx, p.h, ev, nil)
}

func (p *Private) userDeleted(ctx context.Context, user jid.JID) {
	if err := p.store.DeleteUser(ctx, user.Local()); err != nil {
		p.h.Logger().Error("private purge failed", "user", user.String(), "err", err)
	}
}
