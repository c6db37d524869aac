package muc_test

import (
	"testing"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
)

// TestScripts runs the golden conversations in testdata/ against a server
// with the MUC component conference.localhost (default options, so new
// rooms are locked until configured) and the usual user modules.
func TestScripts(t *testing.T) {
	t.Parallel()
	xmpptest.RunScripts(t, "testdata",
		xmpptest.Modules("roster", "presence", "message", "disco"),
		xmpptest.Component(service, "muc", `max_history = 3
room_defaults = { history_length = 3 }`))
}
