package xmlstream

import (
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// dump renders a tree unambiguously: {space}name[attrs](children).
func dump(e *stanza.Element) string {
	var b strings.Builder
	dumpTo(&b, e)
	return b.String()
}

func dumpTo(b *strings.Builder, e *stanza.Element) {
	b.WriteString("{" + e.Space + "}" + e.Name)
	if len(e.Attrs) > 0 {
		b.WriteString("[")
		for i, a := range e.Attrs {
			if i > 0 {
				b.WriteString(" ")
			}
			if a.Space != "" {
				b.WriteString("{" + a.Space + "}")
			}
			b.WriteString(a.Name + "=" + strconv.Quote(a.Value))
		}
		b.WriteString("]")
	}
	if len(e.Children) > 0 {
		b.WriteString("(")
		for i, c := range e.Children {
			if i > 0 {
				b.WriteString(",")
			}
			if c.El != nil {
				dumpTo(b, c.El)
			} else {
				b.WriteString(strconv.Quote(c.Text))
			}
		}
		b.WriteString(")")
	}
}

// oneByteReader returns at most one byte per Read.
type oneByteReader struct{ r io.Reader }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return r.r.Read(p[:1])
}

// countingReader counts the bytes handed out.
type countingReader struct {
	r io.Reader
	n int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	return n, err
}

// repeatReader yields prefix, then fill repeated n times, then suffix.
type repeatReader struct {
	parts []string
	fill  string
	n     int
	stage int
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		var cur string
		switch {
		case r.stage == 0:
			cur = r.parts[0]
		case r.stage == 1 && r.n > 0:
			cur = r.fill
		case r.stage == 1:
			r.stage = 2
			r.off = 0
			continue
		case r.stage == 2:
			cur = r.parts[1]
		default:
			if total == 0 {
				return 0, io.EOF
			}
			return total, nil
		}
		k := copy(p, cur[r.off:])
		p = p[k:]
		total += k
		r.off += k
		if r.off == len(cur) {
			r.off = 0
			if r.stage == 1 {
				r.n--
			} else {
				r.stage++
			}
		}
	}
	return total, nil
}

func condOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Condition
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// decodeAll reads a whole stream (header and elements) and renders the
// result, ending with the terminating error.
func decodeAll(r io.Reader, l Limits) string {
	var b strings.Builder
	d := NewDecoder(r, l)
	h, err := d.Header()
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
		if err != nil {
			b.WriteString("end: " + condOf(err))
			return b.String()
		}
		b.WriteString(dump(el) + "\n")
	}
}

// parseResult renders the result of Parse.
func parseResult(in string) string {
	el, err := Parse([]byte(in))
	if err != nil {
		return "error: " + condOf(err)
	}
	return dump(el)
}
