package xmlstream

import (
	"bytes"
	"encoding/xml"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

var fuzzSeeds = []string{
	`<a/>`,
	`<a xmlns="u" b="1"><c>text &amp; &#x41;</c><![CDATA[x]]></a>`,
	`<p:a xmlns:p="u" p:b="1" xml:lang="en"><p:c xmlns="v"/></p:a>`,
	`<a b="x&#9;y z"><b/>t<c/></a>`,
	"<a>x\r\ny</a>",
	`<message xmlns="jabber:client" to="romeo@example.net" type="chat"><body>Hi 😀</body><active xmlns="http://jabber.org/protocol/chatstates"/></message>`,
	streamHead + `<message><body>hi</body></message></stream:stream>`,
	streamHead + `<a><!-- x --></a>`,
	`<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>`,
}

// FuzzDecoder feeds arbitrary input to the stream decoder, in one piece
// and one byte at a time, with small limits: it must not panic or hang,
// both must agree, and every element returned must survive serialization.
func FuzzDecoder(f *testing.F) {
	for _, s := range append(fuzzSeeds, splitInputs...) {
		f.Add([]byte(s))
	}
	l := Limits{MaxBytes: 512, MaxDepth: 8, MaxAttrs: 8}
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := fuzzDecode(t, bytes.NewReader(data), l, false)
		bytewise := fuzzDecode(t, &oneByteReader{bytes.NewReader(data)}, l, false)
		if whole != bytewise {
			t.Fatalf("split reads differ:\nwhole %q\nbytes %q", whole, bytewise)
		}
		fuzzDecode(t, bytes.NewReader(data), l, true)
		el, err := Parse(data)
		if err == nil {
			checkRoundTrip(t, el)
		} else if _, ok := err.(*Error); !ok {
			t.Fatalf("Parse returned %T %v", err, err)
		}
	})
}

func fuzzDecode(t *testing.T, r io.Reader, l Limits, fragments bool) string {
	var b strings.Builder
	d := NewDecoder(r, l)
	if fragments {
		d.SetFragmentMode(stanza.NSClient)
	} else {
		h, err := d.Header()
		if err != nil {
			return "header: " + condOf(err)
		}
		b.WriteString("{" + h.Space + "}" + h.Name + "\n")
	}
	for i := 0; ; i++ {
		if i > 1<<16 {
			t.Fatal("too many elements")
		}
		el, err := d.Element()
		if err != nil {
			b.WriteString(condOf(err))
			return b.String()
		}
		checkRoundTrip(t, el)
		b.WriteString(dump(el) + "\n")
	}
}

// checkRoundTrip serializes el and parses it back.
func checkRoundTrip(t *testing.T, el *stanza.Element) {
	t.Helper()
	if !appendable(el) {
		return
	}
	want := dump(el)
	out := el.Append(nil, "")
	el2, err := Parse(out)
	if err != nil {
		t.Fatalf("reparse of %s (%s): %v", out, want, err)
	}
	if got := dump(el2); got != want {
		t.Fatalf("round trip of %s:\n got %s\nwant %s", out, got, want)
	}
	out = el.Append(nil, el.Space)
	el2, err = ParseNS(out, el.Space)
	if err != nil || dump(el2) != want {
		t.Fatalf("round trip with parent namespace of %s: %v", out, err)
	}
}

// appendable reports whether stanza.Append can serialize el: it declares
// the namespaces of qualified attributes with prefixes ns0..ns9, so an
// element with more than nine of them would get a duplicate declaration.
func appendable(el *stanza.Element) bool {
	n := 0
	for _, a := range el.Attrs {
		if a.Space != "" {
			n++
		}
	}
	if n > 9 {
		return false
	}
	for _, c := range el.Children {
		if c.El != nil && !appendable(c.El) {
			return false
		}
	}
	return true
}

