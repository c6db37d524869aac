package message_test

import (
	"testing"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/message"
	_ "github.com/metronome-xmpp/metronome/modules/presence"
	_ "github.com/metronome-xmpp/metronome/modules/roster"
)

// TestScripts runs the golden conversations in testdata/ (RFC 6121 §8.5).
func TestScripts(t *testing.T) {
	t.Parallel()
	xmpptest.RunScripts(t, "testdata", xmpptest.Modules("roster", "presence", "message"))
}
