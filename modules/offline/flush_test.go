package offline_test

import (
	"context"
	"testing"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/modules/offline"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// flushStopper stops offline.EventFlush for sessions whose resource is
// "synced", as mod.mam does for sessions that queried their archive.
type flushStopper struct{}

func init() { module.Register(flushStopper{}) }

func (flushStopper) Info() module.Info {
	return module.Info{ID: "test.flushstopper", New: func() module.Module { return new(flushStopper) }}
}

func (flushStopper) Provision(h module.Host) error {
	h.Hook(offline.EventFlush, event.PrioDefault, func(_ context.Context, ev *event.Event) event.Verdict {
		s, ok := ev.Data.(module.Session)
		if !ok || ev.To != s.JID().Bare() {
			return event.Error(stanza.Err(stanza.InternalServerError))
		}
		if s.JID().Resource() == "synced" {
			return event.Handled
		}
		return event.Continue
	})
	return nil
}

// TestFlushEvent checks the EventFlush contract: a stopped flush delivers
// nothing and keeps the messages for the next session.
func TestFlushEvent(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message", "offline", "flushstopper"))
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m1"><body>one</body></message>`)
	romeo.ExpectNothing(t)

	synced := srv.Login(t, "juliet@localhost/synced", "password")
	synced.Send(t, `<presence/>`)
	synced.Expect(t, `<presence from="juliet@localhost/synced"/>`)
	synced.ExpectNothing(t)
	synced.Close()

	legacy := srv.Login(t, "juliet@localhost/legacy", "password")
	legacy.Send(t, `<presence/>`)
	legacy.Expect(t, `<message id="m1"><body>one</body><delay xmlns="urn:xmpp:delay"/></message>`)
	legacy.Expect(t, `<presence from="juliet@localhost/legacy"/>`)
}
