package mam

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// request is a parsed archive query (XEP-0313 §Querying an archive).
type request struct {
	queryID string
	// Form fields.
	with              jid.JID
	start, end        time.Time
	afterID, beforeID string
	ids               []string // nil: not given
	// XEP-0059 result set management.
	max       int    // -1: not given
	after     string // <after/>
	before    string // <before/> with an id
	hasBefore bool   // <before/>, empty or not: page backwards
	// flip asks for the page newest first (XEP-0313 §Flipped pages).
	flip bool
}

// badRequest is a bad-request error with a text.
func badRequest(text string) stanza.Error { return stanza.ErrText(stanza.BadRequest, text) }

// parseRequest reads a <query xmlns='urn:xmpp:mam:2'/> set.
func parseRequest(q *stanza.Element) (request, *stanza.Error) {
	r := request{queryID: q.Attr("queryid"), max: -1}
	fail := func(e stanza.Error) (request, *stanza.Error) { return request{}, &e }
	if x := q.Child(NSData, "x"); x != nil {
		if t := x.Attr("type"); t != "submit" && t != "" {
			return fail(badRequest("the query form must be of type submit"))
		}
		for f := range x.Elements {
			if f.Space != NSData || f.Name != "field" {
				continue
			}
			var values []string
			for v := range f.Elements {
				if v.Space == NSData && v.Name == "value" {
					values = append(values, strings.TrimSpace(v.Text()))
				}
			}
			one := ""
			if len(values) > 0 {
				one = values[0]
			}
			switch name := f.Attr("var"); name {
			case "FORM_TYPE":
				if one != NS {
					return fail(badRequest("FORM_TYPE must be " + NS))
				}
			case "with":
				if one == "" {
					continue
				}
				j, err := jid.Parse(one)
				if err != nil {
					return fail(stanza.ErrText(stanza.JIDMalformed, "with: "+err.Error()))
				}
				r.with = j
			case "start", "end":
				if one == "" {
					continue
				}
				t, err := time.Parse(time.RFC3339Nano, one)
				if err != nil {
					return fail(badRequest(name + ": not an XEP-0082 DateTime"))
				}
				if name == "start" {
					r.start = t
				} else {
					r.end = t
				}
			case "after-id":
				r.afterID = one
			case "before-id":
				r.beforeID = one
			case "ids":
				r.ids = []string{}
				for _, v := range values {
					if v != "" && !slices.Contains(r.ids, v) {
						r.ids = append(r.ids, v)
					}
				}
			default:
				// XEP-0313 §Retrieving form fields: unknown fields.
				return fail(stanza.ErrText(stanza.FeatureNotImplemented, "unsupported field "+name))
			}
		}
	}
	if set := q.Child(NSRSM, "set"); set != nil {
		if set.Child(NSRSM, "index") != nil {
			return fail(stanza.ErrText(stanza.FeatureNotImplemented, "RSM index is not supported; page with after and before"))
		}
		if mx := set.Child(NSRSM, "max"); mx != nil {
			n, err := strconv.Atoi(strings.TrimSpace(mx.Text()))
			if err != nil || n < 0 {
				return fail(badRequest("max must be a non-negative integer"))
			}
			r.max = n
		}
		if a := set.Child(NSRSM, "after"); a != nil {
			r.after = strings.TrimSpace(a.Text())
			if r.after == "" {
				return fail(badRequest("after needs an id"))
			}
		}
		if b := set.Child(NSRSM, "before"); b != nil {
			r.hasBefore = true
			r.before = strings.TrimSpace(b.Text())
		}
	}
	r.flip = q.Child(NS, "flip-page") != nil
	return r, nil
}

