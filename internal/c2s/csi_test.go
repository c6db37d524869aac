package c2s

import (
	"testing"

	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

func TestImportant(t *testing.T) {
	for in, want := range map[string]bool{
		`<iq type="result" id="1"/>`:                                                    true,
		`<message><body>hi</body></message>`:                                            true,
		`<message type="error"><error/></message>`:                                      true,
		`<message><x xmlns="jabber:x:conference"/></message>`:                           true,
		`<message><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`: false,
		`<message/>`:                      false,
		`<presence/>`:                     false,
		`<presence type="unavailable"/>`:  false,
		`<presence type="subscribe"/>`:    true,
		`<presence type="unsubscribed"/>`: true,
	} {
		el, err := xmlstream.ParseNS([]byte(in), "jabber:client")
		if err != nil {
			t.Fatal(err)
		}
		if got := important(el); got != want {
			t.Errorf("important(%s) = %v, want %v", in, got, want)
		}
	}
}
