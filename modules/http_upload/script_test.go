package httpupload

import (
	"testing"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
)

// TestScripts runs the golden conversations in testdata/ (XEP-0363 slot
// requests), with 1000-byte files and images only.
func TestScripts(t *testing.T) {
	t.Parallel()
	xmpptest.RunScripts(t, "testdata", xmpptest.Modules("http_upload"), xmpptest.HTTP(""),
		xmpptest.Config("[modules.http_upload]\nmax_file_size = 1000\nallowed_types = [\"image/*\"]"))
}
