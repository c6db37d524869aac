package xmlstream

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"unicode/utf8"
)

// Default limits, used for zero (or negative) fields of Limits.
const (
	DefaultMaxBytes = 256 << 10
	DefaultMaxDepth = 64
	DefaultMaxAttrs = 64
)

// Limits bound the resources one peer can make the parser use. A zero
// field means the default.
type Limits struct {
	// MaxBytes bounds, in input bytes, each top-level element (a child of
	// the stream root, or a root in fragment and document mode) from its
	// '<' to the end of its closing tag. It also bounds the XML declaration
	// and the stream header (the root's start tag).
	MaxBytes int
	// MaxDepth bounds element nesting within a top-level element (the
	// top-level element itself is depth 1; the stream root is not counted).
	MaxDepth int
	// MaxAttrs bounds the attributes of one start tag, namespace
	// declarations included.
	MaxAttrs int
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = DefaultMaxAttrs
	}
	return l
}

// Mode selects the document structure the tokenizer expects.
type Mode uint8

const (
	// ModeStream is an XMPP stream: one root element (stream:stream) whose
	// start tag is read once and whose children are the top-level elements.
	// Character data between them must be white space and is skipped.
	ModeStream Mode = iota
	// ModeFragments is a sequence of root elements, each one a top-level
	// element (XMPP over WebSocket, stored stanzas). White space between
	// them is skipped; io.EOF between two elements is a clean end.
	ModeFragments
	// ModeDocument is exactly one root element, optionally surrounded by
	// white space (Parse).
	ModeDocument
)

// Kind is the type of a Token.
type Kind uint8

// Token kinds.
const (
	StartElement Kind = iota + 1
	EndElement
	CharData
)

func (k Kind) String() string {
	switch k {
	case StartElement:
		return "StartElement"
	case EndElement:
		return "EndElement"
	case CharData:
		return "CharData"
	}
	return "Kind(?)"
}

// Attr is a namespace-resolved attribute of a start tag. Space is empty for
// unprefixed attributes; attributes with the xml prefix (xml:lang) keep
// their prefix in Name and have an empty Space. Namespace declarations are
// not reported as attributes.
type Attr struct {
	Space, Name, Value []byte
}

// Token is one item of XML. Its byte slices point into the tokenizer's
// buffers and are valid only until the next call to Next or Reset.
type Token struct {
	Kind Kind
	// Space and Name are the namespace and local name of a start or end
	// tag.
	Space, Name []byte
	// Attrs are the attributes of a start tag (values decoded).
	Attrs []Attr
	// Text is decoded character data (a text run or a CDATA section).
	Text []byte
	// SelfClosing is set on the start tag of an empty-element tag (<a/>);
	// the matching EndElement is returned by the next call.
	SelfClosing bool
}

const (
	initialBuf  = 4 << 10
	maxIdleBuf  = 64 << 10
	minRead     = 512
	maxBindings = 256 // namespace declarations in scope
)

type span struct{ s, e int32 }

type binding struct {
	prefix span // empty for the default namespace
	uri    span
}

type frame struct {
	qname span  // raw qualified name, for matching the end tag
	local span  // local part of qname
	space span  // resolved namespace
	nbind int32 // len(bindings) before this element's declarations
	arena int32 // len(arena) before this element
}

// rawAttr is an attribute of the start tag being parsed, as offsets from
// the tag's '<'.
type rawAttr struct {
	ns, ne int32 // name
	colon  int32 // colon in the name, or -1
	vs, ve int32 // value (decoded in place by finishStart)
}

// Tokenizer is a streaming, namespace-aware tokenizer for the XML subset
// allowed in XMPP. It enforces well-formedness (matched tags, declared
// prefixes, unique attributes, legal characters and names) and the RFC 6120
// restrictions, and does not allocate in steady state: tokens point into
// its buffer, and character data and attribute values are decoded in
// place.
//
// Character data between top-level elements (which must be white space)
// is consumed without being returned, and a self-closing tag yields a
// StartElement (with SelfClosing set) and an EndElement. Tokens are
// never split: Next returns only once a whole token is buffered.
type Tokenizer struct {
	r    io.Reader
	rerr error // read error to return after the data read along with it
	buf  []byte
	pos  int   // start of the current token
	end  int   // end of buffered data
	base int64 // input offset of buf[0]

	lim   Limits
	mode  Mode
	top   int    // depth of the parent of top-level elements
	defNS []byte // initial default namespace

	limitEnd   int64 // input offset the current top-level element must end by
	declAt     int64 // input offset where an XML declaration may start
	started    bool  // byte order mark checked
	depth      int
	rootDone   bool // a root element was closed
	pendingEnd bool // return the end of a self-closing tag next
	err        error

	frames []frame
	binds  []binding
	arena  []byte // qualified names of open elements and namespace URIs
	raw    []rawAttr
	attrs  []Attr

	one     [1]byte     // the first byte after an idle wait (see fill)
	pending func() bool // see SetPending
	pooled  *[]byte     // holder of buf when buf came from bufPool

	// Start tag being parsed: name offsets, colon offset (or -1).
	tagName     [2]int32
	tagColon    int32
	selfClosing bool
}

