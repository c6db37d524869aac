package vcard_test

import (
	"testing"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/vcard"
)

// TestScripts runs the golden conversations in testdata/ (XEP-0054), with
// max_size lowered to 1KB so that too_large.scs stays short.
func TestScripts(t *testing.T) {
	t.Parallel()
	xmpptest.RunScripts(t, "testdata", xmpptest.Modules("vcard"),
		xmpptest.Config("[modules.vcard]\nmax_size = \"1KB\""))
}