// FuzzEquivalence checks Parse against encoding/xml: input that
// encoding/xml (Strict) accepts as exactly one well-formed element, without
// DTD, comments or processing instructions, and that does not rely on one
// of encoding/xml's known leniencies, must parse to the same tree.
func FuzzEquivalence(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`<a xmlns:p="u"><p:b p:c="1" d="2"/></a>`,
		`<p:a xmlns:p="u" xmlns:q="v" q:x="1"><q:b xmlns="w" p:y="2"><c/></q:b></p:a>`,
		`<a xmlns="u" xml:lang="en"><b xmlns:p="v" p:c="&amp;" xml:space="preserve"/></a>`,
		"<a x='\t\n'>\r\n<![CDATA[\r]]></a>",
		`<a xmlns="u"><b xmlns=""/></a>`,
		`<a b="&lt;&gt;&amp;&quot;&apos;">&#x10000;</a>`,
		`<a>]]&gt;</a>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, ok := stdParse(data)
		if !ok {
			return
		}
		el, err := Parse(data)
		if err != nil {
			if condOf(err) == CondPolicyViolation {
				return
			}
			t.Fatalf("Parse(%q) = %v; encoding/xml gives %s", data, err, want)
		}
		if got := dumpNormalized(el); got != want {
			t.Fatalf("Parse(%q):\n got %s\nwant %s", data, got, want)
		}
		checkRoundTrip(t, el)
	})
}

// dumpNormalized is dump with tab, LF and CR in attribute values (and so
// namespace names) mapped to spaces: encoding/xml does not do
// attribute-value normalization.
func dumpNormalized(el *stanza.Element) string {
	c := el.Copy()
	var walk func(*stanza.Element)
	walk = func(e *stanza.Element) {
		e.Space = normWS(e.Space)
		for i := range e.Attrs {
			e.Attrs[i].Space = normWS(e.Attrs[i].Space)
			e.Attrs[i].Value = normWS(e.Attrs[i].Value)
		}
		for _, n := range e.Children {
			if n.El != nil {
				walk(n.El)
			}
		}
	}
	walk(c)
	return dump(c)
}

func normWS(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

func isXMLSpace(s string) bool {
	return strings.Trim(s, " \t\r\n") == ""
}

// stdParse parses data with encoding/xml into a dump, reporting whether the
// input is in the domain of the equivalence test.
func stdParse(data []byte) (string, bool) {
	if !rawChecks(data) {
		return "", false
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var root *stanza.Element
	var stack []*stanza.Element
	done := false
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", false
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if done {
				return "", false
			}
			el := &stanza.Element{Space: normWS(tok.Name.Space), Name: tok.Name.Local}
			for _, a := range tok.Attr {
				a.Name.Space = normWS(a.Name.Space)
				switch {
				case a.Name.Space == "xmlns", a.Name.Space == "" && a.Name.Local == "xmlns":
					continue
				case a.Name.Space == stanza.NSXML:
					a.Name.Space, a.Name.Local = "", "xml:"+a.Name.Local
				}
				el.Attrs = append(el.Attrs, stanza.Attr{Space: a.Name.Space, Name: a.Name.Local, Value: normWS(a.Value)})
			}
			if len(stack) > 0 {
				stack[len(stack)-1].AddChild(el)
			} else {
				root = el
			}
			stack = append(stack, el)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			done = len(stack) == 0
		case xml.CharData:
			if len(stack) == 0 {
				// Outside the root element XML allows only literal white
				// space; encoding/xml also takes character references
				// there ("&#9;<a/>").
				if raw := data[off:d.InputOffset()]; !isXMLSpace(string(tok)) || !isXMLSpace(string(raw)) {
					return "", false
				}
				continue
			}
			p := stack[len(stack)-1]
			if n := len(p.Children); n > 0 && p.Children[n-1].El == nil {
				p.Children[n-1].Text += string(tok)
			} else {
				p.AddText(string(tok))
			}
		default: // comments, processing instructions, directives
			return "", false
		}
	}
	if root == nil || !done {
		return "", false
	}
	return dump(root), true
}

// rawChecks walks the raw tokens and rejects input that encoding/xml
// accepts but Namespaces in XML or XML 1.0 forbid.
func rawChecks(data []byte) bool {
	if illegalCharRef(data) {
		return false // encoding/xml turns them into U+FFFD; XML 1.0 §4.1 forbids them
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var scopes []map[string]string
	lookup := func(p string) (string, bool) {
		for i := len(scopes) - 1; i >= 0; i-- {
			if u, ok := scopes[i][p]; ok {
				return u, true
			}
		}
		return "", p == ""
	}
	// Both parts of a QName must be NCNames; encoding/xml only checks that
	// the whole is a Name.
	badName := func(n xml.Name) bool {
		return !stdNCName(n.Local) || n.Space != "" && !stdNCName(n.Space)
	}
	for {
		start := d.InputOffset()
		tok, err := d.RawToken()
		if err != nil {
			return err == io.EOF
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if badName(tok.Name) || tok.Name.Space == "xml" || tok.Name.Space == "xmlns" ||
				tok.Name.Space == "" && tok.Name.Local == "xmlns" {
				return false
			}
			if !attrSpacing(data[start:d.InputOffset()]) {
				return false
			}
			scope := map[string]string{}
			for i, a := range tok.Attr {
				if badName(a.Name) {
					return false
				}
				for _, b := range tok.Attr[:i] {
					if a.Name == b.Name {
						return false
					}
				}
				var prefix string
				switch {
				case a.Name.Space == "xmlns":
					prefix = a.Name.Local
					if a.Value == "" || prefix == "xmlns" || (prefix == "xml") != (a.Value == stanza.NSXML) {
						return false
					}
				case a.Name.Space == "" && a.Name.Local == "xmlns":
				default:
					continue
				}
				if a.Value == stanza.NSXML && prefix != "xml" || a.Value == "http://www.w3.org/2000/xmlns/" {
					return false
				}
				scope[prefix] = a.Value
			}
			scopes = append(scopes, scope)
			if _, ok := lookup(tok.Name.Space); !ok {
				return false
			}
			// Unique expanded attribute names.
			seen := map[xml.Name]bool{}
			for _, a := range tok.Attr {
				if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
					continue
				}
				n := a.Name
				if n.Space != "" && n.Space != "xml" {
					u, ok := lookup(n.Space)
					if !ok {
						return false
					}
					n.Space = u
				}
				if seen[n] {
					return false
				}
				seen[n] = true
			}
		case xml.EndElement:
			if len(scopes) == 0 {
				return false
			}
			scopes = scopes[:len(scopes)-1]
		case xml.CharData:
			// XML allows no CDATA section outside the root element.
			if len(scopes) == 0 && bytes.HasPrefix(data[start:], []byte("<![CDATA[")) {
				return false
			}
		}
	}
}

// stdNCName reports whether encoding/xml accepts s as an element name
// without a colon.
func stdNCName(s string) bool {
	if s == "" || strings.Contains(s, ":") {
		return false
	}
	_, err := xml.NewDecoder(strings.NewReader("<" + s + "/>")).RawToken()
	return err == nil
}

// attrSpacing reports whether every attribute value in the raw start tag
// is followed by white space, "/" or ">" (encoding/xml does not require
// the white space between attributes).
func attrSpacing(tag []byte) bool {
	var q byte
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
				if i+1 < len(tag) && !strings.ContainsRune(" \t\r\n/>", rune(tag[i+1])) {
					return false
				}
			}
		case c == '"' || c == '\'':
			q = c
		}
	}
	return true
}

var charRefRE = regexp.MustCompile(`&#(x[0-9a-fA-F]+|[0-9]+);`)

// illegalCharRef reports whether data has a character reference to
// something XML 1.0's Char production excludes (a surrogate, U+FFFE,
// U+FFFF, a control character, or beyond U+10FFFF), which encoding/xml
// accepts.
func illegalCharRef(data []byte) bool {
	for _, m := range charRefRE.FindAllSubmatch(data, -1) {
		ref := string(m[1])
		base := 10
		if ref[0] == 'x' {
			ref, base = ref[1:], 16
		}
		v, err := strconv.ParseUint(ref, base, 32)
		if err != nil {
			return true
		}
		switch {
		case v == 0x9, v == 0xA, v == 0xD:
		case v < 0x20, v >= 0xD800 && v <= 0xDFFF, v == 0xFFFE, v == 0xFFFF, v > 0x10FFFF:
			return true
		}
	}
	return false
}