// NewTokenizer returns a tokenizer reading an XMPP stream (ModeStream)
// from r.
func NewTokenizer(r io.Reader, l Limits) *Tokenizer {
	t := &Tokenizer{lim: l.withDefaults(), r: r}
	t.SetMode(ModeStream, "")
	return t
}

// Reset discards all state, including buffered input, and starts reading
// a new stream from r, keeping the buffers, the limits and the mode.
func (t *Tokenizer) Reset(r io.Reader) {
	t.r = r
	t.rerr = nil
	t.pos, t.end, t.base = 0, 0, 0
	t.started = false
	t.restart()
}

// Restart starts a new stream on the same reader, keeping input that was
// read but not yet consumed: a stream restart after SASL, where a client
// may already have sent the new stream header. Offsets (InputOffset,
// Error.Offset) count from the restart.
func (t *Tokenizer) Restart() {
	t.base = -int64(t.pos)
	t.started = true
	t.restart()
}

// Buffered returns the number of bytes read from the reader but not yet
// consumed. After a <starttls/> it should be 0: a client that sends more
// before <proceed/> is trying to inject plaintext into the TLS session
// (Reset discards such bytes).
func (t *Tokenizer) Buffered() int { return t.end - t.pos }

func (t *Tokenizer) restart() {
	t.limitEnd = int64(t.lim.MaxBytes)
	t.declAt = 0
	t.depth = 0
	t.rootDone = false
	t.pendingEnd = false
	t.err = nil
	t.frames = t.frames[:0]
	t.binds = t.binds[:0]
	t.arena = t.arena[:0]
	if len(t.defNS) > 0 {
		t.arena = append(t.arena, t.defNS...)
		t.binds = append(t.binds, binding{uri: span{0, int32(len(t.defNS))}})
	}
}

// SetMode selects the document structure and the default namespace in
// effect outside any element (for ModeStream normally empty: the stream
// header declares it). It resets the tokenizer's state, so call it before
// reading.
func (t *Tokenizer) SetMode(m Mode, defaultNS string) {
	t.mode = m
	t.top = 0
	if m == ModeStream {
		t.top = 1
	}
	t.defNS = append(t.defNS[:0], defaultNS...)
	t.Reset(t.r)
}

// Depth returns the number of open elements (the stream root included).
func (t *Tokenizer) Depth() int { return t.depth }

// InputOffset returns the input offset just past the last token returned.
func (t *Tokenizer) InputOffset() int64 { return t.base + int64(t.pos) }

// DefaultNS returns the default namespace in scope (valid until the next
// call to Next).
func (t *Tokenizer) DefaultNS() []byte {
	for i := len(t.binds) - 1; i >= 0; i-- {
		if b := t.binds[i]; b.prefix.s == b.prefix.e {
			return t.arena[b.uri.s:b.uri.e]
		}
	}
	return nil
}

func (t *Tokenizer) fail(cond, msg string) error {
	t.err = &Error{Condition: cond, Msg: msg, Offset: t.base + int64(t.pos)}
	return t.err
}

func (t *Tokenizer) failErr(e *Error) error {
	e.Offset = t.base + int64(t.pos)
	t.err = e
	return e
}

func (t *Tokenizer) tooBig() error {
	return t.fail(CondPolicyViolation, "element exceeds the size limit")
}

// bufPool holds read buffers of initialBuf bytes, shared by all streams.
var bufPool = sync.Pool{New: func() any { b := make([]byte, initialBuf); return &b }}

// getBuf takes a read buffer from the pool.
func (t *Tokenizer) getBuf() {
	t.pooled = bufPool.Get().(*[]byte)
	t.buf = *t.pooled
}

