package xmlstream

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

func tokenString(tok Token) string {
	switch tok.Kind {
	case StartElement:
		s := fmt.Sprintf("<{%s}%s", tok.Space, tok.Name)
		for _, a := range tok.Attrs {
			if len(a.Space) > 0 {
				s += fmt.Sprintf(" {%s}%s=%q", a.Space, a.Name, a.Value)
			} else {
				s += fmt.Sprintf(" %s=%q", a.Name, a.Value)
			}
		}
		if tok.SelfClosing {
			s += "/"
		}
		return s + ">"
	case EndElement:
		return fmt.Sprintf("</{%s}%s>", tok.Space, tok.Name)
	case CharData:
		return fmt.Sprintf("%q", tok.Text)
	}
	return "?"
}

func TestTokenizer(t *testing.T) {
	in := streamHead + ` <message xmlns:x="urn:x" x:a="1" xml:lang="de" to="r&amp;j"><body>a&lt;b<![CDATA[<c>]]></body><x:y/></message>
</stream:stream>`
	tk := NewTokenizer(strings.NewReader(in), Limits{})
	var got []string
	var depths []int
	for {
		tok, err := tk.Next()
		if err != nil {
			got = append(got, err.Error())
			break
		}
		got = append(got, tokenString(tok))
		depths = append(depths, tk.Depth())
	}
	want := []string{
		`<{http://etherx.jabber.org/streams}stream to="example.com" version="1.0" xml:lang="en">`,
		`<{jabber:client}message {urn:x}a="1" xml:lang="de" to="r&j">`,
		`<{jabber:client}body>`,
		`"a<b"`,
		`"<c>"`,
		`</{jabber:client}body>`,
		`<{urn:x}y/>`,
		`</{urn:x}y>`,
		`</{jabber:client}message>`,
		`</{http://etherx.jabber.org/streams}stream>`,
		"EOF",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if fmt.Sprint(depths) != "[1 2 3 3 3 2 3 2 1 0]" {
		t.Errorf("depths %v", depths)
	}
	if _, err := tk.Next(); err != io.EOF {
		t.Errorf("after EOF: %v", err)
	}
}

func TestTokenizerModes(t *testing.T) {
	for _, tc := range []struct {
		mode Mode
		ns   string
		in   string
		want string
	}{
		{ModeDocument, "", ` <a/> `, "<{}a/> </{}a> EOF"},
		{ModeDocument, "", `<a/><b/>`, "<{}a/> </{}a> xmlstream: not-well-formed: content after the root element (at byte 4)"},
		{ModeFragments, "jabber:client", `<a/> <b xmlns="u"/>`, "<{jabber:client}a/> </{jabber:client}a> <{u}b/> </{u}b> EOF"},
		{ModeFragments, "", `<a>`, "<{}a> unexpected EOF"},
		{ModeStream, "", `<s><a/>`, "<{}s> <{}a/> </{}a> EOF"},
	} {
		tk := NewTokenizer(strings.NewReader(tc.in), Limits{})
		tk.SetMode(tc.mode, tc.ns)
		var got []string
		for {
			tok, err := tk.Next()
			if err != nil {
				got = append(got, err.Error())
				break
			}
			got = append(got, tokenString(tok))
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("mode %d %q:\n got %s\nwant %s", tc.mode, tc.in, g, tc.want)
		}
	}
}

func TestErrorOffset(t *testing.T) {
	_, err := Parse([]byte(`<a><b></c></a>`))
	e, ok := err.(*Error)
	if !ok || e.Offset != 6 || e.Condition != CondNotWellFormed {
		t.Errorf("got %#v", err)
	}
	if !strings.Contains(err.Error(), "not-well-formed") {
		t.Errorf("message %q", err.Error())
	}
}
