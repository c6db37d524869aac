// Package stanza is the element tree the server passes around: a small,
// namespace-resolved XML element type, a byte-appending serializer, the
// RFC 6120 §8.3 stanza error conditions, and helpers for the three stanza
// kinds (message, presence, iq).
//
// Elements are produced by package xmlstream (the only XML parser) and are
// written back with Append, which never allocates beyond growing the
// caller's buffer. The package does not validate XML itself; it trusts that
// elements came from xmlstream or were built in code.
package stanza

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Common namespaces.
const (
	NSClient  = "jabber:client"
	NSServer  = "jabber:server"
	NSStream  = "http://etherx.jabber.org/streams"
	NSStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
	NSXML     = "http://www.w3.org/XML/1998/namespace"
)

// Attr is one attribute. Space is empty for unqualified attributes (nearly
// all of them). xml:lang is stored with Name "xml:lang" and an empty Space
// so that the common case needs no namespace handling.
type Attr struct {
	Space string
	Name  string
	Value string
}

// Node is one child of an element: exactly one of El and Text is set.
type Node struct {
	El   *Element
	Text string
}

// Element is a namespace-resolved XML element. Space is the element's
// namespace (never a prefix); namespace declarations are not attributes,
// they are reconstructed by Append.
type Element struct {
	Space    string
	Name     string
	Attrs    []Attr
	Children []Node
}

// New returns an element with the given namespace, name and attribute
// name/value pairs. Pairs with an empty value are skipped.
func New(space, name string, attrs ...string) *Element {
	e := &Element{Space: space, Name: name}
	if len(attrs) > 0 {
		e.Attrs = make([]Attr, 0, len(attrs)/2)
		for i := 0; i+1 < len(attrs); i += 2 {
			if attrs[i+1] != "" {
				e.Attrs = append(e.Attrs, Attr{Name: attrs[i], Value: attrs[i+1]})
			}
		}
	}
	return e
}

// Attr returns the value of the unqualified attribute name ("" if absent).
func (e *Element) Attr(name string) string {
	for i := range e.Attrs {
		if e.Attrs[i].Name == name && e.Attrs[i].Space == "" {
			return e.Attrs[i].Value
		}
	}
	return ""
}

// HasAttr reports whether the unqualified attribute name is present.
func (e *Element) HasAttr(name string) bool {
	for i := range e.Attrs {
		if e.Attrs[i].Name == name && e.Attrs[i].Space == "" {
			return true
		}
	}
	return false
}

// SetAttr sets (or, with an empty value, removes) an unqualified attribute.
func (e *Element) SetAttr(name, value string) *Element {
	for i := range e.Attrs {
		if e.Attrs[i].Name == name && e.Attrs[i].Space == "" {
			if value == "" {
				e.Attrs = append(e.Attrs[:i], e.Attrs[i+1:]...)
			} else {
				e.Attrs[i].Value = value
			}
			return e
		}
	}
	if value != "" {
		e.Attrs = append(e.Attrs, Attr{Name: name, Value: value})
	}
	return e
}

// Child returns the first child element with the given namespace and name.
// An empty space matches any namespace.
func (e *Element) Child(space, name string) *Element {
	for _, n := range e.Children {
		if n.El != nil && n.El.Name == name && (space == "" || n.El.Space == space) {
			return n.El
		}
	}
	return nil
}

// FirstChild returns the first child element, or nil.
func (e *Element) FirstChild() *Element {
	for _, n := range e.Children {
		if n.El != nil {
			return n.El
		}
	}
	return nil
}

// Elements calls yield for each child element, in order, until it returns false.
func (e *Element) Elements(yield func(*Element) bool) {
	for _, n := range e.Children {
		if n.El != nil && !yield(n.El) {
			return
		}
	}
}

// ChildText returns the text of the first matching child, or "".
func (e *Element) ChildText(space, name string) string {
	if c := e.Child(space, name); c != nil {
		return c.Text()
	}
	return ""
}

