package offline_test

import (
	"testing"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/message"
	_ "github.com/metronome-xmpp/metronome/modules/offline"
	_ "github.com/metronome-xmpp/metronome/modules/presence"
	_ "github.com/metronome-xmpp/metronome/modules/roster"
)

// TestScripts runs the golden conversations in testdata/ (XEP-0160), with a
// limit of 3 stored messages per user.
func TestScripts(t *testing.T) {
	t.Parallel()
	xmpptest.RunScripts(t, "testdata",
		xmpptest.Modules("roster", "presence", "message", "offline"),
		xmpptest.Config("[modules.offline]\nmax_messages = 3"))
}
