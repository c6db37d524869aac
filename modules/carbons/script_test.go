package carbons_test

import (
	"testing"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	_ "github.com/metronome-xmpp/metronome/modules/carbons"
	_ "github.com/metronome-xmpp/metronome/modules/disco"
	_ "github.com/metronome-xmpp/metronome/modules/mam"
	_ "github.com/metronome-xmpp/metronome/modules/message"
	_ "github.com/metronome-xmpp/metronome/modules/offline"
	_ "github.com/metronome-xmpp/metronome/modules/presence"
	_ "github.com/metronome-xmpp/metronome/modules/roster"
)

// TestScripts runs the golden conversations in testdata/ (XEP-0280,
// XEP-0334) over real sockets. testdata/mam/ runs with mod.mam too
// (stanza-ids in the copies).
func TestScripts(t *testing.T) {
	t.Parallel()
	xmpptest.RunScripts(t, "testdata", xmpptest.Modules("roster", "presence", "message", "offline", "carbons", "disco"))
}

// TestScriptsWithMAM runs testdata/mam/ with the archive enabled.
func TestScriptsWithMAM(t *testing.T) {
	t.Parallel()
	xmpptest.RunScripts(t, "testdata/mam", xmpptest.Modules("roster", "presence", "message", "offline", "carbons", "mam", "disco"))
}
