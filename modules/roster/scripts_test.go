package roster_test

import (
	"testing"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/roster"
)

// TestScripts runs the golden conversations of testdata/*.scs.
func TestScripts(t *testing.T) {
	xmpptest.RunScripts(t, "testdata", xmpptest.Modules("roster"))
}
