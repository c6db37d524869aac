package xmlstream

import "unicode/utf8"

// Byte classes for the ASCII fast paths.
const (
	cTextPlain = 1 << iota // copied verbatim in character data
	cAttrPlain             // copied verbatim in attribute values
	cNameStart             // ASCII NameStartChar, colon excluded
	cNameChar              // ASCII NameChar, colon excluded
	cSpace                 // XML white space (S production)
)

var class = func() (t [256]uint8) {
	for c := 0x20; c < 0x80; c++ {
		t[c] |= cTextPlain | cAttrPlain
	}
	t['\t'] |= cTextPlain
	t['\n'] |= cTextPlain
	for _, c := range []byte{'<', '&', ']'} {
		t[c] &^= cTextPlain
	}
	for _, c := range []byte{'<', '&', '"', '\''} {
		t[c] &^= cAttrPlain
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= cNameStart | cNameChar
		t[c-'a'+'A'] |= cNameStart | cNameChar
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= cNameChar
	}
	t['_'] |= cNameStart | cNameChar
	t['-'] |= cNameChar
	t['.'] |= cNameChar
	for _, c := range []byte{' ', '\t', '\n', '\r'} {
		t[c] |= cSpace
	}
	return t
}()

func isSpace(c byte) bool { return class[c]&cSpace != 0 }

// isChar reports whether r is a legal XML 1.0 Char.
func isChar(r rune) bool {
	switch {
	case r < 0x20:
		return r == 0x9 || r == 0xA || r == 0xD
	case r <= 0xD7FF:
		return true
	case r < 0xE000:
		return false
	case r <= 0xFFFD:
		return true
	default:
		return r >= 0x10000 && r <= 0x10FFFF
	}
}

// isNameStartRune is the non-ASCII part of the XML 1.0 (fifth edition)
// NameStartChar production.
func isNameStartRune(r rune) bool {
	switch {
	case r < 0xC0:
		return false
	case r <= 0x2FF:
		return r != 0xD7 && r != 0xF7
	case r < 0x370:
		return false
	case r <= 0x1FFF:
		return r != 0x37E
	case r < 0x2070:
		return r == 0x200C || r == 0x200D
	case r <= 0x218F:
		return true
	case r < 0x2C00:
		return false
	case r <= 0x2FEF:
		return true
	case r < 0x3001:
		return false
	case r <= 0xD7FF:
		return true
	case r < 0xF900:
		return false
	case r <= 0xFDCF:
		return true
	case r < 0xFDF0:
		return false
	case r <= 0xFFFD:
		return true
	default:
		return r >= 0x10000 && r <= 0xEFFFF
	}
}

// isNameRune is the non-ASCII part of the NameChar production.
func isNameRune(r rune) bool {
	return isNameStartRune(r) || r == 0xB7 || r >= 0x300 && r <= 0x36F || r == 0x203F || r == 0x2040
}

// scanQName scans an XML-Namespaces QName starting at b[i]. It returns the
// index just past the name and the index of its colon (-1 if unprefixed).
// ok is false if b[i:] does not start with a well-formed QName that is
// followed by a delimiter (or the end of b).
func scanQName(b []byte, i int) (end, colon int, ok bool) {
	colon = -1
	start := true // the next character must be a NameStartChar
	j := i
	for j < len(b) {
		c := b[j]
		if c < utf8.RuneSelf {
			f := class[c]
			if f&cNameStart != 0 || f&cNameChar != 0 && !start {
				start = false
				j++
				continue
			}
			if c == ':' && colon < 0 && !start {
				colon = j
				start = true
				j++
				continue
			}
			break
		}
		r, n := utf8.DecodeRune(b[j:])
		if n == 1 || start && !isNameStartRune(r) || !start && !isNameRune(r) {
			// No non-ASCII character may follow a name in markup.
			return j, colon, false
		}
		start = false
		j += n
	}
	if start { // empty, or ends with a colon
		return j, colon, false
	}
	if j < len(b) && b[j] == ':' { // second colon
		return j, colon, false
	}
	return j, colon, true
}

// decodeText validates and decodes character data in place: entity and
// character references are replaced, line ends are normalized to \n and
// "]]>" is rejected. It returns the decoded prefix of b.
func decodeText(b []byte) ([]byte, *Error) {
	i := 0
	for i < len(b) && class[b[i]]&cTextPlain != 0 {
		i++
	}
	if i == len(b) {
		return b, nil
	}
	w := i
	for i < len(b) {
		c := b[i]
		if class[c]&cTextPlain != 0 {
			b[w] = c
			w++
			i++
			continue
		}
		switch {
		case c >= utf8.RuneSelf:
			n, err := checkRune(b[i:])
			if err != nil {
				return nil, err
			}
			w += copy(b[w:], b[i:i+n])
			i += n
		case c == '&':
			r, n, err := decodeRef(b[i:])
			if err != nil {
				return nil, err
			}
			w += utf8.EncodeRune(b[w:], r)
			i += n
		case c == '\r':
			b[w] = '\n'
			w++
			i++
			if i < len(b) && b[i] == '\n' {
				i++
			}
		case c == ']':
			if i+2 < len(b) && b[i+1] == ']' && b[i+2] == '>' {
				return nil, &Error{Condition: CondNotWellFormed, Msg: `"]]>" in character data`}
			}
			b[w] = c
			w++
			i++
		case c == '<':
			return nil, &Error{Condition: CondNotWellFormed, Msg: `"<" in character data`}
		default:
			return nil, illegalByte(c)
		}
	}
	return b[:w], nil
}