// putBuf returns the pooled buffer (if t holds one) and drops t.buf when
// it is that buffer. The caller has no data left in it.
func (t *Tokenizer) putBuf() {
	if t.pooled == nil {
		return
	}
	if len(t.buf) > 0 && &t.buf[0] == &(*t.pooled)[0] {
		t.buf = nil
	}
	bufPool.Put(t.pooled)
	t.pooled = nil
}

// release drops the read buffer, which holds nothing unconsumed.
func (t *Tokenizer) release() {
	t.base += int64(t.end)
	t.pos, t.end = 0, 0
	if len(t.buf) > maxIdleBuf {
		t.buf = nil // release the memory of an earlier large element
	}
	t.putBuf()
}

// ErrWouldBlock is returned by Next (and Decoder.Element) between
// top-level elements when every buffered byte is consumed and the
// function set with SetPending reports that the reader has nothing
// buffered either: reading now would block. Nothing is lost; call again
// once the transport is readable.
var ErrWouldBlock = errors.New("xmlstream: no input buffered")

// SetPending makes the tokenizer return ErrWouldBlock instead of reading
// when it is between top-level elements, has consumed everything it
// buffered, and pending (if not nil) returns false. pending reports
// whether the reader holds input that it can return without blocking
// (e.g. plaintext a TLS connection has decrypted but not yet returned).
// With it, a server waits for input on a goroutine of its choosing, with
// no read buffer and no deep stack held by idle streams.
func (t *Tokenizer) SetPending(pending func() bool) { t.pending = pending }

