package xmlstream

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"testing"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

var benchBodies = []string{
	"Hi!",
	"Are you coming tonight? We're meeting at 8 &amp; I'll bring the wine.",
	"Ça va? Très bien, merci — à bientôt!",
	"日本語のメッセージです。よろしくお願いします。",
	"Привет! Как дела? 😀👍",
	"if (a &lt; b &amp;&amp; c &gt; d) { return &quot;x&quot;; }",
	"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris.",
	"ok",
	"https://example.org/some/path?query=1&amp;other=2#fragment",
	"multi\nline\nmessage &#x1F680; rocket",
}

// benchStream returns a client stream of n varied message stanzas and
// the offset where the stanzas start.
func benchStream(n int) ([]byte, int) {
	var b bytes.Buffer
	b.WriteString(`<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="example.com" from="juliet@example.com" version="1.0" xml:lang="en">`)
	head := b.Len()
	users := []string{"romeo@montague.example", "juliet@capulet.example/balcony", "nurse@capulet.example/kitchen", "benvolio@montague.example/phone", "mercutio@example.com/Gajim.x8Kd"}
	for i := range n {
		body := benchBodies[i%len(benchBodies)]
		to, from := users[i%len(users)], users[(i*3+1)%len(users)]
		fmt.Fprintf(&b, `<message to="%s" from="%s" type="chat" id="msg-%d-%x">`, to, from, i, i*7919)
		if i%4 == 0 {
			fmt.Fprintf(&b, `<body xml:lang="en">%s</body>`, body)
		} else {
			fmt.Fprintf(&b, `<body>%s</body>`, body)
		}
		b.WriteString(`<active xmlns="http://jabber.org/protocol/chatstates"/><request xmlns="urn:xmpp:receipts"/>`)
		if i%3 == 0 {
			fmt.Fprintf(&b, `<origin-id xmlns="urn:xmpp:sid:0" id="%08x-5c3a-4b1e-9f0d-%012x"/>`, i*2654435761, i)
		}
		if i%5 == 0 {
			b.WriteString(`<markable xmlns="urn:xmpp:chat-markers:0"/>`)
		}
		b.WriteString("</message>")
		if i%10 == 0 {
			b.WriteString("\n")
		}
	}
	b.WriteString("</stream:stream>")
	return b.Bytes(), head
}

func BenchmarkTokenizer(b *testing.B) {
	in, _ := benchStream(1000)
	r := bytes.NewReader(in)
	t := NewTokenizer(r, Limits{})
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	var tokens int
	c := startCPU(b)
	for b.Loop() {
		r.Reset(in)
		t.Reset(r)
		tokens = 0
		for {
			_, err := t.Next()
			if err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
			tokens++
		}
	}
	c.report(int64(len(in)))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens), "ns/token")
}

func BenchmarkDecodeStanza(b *testing.B) {
	in, _ := benchStream(1000)
	r := bytes.NewReader(in)
	d := NewDecoder(r, Limits{})
	restart := func() {
		r.Reset(in)
		d.Reset(r)
		if _, err := d.Header(); err != nil {
			b.Fatal(err)
		}
	}
	restart()
	b.SetBytes(int64(len(in)) / 1000)
	b.ReportAllocs()
	c := startCPU(b)
	for b.Loop() {
		_, err := d.Element()
		if err == ErrStreamEnd {
			restart()
			_, err = d.Element()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	c.report(int64(len(in)) / 1000)
}

func BenchmarkParse(b *testing.B) {
	in := []byte(`<message xmlns="jabber:client" to="romeo@montague.example" from="juliet@capulet.example/balcony" type="chat" id="msg-1"><body>Are you coming tonight? We're meeting at 8 &amp; I'll bring the wine.</body><active xmlns="http://jabber.org/protocol/chatstates"/><request xmlns="urn:xmpp:receipts"/></message>`)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	c := startCPU(b)
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
	c.report(int64(len(in)))
}

// BenchmarkEncodingXMLBaseline runs encoding/xml on the same input: its
// tokenizer over the whole stream, and the building of one tree per
// stanza (what Element does).
func BenchmarkEncodingXMLBaseline(b *testing.B) {
	in, _ := benchStream(1000)
	b.Run("tokens", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		c := startCPU(b)
		for b.Loop() {
			d := xml.NewDecoder(bytes.NewReader(in))
			for {
				_, err := d.Token()
				if err != nil {
					if err != io.EOF {
						b.Fatal(err)
					}
					break
				}
			}
		}
		c.report(int64(len(in)))
	})
	b.Run("stanza", func(b *testing.B) {
		b.SetBytes(int64(len(in)) / 1000)
		b.ReportAllocs()
		var d *xml.Decoder
		restart := func() {
			d = xml.NewDecoder(bytes.NewReader(in))
			for {
				tok, err := d.Token()
				if err != nil {
					b.Fatal(err)
				}
				if _, ok := tok.(xml.StartElement); ok {
					return
				}
			}
		}
		restart()
		c := startCPU(b)
		for b.Loop() {
			el, err := stdTree(d)
			if err == io.EOF { // the root's end tag
				restart()
				el, err = stdTree(d)
			}
			if err != nil || el == nil {
				b.Fatal(err)
			}
		}
		c.report(int64(len(in)) / 1000)
	})
}

// stdTree reads the next element with encoding/xml into a stanza.Element.
func stdTree(d *xml.Decoder) (*stanza.Element, error) {
	var stack []*stanza.Element
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			el := &stanza.Element{Space: tok.Name.Space, Name: tok.Name.Local}
			for _, a := range tok.Attr {
				if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
					continue
				}
				el.Attrs = append(el.Attrs, stanza.Attr{Space: a.Name.Space, Name: a.Name.Local, Value: a.Value})
			}
			if len(stack) > 0 {
				stack[len(stack)-1].AddChild(el)
			}
			stack = append(stack, el)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, io.EOF
			}
			el := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return el, nil
			}
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].AddText(string(tok))
			}
		}
	}
}