// decodeCDATA validates the content of a CDATA section in place,
// normalizing line ends.
func decodeCDATA(b []byte) ([]byte, *Error) {
	w := 0
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c >= 0x20 && c < utf8.RuneSelf || c == '\t' || c == '\n':
			b[w] = c
			w++
			i++
		case c >= utf8.RuneSelf:
			n, err := checkRune(b[i:])
			if err != nil {
				return nil, err
			}
			w += copy(b[w:], b[i:i+n])
			i += n
		case c == '\r':
			b[w] = '\n'
			w++
			i++
			if i < len(b) && b[i] == '\n' {
				i++
			}
		default:
			return nil, illegalByte(c)
		}
	}
	return b[:w], nil
}

// decodeAttr validates and decodes an attribute value (without its quotes)
// in place, applying XML 1.0 §3.3.3 attribute-value normalization for
// CDATA attributes: literal tab, CR, LF and CRLF become a single space;
// character references are kept as written.
func decodeAttr(b []byte) ([]byte, *Error) {
	i := 0
	for i < len(b) && class[b[i]]&cAttrPlain != 0 {
		i++
	}
	if i == len(b) {
		return b, nil
	}
	w := i
	for i < len(b) {
		c := b[i]
		if class[c]&cAttrPlain != 0 {
			b[w] = c
			w++
			i++
			continue
		}
		switch c {
		case '&':
			r, n, err := decodeRef(b[i:])
			if err != nil {
				return nil, err
			}
			w += utf8.EncodeRune(b[w:], r)
			i += n
		case '\t', '\n':
			b[w] = ' '
			w++
			i++
		case '\r':
			b[w] = ' '
			w++
			i++
			if i < len(b) && b[i] == '\n' {
				i++
			}
		case '"', '\'':
			b[w] = c
			w++
			i++
		case '<':
			return nil, &Error{Condition: CondNotWellFormed, Msg: `"<" in attribute value`}
		default:
			if c < utf8.RuneSelf {
				return nil, illegalByte(c)
			}
			n, err := checkRune(b[i:])
			if err != nil {
				return nil, err
			}
			w += copy(b[w:], b[i:i+n])
			i += n
		}
	}
	return b[:w], nil
}

func illegalByte(c byte) *Error {
	const hex = "0123456789ABCDEF"
	return &Error{Condition: CondNotWellFormed, Msg: "illegal character U+00" + string([]byte{hex[c>>4], hex[c&15]})}
}

// checkRune validates the multi-byte UTF-8 sequence at the start of b and
// returns its length.
func checkRune(b []byte) (int, *Error) {
	r, n := utf8.DecodeRune(b)
	if r == utf8.RuneError && n == 1 {
		return 0, &Error{Condition: CondNotWellFormed, Msg: "invalid UTF-8"}
	}
	if r == 0xFFFE || r == 0xFFFF {
		return 0, &Error{Condition: CondNotWellFormed, Msg: "illegal character U+FFFE/U+FFFF"}
	}
	return n, nil
}

// decodeRef decodes the entity or character reference at the start of b
// (b[0] == '&'). It returns the character and the reference's length.
func decodeRef(b []byte) (rune, int, *Error) {
	if len(b) > 1 && b[1] == '#' {
		i, base := 2, uint32(10)
		if i < len(b) && b[i] == 'x' {
			i, base = 3, 16
		}
		start := i
		var v uint32
		for ; i < len(b); i++ {
			c := b[i]
			var d uint32
			switch {
			case c >= '0' && c <= '9':
				d = uint32(c - '0')
			case base == 16 && c >= 'a' && c <= 'f':
				d = uint32(c-'a') + 10
			case base == 16 && c >= 'A' && c <= 'F':
				d = uint32(c-'A') + 10
			default:
				goto done
			}
			if v = v*base + d; v > utf8.MaxRune {
				v = utf8.MaxRune + 1 // saturate
			}
		}
	done:
		if i == start || i >= len(b) || b[i] != ';' {
			return 0, 0, &Error{Condition: CondNotWellFormed, Msg: "malformed character reference"}
		}
		if !isChar(rune(v)) {
			return 0, 0, &Error{Condition: CondNotWellFormed, Msg: "character reference to an illegal character"}
		}
		return rune(v), i + 1, nil
	}
	end, colon, ok := scanQName(b, 1)
	if !ok || colon >= 0 || end >= len(b) || b[end] != ';' {
		return 0, 0, &Error{Condition: CondNotWellFormed, Msg: `malformed entity reference ("&" must be escaped)`}
	}
	var r rune
	switch string(b[1:end]) {
	case "lt":
		r = '<'
	case "gt":
		r = '>'
	case "amp":
		r = '&'
	case "quot":
		r = '"'
	case "apos":
		r = '\''
	default:
		return 0, 0, &Error{Condition: CondRestrictedXML, Msg: "reference to undeclared entity &" + string(b[1:end]) + ";"}
	}
	return r, end + 1, nil
}
