package message_test

import (
	"context"
	"testing"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// offlineSpy stands for an offline storage module: it answers
// message/offline for juliet by keeping the message (Handled) and for
// nurse by refusing it with resource-constraint; for anyone else it lets
// the event go unhandled.
type offlineSpy struct{}

func init() { module.Register(offlineSpy{}) }

func (offlineSpy) Info() module.Info {
	return module.Info{ID: "test.offlinespy", New: func() module.Module { return new(offlineSpy) }}
}

func (offlineSpy) Provision(h module.Host) error {
	h.Hook("message/offline", event.PrioDefault, func(ctx context.Context, ev *event.Event) event.Verdict {
		if !ev.To.IsBare() {
			return event.Error(stanza.ErrText(stanza.UndefinedCondition, "To is not the bare JID: "+ev.To.String()))
		}
		switch ev.To.Local() {
		case "juliet", "ghost": // ghost has no account: never asked
			// Proof of storage: echo the message back to its sender.
			r := stanza.New(stanza.NSClient, "message", "from", ev.To.String(), "to", ev.From.String(), "id", "stored-"+ev.Stanza.ID())
			_ = h.Route(ctx, r)
			return event.Handled
		case "nurse":
			return event.Error(stanza.Err(stanza.ResourceConstraint))
		}
		return event.Continue
	})
	return nil
}

// TestOfflineEvent checks the contract of message/offline: fired for chat
// and normal messages to an existing account without a non-negative
// available resource (none at all, only connected, only negative), with To
// the bare JID; a Handled verdict keeps the message, an Error verdict is
// bounced, no verdict bounces service-unavailable. Headlines never fire it.
func TestOfflineEvent(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message", "offlinespy"))
	for _, u := range []string{"romeo", "juliet", "nurse", "tybalt"} {
		srv.CreateUser(t, u+"@localhost", "password")
	}
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	romeo.Send(t, `<presence/>`)
	romeo.Expect(t, `<presence from="romeo@localhost/orchard"/>`)

	// No session.
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m1"><body>1</body></message>`)
	romeo.Expect(t, `<message from="juliet@localhost" id="stored-m1"/>`)
	// Only a connected session, then only a negative one; a full JID of a
	// missing resource with a chat message goes the same way.
	juliet := srv.Login(t, "juliet@localhost/balcony", "password")
	romeo.Send(t, `<message to="juliet@localhost" id="m2"><body>2</body></message>`)
	romeo.Expect(t, `<message from="juliet@localhost" id="stored-m2"/>`)
	juliet.Send(t, `<presence><priority>-1</priority></presence>`)
	juliet.Expect(t, `<presence from="juliet@localhost/balcony"/>`)
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m3"><body>3</body></message>`)
	romeo.Expect(t, `<message from="juliet@localhost" id="stored-m3"/>`)
	romeo.Send(t, `<message to="juliet@localhost/gone" type="chat" id="m4"><body>4</body></message>`)
	romeo.Expect(t, `<message from="juliet@localhost" id="stored-m4"/>`)
	romeo.Send(t, `<message to="juliet@localhost" type="headline" id="m5"><body>5</body></message>`)
	romeo.ExpectNothing(t)
	juliet.ExpectNothing(t)

	// Error verdicts are bounced as they are; no verdict: service-unavailable.
	romeo.Send(t, `<message to="nurse@localhost" type="chat" id="m6"><body>6</body></message>`)
	romeo.Expect(t, `<message type="error" from="nurse@localhost" id="m6"><error type="wait"><resource-constraint xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`)
	romeo.Send(t, `<message to="tybalt@localhost" type="chat" id="m7"><body>7</body></message>`)
	romeo.Expect(t, `<message type="error" from="tybalt@localhost" id="m7"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`)
	// Not fired for accounts that do not exist.
	romeo.Send(t, `<message to="ghost@localhost" type="chat" id="m8"><body>8</body></message>`)
	romeo.Expect(t, `<message type="error" from="ghost@localhost" id="m8"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`)
}