// answer runs r against user's archive. It returns the result messages in
// the order they are to be sent (without to, from or id) and the <fin/>.
func (m *MAM) answer(ctx context.Context, user jid.JID, r request) ([]*stanza.Element, *stanza.Element, *stanza.Error) {
	fail := func(err error) ([]*stanza.Element, *stanza.Element, *stanza.Error) {
		e := stanza.Err(stanza.ItemNotFound)
		if !errors.Is(err, storage.ErrNotFound) {
			m.h.Logger().Error("archive query failed", "user", user.String(), "err", err)
			e = stanza.Err(stanza.InternalServerError)
		}
		return nil, nil, &e
	}
	name := user.Local()
	limit := m.MaxPage
	if r.max >= 0 && r.max < limit {
		limit = r.max
	}
	q := storage.Query{
		Start: r.start, End: r.end, IDs: r.ids,
		RangeAfter: r.afterID, RangeBefore: r.beforeID,
		After: r.after, Before: r.before, Reverse: r.hasBefore,
	}
	fullWith := r.with.IsFull()
	if !r.with.IsZero() {
		q.With = r.with.Bare().String()
	}
	if len(r.ids) > 0 {
		// §Limiting results by id: an unknown id is item-not-found, even if
		// the other filters would have excluded it anyway.
		_, n, err := m.archive.Find(ctx, name, storage.Query{IDs: r.ids, Limit: 1, Total: true})
		if err != nil {
			return fail(err)
		}
		if n < len(r.ids) {
			return fail(storage.ErrNotFound)
		}
	}
	var (
		items []storage.Item
		total = -1
		more  bool
		err   error
	)
	switch {
	case limit == 0:
		// XEP-0059 §2.6: the count only.
		q.Limit, q.Total = 1, m.count && !fullWith
		items, total, err = m.archive.Find(ctx, name, q)
		more = len(items) > 0
		items = nil
	case fullWith:
		items, more, err = m.scan(ctx, name, q, limit, r.with)
	default:
		q.Limit, q.Total = limit+1, m.count
		items, total, err = m.archive.Find(ctx, name, q)
		if len(items) > limit {
			items, more = items[:limit], true
		}
	}
	if err != nil {
		return fail(err)
	}
	if r.hasBefore {
		slices.Reverse(items) // fetched newest first; a page is chronological
	}
	msgs := make([]*stanza.Element, 0, len(items))
	for _, it := range items {
		if msg := m.result(r.queryID, it); msg != nil {
			msgs = append(msgs, msg)
		}
	}
	if r.flip {
		slices.Reverse(msgs)
	}
	return msgs, fin(r, items, total, !more), nil
}

// fin builds the <fin/> of a query: complete when the page was not cut by
// the page size, the RSM first (with its index when known without another
// query), last and count.
func fin(r request, items []storage.Item, total int, complete bool) *stanza.Element {
	f := stanza.New(NS, "fin")
	if complete {
		f.SetAttr("complete", "true")
	}
	set := f.AddChild(stanza.New(NSRSM, "set"))
	if len(items) > 0 {
		first := set.AddChild(stanza.New(NSRSM, "first"))
		switch {
		case !r.hasBefore && r.after == "":
			first.SetAttr("index", "0")
		case r.hasBefore && r.before == "" && total >= 0:
			first.SetAttr("index", strconv.Itoa(total-len(items)))
		}
		first.AddText(items[0].ID)
		set.AddChild(stanza.New(NSRSM, "last")).AddText(items[len(items)-1].ID)
	}
	if total >= 0 {
		set.AddChild(stanza.New(NSRSM, "count")).AddText(strconv.Itoa(total))
	}
	return f
}

// result wraps one archived message for a query (XEP-0313 §Query results);
// nil if the stored value cannot be read.
func (m *MAM) result(queryID string, it storage.Item) *stanza.Element {
	orig, err := xmlstream.ParseNS(it.Value, stanza.NSClient)
	if err != nil {
		m.h.Logger().Warn("archived message unreadable, skipped", "id", it.ID, "err", err)
		return nil
	}
	msg := stanza.New(stanza.NSClient, "message", "id", it.ID)
	res := msg.AddChild(stanza.New(NS, "result", "queryid", queryID, "id", it.ID))
	fwd := res.AddChild(stanza.New(NSForward, "forwarded"))
	fwd.AddChild(stanza.New(NSDelay, "delay", "stamp", Stamp(it.When)))
	fwd.AddChild(orig)
	return msg
}

