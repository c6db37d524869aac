package last

import "testing"

func TestQuery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		seconds int64
		text    string
		want    string
	}{
		{0, "", `<query xmlns="jabber:iq:last" seconds="0"/>`},
		{903, "Heading Home", `<query xmlns="jabber:iq:last" seconds="903">Heading Home</query>`},
		{-5, "", `<query xmlns="jabber:iq:last" seconds="0"/>`}, // clock went back
	} {
		if got := string(query(tc.seconds, tc.text).Append(nil, "")); got != tc.want {
			t.Errorf("query(%d, %q) = %s, want %s", tc.seconds, tc.text, got, tc.want)
		}
	}
}
