package private_test

import (
	"testing"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/private"
)

// TestScripts runs the golden conversations in testdata/ (XEP-0049).
func TestScripts(t *testing.T) {
	t.Parallel()
	xmpptest.RunScripts(t, "testdata", xmpptest.Modules("private"))
}
