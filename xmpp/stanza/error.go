package stanza

// ErrorType is the type attribute of a stanza error (RFC 6120 §8.3.2).
type ErrorType string

// Error types.
const (
	Auth     ErrorType = "auth"
	Cancel   ErrorType = "cancel"
	Continue ErrorType = "continue"
	Modify   ErrorType = "modify"
	Wait     ErrorType = "wait"
)

// Condition is a defined stanza error condition (RFC 6120 §8.3.3).
type Condition string

// Stanza error conditions.
const (
	BadRequest            Condition = "bad-request"
	Conflict              Condition = "conflict"
	FeatureNotImplemented Condition = "feature-not-implemented"
	Forbidden             Condition = "forbidden"
	Gone                  Condition = "gone"
	InternalServerError   Condition = "internal-server-error"
	ItemNotFound          Condition = "item-not-found"
	JIDMalformed          Condition = "jid-malformed"
	NotAcceptable         Condition = "not-acceptable"
	NotAllowed            Condition = "not-allowed"
	NotAuthorized         Condition = "not-authorized"
	PolicyViolation       Condition = "policy-violation"
	RecipientUnavailable  Condition = "recipient-unavailable"
	Redirect              Condition = "redirect"
	RegistrationRequired  Condition = "registration-required"
	RemoteServerNotFound  Condition = "remote-server-not-found"
	RemoteServerTimeout   Condition = "remote-server-timeout"
	ResourceConstraint    Condition = "resource-constraint"
	ServiceUnavailable    Condition = "service-unavailable"
	SubscriptionRequired  Condition = "subscription-required"
	UndefinedCondition    Condition = "undefined-condition"
	UnexpectedRequest     Condition = "unexpected-request"
)

// defaultType is the usual error type for each condition (RFC 6120 §8.3.3 examples).
var defaultType = map[Condition]ErrorType{
	BadRequest: Modify, Conflict: Cancel, FeatureNotImplemented: Cancel, Forbidden: Auth,
	Gone: Cancel, InternalServerError: Cancel, ItemNotFound: Cancel, JIDMalformed: Modify,
	NotAcceptable: Modify, NotAllowed: Cancel, NotAuthorized: Auth, PolicyViolation: Modify,
	RecipientUnavailable: Wait, Redirect: Modify, RegistrationRequired: Auth,
	RemoteServerNotFound: Cancel, RemoteServerTimeout: Wait, ResourceConstraint: Wait,
	ServiceUnavailable: Cancel, SubscriptionRequired: Auth, UndefinedCondition: Cancel,
	UnexpectedRequest: Wait,
}

// Error is a stanza error value. The zero Type means the condition's usual type.
type Error struct {
	Type      ErrorType
	Condition Condition
	Text      string
	// By is the optional 'by' attribute (the entity that generated the error).
	By string
	// App is an optional application-specific condition element.
	App *Element
}

// Err returns an Error with the condition's usual type.
func Err(c Condition) Error { return Error{Condition: c} }

// ErrText returns an Error with the condition's usual type and a human-readable text.
func ErrText(c Condition, text string) Error { return Error{Condition: c, Text: text} }

// Error implements error.
func (e Error) Error() string {
	if e.Text != "" {
		return string(e.Condition) + ": " + e.Text
	}
	return string(e.Condition)
}

// TypeOrDefault returns the explicit type or the condition's usual one.
func (e Error) TypeOrDefault() ErrorType {
	if e.Type != "" {
		return e.Type
	}
	if t, ok := defaultType[e.Condition]; ok {
		return t
	}
	return Cancel
}

// Element returns the <error/> child for this error in namespace space
// (jabber:client or jabber:server).
func (e Error) Element(space string) *Element {
	el := New(space, "error", "type", string(e.TypeOrDefault()), "by", e.By)
	cond := string(e.Condition)
	if cond == "" {
		cond = string(UndefinedCondition)
	}
	el.AddChild(New(NSStanzas, cond))
	if e.Text != "" {
		el.AddChild(New(NSStanzas, "text")).AddText(e.Text)
	}
	if e.App != nil {
		el.AddChild(e.App)
	}
	return el
}

// ParseError extracts the error carried by an error stanza (zero Error if none).
func ParseError(st *Element) Error {
	el := st.Child("", "error")
	if el == nil {
		return Error{}
	}
	out := Error{Type: ErrorType(el.Attr("type")), By: el.Attr("by")}
	for c := range el.Elements {
		if c.Space != NSStanzas {
			if out.App == nil {
				out.App = c
			}
			continue
		}
		if c.Name == "text" {
			out.Text = c.Text()
		} else if out.Condition == "" {
			out.Condition = Condition(c.Name)
		}
	}
	return out
}

// ErrorReply builds the error response to st (RFC 6120 §8.3.1): to and from
// swapped, type="error", the same id, and the original payload kept so the
// sender can match it. st itself is not modified.
func ErrorReply(st *Element, e Error) *Element {
	r := &Element{Space: st.Space, Name: st.Name}
	r.Attrs = make([]Attr, 0, len(st.Attrs)+1)
	for _, a := range st.Attrs {
		if a.Space != "" || (a.Name != "to" && a.Name != "from" && a.Name != "type") {
			r.Attrs = append(r.Attrs, a)
		}
	}
	if f := st.Attr("from"); f != "" {
		r.Attrs = append(r.Attrs, Attr{Name: "to", Value: f})
	}
	if t := st.Attr("to"); t != "" {
		r.Attrs = append(r.Attrs, Attr{Name: "from", Value: t})
	}
	r.Attrs = append(r.Attrs, Attr{Name: "type", Value: "error"})
	if st.Name != "iq" {
		for _, n := range st.Children {
			if n.El != nil && n.El.Name != "error" {
				r.Children = append(r.Children, n)
			}
		}
	} else if c := st.FirstChild(); c != nil && st.Attr("type") != "result" {
		r.Children = append(r.Children, Node{El: c})
	}
	r.Children = append(r.Children, Node{El: e.Element(st.Space)})
	return r
}

// IsError reports whether st is an error stanza.
func IsError(st *Element) bool { return st.Attr("type") == "error" }
