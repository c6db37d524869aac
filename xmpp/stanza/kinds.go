package stanza

// Stanza kinds (element names of top-level stanzas).
const (
	KindMessage  = "message"
	KindPresence = "presence"
	KindIQ       = "iq"
)

// IQ types.
const (
	Get    = "get"
	Set    = "set"
	Result = "result"
	ErrorT = "error"
)

// IsStanza reports whether e is a message, presence or iq in a stanza namespace.
func IsStanza(e *Element) bool {
	if e.Space != NSClient && e.Space != NSServer {
		return false
	}
	switch e.Name {
	case KindMessage, KindPresence, KindIQ:
		return true
	}
	return false
}

// To returns the 'to' attribute.
func (e *Element) To() string { return e.Attr("to") }

// From returns the 'from' attribute.
func (e *Element) From() string { return e.Attr("from") }

// ID returns the 'id' attribute.
func (e *Element) ID() string { return e.Attr("id") }

// Type returns the 'type' attribute.
func (e *Element) Type() string { return e.Attr("type") }

// ResultReply builds an empty IQ result for iq, optionally carrying payload.
func ResultReply(iq *Element, payload *Element) *Element {
	r := New(iq.Space, "iq", "type", Result, "id", iq.ID(), "to", iq.From(), "from", iq.To())
	if payload != nil {
		r.AddChild(payload)
	}
	return r
}
