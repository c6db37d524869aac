package private

import (
	"testing"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

func TestKey(t *testing.T) {
	t.Parallel()
	if got, want := Key(stanza.New("storage:bookmarks", "storage")), "{storage:bookmarks}storage"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
}
