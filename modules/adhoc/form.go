package adhoc

import (
	"strings"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// NSData is the XEP-0004 data forms namespace.
const NSData = "jabber:x:data"

// form builds XEP-0004 data forms.
type form struct{ x *stanza.Element }

// newForm starts a form of type typ ("form" or "result") with FORM_TYPE
// formType (omitted when empty), a title and instructions (both optional).
func newForm(typ, formType, title, instructions string) form {
	f := form{stanza.New(NSData, "x", "type", typ)}
	if title != "" {
		f.x.AddChild(stanza.New(NSData, "title")).AddText(title)
	}
	if instructions != "" {
		f.x.AddChild(stanza.New(NSData, "instructions")).AddText(instructions)
	}
	if formType != "" {
		f.field("hidden", "FORM_TYPE", "", false, formType)
	}
	return f
}

// field adds a field and returns it for options.
func (f form) field(typ, v, label string, required bool, values ...string) *stanza.Element {
	fe := f.x.AddChild(stanza.New(NSData, "field", "type", typ, "var", v, "label", label))
	if required {
		fe.AddChild(stanza.New(NSData, "required"))
	}
	for _, val := range values {
		fe.AddChild(stanza.New(NSData, "value")).AddText(val)
	}
	return fe
}

// option adds a list option to a field.
func option(fe *stanza.Element, label, value string) {
	o := fe.AddChild(stanza.New(NSData, "option", "label", label))
	o.AddChild(stanza.New(NSData, "value")).AddText(value)
}

// submitted is a parsed submitted form: var → values.
type submitted map[string][]string

// parseForm returns the values of the first jabber:x:data form of type
// submit in el (nil if there is none).
func parseForm(el *stanza.Element) submitted {
	if el == nil {
		return nil
	}
	x := el.Child(NSData, "x")
	if x == nil || x.Attr("type") != "submit" {
		return nil
	}
	out := submitted{}
	for fe := range x.Elements {
		if fe.Name != "field" || fe.Space != NSData || fe.Attr("var") == "" {
			continue
		}
		vals := []string{}
		for v := range fe.Elements {
			if v.Name == "value" && v.Space == NSData {
				vals = append(vals, v.Text())
			}
		}
		out[fe.Attr("var")] = vals
	}
	return out
}

// get returns the first value of field v ("" if absent), trimmed.
func (s submitted) get(v string) string {
	if len(s[v]) == 0 {
		return ""
	}
	return strings.TrimSpace(s[v][0])
}

// all returns the non-empty values of field v, trimmed.
func (s submitted) all(v string) []string {
	var out []string
	for _, val := range s[v] {
		if t := strings.TrimSpace(val); t != "" {
			out = append(out, t)
		}
	}
	return out
}
