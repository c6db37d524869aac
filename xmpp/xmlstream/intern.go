package xmlstream

// Strings that occur in nearly every stanza. Element() returns these
// shared strings instead of allocating copies.
var internList = []string{
	// Namespaces.
	"jabber:client", "jabber:server", "jabber:component:accept",
	"http://etherx.jabber.org/streams",
	"urn:ietf:params:xml:ns:xmpp-stanzas", "urn:ietf:params:xml:ns:xmpp-streams",
	"urn:ietf:params:xml:ns:xmpp-tls", "urn:ietf:params:xml:ns:xmpp-sasl",
	"urn:ietf:params:xml:ns:xmpp-bind", "urn:ietf:params:xml:ns:xmpp-session",
	"urn:ietf:params:xml:ns:xmpp-framing", "http://jabber.org/protocol/httpbind",
	"urn:xmpp:sm:3", "urn:xmpp:ping", "urn:xmpp:delay", "jabber:x:delay", "urn:xmpp:receipts",
	"urn:xmpp:chat-markers:0", "urn:xmpp:sid:0", "urn:xmpp:hints", "urn:xmpp:carbons:2",
	"urn:xmpp:forward:0", "urn:xmpp:mam:2", "urn:xmpp:time", "urn:xmpp:blocking",
	"urn:xmpp:csi:0", "urn:xmpp:bookmarks:1", "urn:xmpp:avatar:data", "urn:xmpp:avatar:metadata",
	"urn:xmpp:message-correct:0", "urn:xmpp:eme:0", "urn:xmpp:omemo:2",
	"eu.siacs.conversations.axolotl", "urn:xmpp:http:upload:0", "urn:xmpp:jingle:1",
	"urn:xmpp:jingle-message:0", "urn:xmpp:reply:0", "urn:xmpp:reactions:0",
	"urn:xmpp:fallback:0", "urn:xmpp:styling:0", "urn:xmpp:push:0", "urn:xmpp:sasl:2",
	"urn:xmpp:bind:0", "urn:xmpp:fast:0", "urn:xmpp:idle:1", "urn:xmpp:occupant-id:0",
	"urn:xmpp:features:rosterver", "urn:xmpp:features:pre-approval",
	"http://jabber.org/features/iq-register", "http://jabber.org/protocol/rsm",
	"http://jabber.org/protocol/commands", "http://jabber.org/protocol/chatstates",
	"http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info",
	"http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/muc",
	"http://jabber.org/protocol/muc#user", "http://jabber.org/protocol/muc#admin",
	"http://jabber.org/protocol/muc#owner", "http://jabber.org/protocol/pubsub",
	"http://jabber.org/protocol/pubsub#event", "http://jabber.org/protocol/pubsub#owner",
	"http://jabber.org/protocol/nick", "http://jabber.org/protocol/address",
	"http://jabber.org/protocol/xhtml-im", "http://www.w3.org/1999/xhtml",
	"jabber:iq:roster", "jabber:iq:private", "jabber:iq:version", "jabber:iq:last",
	"jabber:iq:register", "jabber:iq:auth", "jabber:x:data", "jabber:x:conference",
	"jabber:x:oob", "jabber:iq:privacy", "vcard-temp", "vcard-temp:x:update",
	"storage:bookmarks",

	// Element names.
	"stream", "features", "message", "presence", "iq", "body", "subject", "thread",
	"error", "text", "show", "status", "priority", "query", "item", "items", "x",
	"delay", "active", "composing", "paused", "inactive", "gone", "request",
	"received", "markable", "displayed", "acknowledged", "origin-id", "stanza-id",
	"forwarded", "result", "sent", "private", "no-copy", "no-store", "no-permanent-store",
	"store", "c", "nick", "html", "p", "span", "br", "a", "r", "ack", "enable", "enabled",
	"resume", "resumed", "failed", "starttls", "proceed", "auth", "mechanisms",
	"mechanism", "challenge", "response", "success", "failure", "abort", "bind",
	"session", "jid", "resource", "ping", "vCard", "pubsub", "publish", "event",
	"retract", "subscribe", "set", "first", "last", "max", "before", "after", "count",
	"index", "identity", "feature", "reference", "encryption", "encrypted", "header",
	"key", "keys", "payload", "iv", "reason", "invite", "decline", "password",
	"history", "actor", "continue", "destroy", "replace", "fin", "fallback", "reply",
	"reactions", "reaction", "occupant-id", "photo", "group", "value", "field",
	"option", "required", "desc", "instructions", "title", "ver", "register",
	"remove", "block", "unblock", "blocklist", "time", "tzo", "utc", "version",
	"name", "os", "username", "resource", "digest", "inactive", "sm", "optional",
	"register", "open", "close",

	// Stanza and stream error conditions.
	"bad-request", "conflict", "feature-not-implemented", "forbidden",
	"internal-server-error", "item-not-found", "jid-malformed", "not-acceptable",
	"not-allowed", "not-authorized", "policy-violation", "recipient-unavailable",
	"redirect", "registration-required", "remote-server-not-found",
	"remote-server-timeout", "resource-constraint", "service-unavailable",
	"subscription-required", "undefined-condition", "unexpected-request",
	"bad-format", "connection-timeout", "host-gone", "host-unknown",
	"invalid-namespace", "invalid-xml", "not-well-formed", "restricted-xml",
	"see-other-host", "system-shutdown", "unsupported-encoding",
	"unsupported-stanza-type", "unsupported-version", "invalid-mechanism",
	"malformed-request", "temporary-auth-failure", "account-disabled",
	"credentials-expired", "encryption-required", "incorrect-encoding",
	"invalid-authzid",

	// Attribute names.
	"to", "from", "id", "type", "xml:lang", "by", "stamp", "code", "node",
	"hash", "category", "var", "affiliation", "role", "h", "handled",
	"previd", "location", "action", "label", "seconds", "since", "maxchars",
	"maxstanzas", "ask", "subscription", "approved", "xmlns", "sid", "rid",
	"xmpp:version", "xmpp:restart", "wait", "hold", "ack", "secure", "ttl",
	"inactivity", "polling", "requests", "host", "ns", "uri", "url", "rel",

	// Attribute values and short texts.
	"chat", "groupchat", "normal", "headline", "get", "result", "unavailable",
	"subscribed", "unsubscribe", "unsubscribed", "probe", "cancel", "modify", "wait",
	"en", "de", "fr", "es", "ru", "true", "false", "0", "1", "5", "10", "none",
	"both", "member", "owner", "admin", "outcast", "moderator", "participant",
	"visitor", "sha-1", "client", "pc", "phone", "bot", "web", "away", "xa", "dnd",
	"1.0", "PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS",
	"SCRAM-SHA-256-PLUS", "EXTERNAL", "ANONYMOUS", "urn:xmpp:mam:2#extended",
	"http://jabber.org/protocol/nick+notify", "text-single", "text-multi",
	"hidden", "list-single", "list-multi", "boolean", "jid-single", "jid-multi",
	"fixed", "submit", "form", "FORM_TYPE",
}

