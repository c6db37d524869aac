package stanza

import (
	"encoding/xml"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendEscaped(t *testing.T) {
	for _, c := range []struct {
		in         string
		text, attr string
	}{
		{"plain", "plain", "plain"},
		{`a<b>&c`, `a&lt;b&gt;&amp;c`, `a&lt;b&gt;&amp;c`},
		{`"it's"`, `"it's"`, `&quot;it&apos;s&quot;`},
		{"a\tb\nc\rd", "a\tb\nc&#xD;d", "a&#x9;b&#xA;c&#xD;d"},
		{"é→\U0001F600", "é→\U0001F600", "é→\U0001F600"},
		{"bad\xffutf8\xc3", "bad\uFFFDutf8\uFFFD", "bad\uFFFDutf8\uFFFD"},
		{"", "", ""},
	} {
		if got := string(AppendEscaped([]byte("x"), c.in, false)); got != "x"+c.text {
			t.Errorf("text %q: %q, want %q", c.in, got, "x"+c.text)
		}
		if got := string(AppendEscaped(nil, c.in, true)); got != c.attr {
			t.Errorf("attribute %q: %q, want %q", c.in, got, c.attr)
		}
	}
}

// FuzzAppendEscaped checks that an XML parser reads back, from text and
// from an attribute value, exactly what was escaped (invalid UTF-8
// replaced by U+FFFD).
func FuzzAppendEscaped(f *testing.F) {
	for _, s := range []string{"plain", `<&>"'`, "\t\n\r", "é\xff", "]]>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range s {
			if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF {
				return // not an XML character: the stanza layer never holds one
			}
		}
		want := validEach(s) // each bad byte becomes U+FFFD
		doc := `<a v="` + string(AppendEscaped(nil, s, true)) + `">` + string(AppendEscaped(nil, s, false)) + `</a>`
		var v struct {
			V    string `xml:"v,attr"`
			Text string `xml:",chardata"`
		}
		if err := xml.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		if v.V != want || v.Text != want {
			t.Fatalf("%q: read back attribute %q, text %q, want %q", s, v.V, v.Text, want)
		}
	})
}

func validEach(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r) // RuneError for each bad byte
		i += n
	}
	return b.String()
}
