// Package xmlstream is the server's only XML parser: a streaming tokenizer
// and element decoder for the subset of XML 1.0 (with Namespaces in XML
// 1.0) that XMPP allows (RFC 6120 §11).
//
// A Decoder reads an XMPP stream from an io.Reader (a net.Conn or
// tls.Conn) through its own buffer, never holding more than the element
// being read: Header reads the optional XML declaration and the stream
// header (<stream:stream ...>), then each call to Element returns the next
// child of the stream root as a namespace-resolved *stanza.Element. It
// calls Read only when it needs more bytes to complete the element, so it
// returns each stanza as soon as it has arrived. Stream restarts use Reset
// (new transport, after STARTTLS: buffered input is discarded) or Restart
// (same transport, after SASL: buffered input is kept). SetFragmentMode
// reads a sequence of root elements instead (WebSocket framing); Parse and
// ParseNS parse one standalone element. Underneath, Tokenizer returns
// tokens whose names, attributes and text are slices of its buffer,
// decoded in place, without allocating; Element builds each tree with at
// most four allocations, sharing common names, namespaces and values.
//
// Implemented: elements, attributes (single or double quoted, with
// attribute-value normalization), character data with the five predefined
// entities (&lt; &gt; &amp; &quot; &apos;) and numeric character
// references, CDATA sections, namespace declarations and prefixes (the xml
// prefix is predeclared; xml:lang and other xml:* attributes are reported
// with their prefix in Name and an empty Space), CRLF and CR line-end
// normalization, a UTF-8 byte order mark, and an XML declaration
// (version 1.x, encoding UTF-8) at the very start of the input only.
//
// Deliberately rejected, with the RFC 6120 §4.9.3 condition in *Error:
//
//   - restricted-xml: DTDs (<!DOCTYPE) and any other markup declaration
//     (so no entity definitions: a "billion laughs" stops at once),
//     comments, processing instructions (an XML declaration anywhere but
//     at the start of the input counts as one), and references to any
//     entity other than the five predefined ones;
//   - unsupported-encoding: an encoding declaration other than UTF-8, or
//     input starting with a UTF-16 byte order mark or a NUL byte;
//   - policy-violation: a top-level element (or the stream header) larger
//     than Limits.MaxBytes input bytes, nested deeper than
//     Limits.MaxDepth, or a start tag with more than Limits.MaxAttrs
//     attributes. The decoder stops reading as soon as the limit is
//     crossed, so an oversized stanza is never buffered whole;
//   - not-well-formed: everything else that XML 1.0 or Namespaces in XML
//     forbid: mismatched or unclosed tags, duplicate attributes (also after
//     namespace resolution), undeclared prefixes, misuse of the xml and
//     xmlns prefixes and namespaces, undeclaring a prefix (xmlns:p=""),
//     malformed names, unquoted or missing attribute values, missing white
//     space between attributes, '<' in an attribute value, "]]>" in
//     character data, malformed or out-of-range character references,
//     invalid UTF-8 and characters outside the XML 1.0 Char production
//     (control characters other than tab, LF and CR; U+FFFE, U+FFFF), and
//     non-white-space character data between top-level elements.
//
// Element names in the XML namespace (<xml:foo>) are also rejected, as
// serializing them would need a namespace binding XML forbids.
package xmlstream