// fill reads more input, keeping buf[pos:end]. It returns an error only if
// nothing was read.
func (t *Tokenizer) fill() error {
	if t.rerr != nil {
		err := t.rerr
		t.rerr = nil
		return err
	}
	if t.r == nil {
		return io.EOF
	}
	if t.pos == t.end {
		// Nothing is buffered: wait for input without holding a buffer, so
		// that an idle stream (most of them, most of the time) costs no
		// read buffer. A one-byte read blocks until data arrives; the
		// buffer comes back from the pool for the rest.
		t.release()
		if t.buf == nil && t.pending == nil { // with pending, input is known to be there
			for range 100 {
				n, err := t.r.Read(t.one[:])
				if n == 1 {
					t.getBuf()
					t.buf[0] = t.one[0]
					t.end = 1
					t.rerr = err
					return nil
				}
				if err != nil {
					return err
				}
			}
			return io.ErrNoProgress
		}
	}
	if t.buf == nil {
		t.getBuf()
	}
	if len(t.buf)-t.end < minRead {
		kept := t.end - t.pos
		if t.pos > 0 && kept <= len(t.buf)/2 {
			copy(t.buf, t.buf[t.pos:t.end])
		} else {
			n := 2 * len(t.buf)
			if max := t.lim.MaxBytes + 2*minRead; n > max {
				n = max
			}
			if n < kept+minRead {
				n = kept + minRead
			}
			nb := make([]byte, n)
			copy(nb, t.buf[t.pos:t.end])
			t.putBuf()
			t.buf = nb
		}
		t.base += int64(t.pos)
		t.end = kept
		t.pos = 0
	}
	for range 100 {
		n, err := t.r.Read(t.buf[t.end:])
		if n < 0 || n > len(t.buf)-t.end {
			return errors.New("xmlstream: reader returned an invalid count")
		}
		t.end += n
		if n > 0 {
			t.rerr = err
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// more reads more input in the middle of a token: the end of input is
// unexpected there.
func (t *Tokenizer) more() error {
	err := t.fill()
	if err == io.EOF {
		t.err = io.ErrUnexpectedEOF
		return t.err
	}
	return err
}

// window returns how far a token starting at pos may be scanned: the end
// of the buffered data, or the size limit if that comes first (atLimit).
func (t *Tokenizer) window() (lim int, atLimit bool) {
	if l := t.limitEnd - t.base; l <= int64(t.end) {
		return int(l), true
	}
	return t.end, false
}

// need ensures that n bytes of the current token are buffered.
func (t *Tokenizer) need(n int) error {
	for t.end-t.pos < n {
		if t.base+int64(t.pos+n) > t.limitEnd {
			return t.tooBig()
		}
		if err := t.more(); err != nil {
			return err
		}
	}
	if t.base+int64(t.pos+n) > t.limitEnd {
		return t.tooBig()
	}
	return nil
}

// Next returns the next token. At the end of input it returns io.EOF if
// the input ended cleanly between top-level elements, and
// io.ErrUnexpectedEOF otherwise. Problems with the XML are returned as
// *Error and are permanent; errors from the reader are returned unchanged
// and Next may be called again to retry.
func (t *Tokenizer) Next() (Token, error) {
	if t.err != nil {
		return Token{}, t.err
	}
	if t.pendingEnd {
		t.pendingEnd = false
		return t.pop(), nil
	}
	if !t.started {
		if err := t.start(); err != nil {
			return Token{}, err
		}
	}
	for {
		if t.depth <= t.top {
			if err := t.skipSpace(); err != nil {
				return Token{}, err
			}
			if t.buf[t.pos] != '<' {
				return Token{}, t.fail(CondNotWellFormed, "character data outside of a top-level element")
			}
			t.limitEnd = t.base + int64(t.pos) + int64(t.lim.MaxBytes)
		} else if t.pos == t.end {
			if err := t.more(); err != nil {
				return Token{}, err
			}
		}
		if t.buf[t.pos] != '<' {
			return t.text()
		}
		if err := t.need(2); err != nil {
			return Token{}, err
		}
		switch t.buf[t.pos+1] {
		case '/':
			return t.endTag()
		case '!':
			return t.bang()
		case '?':
			if err := t.decl(); err != nil {
				return Token{}, err
			}
			continue
		default:
			return t.startTag()
		}
	}
}

// start checks the beginning of the input for a byte order mark.
func (t *Tokenizer) start() error {
	for t.end-t.pos < 3 {
		if err := t.fill(); err != nil {
			if err == io.EOF {
				break
			}
			return err
		}
	}
	b := t.buf[t.pos:t.end]
	switch {
	case len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF:
		t.pos += 3
		t.declAt = 3
	case len(b) >= 2 && (b[0] == 0xFE && b[1] == 0xFF || b[0] == 0xFF && b[1] == 0xFE),
		len(b) >= 1 && b[0] == 0:
		return t.fail(CondUnsupportedEncoding, "input is not UTF-8")
	}
	t.started = true
	return nil
}

// skipSpace consumes white space between top-level elements, discarding it
// as it goes, until a non-space byte is buffered at pos.
func (t *Tokenizer) skipSpace() error {
	for {
		for t.pos < t.end {
			if !isSpace(t.buf[t.pos]) {
				return nil
			}
			t.pos++
		}
		if t.pending != nil && t.rerr == nil && t.r != nil && !t.pending() {
			t.release()
			return ErrWouldBlock
		}
		if err := t.fill(); err != nil {
			if err == ErrWouldBlock && t.pos == t.end {
				t.release() // the reader found nothing after all
			}
			if err == io.EOF {
				if t.depth > 0 && t.mode != ModeStream {
					err = io.ErrUnexpectedEOF
				}
				t.err = err
			}
			return err
		}
	}
}

// text returns the character data at pos, up to the next '<'.
func (t *Tokenizer) text() (Token, error) {
	off := 0
	for {
		lim, atLimit := t.window()
		if i := bytes.IndexByte(t.buf[t.pos+off:lim], '<'); i >= 0 {
			off += i
			break
		}
		if atLimit {
			return Token{}, t.tooBig()
		}
		off = lim - t.pos
		if err := t.more(); err != nil {
			return Token{}, err
		}
	}
	txt, err := decodeText(t.buf[t.pos : t.pos+off])
	if err != nil {
		return Token{}, t.failErr(err)
	}
	t.pos += off
	return Token{Kind: CharData, Text: txt}, nil
}

// bang handles "<!": CDATA sections are character data; comments and
// markup declarations (DOCTYPE, ENTITY, ...) are rejected.
func (t *Tokenizer) bang() (Token, error) {
	if err := t.need(3); err != nil {
		return Token{}, err
	}
	switch c := t.buf[t.pos+2]; {
	case c == '-':
		if err := t.need(4); err != nil {
			return Token{}, err
		}
		if t.buf[t.pos+3] == '-' {
			return Token{}, t.fail(CondRestrictedXML, "comments are not allowed")
		}
	case c == '[':
		const open = "<![CDATA["
		if err := t.need(len(open)); err != nil {
			return Token{}, err
		}
		if string(t.buf[t.pos:t.pos+len(open)]) == open {
			return t.cdata(len(open))
		}
	case c >= 'A' && c <= 'Z':
		return Token{}, t.fail(CondRestrictedXML, "DTDs and markup declarations are not allowed")
	}
	return Token{}, t.fail(CondNotWellFormed, `malformed markup after "<!"`)
}

func (t *Tokenizer) cdata(open int) (Token, error) {
	if t.depth <= t.top {
		return Token{}, t.fail(CondNotWellFormed, "character data outside of a top-level element")
	}
	off := open
	for {
		lim, atLimit := t.window()
		if i := bytes.Index(t.buf[t.pos+off:lim], []byte("]]>")); i >= 0 {
			off += i
			break
		}
		if atLimit {
			return Token{}, t.tooBig()
		}
		if off = lim - t.pos - 2; off < open {
			off = open
		}
		if err := t.more(); err != nil {
			return Token{}, err
		}
	}
	txt, err := decodeCDATA(t.buf[t.pos+open : t.pos+off])
	if err != nil {
		return Token{}, t.failErr(err)
	}
	t.pos += off + 3
	return Token{Kind: CharData, Text: txt}, nil
}

// decl handles "<?": only an XML declaration at the very start of the
// input is allowed, anything else is a processing instruction.
func (t *Tokenizer) decl() error {
	if t.base+int64(t.pos) != t.declAt {
		return t.fail(CondRestrictedXML, "processing instructions are not allowed")
	}
	if err := t.need(6); err != nil {
		return err
	}
	if c := t.buf[t.pos+5]; string(t.buf[t.pos+2:t.pos+5]) != "xml" || !isSpace(c) && c != '?' {
		return t.fail(CondRestrictedXML, "processing instructions are not allowed")
	}
	off := 5
	for {
		lim, atLimit := t.window()
		if i := bytes.Index(t.buf[t.pos+off:lim], []byte("?>")); i >= 0 {
			off += i
			break
		}
		if atLimit {
			return t.tooBig()
		}
		if off = lim - t.pos - 1; off < 5 {
			off = 5
		}
		if err := t.more(); err != nil {
			return err
		}
	}
	if err := parseDecl(t.buf[t.pos+5 : t.pos+off]); err != nil {
		return t.failErr(err)
	}
	t.pos += off + 2
	t.declAt = -1
	return nil
}

// parseDecl checks the pseudo-attributes of an XML declaration:
// version (1.x), then optional encoding (UTF-8 only) and standalone.
func parseDecl(b []byte) *Error {
	i := 0
	seen := 0
	for {
		j := i
		for j < len(b) && isSpace(b[j]) {
			j++
		}
		if j == len(b) {
			break
		}
		if j == i {
			return badDecl()
		}
		k := j
		for k < len(b) && b[k] >= 'a' && b[k] <= 'z' {
			k++
		}
		name := string(b[j:k])
		for k < len(b) && isSpace(b[k]) {
			k++
		}
		if k == len(b) || b[k] != '=' {
			return badDecl()
		}
		k++
		for k < len(b) && isSpace(b[k]) {
			k++
		}
		if k == len(b) || b[k] != '"' && b[k] != '\'' {
			return badDecl()
		}
		q := bytes.IndexByte(b[k+1:], b[k])
		if q < 0 {
			return badDecl()
		}
		val := b[k+1 : k+1+q]
		i = k + 2 + q
		switch {
		case name == "version" && seen == 0:
			if len(val) < 3 || val[0] != '1' || val[1] != '.' || !allDigits(val[2:]) {
				return badDecl()
			}
			seen = 1
		case name == "encoding" && seen == 1:
			if !bytes.EqualFold(val, []byte("UTF-8")) {
				return &Error{Condition: CondUnsupportedEncoding, Msg: "encoding " + string(val) + " is not supported (only UTF-8)"}
			}
			seen = 2
		case name == "standalone" && seen >= 1 && seen < 3:
			if string(val) != "yes" && string(val) != "no" {
				return badDecl()
			}
			seen = 3
		default:
			return badDecl()
		}
	}
	if seen == 0 {
		return badDecl()
	}
	return nil
}

func badDecl() *Error {
	return &Error{Condition: CondNotWellFormed, Msg: "malformed XML declaration"}
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// endTag reads "</name S? >".
func (t *Tokenizer) endTag() (Token, error) {
	off := 2
	for {
		lim, atLimit := t.window()
		if i := bytes.IndexByte(t.buf[t.pos+off:lim], '>'); i >= 0 {
			off += i
			break
		}
		if atLimit {
			return Token{}, t.tooBig()
		}
		off = lim - t.pos
		if err := t.more(); err != nil {
			return Token{}, err
		}
	}
	b := t.buf[t.pos : t.pos+off]
	n, _, ok := scanQName(b, 2)
	if !ok {
		return Token{}, t.fail(CondNotWellFormed, "malformed end tag")
	}
	for i := n; i < len(b); i++ {
		if !isSpace(b[i]) {
			return Token{}, t.fail(CondNotWellFormed, "malformed end tag")
		}
	}
	if t.depth == 0 {
		return Token{}, t.fail(CondNotWellFormed, "end tag without a start tag")
	}
	fr := &t.frames[len(t.frames)-1]
	if !bytes.Equal(t.arena[fr.qname.s:fr.qname.e], b[2:n]) {
		return Token{}, t.fail(CondNotWellFormed, "end tag </"+string(b[2:n])+"> does not match <"+string(t.arena[fr.qname.s:fr.qname.e])+">")
	}
	t.pos += off + 1
	return t.pop(), nil
}

// pop closes the innermost element and returns its end token.
func (t *Tokenizer) pop() Token {
	fr := t.frames[len(t.frames)-1]
	t.frames = t.frames[:len(t.frames)-1]
	// The popped names stay in the arena's backing array until the next
	// push, which cannot happen before the next call.
	tok := Token{Kind: EndElement, Space: t.arena[fr.space.s:fr.space.e], Name: t.arena[fr.local.s:fr.local.e]}
	t.binds = t.binds[:fr.nbind]
	t.arena = t.arena[:fr.arena]
	t.depth--
	if t.depth == 0 {
		t.rootDone = true
	}
	return tok
}

// startTag reads the start tag at pos. The fast path parses it straight
// from the buffer. If the buffer ends first, a resumable scan waits for
// the first '>' outside a quoted value (so that a long tag arriving in
// small reads is not parsed over and over) and the tag is parsed again.
// The result never depends on how the input was split into reads: a tag
// that does not end within the size limit, or before the end of input, is
// still parsed as far as it goes, and a syntax error found in that prefix
// wins.
func (t *Tokenizer) startTag() (Token, error) {
	if t.depth == 0 && t.rootDone && t.mode != ModeFragments {
		return Token{}, t.fail(CondNotWellFormed, "content after the root element")
	}
	lim, atLimit := t.window()
	gt, st, err := t.parseTag(t.buf[t.pos:lim])
	if st == tagDone {
		return t.finishStart(gt)
	}
	if st == tagErr {
		return Token{}, err
	}
	off := 1
	var q byte
	for {
		if atLimit {
			return Token{}, t.tooBig()
		}
		if err := t.more(); err != nil {
			if err == io.ErrUnexpectedEOF {
				if _, st, perr := t.parseTag(t.buf[t.pos:t.end]); st == tagErr {
					return Token{}, perr
				}
			}
			return Token{}, err
		}
		lim, atLimit = t.window()
		b := t.buf[:lim]
		i := t.pos + off
		found := false
	scan:
		for i < lim {
			if q != 0 {
				j := bytes.IndexByte(b[i:], q)
				if j < 0 {
					i = lim
					break
				}
				i += j + 1
				q = 0
			}
			for ; i < lim; i++ {
				switch b[i] {
				case '>':
					found = true
					break scan
				case '"', '\'':
					q = b[i]
					i++
					continue scan
				}
			}
		}
		off = i - t.pos
		if !found {
			if atLimit {
				// Report a syntax error in the prefix in preference.
				if _, st, perr := t.parseTag(t.buf[t.pos:lim]); st == tagErr {
					return Token{}, perr
				}
			}
			continue
		}
		gt, st, err := t.parseTag(t.buf[t.pos : t.pos+off+1])
		switch st {
		case tagDone:
			return t.finishStart(gt)
		case tagErr:
			return Token{}, err
		}
		off++ // cannot happen: the parser stops at the same '>'
	}
}

func (t *Tokenizer) bad(msg string) (Token, error) {
	return Token{}, t.fail(CondNotWellFormed, msg)
}

// Results of parseTag.
const (
	tagDone = iota
	tagMore // b ends before the tag
	tagErr
)

// incomplete reports whether a name scan that stopped at b[j] may continue
// with more input.
func incomplete(b []byte, j int) bool {
	return j >= len(b) || !utf8.FullRune(b[j:])
}

// parseTag parses the syntax of the start tag at the start of b (b[0] is
// '<') into t.raw without modifying b. It returns the index of the
// closing '>' and tagDone, tagMore if b ends before the tag does, or
// tagErr and the (recorded) error. Errors depend only on the bytes before
// the error.
func (t *Tokenizer) parseTag(b []byte) (int, int, error) {
	t.raw = t.raw[:0]
	n, colon, ok := scanQName(b, 1)
	if !ok || n == len(b) {
		if incomplete(b, n) {
			return 0, tagMore, nil
		}
		_, err := t.bad("malformed element name")
		return 0, tagErr, err
	}
	t.tagName = [2]int32{1, int32(n)}
	t.tagColon = int32(colon)
	t.selfClosing = false
	for {
		j := n
		for j < len(b) && isSpace(b[j]) {
			j++
		}
		if j == len(b) {
			return 0, tagMore, nil
		}
		switch b[j] {
		case '>':
			return j, tagDone, nil
		case '/':
			if j+1 == len(b) {
				return 0, tagMore, nil
			}
			if b[j+1] == '>' {
				t.selfClosing = true
				return j + 1, tagDone, nil
			}
			_, err := t.bad(`"/" not followed by ">" in start tag`)
			return 0, tagErr, err
		}
		if j == n {
			_, err := t.bad("missing white space before attribute")
			return 0, tagErr, err
		}
		an, acolon, ok := scanQName(b, j)
		if !ok || an == len(b) {
			if incomplete(b, an) {
				return 0, tagMore, nil
			}
			_, err := t.bad("malformed attribute name")
			return 0, tagErr, err
		}
		k := an
		for k < len(b) && isSpace(b[k]) {
			k++
		}
		if k == len(b) {
			return 0, tagMore, nil
		}
		if b[k] != '=' {
			_, err := t.bad("attribute without value")
			return 0, tagErr, err
		}
		k++
		for k < len(b) && isSpace(b[k]) {
			k++
		}
		if k == len(b) {
			return 0, tagMore, nil
		}
		if b[k] != '"' && b[k] != '\'' {
			_, err := t.bad("unquoted attribute value")
			return 0, tagErr, err
		}
		vs := k + 1
		ve := bytes.IndexByte(b[vs:], b[k])
		if ve < 0 {
			return 0, tagMore, nil
		}
		ve += vs
		if len(t.raw) == t.lim.MaxAttrs {
			return 0, tagErr, t.fail(CondPolicyViolation, "too many attributes")
		}
		t.raw = append(t.raw, rawAttr{ns: int32(j), ne: int32(an), colon: int32(acolon), vs: int32(vs), ve: int32(ve)})
		n = ve + 1
	}
}

// finishStart decodes the attribute values of the start tag parsed by
// parseTag, which ends at buf[pos+gt], processes its namespace
// declarations and pushes the element.
func (t *Tokenizer) finishStart(gt int) (Token, error) {
	b := t.buf[t.pos : t.pos+gt]
	raw := t.raw
	ndecl := 0
	for i := range raw {
		a := &raw[i]
		val, err := decodeAttr(b[a.vs:a.ve])
		if err != nil {
			return Token{}, t.failErr(err)
		}
		a.ve = a.vs + int32(len(val))
		if isDecl(b[a.ns:a.ne], int(a.colon-a.ns)) {
			ndecl++
		}
	}
	if t.depth-t.top >= t.lim.MaxDepth {
		return Token{}, t.fail(CondPolicyViolation, "elements nested too deeply")
	}

	// Push the element and its namespace declarations.
	qname := b[t.tagName[0]:t.tagName[1]]
	colon := -1
	if t.tagColon >= 0 {
		colon = int(t.tagColon - t.tagName[0])
	}
	fr := frame{nbind: int32(len(t.binds)), arena: int32(len(t.arena))}
	fr.qname = t.store(qname)
	fr.local = fr.qname
	if colon >= 0 {
		fr.local.s += int32(colon + 1)
	}
	if ndecl > 0 {
		if err := t.declare(b, raw); err != nil {
			t.binds = t.binds[:fr.nbind]
			t.arena = t.arena[:fr.arena]
			return Token{}, err
		}
	}
	var prefix []byte
	if colon >= 0 {
		prefix = qname[:colon]
	}
	sp, err := t.resolve(prefix)
	if err != nil {
		t.binds = t.binds[:fr.nbind]
		t.arena = t.arena[:fr.arena]
		return Token{}, err
	}
	fr.space = sp
	t.frames = append(t.frames, fr)
	t.depth++

	attrs := t.attrs[:0]
	for i := range raw {
		a := &raw[i]
		name := b[a.ns:a.ne]
		acolon := -1
		if a.colon >= 0 {
			acolon = int(a.colon - a.ns)
		}
		if isDecl(name, acolon) {
			continue
		}
		at := Attr{Name: name, Value: b[a.vs:a.ve]}
		if acolon >= 0 {
			p := name[:acolon]
			if string(p) != "xml" {
				sp, err := t.resolve(p)
				if err != nil {
					t.attrs = attrs
					return Token{}, err
				}
				at.Space = t.arena[sp.s:sp.e]
				at.Name = name[acolon+1:]
			}
		}
		for j := range attrs {
			if bytes.Equal(attrs[j].Name, at.Name) && bytes.Equal(attrs[j].Space, at.Space) {
				t.attrs = attrs
				return t.bad("duplicate attribute " + string(name))
			}
		}
		attrs = append(attrs, at)
	}
	t.attrs = attrs
	t.pos += gt + 1
	t.pendingEnd = t.selfClosing
	return Token{
		Kind:        StartElement,
		Space:       t.arena[fr.space.s:fr.space.e],
		Name:        t.arena[fr.local.s:fr.local.e],
		Attrs:       attrs,
		SelfClosing: t.selfClosing,
	}, nil
}

func isDecl(name []byte, colon int) bool {
	if colon < 0 {
		return string(name) == "xmlns"
	}
	return string(name[:colon]) == "xmlns"
}

const (
	nsXML   = "http://www.w3.org/XML/1998/namespace"
	nsXMLNS = "http://www.w3.org/2000/xmlns/"
)

func (t *Tokenizer) store(b []byte) span {
	s := int32(len(t.arena))
	t.arena = append(t.arena, b...)
	return span{s, int32(len(t.arena))}
}

// declare pushes the namespace declarations among raw (attributes of the
// tag b).
func (t *Tokenizer) declare(b []byte, raw []rawAttr) error {
	for i := range raw {
		a := &raw[i]
		name := b[a.ns:a.ne]
		colon := -1
		if a.colon >= 0 {
			colon = int(a.colon - a.ns)
		}
		if !isDecl(name, colon) {
			continue
		}
		for j := range i {
			if bytes.Equal(b[raw[j].ns:raw[j].ne], name) {
				_, err := t.bad("duplicate namespace declaration " + string(name))
				return err
			}
		}
		var prefix []byte
		if colon >= 0 {
			prefix = name[colon+1:]
		}
		value := b[a.vs:a.ve]
		switch {
		case string(prefix) == "xml":
			if string(value) != nsXML {
				_, err := t.bad("the xml prefix cannot be rebound")
				return err
			}
			continue // predeclared
		case string(prefix) == "xmlns":
			_, err := t.bad("the xmlns prefix cannot be declared")
			return err
		case string(value) == nsXML || string(value) == nsXMLNS:
			_, err := t.bad("reserved namespace name " + string(value))
			return err
		case colon >= 0 && len(value) == 0:
			_, err := t.bad("a namespace prefix cannot be undeclared")
			return err
		}
		if len(t.binds) >= maxBindings {
			return t.fail(CondPolicyViolation, "too many namespace declarations")
		}
		var bd binding
		bd.prefix = t.store(prefix)
		bd.uri = t.store(value)
		t.binds = append(t.binds, bd)
	}
	return nil
}

// resolve returns the namespace bound to prefix (the default namespace for
// an element without prefix).
func (t *Tokenizer) resolve(prefix []byte) (span, error) {
	if len(prefix) > 0 {
		switch string(prefix) {
		case "xmlns":
			_, err := t.bad("the xmlns prefix cannot be used for elements")
			return span{}, err
		case "xml":
			_, err := t.bad("elements in the XML namespace are not allowed")
			return span{}, err
		}
	}
	for i := len(t.binds) - 1; i >= 0; i-- {
		b := t.binds[i]
		if bytes.Equal(t.arena[b.prefix.s:b.prefix.e], prefix) {
			return b.uri, nil
		}
	}
	if len(prefix) == 0 {
		return span{}, nil
	}
	_, err := t.bad("undeclared namespace prefix " + string(prefix))
	return span{}, err
}
