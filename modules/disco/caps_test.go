package disco

import (
	"testing"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

func dataField(x *stanza.Element, v, typ string, values ...string) {
	f := x.AddChild(stanza.New(NSData, "field", "var", v, "type", typ))
	for _, val := range values {
		f.AddChild(stanza.New(NSData, "value")).AddText(val)
	}
}

// XEP-0115 §5.2.
func TestCapsVerSimple(t *testing.T) {
	got := capsVer([]capsIdentity{{Category: "client", Type: "pc", Name: "Exodus 0.9.1"}},
		[]string{"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
			"http://jabber.org/protocol/muc", "http://jabber.org/protocol/caps"}, nil)
	if want := "QgayPKawpkPSDYmwT/WM94uAlu0="; got != want {
		t.Errorf("ver = %q, want %q", got, want)
	}
}

// XEP-0115 §5.3: two identities with xml:lang and a XEP-0128 form whose
// fields are given out of order.
func TestCapsVerComplex(t *testing.T) {
	x := stanza.New(NSData, "x", "type", "result")
	dataField(x, "ip_version", "text-multi", "ipv6", "ipv4")
	dataField(x, "FORM_TYPE", "hidden", "urn:xmpp:dataforms:softwareinfo")
	dataField(x, "software_version", "", "0.11")
	dataField(x, "os", "", "Mac")
	dataField(x, "os_version", "", "10.5.1")
	dataField(x, "software", "", "Psi")
	// A form without FORM_TYPE is ignored (§5.4 step 3.6).
	stray := stanza.New(NSData, "x", "type", "result")
	dataField(stray, "foo", "", "bar")
	got := capsVer([]capsIdentity{
		{Category: "client", Type: "pc", Lang: "en", Name: "Psi 0.11"},
		{Category: "client", Type: "pc", Lang: "el", Name: "Ψ 0.11"},
	}, []string{"http://jabber.org/protocol/muc", "http://jabber.org/protocol/disco#info",
		"http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#items"},
		[]*stanza.Element{stray, x})
	if want := "q07IKJEyjvHSyhy//CH0CxmKi8w="; got != want {
		t.Errorf("ver = %q, want %q", got, want)
	}
}

func TestCapsVerChangesWithFeatures(t *testing.T) {
	ids := []capsIdentity{{Category: "server", Type: "im", Name: "Metronome"}}
	a := capsVer(ids, []string{"urn:xmpp:ping"}, nil)
	b := capsVer(ids, []string{"urn:xmpp:ping", "urn:xmpp:time"}, nil)
	if a == b {
		t.Errorf("ver did not change with the features: %q", a)
	}
}
