package roster

import (
	"encoding/json"
	"strconv"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// NS is the roster namespace (RFC 6121 §2).
const NS = "jabber:iq:roster"

// Stream features advertised after authentication.
const (
	NSRosterVer   = "urn:xmpp:features:rosterver"    // XEP-0237 / RFC 6121 §2.6.1
	NSPreApproval = "urn:xmpp:features:pre-approval" // RFC 6121 §3.4.1
)

// Reserved keys of the "roster" map store. Contact keys are bare JIDs,
// which never start with '@' (an empty localpart is invalid), so these
// cannot collide with them.
const (
	keyMeta          = "@meta"
	keyPendingPrefix = "@pending:"
)

// item is a stored roster item.
type item struct {
	Name     string   `json:"name,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	Sub      string   `json:"sub"`
	Ask      bool     `json:"ask,omitempty"`
	Approved bool     `json:"approved,omitempty"`
	// Ver is the roster version at which the item last changed (XEP-0237
	// "strictly increasing sequence" strategy).
	Ver uint64 `json:"ver"`
}

// meta is the roster-wide versioning state.
type meta struct {
	Ver uint64 `json:"ver"` // current roster version
	Del uint64 `json:"del"` // version of the last removal
}

func decodeItem(b []byte) (*item, error) {
	it := new(item)
	if err := json.Unmarshal(b, it); err != nil {
		return nil, err
	}
	if it.Sub == "" {
		it.Sub = SubNone
	}
	return it, nil
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("roster: marshal: " + err.Error()) // plain structs: cannot fail
	}
	return b
}

// element renders an item as <item/> for a roster result or push.
func (it *item) element(jid string) *stanza.Element {
	el := stanza.New(NS, "item", "jid", jid, "name", it.Name, "subscription", it.Sub)
	if it.Ask {
		el.SetAttr("ask", "subscribe")
	}
	if it.Approved {
		el.SetAttr("approved", "true")
	}
	for _, g := range it.Groups {
		el.AddChild(stanza.New(NS, "group")).AddText(g)
	}
	return el
}

func (it *item) state(pendingIn bool) state {
	if it == nil {
		return state{Sub: SubNone, PendingIn: pendingIn}
	}
	return state{Exists: true, Sub: it.Sub, Ask: it.Ask, Approved: it.Approved, PendingIn: pendingIn}
}

// apply copies the subscription fields of s into the item (creating it if needed).
func (it *item) apply(s state) *item {
	if it == nil {
		it = &item{}
	} else {
		c := *it
		it = &c
	}
	it.Sub = s.sub()
	it.Ask = s.Ask
	it.Approved = s.Approved
	return it
}

func verString(v uint64) string { return strconv.FormatUint(v, 10) }
