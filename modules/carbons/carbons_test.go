package carbons

import (
	"testing"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// TestEligible is the rule table of XEP-0280 §6.1 and §10.
func TestEligible(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, msg    string
		in, outgoing bool // eligible incoming, outgoing
	}{
		{"chat", `<message type="chat" from="a@b/c"/>`, true, true},
		{"normal body", `<message from="a@b/c"><body>x</body></message>`, true, true},
		{"normal empty", `<message from="a@b/c"><x xmlns="jabber:x:oob"/></message>`, false, false},
		{"normal receipt", `<message from="a@b/c"><received xmlns="urn:xmpp:receipts" id="1"/></message>`, true, true},
		{"normal chat state", `<message from="a@b/c"><active xmlns="http://jabber.org/protocol/chatstates"/></message>`, true, true},
		{"normal marker", `<message from="a@b/c"><displayed xmlns="urn:xmpp:chat-markers:0" id="1"/></message>`, true, true},
		{"headline", `<message type="headline" from="a@b"><body>x</body></message>`, false, false},
		{"groupchat", `<message type="groupchat" from="r@muc/n"><body>x</body></message>`, false, false},
		{"private", `<message type="chat" from="a@b/c"><body>x</body><private xmlns="urn:xmpp:carbons:2"/></message>`, false, false},
		{"no-copy", `<message type="chat" from="a@b/c"><body>x</body><no-copy xmlns="urn:xmpp:hints"/></message>`, false, false},
		{"direct invitation", `<message from="a@b/c"><x xmlns="jabber:x:conference" jid="r@muc"/></message>`, true, true},
		{"mediated invitation", `<message from="r@muc"><x xmlns="http://jabber.org/protocol/muc#user"><invite from="a@b"/></x></message>`, true, true},
		{"muc pm", `<message type="chat" from="r@muc/nick"><body>x</body><x xmlns="http://jabber.org/protocol/muc#user"/></message>`, false, true},
		{"error with content", `<message type="error" from="a@b/c"><body>x</body><error/></message>`, true, true},
		{"error from bare", `<message type="error" from="a@b"><error/></message>`, true, false},
		{"error from full", `<message type="error" from="a@b/c"><error/></message>`, false, false},
		{"error from domain", `<message type="error" from="b"><error/></message>`, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			el, err := xmlstream.ParseNS([]byte(tc.msg), stanza.NSClient)
			if err != nil {
				t.Fatal(err)
			}
			if got := eligible(el, false); got != tc.in {
				t.Errorf("incoming: %v, want %v", got, tc.in)
			}
			if got := eligible(el, true); got != tc.outgoing {
				t.Errorf("outgoing: %v, want %v", got, tc.outgoing)
			}
		})
	}
}