// scan pages through q's matches (with the bare JID of peer) keeping those
// exchanged with the full JID peer (§Filtering by JID), until it has limit
// of them; more reports whether there are others after them.
func (m *MAM) scan(ctx context.Context, user string, q storage.Query, limit int, peer jid.JID) (items []storage.Item, more bool, err error) {
	batch := max(limit+1, 32)
	want := peer.String()
	for {
		q.Limit = batch
		page, _, err := m.archive.Find(ctx, user, q)
		if err != nil {
			return nil, false, err
		}
		for _, it := range page {
			el, err := xmlstream.ParseNS(it.Value, stanza.NSClient)
			if err != nil || (el.From() != want && el.To() != want) {
				continue
			}
			if len(items) == limit {
				return items, true, nil
			}
			items = append(items, it)
		}
		if len(page) < batch {
			return items, false, nil
		}
		if q.Reverse {
			q.Before = page[len(page)-1].ID
		} else {
			q.After = page[len(page)-1].ID
		}
	}
}

// handleQuery answers an archive query: result messages, then the iq result.
func (m *MAM) handleQuery(ctx context.Context, ev *event.Event) event.Verdict {
	user, ok := m.owner(ev)
	if !ok {
		return module.ReplyError(ctx, m.h, ev, stanza.Err(stanza.Forbidden))
	}
	s, _ := module.SessionOf(ev)
	r, serr := parseRequest(ev.Stanza.FirstChild())
	if serr != nil {
		return module.ReplyError(ctx, m.h, ev, *serr)
	}
	msgs, f, serr := m.answer(ctx, user, r)
	if serr != nil {
		return module.ReplyError(ctx, m.h, ev, *serr)
	}
	s.SetValue(SessionQueried, true)
	to, from := s.JID().String(), ev.Stanza.To()
	for _, msg := range msgs {
		msg.SetAttr("to", to)
		msg.SetAttr("from", from)
		if err := m.h.Deliver(ctx, s, msg); err != nil {
			return event.Handled // the session is gone
		}
	}
	return module.Reply(ctx, m.h, ev, f)
}

// handleForm answers the form request of §Retrieving form fields.
func (m *MAM) handleForm(ctx context.Context, ev *event.Event) event.Verdict {
	if _, ok := m.owner(ev); !ok {
		return module.ReplyError(ctx, m.h, ev, stanza.Err(stanza.Forbidden))
	}
	x := stanza.New(NSData, "x", "type", "form")
	x.AddChild(stanza.New(NSData, "field", "type", "hidden", "var", "FORM_TYPE")).
		AddChild(stanza.New(NSData, "value")).AddText(NS)
	for _, f := range []struct{ typ, name string }{
		{"jid-single", "with"}, {"text-single", "start"}, {"text-single", "end"},
		{"text-single", "before-id"}, {"text-single", "after-id"},
	} {
		x.AddChild(stanza.New(NSData, "field", "type", f.typ, "var", f.name))
	}
	ids := x.AddChild(stanza.New(NSData, "field", "type", "list-multi", "var", "ids"))
	ids.AddChild(stanza.New("http://jabber.org/protocol/xdata-validate", "validate", "datatype", "xs:string")).
		AddChild(stanza.New("http://jabber.org/protocol/xdata-validate", "open"))
	q := stanza.New(NS, "query")
	q.AddChild(x)
	return module.Reply(ctx, m.h, ev, q)
}

// handleMetadata answers §Archive metadata: the first and last items.
func (m *MAM) handleMetadata(ctx context.Context, ev *event.Event) event.Verdict {
	user, ok := m.owner(ev)
	if !ok {
		return module.ReplyError(ctx, m.h, ev, stanza.Err(stanza.Forbidden))
	}
	md := stanza.New(NS, "metadata")
	for _, edge := range []struct {
		name    string
		reverse bool
	}{{"start", false}, {"end", true}} {
		items, _, err := m.archive.Find(ctx, user.Local(), storage.Query{Limit: 1, Reverse: edge.reverse})
		if err != nil {
			m.h.Logger().Error("archive metadata failed", "user", user.String(), "err", err)
			return module.ReplyError(ctx, m.h, ev, stanza.Err(stanza.InternalServerError))
		}
		if len(items) == 0 {
			break // empty archive: empty <metadata/>
		}
		md.AddChild(stanza.New(NS, edge.name, "id", items[0].ID, "timestamp", Stamp(items[0].When)))
	}
	return module.Reply(ctx, m.h, ev, md)
}