// Text returns the concatenated character data directly inside e.
func (e *Element) Text() string {
	var n int
	var only string
	for _, c := range e.Children {
		if c.El == nil {
			n++
			only = c.Text
		}
	}
	if n <= 1 {
		return only
	}
	var b strings.Builder
	for _, c := range e.Children {
		if c.El == nil {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

// AddChild appends c to e's children and returns c.
func (e *Element) AddChild(c *Element) *Element {
	e.Children = append(e.Children, Node{El: c})
	return c
}

// AddText appends character data to e and returns e.
func (e *Element) AddText(s string) *Element {
	if s != "" {
		e.Children = append(e.Children, Node{Text: s})
	}
	return e
}

// RemoveChildren removes every child element with the given namespace and
// name (an empty space matches any namespace).
func (e *Element) RemoveChildren(space, name string) {
	out := e.Children[:0]
	for _, n := range e.Children {
		if n.El != nil && n.El.Name == name && (space == "" || n.El.Space == space) {
			continue
		}
		out = append(out, n)
	}
	for i := len(out); i < len(e.Children); i++ {
		e.Children[i] = Node{}
	}
	e.Children = out
}

// Copy returns a deep copy of e. Strings are shared (they are immutable).
func (e *Element) Copy() *Element {
	c := &Element{Space: e.Space, Name: e.Name}
	if len(e.Attrs) > 0 {
		c.Attrs = append([]Attr(nil), e.Attrs...)
	}
	if len(e.Children) > 0 {
		c.Children = make([]Node, len(e.Children))
		for i, n := range e.Children {
			if n.El != nil {
				c.Children[i].El = n.El.Copy()
			} else {
				c.Children[i].Text = n.Text
			}
		}
	}
	return c
}

// ShallowCopy returns a copy of e with its own attribute slice but the same
// children; use it to change attributes (to/from/id) of a stanza others see.
func (e *Element) ShallowCopy() *Element {
	c := *e
	c.Attrs = append([]Attr(nil), e.Attrs...)
	return &c
}

// String serializes e as if its parent's namespace were e's own.
func (e *Element) String() string {
	return string(e.Append(nil, e.Space))
}

// Append serializes e to buf and returns the extended buffer. parentNS is
// the default namespace in scope where e is written: xmlns is emitted only
// when e.Space differs from it. On a client or server stream, pass the
// stream's content namespace; Append treats jabber:client and jabber:server
// as the same namespace for top-level stanzas so that stanzas can cross
// stream types unchanged.
func (e *Element) Append(buf []byte, parentNS string) []byte {
	return e.appendNS(buf, parentNS, 0)
}

func isStanzaNS(s string) bool { return s == NSClient || s == NSServer }

func (e *Element) appendNS(buf []byte, parentNS string, depth int) []byte {
	buf = append(buf, '<')
	buf = append(buf, e.Name...)
	ns := e.Space
	if ns != parentNS && !(depth == 0 && isStanzaNS(ns) && isStanzaNS(parentNS)) {
		buf = append(buf, ` xmlns="`...)
		buf = AppendEscaped(buf, ns, true)
		buf = append(buf, '"')
	} else {
		ns = parentNS
	}
	nsAttr := 0
	for _, a := range e.Attrs {
		buf = append(buf, ' ')
		if a.Space != "" {
			nsAttr++
			// Qualified attributes get a generated prefix declared inline.
			buf = append(buf, "xmlns:ns"...)
			buf = strconv.AppendInt(buf, int64(nsAttr), 10)
			buf = append(buf, `="`...)
			buf = AppendEscaped(buf, a.Space, true)
			buf = append(buf, `" ns`...)
			buf = strconv.AppendInt(buf, int64(nsAttr), 10)
			buf = append(buf, ':')
		}
		buf = append(buf, a.Name...)
		buf = append(buf, `="`...)
		buf = AppendEscaped(buf, a.Value, true)
		buf = append(buf, '"')
	}
	if len(e.Children) == 0 {
		return append(buf, "/>"...)
	}
	buf = append(buf, '>')
	for _, c := range e.Children {
		if c.El != nil {
			buf = c.El.appendNS(buf, ns, depth+1)
		} else {
			buf = AppendEscaped(buf, c.Text, false)
		}
	}
	buf = append(buf, "</"...)
	buf = append(buf, e.Name...)
	return append(buf, '>')
}

// plainText and plainAttr mark the bytes that AppendEscaped copies as
// they are, in text and in attribute values: ASCII that needs no escape.
var plainText, plainAttr = plainTable(false), plainTable(true)

func plainTable(attr bool) (t [256]bool) {
	for c := range utf8.RuneSelf {
		switch c {
		case '<', '>', '&', '\r':
		case '"', '\'', '\t', '\n':
			t[c] = !attr
		default:
			t[c] = true
		}
	}
	return t
}

// AppendEscaped appends s with XML special characters escaped. In attribute
// values (attr true) quotes are escaped as well. Invalid UTF-8 is replaced
// with U+FFFD so that the output is always well-formed.
func AppendEscaped(buf []byte, s string, attr bool) []byte {
	plain := &plainText
	if attr {
		plain = &plainAttr
	}
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			var esc string
			switch c {
			case '<':
				esc = "&lt;"
			case '>':
				esc = "&gt;"
			case '&':
				esc = "&amp;"
			case '"':
				if attr {
					esc = "&quot;"
				}
			case '\'':
				if attr {
					esc = "&apos;"
				}
			case '\r':
				esc = "&#xD;"
			case '\t', '\n':
				if attr {
					if c == '\t' {
						esc = "&#x9;"
					} else {
						esc = "&#xA;"
					}
				}
			}
			if esc != "" {
				buf = append(buf, s[last:i]...)
				buf = append(buf, esc...)
				last = i + 1
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[last:i]...)
			buf = append(buf, "\uFFFD"...)
			last = i + 1
		}
		i += size
	}
	return append(buf, s[last:]...)
}
