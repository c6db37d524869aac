package blocking

import (
	"testing"

	"github.com/metronome-xmpp/metronome/xmpp/jid"
)

func TestMatches(t *testing.T) {
	t.Parallel()
	list := func(items ...string) map[string][]byte {
		m := map[string][]byte{}
		for _, i := range items {
			m[jid.MustParse(i).String()] = []byte("x")
		}
		return m
	}
	for _, tc := range []struct {
		name string
		list map[string][]byte
		peer string
		want bool
	}{
		{"empty list", list(), "romeo@montague.lit/orchard", false},
		{"full matches that resource", list("romeo@montague.lit/orchard"), "romeo@montague.lit/orchard", true},
		{"full does not match other resource", list("romeo@montague.lit/orchard"), "romeo@montague.lit/garden", false},
		{"full does not match bare", list("romeo@montague.lit/orchard"), "romeo@montague.lit", false},
		{"bare matches any resource", list("romeo@montague.lit"), "romeo@montague.lit/garden", true},
		{"bare matches bare", list("romeo@montague.lit"), "romeo@montague.lit", true},
		{"bare does not match other user", list("romeo@montague.lit"), "benvolio@montague.lit/x", false},
		{"domain/resource matches that resource", list("montague.lit/bot"), "montague.lit/bot", true},
		// As in ejabberd, domain/resource also matches users at the domain
		// with that resource (XEP-0016 §2.1 order, item 3).
		{"domain/resource matches users with that resource", list("montague.lit/bot"), "romeo@montague.lit/bot", true},
		{"domain/resource does not match other resources", list("montague.lit/bot"), "romeo@montague.lit/x", false},
		{"domain matches users", list("montague.lit"), "romeo@montague.lit/orchard", true},
		{"domain matches itself", list("montague.lit"), "montague.lit", true},
		{"domain matches domain/resource", list("montague.lit"), "montague.lit/bot", true},
		{"domain does not match subdomain", list("montague.lit"), "romeo@chat.montague.lit", false},
		{"case-insensitive via canonical form", list("Romeo@Montague.LIT"), "romeo@montague.lit/x", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := matches(tc.list, jid.MustParse(tc.peer)); got != tc.want {
				t.Errorf("matches(%v, %s) = %v, want %v", tc.list, tc.peer, got, tc.want)
			}
		})
	}
}
