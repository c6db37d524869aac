package bosh

import (
	"bytes"
	"strings"
	"testing"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

func TestParseBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		ok       bool
		check    func(*body) bool
	}{
		{"creation", `<body xmlns="` + NS + `" xmlns:xmpp="` + NSXBOSH + `" rid="10" to="example.org" xml:lang="en" ver="1.11" wait="60" hold="1" ack="1" xmpp:version="1.0"/>`, true,
			func(b *body) bool {
				return b.rid == 10 && b.to == "example.org" && b.lang == "en" && b.ver == "1.11" && b.wait == 60 &&
					b.hold == 1 && b.ack == 1 && b.xmppVersion == "1.0" && b.pause == -1 && b.payload == nil
			}},
		{"restart", `<body xmlns="` + NS + `" xmlns:x="` + NSXBOSH + `" rid="11" sid="s" x:restart="true"/>`, true,
			func(b *body) bool { return b.restart && b.sid == "s" }},
		{"payloads", `<body xmlns="` + NS + `" rid="12" sid="s"> <message xmlns="jabber:client" to="a@b"><body>hi</body></message>
			<presence/><auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">AGEAYg==</auth></body>`, true,
			func(b *body) bool {
				return string(b.payload) == `<message to="a@b"><body>hi</body></message><presence/>`+
					`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">AGEAYg==</auth>`
			}},
		{"terminate", `<body xmlns="` + NS + `" rid="13" sid="s" type="terminate"><presence type="unavailable" xmlns="jabber:client"/></body>`, true,
			func(b *body) bool {
				return b.typ == "terminate" && string(b.payload) == `<presence type="unavailable"/>`
			}},
		{"no rid", `<body xmlns="` + NS + `" sid="s"/>`, false, nil},
		{"rid zero", `<body xmlns="` + NS + `" rid="0"/>`, false, nil},
		{"rid too large", `<body xmlns="` + NS + `" rid="9007199254740992"/>`, false, nil},
		{"bad wait", `<body xmlns="` + NS + `" rid="1" wait="-1"/>`, false, nil},
		{"bad hold", `<body xmlns="` + NS + `" rid="1" hold="x"/>`, false, nil},
		{"wrong ns", `<body rid="1"/>`, false, nil},
		{"wrong root", `<stream xmlns="` + NS + `" rid="1"/>`, false, nil},
		{"text", `<body xmlns="` + NS + `" rid="1">hello</body>`, false, nil},
		{"unclosed", `<body xmlns="` + NS + `" rid="1"><message>`, false, nil},
		{"two roots", `<body xmlns="` + NS + `" rid="1"/><body xmlns="` + NS + `" rid="2"/>`, false, nil},
		{"comment", `<body xmlns="` + NS + `" rid="1"><!-- x --></body>`, false, nil},
		{"pi", `<body xmlns="` + NS + `" rid="1"><?x y?></body>`, false, nil},
		{"dtd", `<!DOCTYPE body [<!ENTITY x "y">]><body xmlns="` + NS + `" rid="1">&x;</body>`, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := parseBody([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v", err)
			}
			if tc.ok && !tc.check(b) {
				t.Fatalf("parsed %+v (payload %q)", b, b.payload)
			}
		})
	}
}

func TestVersionAtMost(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"1.6": "1.6", "1.11": "1.11", "1.12": "1.11", "2.0": "1.11", "": "1.11", "x": "1.11", "1.9": "1.9"} {
		if got := versionAtMost(in); got != want {
			t.Errorf("versionAtMost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAppendPayload(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`<message to="a@b"><body>x</body></message>`: `<message xmlns="jabber:client" to="a@b"><body>x</body></message>`,
		`<presence/>`:                  `<presence xmlns="jabber:client"/>`,
		`<iq type="result" id="a b"/>`: `<iq xmlns="jabber:client" type="result" id="a b"/>`,
		`<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/>`:                `<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/>`,
		`<stream:features xmlns:stream="s"><x xmlns="y"/></stream:features>`: `<stream:features xmlns:stream="s"><x xmlns="y"/></stream:features>`,
	} {
		if got := string(appendPayload(nil, []byte(in))); got != want {
			t.Errorf("appendPayload(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestScriptReply(t *testing.T) {
	t.Parallel()
	b := []byte("<body xmlns='x'>\"a\"\n\u2028\\</body>")
	if got := string(scriptReply("_BOSH_", b)); got != `_BOSH_("\u003cbody xmlns='x'\u003e\"a\"\n\u2028\\\u003c/body\u003e")` {
		t.Errorf("script: %s", got)
	}
	if got := string(scriptReply("_BOSH_", []byte("a\u200eb\U000e0001c"))); got != `_BOSH_("a\u200eb\udb40\udc01c")` {
		t.Errorf("format characters: %s", got)
	}
	if got := string(scriptReply("cb.x", []byte("<body/>"))); got != `cb.x({"reply":"\u003cbody/\u003e"});` {
		t.Errorf("jsonp: %s", got)
	}
	for cb, ok := range map[string]bool{"cb": true, "jQuery_1.x": true, "$": true, "a(b)": false, "1a": false, "": false, "a;b": false, "a b": false} {
		if validCallback(cb) != ok {
			t.Errorf("validCallback(%q) = %v", cb, !ok)
		}
	}
}

// FuzzBOSHBody: the parser of untrusted request bodies must not panic,
// and what it accepts must give payloads the stream parses back.
func FuzzBOSHBody(f *testing.F) {
	for _, s := range []string{
		`<body xmlns="` + NS + `" rid="1" to="example.org" ver="1.11" wait="60" hold="1"/>`,
		`<body xmlns="` + NS + `" xmlns:xmpp="` + NSXBOSH + `" rid="2" sid="abc" xmpp:restart="true"/>`,
		`<body xmlns="` + NS + `" rid="3" sid="abc"><message to="a@b"><body>hi &amp; bye</body></message><presence/></body>`,
		`<body xmlns="` + NS + `" rid="4" sid="abc" type="terminate" pause="10" ack="3"><iq xmlns="jabber:client" type="get" id="1"><ping xmlns="urn:xmpp:ping"/></iq></body>`,
		`<?xml version="1.0"?><body xmlns="` + NS + `" rid="5"/>`,
		`<body xmlns="` + NS + `" rid="6"><a xmlns:p="urn:p"><p:b p:c="d"/></a></body>`,
		`<body rid="7"/>`,
		`<body xmlns="` + NS + `" rid="9" sid="abc" key="0123abcd" newkey="ffee"/>`,
		`<body xmlns="` + NS + `" rid="8"><![CDATA[x]]></body>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := parseBody(in)
		if err != nil {
			return
		}
		if b.rid == 0 || b.rid > maxRID {
			t.Fatalf("accepted rid %d", b.rid)
		}
		// Every payload must be well-formed on the stream side.
		d := xmlstream.NewDecoder(bytes.NewReader(b.payload), xmlstream.Limits{MaxBytes: len(in) + 1024})
		d.SetFragmentMode(stanza.NSClient)
		for {
			if _, err := d.Element(); err != nil {
				if err.Error() != "EOF" && !strings.Contains(err.Error(), "EOF") {
					t.Fatalf("payload %q does not parse back: %v", b.payload, err)
				}
				return
			}
		}
	})
}
