// Package time implements XEP-0202 Entity Time (version 2.0) for the host:
// <time xmlns='urn:xmpp:time'/> sent to the server's domain is answered with
// the server's UTC offset (<tzo/>, always "±hh:mm", "+00:00" for UTC, as in
// §2 of XEP-0202) and the current time in UTC (<utc/>, the XEP-0082 DateTime
// profile "CCYY-MM-DDThh:mm:ss[.sss]Z").
//
// It does not answer on behalf of users.
package time

import (
	"context"
	"fmt"
	stdtime "time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// NS is the XEP-0202 namespace.
const NS = "urn:xmpp:time"

func init() { module.Register(Time{}) }

// Time is the module ([modules.time] has no options).
type Time struct {
	h   module.Host
	now func() stdtime.Time
}

// Info implements module.Module.
func (Time) Info() module.Info {
	return module.Info{ID: "mod.time", New: func() module.Module { return new(Time) }}
}

// Provision implements module.Provisioner.
func (t *Time) Provision(h module.Host) error {
	t.h = h
	if t.now == nil {
		t.now = stdtime.Now
	}
	h.AddFeature(NS)
	module.OnIQ(h, "host", stanza.Get, NS, "time", event.PrioDefault, func(ctx context.Context, ev *event.Event) event.Verdict {
		return module.Reply(ctx, h, ev, Element(t.now()))
	})
	return nil
}

// Element builds the <time/> payload for instant now: tzo is now's offset
// from UTC, utc is now in UTC with millisecond precision when not zero.
func Element(now stdtime.Time) *stanza.Element {
	el := stanza.New(NS, "time")
	el.AddChild(stanza.New(NS, "tzo")).AddText(TZO(now))
	el.AddChild(stanza.New(NS, "utc")).AddText(UTC(now))
	return el
}

// TZO formats the UTC offset of t as XEP-0082 TZD "±hh:mm" (UTC is "+00:00").
func TZO(t stdtime.Time) string {
	_, off := t.Zone()
	sign := '+'
	if off < 0 {
		sign = '-'
		off = -off
	}
	return fmt.Sprintf("%c%02d:%02d", sign, off/3600, (off%3600)/60)
}

// UTC formats t as a XEP-0082 DateTime in UTC ("2006-12-19T17:58:35Z", or
// with ".sss" when t has a sub-second part).
func UTC(t stdtime.Time) string {
	u := t.UTC().Truncate(stdtime.Millisecond)
	if u.Nanosecond() == 0 {
		return u.Format("2006-01-02T15:04:05Z")
	}
	return u.Format("2006-01-02T15:04:05.000Z")
}
