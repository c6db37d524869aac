package message

import (
	"testing"

	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// fakeSession implements the parts of module.Session that top uses.
type fakeSession struct {
	module.Session
	name      string
	available bool
	prio      int
}

func (f *fakeSession) Available() bool { return f.available }
func (f *fakeSession) Priority() int   { return f.prio }

func TestTop(t *testing.T) {
	t.Parallel()
	s := func(name string, avail bool, prio int) *fakeSession {
		return &fakeSession{name: name, available: avail, prio: prio}
	}
	for _, tc := range []struct {
		name string
		in   []*fakeSession
		want []string
	}{
		{"none", nil, nil},
		{"single", []*fakeSession{s("a", true, 0)}, []string{"a"}},
		{"highest wins", []*fakeSession{s("a", true, 1), s("b", true, 5), s("c", true, 3)}, []string{"b"}},
		{"ties all get it", []*fakeSession{s("a", true, 5), s("b", true, 1), s("c", true, 5)}, []string{"a", "c"}},
		{"negative never", []*fakeSession{s("a", true, -1), s("b", true, -5)}, nil},
		{"negative skipped", []*fakeSession{s("a", true, -1), s("b", true, 0)}, []string{"b"}},
		{"unavailable skipped", []*fakeSession{s("a", false, 10), s("b", true, 2)}, []string{"b"}},
		{"connected only", []*fakeSession{s("a", false, 0)}, nil},
		{"reset after higher", []*fakeSession{s("a", true, 1), s("b", true, 1), s("c", true, 2), s("d", true, 2)}, []string{"c", "d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := make([]module.Session, len(tc.in))
			for i, f := range tc.in {
				in[i] = f
			}
			got := top(in)
			var names []string
			for _, g := range got {
				names = append(names, g.(*fakeSession).name)
			}
			if len(names) != len(tc.want) {
				t.Fatalf("top = %v, want %v", names, tc.want)
			}
			for i := range names {
				if names[i] != tc.want[i] {
					t.Fatalf("top = %v, want %v", names, tc.want)
				}
			}
		})
	}
}

func TestMsgType(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "normal", "chat": "chat", "headline": "headline"} {
		el := newMessage(in)
		if got := msgType(el); got != want {
			t.Errorf("msgType(%q) = %q, want %q", in, got, want)
		}
	}
}

func newMessage(typ string) *stanza.Element {
	return stanza.New(stanza.NSClient, "message", "type", typ)
}
