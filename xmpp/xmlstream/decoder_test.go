package xmlstream

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

const streamHead = `<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="example.com" version="1.0" xml:lang="en">`

func TestParse(t *testing.T) {
	tests := []struct{ in, want string }{
		{`<a/>`, `{}a`},
		{`  <a></a>  `, `{}a`},
		{"\uFEFF<a/>", `{}a`},
		{`<?xml version="1.0" encoding="utf-8" standalone='yes'?><a/>`, `{}a`},
		{`<a xmlns="urn:x" b='1' c="2"/>`, `{urn:x}a[b="1" c="2"]`},
		{`<a b = "1"	c='"'/>`, `{}a[b="1" c="\""]`},
		{`<p:a xmlns:p="urn:p"><p:b/><c/></p:a>`, `{urn:p}a({urn:p}b,{}c)`},
		// Nested default namespace changes.
		{`<a xmlns="u1"><b xmlns="u2"><c/></b><d/><e xmlns=""><f/></e></a>`, `{u1}a({u2}b({u2}c),{u1}d,{}e({}f))`},
		// Prefixed attributes, xml:lang, and a prefix shadowed in a child.
		{`<a xmlns:p="u1" p:x="1" y="2" xml:lang="en"><b xmlns:p="u2" p:x="3"/></a>`,
			`{}a[{u1}x="1" y="2" xml:lang="en"]({}b[{u2}x="3"])`},
		{`<a xmlns:p="u" p:x="1" x="2"/>`, `{}a[{u}x="1" x="2"]`},
		{`<a xmlns:xml="http://www.w3.org/XML/1998/namespace" xml:space="preserve"/>`, `{}a[xml:space="preserve"]`},
		// Text, entities, references, CDATA, line ends.
		{`<a>x &lt;&gt;&amp;&quot;&apos; &#65;&#x42;&#x1F600;&#x0000043;</a>`, `{}a("x <>&\"' AB😀C")`},
		{`<a>1<![CDATA[<&>]]>2<b/>3</a>`, `{}a("1<&>2",{}b,"3")`},
		{"<a>x\r\ny\rz&#13;</a>", `{}a("x\ny\nz\r")`},
		{"<a b=\"x\r\ny\tz\n&#10;&#9;\"/>", `{}a[b="x y z \n\t"]`},
		{`<a>]] ]></a>`, `{}a("]] ]>")`},
		{`<a b="a>b"/>`, `{}a[b="a>b"]`},
		{`<a>ünïcödé 日本語 😀</a>`, `{}a("ünïcödé 日本語 😀")`},
		{`<ä:é xmlns:ä="u" ö="1"></ä:é >`, `{u}é[ö="1"]`},
		{`<a><![CDATA[]]></a>`, `{}a`},
		{`<a> </a>`, `{}a(" ")`},
		// Found by FuzzEquivalence: namespace names are attribute values
		// and are normalized too.
		{"<message xmlns=\"\r\"></message>", `{ }message`},
	}
	for _, tc := range tests {
		if got := parseResult(tc.in); got != tc.want {
			t.Errorf("Parse(%q):\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestParseNS(t *testing.T) {
	el, err := ParseNS([]byte(`<message to="a"><body>x</body><x xmlns="urn:x"/></message>`), stanza.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	want := `{jabber:client}message[to="a"]({jabber:client}body("x"),{urn:x}x)`
	if got := dump(el); got != want {
		t.Errorf("got %s want %s", got, want)
	}
	// The input is not modified by in-place decoding.
	in := []byte(`<a b="&amp;">&lt;</a>`)
	if _, err := Parse(in); err != nil || string(in) != `<a b="&amp;">&lt;</a>` {
		t.Errorf("input modified: %q %v", in, err)
	}
}

func TestRejections(t *testing.T) {
	tests := []struct{ name, in, cond string }{
		// restricted-xml
		{"doctype", `<!DOCTYPE a><a/>`, CondRestrictedXML},
		{"doctype inside", `<a><!DOCTYPE a></a>`, CondRestrictedXML},
		{"entity decl", `<a><!ENTITY x "y"></a>`, CondRestrictedXML},
		{"comment", `<a><!-- hi --></a>`, CondRestrictedXML},
		{"comment before root", `<!-- hi --><a/>`, CondRestrictedXML},
		{"pi", `<a><?php echo ?></a>`, CondRestrictedXML},
		{"pi before root", `<?xml-stylesheet href="x"?><a/>`, CondRestrictedXML},
		{"xml decl not at start", ` <?xml version="1.0"?><a/>`, CondRestrictedXML},
		{"xml decl inside", `<a><?xml version="1.0"?></a>`, CondRestrictedXML},
		{"second xml decl", `<?xml version="1.0"?><?xml version="1.0"?><a/>`, CondRestrictedXML},
		{"undefined entity", `<a>&nbsp;</a>`, CondRestrictedXML},
		{"undefined entity attr", `<a b="&foo;"/>`, CondRestrictedXML},
		// unsupported-encoding
		{"latin1", `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`, CondUnsupportedEncoding},
		{"utf16 bom", "\xFE\xFF\x00<\x00a\x00/\x00>", CondUnsupportedEncoding},
		{"utf16le bom", "\xFF\xFE<\x00a\x00/\x00>\x00", CondUnsupportedEncoding},
		{"ucs4", "\x00\x00\x00<", CondUnsupportedEncoding},
		// not-well-formed
		{"empty", ``, CondNotWellFormed},
		{"only space", "  \n", CondNotWellFormed},
		{"text before root", `x<a/>`, CondNotWellFormed},
		{"text after root", `<a/>x`, CondNotWellFormed},
		{"two roots", `<a/><b/>`, CondNotWellFormed},
		{"mismatched", `<a></b>`, CondNotWellFormed},
		{"mismatched prefix", `<p:a xmlns:p="u" xmlns:q="u"></q:a>`, CondNotWellFormed},
		{"unclosed", `<a><b></b>`, CondNotWellFormed},
		{"unclosed tag", `<a`, CondNotWellFormed},
		{"stray end", `</a>`, CondNotWellFormed},
		{"duplicate attr", `<a b="1" b="2"/>`, CondNotWellFormed},
		{"duplicate expanded attr", `<a xmlns:p="u" xmlns:q="u" p:b="1" q:b="2"/>`, CondNotWellFormed},
		{"duplicate xmlns", `<a xmlns="u" xmlns="v"/>`, CondNotWellFormed},
		{"duplicate xmlns prefix", `<a xmlns:p="u" xmlns:p="v"/>`, CondNotWellFormed},
		{"undeclared prefix", `<p:a/>`, CondNotWellFormed},
		{"undeclared attr prefix", `<a p:b="1"/>`, CondNotWellFormed},
		{"out of scope prefix", `<a><b xmlns:p="u"/><p:c/></a>`, CondNotWellFormed},
		{"xmlns element prefix", `<xmlns:a/>`, CondNotWellFormed},
		{"xml element prefix", `<xml:a/>`, CondNotWellFormed},
		{"rebind xml", `<a xmlns:xml="urn:x"/>`, CondNotWellFormed},
		{"declare xmlns", `<a xmlns:xmlns="urn:x"/>`, CondNotWellFormed},
		{"bind xml ns", `<a xmlns:p="http://www.w3.org/XML/1998/namespace"/>`, CondNotWellFormed},
		{"default xmlns ns", `<a xmlns="http://www.w3.org/2000/xmlns/"/>`, CondNotWellFormed},
		{"undeclare prefix", `<a xmlns:p="u"><b xmlns:p=""/></a>`, CondNotWellFormed},
		{"bad name", `<1a/>`, CondNotWellFormed},
		{"bad name char", `<a$b/>`, CondNotWellFormed},
		{"space after lt", `< a/>`, CondNotWellFormed},
		{"two colons", `<a:b:c xmlns:a="u"/>`, CondNotWellFormed},
		{"leading colon", `<:a/>`, CondNotWellFormed},
		{"trailing colon", `<a: xmlns:a="u"/>`, CondNotWellFormed},
		{"bad unicode name", "<a\u00D7/>", CondNotWellFormed},
		{"bad end tag", `<a></a b>`, CondNotWellFormed},
		{"unquoted attr", `<a b=1/>`, CondNotWellFormed},
		{"attr without value", `<a b/>`, CondNotWellFormed},
		{"no space between attrs", `<a b="1"c="2"/>`, CondNotWellFormed},
		{"slash inside tag", `<a / >`, CondNotWellFormed},
		{"lt in attr", `<a b="<"/>`, CondNotWellFormed},
		{"lt in tag", `<a <b/>`, CondNotWellFormed},
		{"cdata end in text", `<a>]]></a>`, CondNotWellFormed},
		{"bare ampersand", `<a>a & b</a>`, CondNotWellFormed},
		{"ampersand no semicolon", `<a>&amp</a>`, CondNotWellFormed},
		{"bad charref", `<a>&#xZZ;</a>`, CondNotWellFormed},
		{"empty charref", `<a>&#;</a>`, CondNotWellFormed},
		{"upper X charref", `<a>&#X41;</a>`, CondNotWellFormed},
		{"nul charref", `<a>&#0;</a>`, CondNotWellFormed},
		{"control charref", `<a>&#x1;</a>`, CondNotWellFormed},
		{"surrogate charref", `<a>&#xD800;</a>`, CondNotWellFormed},
		{"fffe charref", `<a>&#xFFFE;</a>`, CondNotWellFormed},
		{"huge charref", `<a>&#x110000;</a>`, CondNotWellFormed},
		{"overflow charref", `<a>&#99999999999999999999;</a>`, CondNotWellFormed},
		{"nul", "<a>\x00</a>", CondNotWellFormed},
		{"control", "<a>\x1b[31m</a>", CondNotWellFormed},
		{"control in attr", "<a b=\"\x07\"/>", CondNotWellFormed},
		{"control in cdata", "<a><![CDATA[\x01]]></a>", CondNotWellFormed},
		{"invalid utf8", "<a>\xff</a>", CondNotWellFormed},
		{"truncated utf8", "<a>\xe6\x97</a>", CondNotWellFormed},
		{"overlong utf8", "<a>\xc0\xbc</a>", CondNotWellFormed},
		{"surrogate utf8", "<a>\xed\xa0\x80</a>", CondNotWellFormed},
		{"invalid utf8 attr", "<a b=\"\xff\"/>", CondNotWellFormed},
		{"invalid utf8 name", "<a\xff/>", CondNotWellFormed},
		{"U+FFFF", "<a>\uffff</a>", CondNotWellFormed},
		{"bad decl", `<?xml?><a/>`, CondNotWellFormed},
		{"bad decl version", `<?xml version="2.0"?><a/>`, CondNotWellFormed},
		{"bad decl order", `<?xml encoding="UTF-8" version="1.0"?><a/>`, CondNotWellFormed},
		{"bad bang", `<a><!x></a>`, CondNotWellFormed},
		{"bad cdata", `<a><![CDAT[x]]></a>`, CondNotWellFormed},
		{"cdata at top", `<![CDATA[x]]><a/>`, CondNotWellFormed},
		{"cdata after root", `<c>00000000000</c><![CDATA[]]>`, CondNotWellFormed},                // found by FuzzEquivalence
		{"local name starts with digit", `<p:a xmlns:p="0" p:0="00">0</p:a>`, CondNotWellFormed}, // found by FuzzEquivalence
		{"element local name starts with digit", `<p:0 xmlns:p="0"/>`, CondNotWellFormed},
		{"unterminated cdata", `<a><![CDATA[x</a>`, CondNotWellFormed},
		// policy-violation (default limits: depth 64, 64 attributes)
		{"depth", strings.Repeat("<a>", 65) + strings.Repeat("</a>", 65), CondPolicyViolation},
		{"attrs", "<a" + manyAttrs(65) + "/>", CondPolicyViolation},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.in))
		if got := condOf(err); got != tc.cond {
			t.Errorf("%s: Parse(%q) = %v, want %s", tc.name, tc.in, err, tc.cond)
		}
	}
	// Limits are inclusive.
	if _, err := Parse([]byte(strings.Repeat("<a>", 64) + strings.Repeat("</a>", 64))); err != nil {
		t.Errorf("depth 64: %v", err)
	}
	if _, err := Parse([]byte("<a" + manyAttrs(64) + "/>")); err != nil {
		t.Errorf("64 attributes: %v", err)
	}
}

func manyAttrs(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(" a")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString(`="1"`)
	}
	return b.String()
}

func TestStreamRejections(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"text at top level", streamHead + `<a/>hello<b/>`, "{jabber:client}a\nend: not-well-formed"},
		{"entity at top level", streamHead + `&amp;`, "end: not-well-formed"},
		{"decl after header", streamHead + `<?xml version="1.0"?>`, "end: restricted-xml"},
		{"comment between stanzas", streamHead + `<a/><!-- x -->`, "{jabber:client}a\nend: restricted-xml"},
		{"stray end tag", streamHead + `</a>`, "end: not-well-formed"},
		{"mismatched root end", streamHead + `</stream>`, "end: not-well-formed"},
		{"eof between", streamHead + `<a/> `, "{jabber:client}a\nend: EOF"},
		{"eof inside", streamHead + `<a><b>`, "end: unexpected EOF"},
		{"eof inside tag", streamHead + `<a b="`, "end: unexpected EOF"},
		{"eof inside text", streamHead + `<a>text`, "end: unexpected EOF"},
		{"doctype in header", `<?xml version="1.0"?><!DOCTYPE stream:stream>`, "header error: restricted-xml"},
		{"header eof", ``, "header error: EOF"},
		{"header unexpected eof", `<stream:stream`, "header error: unexpected EOF"},
		{"header undeclared", `<stream:stream>`, "header error: not-well-formed"},
		{"stream end", streamHead + `<a/></stream:stream><junk`, "{jabber:client}a\nend: xmlstream: end of stream"},
		{"self-closed root", `<stream:stream xmlns:stream="http://etherx.jabber.org/streams"/>`, "end: xmlstream: end of stream"},
	}
	for _, tc := range tests {
		got := decodeAll(strings.NewReader(tc.in), Limits{})
		if i := strings.IndexByte(got, '\n'); i >= 0 && !strings.HasPrefix(got, "header error") {
			got = got[i+1:]
		}
		if got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestStream(t *testing.T) {
	in := streamHead + "\n  " + `<stream:features><starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"><required/></starttls></stream:features>` +
		" \n\t " + `<message to="romeo@example.net" from="juliet@example.com/balcony" type="chat" id="m1" xml:lang="en"><body>Wherefore art thou?</body><active xmlns="http://jabber.org/protocol/chatstates"/></message>` +
		`<iq type="get" id="p1"><ping xmlns="urn:xmpp:ping"/></iq>` + "\n" +
		`<stream:error><not-well-formed xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></stream:error></stream:stream>`
	want := `header {http://etherx.jabber.org/streams}stream default=jabber:client to=example.com version=1.0 xml:lang=en
{http://etherx.jabber.org/streams}features({urn:ietf:params:xml:ns:xmpp-tls}starttls({urn:ietf:params:xml:ns:xmpp-tls}required))
{jabber:client}message[to="romeo@example.net" from="juliet@example.com/balcony" type="chat" id="m1" xml:lang="en"]({jabber:client}body("Wherefore art thou?"),{http://jabber.org/protocol/chatstates}active)
{jabber:client}iq[type="get" id="p1"]({urn:xmpp:ping}ping)
{http://etherx.jabber.org/streams}error({urn:ietf:params:xml:ns:xmpp-streams}not-well-formed)
end: xmlstream: end of stream`
	if got := decodeAll(strings.NewReader(in), Limits{}); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	d := NewDecoder(strings.NewReader(in), Limits{})
	h, err := d.Header()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Check(stanza.NSClient, stanza.NSServer); err != nil {
		t.Error(err)
	}
	if err := h.Check(stanza.NSServer); condOf(err) != CondInvalidNamespace {
		t.Errorf("Check(jabber:server) = %v", err)
	}
	if h.Attr("xml:lang") != "en" || h.Attr("to") != "example.com" || h.Attr("from") != "" {
		t.Errorf("Header.Attr: %+v", h)
	}
	if _, err := d.Header(); err == nil {
		t.Error("second Header succeeded")
	}
}

func TestHeaderCheck(t *testing.T) {
	for in, cond := range map[string]string{
		`<stream xmlns="http://etherx.jabber.org/streams">`:              "",
		`<stream:stream xmlns:stream="urn:wrong">`:                       CondInvalidNamespace,
		`<stream:strea xmlns:stream="http://etherx.jabber.org/streams">`: CondBadFormat,
	} {
		d := NewDecoder(strings.NewReader(in), Limits{})
		h, err := d.Header()
		if err != nil {
			t.Fatal(err)
		}
		if got := condOf(h.Check()); got != cond {
			t.Errorf("%s: Check = %q, want %q", in, got, cond)
		}
	}
}

func TestElementBeforeHeader(t *testing.T) {
	d := NewDecoder(strings.NewReader(streamHead), Limits{})
	if _, err := d.Element(); err == nil {
		t.Error("Element before Header succeeded")
	}
}

func TestFragments(t *testing.T) {
	in := `<?xml version="1.0"?><open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.com" version="1.0"/>
<message to="a"><body>hi</body></message>  <iq xmlns="jabber:server" type="get"/>`
	d := NewDecoder(strings.NewReader(in), Limits{})
	d.SetFragmentMode(stanza.NSClient)
	var got []string
	for {
		el, err := d.Element()
		if err != nil {
			got = append(got, condOf(err))
			break
		}
		got = append(got, dump(el))
	}
	want := []string{
		`{urn:ietf:params:xml:ns:xmpp-framing}open[to="example.com" version="1.0"]`,
		`{jabber:client}message[to="a"]({jabber:client}body("hi"))`,
		`{jabber:server}iq[type="get"]`,
		"EOF",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Unclosed element at the end of input.
	d.Reset(strings.NewReader(`<a/><b>`))
	if _, err := d.Element(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Element(); err != io.ErrUnexpectedEOF {
		t.Errorf("got %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := d.Header(); err == nil {
		t.Error("Header in fragment mode succeeded")
	}
}

func TestReset(t *testing.T) {
	first := streamHead + `<stream:features><starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/></stream:features><starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>`
	second := `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='b'><iq type='set' id='1'/></stream:stream>`
	d := NewDecoder(strings.NewReader(first), Limits{})
	if _, err := d.Header(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := d.Element(); err != nil {
			t.Fatal(err)
		}
	}
	// A stream restart: the XML declaration is allowed again and no
	// namespace or element state carries over.
	d.Reset(strings.NewReader(second))
	h, err := d.Header()
	if err != nil {
		t.Fatal(err)
	}
	if h.DefaultNS != stanza.NSServer || h.Attr("to") != "b" {
		t.Errorf("header after reset: %+v", h)
	}
	el, err := d.Element()
	if err != nil || dump(el) != `{jabber:server}iq[type="set" id="1"]` {
		t.Errorf("element after reset: %v %v", el, err)
	}
	if _, err := d.Element(); err != ErrStreamEnd {
		t.Errorf("got %v, want ErrStreamEnd", err)
	}
	// Reset also clears a permanent error.
	d.Reset(strings.NewReader(streamHead + `<a><!-- --></a>`))
	d.Header()
	if _, err := d.Element(); condOf(err) != CondRestrictedXML {
		t.Fatalf("got %v", err)
	}
	d.Reset(strings.NewReader(streamHead + `<a/>`))
	if _, err := d.Header(); err != nil {
		t.Fatal(err)
	}
	if el, err := d.Element(); err != nil || el.Name != "a" {
		t.Fatalf("got %v %v", el, err)
	}
}

func TestMaxBytes(t *testing.T) {
	l := Limits{MaxBytes: 100}
	stanzaOf := func(n int) string { // an element of exactly n bytes
		return `<a>` + strings.Repeat("x", n-7) + `</a>`
	}
	for _, tc := range []struct {
		in   string
		want string
	}{
		{stanzaOf(100), "ok"},
		{stanzaOf(101), CondPolicyViolation},
		{stanzaOf(100) + " \n " + stanzaOf(100), "ok"}, // the limit is per element; white space does not count
		{`<a b="` + strings.Repeat("x", 200) + `"/>`, CondPolicyViolation},
		{`<a>` + strings.Repeat("<b/>", 30) + `</a>`, CondPolicyViolation},
		{`<a><![CDATA[` + strings.Repeat("x", 200) + `]]></a>`, CondPolicyViolation},
		{`<a>` + strings.Repeat("x", 90) + `</aaaaaaaaaaaaaaaaaaaaaaaaa>`, CondPolicyViolation},
	} {
		in := streamHead + tc.in
		d := NewDecoder(strings.NewReader(in), Limits{MaxBytes: 1000})
		if _, err := d.Header(); err != nil {
			t.Fatal(err)
		}
		d.t.lim.MaxBytes = 100 // the header is longer than that
		got := "ok"
		for {
			_, err := d.Element()
			if err == io.EOF {
				break
			}
			if err != nil {
				got = condOf(err)
				break
			}
		}
		if got != tc.want {
			t.Errorf("%.40q...: got %s want %s", tc.in, got, tc.want)
		}
	}
	// The stream header is bounded too.
	hdr := `<stream:stream xmlns:stream="http://etherx.jabber.org/streams" to="` + strings.Repeat("x", 200) + `">`
	if _, err := NewDecoder(strings.NewReader(hdr), l).Header(); condOf(err) != CondPolicyViolation {
		t.Errorf("long header: %v", err)
	}
	decl := `<?xml version="1.0"` + strings.Repeat(" ", 200) + `?><a/>`
	d := NewDecoder(strings.NewReader(decl), l)
	if _, err := d.Header(); condOf(err) != CondPolicyViolation {
		t.Errorf("long declaration: %v", err)
	}
}

// A 10 MB stanza must be rejected after reading little more than the limit.
func TestHugeStanza(t *testing.T) {
	for _, tc := range []struct{ name, prefix, fill, suffix string }{
		{"text", `<message><body>`, "0123456789abcdef", `</body></message>`},
		{"attribute", `<message to="`, "0123456789abcdef", `"/>`},
		{"start tag", `<message`, ` a="1"`, `/>`},
		{"children", `<message>`, `<b>x</b>`, `</message>`},
		{"cdata", `<message><![CDATA[`, `0123456789abcdef`, `]]></message>`},
		{"white space in tag", `<message`, `                `, `/>`},
	} {
		rr := &repeatReader{parts: []string{streamHead + tc.prefix, tc.suffix}, fill: tc.fill, n: 10 << 20 / len(tc.fill)}
		cr := &countingReader{r: rr}
		d := NewDecoder(cr, Limits{})
		if _, err := d.Header(); err != nil {
			t.Fatal(err)
		}
		_, err := d.Element()
		if condOf(err) != CondPolicyViolation {
			t.Errorf("%s: got %v, want policy-violation", tc.name, err)
		}
		if cr.n > DefaultMaxBytes+64<<10 {
			t.Errorf("%s: read %d bytes for a %d byte limit", tc.name, cr.n, DefaultMaxBytes)
		}
		if n := cap(d.t.buf); n > DefaultMaxBytes+4*minRead {
			t.Errorf("%s: buffer grew to %d", tc.name, n)
		}
	}
}

func TestBillionLaughs(t *testing.T) {
	lol := `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ELEMENT lolz (#PCDATA)>
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>`
	if _, err := Parse([]byte(lol)); condOf(err) != CondRestrictedXML {
		t.Errorf("Parse: %v", err)
	}
	d := NewDecoder(strings.NewReader(lol), Limits{})
	if _, err := d.Header(); condOf(err) != CondRestrictedXML {
		t.Errorf("Header: %v", err)
	}
	// Inside a stream, after the header.
	if got := decodeAll(strings.NewReader(streamHead+`<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`), Limits{}); !strings.HasSuffix(got, "end: restricted-xml") {
		t.Errorf("in stream: %s", got)
	}
}

// splitInputs are streams whose decoding must not depend on how the input
// is split into reads.
var splitInputs = []string{
	streamHead + `<message to="a" type="chat"><body>h&#xE9;llo &amp; 日本 😀</body><x xmlns="urn:x" y='&lt;'/></message> <iq type='get'><q xmlns:p="u" p:a="1"><![CDATA[c]]>d</q></iq></stream:stream>`,
	"\uFEFF" + streamHead + "<a>\r\n</a>",
	streamHead + `<a>` + strings.Repeat("long text ", 2000) + `</a><b c="` + strings.Repeat("v", 5000) + `"/>`,
	streamHead + `<a>` + strings.Repeat("x", 300) + `</a>`,   // limit below
	streamHead + `<a b="` + strings.Repeat("x", 300) + `"/>`, // limit below
	streamHead + `<a><![CDATA[` + strings.Repeat("]", 300) + `]]></a>`,
	streamHead + `<a>&#x1F600;&#0;</a>`,
	streamHead + `<a>` + "\xe6\x97\xa5\xe6\x97" + `</a>`,
	streamHead + `<a><!-- x --></a>`,
	streamHead + `<a></b>`,
	streamHead + `<a>`,
	streamHead + `<?xml version="1.0"?>`,
	`<?xml version="1.0" encoding="latin1"?>`,
	"\xFF\xFE<",
	`<?xml version="1.0"?>` + strings.Repeat(" ", 500) + `<!DOCTYPE x>`,
	// Start tags: '>' and quotes in values, multi-byte names, errors
	// before, at and after the size limit, and at the end of input.
	streamHead + `<a b='>"' c=">'"/><ä:é xmlns:ä="u" ö='1'/><b` + manyAttrs(5) + `/>`,
	streamHead + `<a b="` + strings.Repeat("x", 280) + `"c="1"/>`,
	streamHead + `<a b="` + strings.Repeat("x", 250) + `" c=1 d="` + strings.Repeat("x", 100) + `"/>`,
	streamHead + `<a b="1" c="2" b="3"/>`,
	streamHead + `<a b="1" ` + strings.Repeat(" ", 400) + `/>`,
	streamHead + `<a b="1"c`,
	streamHead + `<a b="<"`,
	streamHead + `<a b="1" / `,
	streamHead + `<a ` + "\xe6\x97",
	streamHead + `<a` + "\xe6\x97\xa5" + `/>`,
	streamHead + `<a xmlns:p="u"><p:b/><p:c></p:c></a></stream:stream>`,
}

func TestSplitReads(t *testing.T) {
	for _, in := range splitInputs {
		for _, l := range []Limits{{}, {MaxBytes: 290}} {
			want := decodeAll(strings.NewReader(in), l)
			for name, r := range map[string]io.Reader{
				"one byte": &oneByteReader{strings.NewReader(in)},
				"half":     iotest.HalfReader(strings.NewReader(in)),
				"data+err": iotest.DataErrReader(strings.NewReader(in)),
				"timeouts": &timeoutReader{r: &oneByteReader{strings.NewReader(in)}},
			} {
				got := decodeAllRetry(r, l)
				if got != want {
					t.Errorf("%s reads of %.60q (limits %+v):\n got %q\nwant %q", name, in, l, got, want)
				}
			}
		}
	}
}

// Every split of every input into two reads gives the same result.
func TestSplitEverywhere(t *testing.T) {
	for _, in := range splitInputs {
		if len(in) > 1000 {
			continue
		}
		want := decodeAll(strings.NewReader(in), Limits{MaxBytes: 290})
		for i := range len(in) + 1 {
			r := io.MultiReader(strings.NewReader(in[:i]), strings.NewReader(in[i:]))
			if got := decodeAll(r, Limits{MaxBytes: 290}); got != want {
				t.Fatalf("split at %d of %q:\n got %q\nwant %q", i, in, got, want)
			}
		}
	}
}

// timeoutReader fails every other read with a timeout, as a net.Conn with
// a read deadline would.
type timeoutReader struct {
	r    io.Reader
	fail bool
}

func (r *timeoutReader) Read(p []byte) (int, error) {
	r.fail = !r.fail
	if r.fail {
		return 0, os.ErrDeadlineExceeded
	}
	return r.r.Read(p)
}

// decodeAllRetry is decodeAll that retries after timeouts.
func decodeAllRetry(r io.Reader, l Limits) string {
	var b strings.Builder
	d := NewDecoder(r, l)
	var h Header
	var err error
	for {
		h, err = d.Header()
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
	}
	if err != nil {
		return "header error: " + condOf(err)
	}
	b.WriteString("header {" + h.Space + "}" + h.Name + " default=" + h.DefaultNS)
	for _, a := range h.Attrs {
		b.WriteString(" " + a.Name + "=" + a.Value)
	}
	b.WriteString("\n")
	for {
		el, err := d.Element()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			b.WriteString("end: " + condOf(err))
			return b.String()
		}
		b.WriteString(dump(el) + "\n")
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader(streamHead+`<a><b>`), iotest.ErrReader(boom))
	d := NewDecoder(r, Limits{})
	d.Header()
	if _, err := d.Element(); err != boom {
		t.Errorf("got %v, want the reader's error", err)
	}
}

func TestNetConn(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	go func() {
		c2.Write([]byte(streamHead))
		c2.Write([]byte(`<message><body>1</body></message>`))
		time.Sleep(10 * time.Millisecond)
		c2.Write([]byte(` <message><bo`))
		c2.Write([]byte(`dy>2</body></message>`))
		c2.Write([]byte(`</stream:stream>`))
	}()
	d := NewDecoder(c1, Limits{})
	if _, err := d.Header(); err != nil {
		t.Fatal(err)
	}
	// The decoder returns the first stanza without waiting for more input.
	for _, want := range []string{"1", "2"} {
		el, err := d.Element()
		if err != nil || el.ChildText("", "body") != want {
			t.Fatalf("got %v %v", el, err)
		}
	}
	if _, err := d.Element(); err != ErrStreamEnd {
		t.Fatal(err)
	}
}

func TestTreeIsIndependent(t *testing.T) {
	d := NewDecoder(strings.NewReader(streamHead+`<message a="1" b="2"><x>t</x><y/></message><message c="3"/>`), Limits{})
	d.Header()
	el, _ := d.Element()
	before := dump(el)
	// Appending to sub-slices must not clobber neighbours.
	el.FirstChild().SetAttr("new", "v")
	el.FirstChild().AddText("more")
	el2, _ := d.Element()
	if dump(el2) != `{jabber:client}message[c="3"]` {
		t.Errorf("second element: %s", dump(el2))
	}
	want := `{jabber:client}message[a="1" b="2"]({jabber:client}x[new="v"]("t","more"),{jabber:client}y)`
	if got := dump(el); got != want {
		t.Errorf("before %s\nafter %s\nwant %s", before, got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, in := range []string{
		`<message xmlns="jabber:client" to="a&amp;b" type="chat"><body>x &lt; y "q" 'a' &#13; &#9;</body><x xmlns="urn:x" xmlns:p="urn:p" p:y="1" xml:lang="en"><z xmlns=""/></x></message>`,
		"<a b=\"&#9;&#10;&#13;\">\r</a>",
	} {
		el, err := Parse([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		out := el.Append(nil, "")
		el2, err := Parse(out)
		if err != nil {
			t.Fatalf("reparse %s: %v", out, err)
		}
		if dump(el) != dump(el2) {
			t.Errorf("round trip:\n%s\n%s", dump(el), dump(el2))
		}
	}
}

func TestInputOffset(t *testing.T) {
	in := streamHead + `<a/>`
	d := NewDecoder(bytes.NewReader([]byte(in)), Limits{})
	d.Header()
	if d.InputOffset() != int64(len(streamHead)) {
		t.Errorf("offset after header %d", d.InputOffset())
	}
	d.Element()
	if d.InputOffset() != int64(len(in)) {
		t.Errorf("offset after element %d", d.InputOffset())
	}
}

func TestRestart(t *testing.T) {
	// A client pipelining the stream restart right after its SASL
	// exchange: the new header is already buffered when <auth/> is read.
	in := streamHead + `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">AGp1bGlldABy</auth>` +
		`<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="example.com" version="1.0"><iq type="set" id="b"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>`
	d := NewDecoder(strings.NewReader(in), Limits{})
	if _, err := d.Header(); err != nil {
		t.Fatal(err)
	}
	el, err := d.Element()
	if err != nil || el.Name != "auth" || el.Text() != "AGp1bGlldABy" {
		t.Fatalf("auth: %v %v", el, err)
	}
	if d.Buffered() == 0 {
		t.Fatal("nothing buffered")
	}
	d.Restart()
	if _, err := d.Header(); err != nil {
		t.Fatal(err)
	}
	el, err = d.Element()
	if err != nil || dump(el) != `{jabber:client}iq[type="set" id="b"]({urn:ietf:params:xml:ns:xmpp-bind}bind)` {
		t.Fatalf("after restart: %v %v", el, err)
	}
	if d.InputOffset() != int64(len(in)-strings.Index(in, "<?xml version='1.0'?><stream:stream xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/streams\" to=\"example.com\" version=\"1.0\"><iq")) {
		t.Errorf("offset after restart %d", d.InputOffset())
	}
	// Reset, unlike Restart, drops buffered input.
	d = NewDecoder(strings.NewReader(streamHead+`<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/><injected/>`), Limits{})
	d.Header()
	if el, err := d.Element(); err != nil || el.Name != "starttls" {
		t.Fatal(el, err)
	}
	if d.Buffered() != len(`<injected/>`) {
		t.Errorf("Buffered = %d", d.Buffered())
	}
}
