package xmlstream

import (
	"errors"
	"io"
	"sync"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Header is the stream root's start tag (the stream header).
type Header struct {
	// Name and Space are the root's local name and namespace, e.g.
	// "stream" and "http://etherx.jabber.org/streams".
	Name, Space string
	// DefaultNS is the default namespace declared on the root (the
	// stream's content namespace, e.g. jabber:client).
	DefaultNS string
	// Attrs are the root's attributes (to, from, id, version, xml:lang...),
	// namespace declarations excluded.
	Attrs []stanza.Attr
}

// Attr returns the value of the unqualified attribute name ("xml:lang"
// included), or "".
func (h Header) Attr(name string) string {
	for _, a := range h.Attrs {
		if a.Name == name && a.Space == "" {
			return a.Value
		}
	}
	return ""
}

// Check reports whether h opens an XMPP stream: the root must be
// {http://etherx.jabber.org/streams}stream and, if contentNS is not empty,
// DefaultNS must be one of contentNS. It returns an *Error with condition
// invalid-namespace (or bad-format for a wrong element name).
func (h Header) Check(contentNS ...string) error {
	if h.Space != stanza.NSStream {
		return &Error{Condition: CondInvalidNamespace, Msg: "stream root is not in the " + stanza.NSStream + " namespace"}
	}
	if h.Name != "stream" {
		return &Error{Condition: CondBadFormat, Msg: "stream root is <" + h.Name + ">, not <stream>"}
	}
	if len(contentNS) == 0 {
		return nil
	}
	for _, ns := range contentNS {
		if h.DefaultNS == ns {
			return nil
		}
	}
	return &Error{Condition: CondInvalidNamespace, Msg: "unsupported content namespace " + h.DefaultNS}
}

// ref is a string of the element being decoded: blob[off:off+n], or
// internTab[off] if n is -1. Refs hold no pointers, so recording them
// needs no write barriers.
type ref struct{ off, n int32 }

const interned = -1

type event struct {
	text        ref   // CharData
	space, name ref   // StartElement
	attrs       int32 // index of the first attribute in Decoder.evAttrs
	nattrs      int32
	nchild      int32 // number of child nodes
	isText      bool
}

type evAttr struct{ space, name, value ref }

type buildFrame struct {
	el     int32 // index in the element slab
	filled int32 // children attached so far
}

// Decoder reads an XMPP stream and returns its top-level elements as
// stanza.Element trees. It is not safe for concurrent use.
type Decoder struct {
	t      Tokenizer
	header bool
	ended  bool

	// Element being decoded.
	evs      []event
	evAttrs  []evAttr
	blob     []byte
	stack    []int32 // indexes in evs of the open elements
	lastText int32   // index in evs of the text event being extended, or -1
	nEl      int32
	nNode    int32
	lastNS   []byte
	lastRef  ref
	bstack   []buildFrame

	// While the stream is idle (ErrWouldBlock) the buffers above and the
	// tokenizer's attribute buffers sit in scratchPool, not here; spare
	// is the empty holder kept for the next park.
	parked bool
	spare  *scratch
}

// scratch holds the buffers a decoder needs only while it decodes an
// element.
type scratch struct {
	evs     []event
	evAttrs []evAttr
	blob    []byte
	stack   []int32
	lastNS  []byte
	bstack  []buildFrame
	raw     []rawAttr
	attrs   []Attr
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// park lends the decoding buffers to other streams (nothing is being
// decoded).
func (d *Decoder) park() {
	sc := d.spare
	if sc == nil {
		sc = new(scratch)
	}
	clear(d.t.attrs[:cap(d.t.attrs)]) // they point into input buffers
	*sc = scratch{evs: d.evs[:0], evAttrs: d.evAttrs[:0], blob: d.blob[:0], stack: d.stack[:0],
		lastNS: d.lastNS[:0], bstack: d.bstack[:0], raw: d.t.raw[:0], attrs: d.t.attrs[:0]}
	d.evs, d.evAttrs, d.blob, d.stack, d.lastNS, d.bstack, d.t.raw, d.t.attrs = nil, nil, nil, nil, nil, nil, nil, nil
	d.spare = nil
	d.parked = true
	scratchPool.Put(sc)
}

// unpark takes decoding buffers back from the pool.
func (d *Decoder) unpark() {
	sc := scratchPool.Get().(*scratch)
	d.evs, d.evAttrs, d.blob, d.stack, d.lastNS, d.bstack, d.t.raw, d.t.attrs = sc.evs, sc.evAttrs, sc.blob, sc.stack, sc.lastNS, sc.bstack, sc.raw, sc.attrs
	*sc = scratch{}
	d.spare = sc
	d.parked = false
}

// NewDecoder returns a decoder for an XMPP stream read from r. Call Header
// first, then Element repeatedly (or SetFragmentMode before reading).
func NewDecoder(r io.Reader, l Limits) *Decoder {
	d := &Decoder{}
	d.t.lim = l.withDefaults()
	d.t.SetMode(ModeStream, "")
	d.Reset(r)
	return d
}

// Reset starts reading a new stream from r, discarding any buffered
// input: use it when the transport changes (after STARTTLS, with the
// tls.Conn). Buffers, limits and mode are kept.
func (d *Decoder) Reset(r io.Reader) {
	d.t.Reset(r)
	d.header = false
	d.ended = false
	d.clear()
}

// Restart starts a new stream on the same reader, keeping input already
// buffered (a stream restart after SASL success, which a client may
// pipeline).
func (d *Decoder) Restart() {
	d.t.Restart()
	d.header = false
	d.ended = false
	d.clear()
}

// Buffered returns the number of input bytes read but not yet consumed.
// Check it after reading <starttls/>: anything buffered there was sent
// before the TLS handshake and must not be trusted.
func (d *Decoder) Buffered() int { return d.t.Buffered() }

// SetPending makes Element return ErrWouldBlock between stanzas when
// reading would block (see Tokenizer.SetPending).
func (d *Decoder) SetPending(pending func() bool) { d.t.SetPending(pending) }

// SetFragmentMode makes the decoder read a sequence of root elements
// without a stream wrapper (XMPP over WebSocket, stored stanzas): each call
// to Element returns the next root element, whose unprefixed names are in
// defaultNS unless it declares its own. io.EOF between elements is a clean
// end. Header must not be called in this mode. SetFragmentMode resets the
// decoder's state: call it before reading.
func (d *Decoder) SetFragmentMode(defaultNS string) {
	d.t.SetMode(ModeFragments, defaultNS)
	d.Reset(d.t.r)
}

// InputOffset returns the number of input bytes consumed since the last
// Reset.
func (d *Decoder) InputOffset() int64 { return d.t.InputOffset() }

// Header reads an optional XML declaration and the stream root's start
// tag, which stays open: its children are then read with Element.
func (d *Decoder) Header() (Header, error) {
	if d.t.mode != ModeStream {
		return Header{}, errors.New("xmlstream: Header called in fragment mode")
	}
	if d.header {
		return Header{}, errors.New("xmlstream: Header called twice")
	}
	tok, err := d.t.Next()
	if err != nil {
		return Header{}, err
	}
	// Only a start tag can come first: text and end tags at depth 0 are
	// rejected by the tokenizer.
	d.header = true
	h := Header{
		Name:      internOrString(tok.Name),
		Space:     internOrString(tok.Space),
		DefaultNS: internOrString(d.t.DefaultNS()),
	}
	if len(tok.Attrs) > 0 {
		h.Attrs = make([]stanza.Attr, len(tok.Attrs))
		for i, a := range tok.Attrs {
			h.Attrs[i] = stanza.Attr{Space: internOrString(a.Space), Name: internOrString(a.Name), Value: internOrString(a.Value)}
		}
	}
	return h, nil
}

func internOrString(b []byte) string {
	if s, ok := intern(b); ok {
		return s
	}
	return string(b)
}

func (d *Decoder) clear() {
	d.evs = d.evs[:0]
	d.evAttrs = d.evAttrs[:0]
	d.blob = d.blob[:0]
	d.stack = d.stack[:0]
	d.lastText = -1
	d.nEl, d.nNode = 0, 0
	d.lastNS = d.lastNS[:0]
	d.lastRef = ref{}
}

// Element reads the next top-level element (a child of the stream root, or
// the next root in fragment mode) and returns it as a tree. White space
// between top-level elements is skipped. After the stream root's closing
// tag it returns ErrStreamEnd. Problems with the XML are returned as
// *Error and are permanent (send the stream error, then close); at the end
// of input it returns io.EOF between elements and io.ErrUnexpectedEOF
// inside one; other errors come from the reader, and Element may be called
// again to continue (after a read deadline, say).
func (d *Decoder) Element() (*stanza.Element, error) {
	if d.ended {
		return nil, ErrStreamEnd
	}
	if d.t.mode == ModeStream && !d.header {
		return nil, errors.New("xmlstream: Element called before Header")
	}
	if d.parked {
		d.unpark()
	}
	for {
		tok, err := d.t.Next()
		if err != nil {
			if err == ErrWouldBlock {
				d.park()
			}
			return nil, err
		}
		switch tok.Kind {
		case StartElement:
			d.start(&tok)
		case EndElement:
			if len(d.stack) == 0 {
				d.ended = true
				return nil, ErrStreamEnd
			}
			d.endText()
			d.stack = d.stack[:len(d.stack)-1]
			if len(d.stack) == 0 {
				el := d.build()
				d.clear()
				return el, nil
			}
		case CharData:
			d.text(tok.Text)
		}
	}
}

func (d *Decoder) str(b []byte) ref {
	if i := internIndex(b); i >= 0 {
		return ref{off: int32(i), n: interned}
	}
	if len(b) == 0 {
		return ref{}
	}
	off := len(d.blob)
	d.blob = append(d.blob, b...)
	return ref{off: int32(off), n: int32(len(b))}
}

func (d *Decoder) start(tok *Token) {
	d.endText()
	if len(d.stack) > 0 {
		d.evs[d.stack[len(d.stack)-1]].nchild++
		d.nNode++
	}
	ev := event{attrs: int32(len(d.evAttrs)), nattrs: int32(len(tok.Attrs))}
	if len(d.stack) > 0 && string(tok.Space) == string(d.lastNS) {
		ev.space = d.lastRef
	} else {
		ev.space = d.str(tok.Space)
		d.lastNS = append(d.lastNS[:0], tok.Space...)
		d.lastRef = ev.space
	}
	ev.name = d.str(tok.Name)
	for i := range tok.Attrs {
		a := &tok.Attrs[i]
		d.evAttrs = append(d.evAttrs, evAttr{space: d.str(a.Space), name: d.str(a.Name), value: d.str(a.Value)})
	}
	d.stack = append(d.stack, int32(len(d.evs)))
	d.evs = append(d.evs, ev)
	d.nEl++
}

func (d *Decoder) text(b []byte) {
	if len(b) == 0 {
		return
	}
	if d.lastText >= 0 {
		d.blob = append(d.blob, b...)
		d.evs[d.lastText].text.n += int32(len(b))
		return
	}
	d.evs[d.stack[len(d.stack)-1]].nchild++
	d.nNode++
	d.lastText = int32(len(d.evs))
	off := len(d.blob)
	d.blob = append(d.blob, b...)
	d.evs = append(d.evs, event{isText: true, text: ref{off: int32(off), n: int32(len(b))}})
}

// endText finishes a text run, replacing it by a shared string if it is a
// common one.
func (d *Decoder) endText() {
	if d.lastText < 0 {
		return
	}
	ev := &d.evs[d.lastText]
	d.lastText = -1
	if ev.text.n > 16 {
		return
	}
	if i := internIndex(d.blob[ev.text.off : ev.text.off+ev.text.n]); i >= 0 {
		d.blob = d.blob[:ev.text.off] // the run is at the end of the blob
		ev.text = ref{off: int32(i), n: interned}
	}
}

// build turns the recorded events into a tree with four allocations: the
// elements, the attributes, the child nodes and one string holding all the
// text.
func (d *Decoder) build() *stanza.Element {
	els := make([]stanza.Element, d.nEl)
	var attrs []stanza.Attr
	if len(d.evAttrs) > 0 {
		attrs = make([]stanza.Attr, len(d.evAttrs))
	}
	var nodes []stanza.Node
	if d.nNode > 0 {
		nodes = make([]stanza.Node, d.nNode)
	}
	blob := string(d.blob)
	str := func(r ref) string {
		if r.n == interned {
			return internTab[r.off]
		}
		return blob[r.off : r.off+r.n]
	}
	for i, a := range d.evAttrs {
		attrs[i] = stanza.Attr{Space: str(a.space), Name: str(a.name), Value: str(a.value)}
	}
	stack := d.bstack[:0]
	var ei, ni int32
	for i := range d.evs {
		ev := &d.evs[i]
		if ev.isText {
			top := &stack[len(stack)-1]
			p := &els[top.el]
			p.Children[top.filled] = stanza.Node{Text: str(ev.text)}
			if top.filled++; int(top.filled) == len(p.Children) {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		el := &els[ei]
		el.Space = str(ev.space)
		el.Name = str(ev.name)
		if ev.nattrs > 0 {
			el.Attrs = attrs[ev.attrs : ev.attrs+ev.nattrs : ev.attrs+ev.nattrs]
		}
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			p := &els[top.el]
			p.Children[top.filled] = stanza.Node{El: el}
			if top.filled++; int(top.filled) == len(p.Children) {
				stack = stack[:len(stack)-1]
			}
		}
		if ev.nchild > 0 {
			el.Children = nodes[ni : ni+ev.nchild : ni+ev.nchild]
			ni += ev.nchild
			stack = append(stack, buildFrame{el: ei})
		}
		ei++
	}
	d.bstack = stack
	return &els[0]
}

var parsers = sync.Pool{New: func() any {
	d := &Decoder{}
	d.t.lim = Limits{}.withDefaults()
	d.t.SetMode(ModeDocument, "")
	return d
}}

// Parse parses b as one standalone XML element (with its own namespace
// declarations), under the same restrictions as the stream decoder. An XML
// declaration and surrounding white space are allowed. The size limit is
// the larger of len(b) and the default; depth and attribute limits are the
// defaults.
func Parse(b []byte) (*stanza.Element, error) { return ParseNS(b, "") }

// ParseNS is Parse with defaultNS as the default namespace in scope
// outside the element (as for a stanza stored without its xmlns).
func ParseNS(b []byte, defaultNS string) (*stanza.Element, error) {
	d := parsers.Get().(*Decoder)
	defer func() {
		if cap(d.t.buf) <= 64<<10 && cap(d.blob) <= 64<<10 {
			d.t.r = nil
			parsers.Put(d)
		}
	}()
	lim := Limits{}.withDefaults()
	if len(b) > lim.MaxBytes {
		lim.MaxBytes = len(b)
	}
	d.t.lim = lim
	d.t.SetMode(ModeDocument, defaultNS)
	d.Reset(nil)
	// The tokenizer decodes in place: work on a copy.
	if cap(d.t.buf) < len(b) {
		d.t.buf = make([]byte, len(b))
	}
	d.t.buf = d.t.buf[:cap(d.t.buf)]
	d.t.end = copy(d.t.buf, b)
	el, err := d.Element()
	if err == nil {
		_, err = d.t.Next()
		if err == io.EOF {
			return el, nil
		}
		el = nil
	}
	switch err {
	case io.EOF:
		err = &Error{Condition: CondNotWellFormed, Msg: "no element", Offset: int64(len(b))}
	case io.ErrUnexpectedEOF:
		err = &Error{Condition: CondNotWellFormed, Msg: "unexpected end of input (unclosed element)", Offset: int64(len(b))}
	}
	return nil, err
}