const internBits = 11
const maxInternLen = 64

var internTab [1 << internBits]string

func init() {
	for _, s := range internList {
		if len(s) > maxInternLen {
			panic("xmlstream: intern string too long: " + s)
		}
		h := internHash(s)
		for {
			e := &internTab[h&(1<<internBits-1)]
			if *e == "" {
				*e = s
				break
			}
			if *e == s {
				break
			}
			h++
		}
	}
}

func internHash[T string | []byte](b T) uint {
	n := len(b)
	h := uint64(n) | uint64(b[0])<<8 | uint64(b[n-1])<<16 | uint64(b[n/2])<<24 |
		uint64(b[(n-1)/3])<<32 | uint64(b[max(n-2, 0)])<<40 | uint64(b[n*2/3])<<48
	h *= 0x9E3779B97F4A7C15
	return uint(h >> (64 - internBits))
}

// intern returns the shared copy of b if it is a common string.
func intern(b []byte) (string, bool) {
	if i := internIndex(b); i >= 0 {
		return internTab[i], true
	}
	return "", false
}

// internIndex returns the index of b in internTab, or -1.
func internIndex(b []byte) int {
	if len(b) == 0 || len(b) > maxInternLen {
		return -1
	}
	h := internHash(b)
	for {
		h &= 1<<internBits - 1
		s := internTab[h]
		if s == "" {
			return -1
		}
		if s == string(b) {
			return int(h)
		}
		h++
	}
}
