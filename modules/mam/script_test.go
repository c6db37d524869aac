package mam_test

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

// modules is the module set of the tests: what a production host enables
// around the archive.
var modules = xmpptest.Modules("roster", "presence", "message", "offline", "carbons", "mam", "disco")

// TestScripts runs the golden conversations in testdata/ (XEP-0313,
// XEP-0359, XEP-0441, XEP-0160 interplay) over real sockets.
func TestScripts(t *testing.T) {
	t.Parallel()
	xmpptest.RunScripts(t, "testdata", modules, xmpptest.Config("[modules.mam]\ninclude_count = true"))
}
