package roster

// The subscription state machine of RFC 6121 Appendix A, as pure
// functions over the state of one contact in one user's roster. A state
// is the roster item's subscription (none/to/from/both), its "Pending
// Out" flag (ask="subscribe"), its pre-approval flag (approved="true")
// and the "Pending In" flag (a stored inbound subscription request, which
// is not part of the roster item).

// Subscription values of a roster item (RFC 6121 §2.1.2.5).
const (
	SubNone = "none"
	SubTo   = "to"
	SubFrom = "from"
	SubBoth = "both"
)

// Subscription-related presence types (RFC 6121 §3).
const (
	TypeSubscribe    = "subscribe"
	TypeSubscribed   = "subscribed"
	TypeUnsubscribe  = "unsubscribe"
	TypeUnsubscribed = "unsubscribed"
)

// state is one contact's subscription state as seen from the user.
type state struct {
	Exists    bool   // a roster item exists
	Sub       string // none, to, from, both
	Ask       bool   // Pending Out
	Approved  bool   // pre-approved (RFC 6121 §3.4)
	PendingIn bool   // an inbound request is stored
}

func hasTo(sub string) bool   { return sub == SubTo || sub == SubBoth }
func hasFrom(sub string) bool { return sub == SubFrom || sub == SubBoth }

func makeSub(to, from bool) string {
	switch {
	case to && from:
		return SubBoth
	case to:
		return SubTo
	case from:
		return SubFrom
	}
	return SubNone
}

func (s state) sub() string {
	if s.Sub == "" {
		return SubNone
	}
	return s.Sub
}

// itemChanged reports whether the roster item (what a roster push shows)
// differs between a and b.
func itemChanged(a, b state) bool {
	return a.Exists != b.Exists || a.sub() != b.sub() || a.Ask != b.Ask || a.Approved != b.Approved
}

// outbound applies a subscription stanza of type typ that the user sends
// to the contact (RFC 6121 §3.1.2, §3.2.2, §3.3.2, §3.4.2 and Appendix
// A.2). route reports whether the stanza goes on to the contact.
func outbound(s state, typ string) (next state, route bool) {
	next = s
	next.Sub = s.sub()
	switch typ {
	case TypeSubscribe:
		// A.2.1: None → None+Pending Out, None+Pending In → None+Pending
		// Out+In, From → From+Pending Out; To and Both: no change. The
		// request is routed in every case: the contact's server answers
		// with "subscribed" when it already has the user as a subscriber,
		// which repairs a desynchronised state.
		if !hasTo(next.Sub) {
			next.Ask = true
			next.Exists = true
		}
		return next, true
	case TypeUnsubscribe:
		// A.2.2: the user's subscription to the contact (and any pending
		// request) ends. Always routed so that the contact's server can
		// resynchronise.
		next.Ask = false
		next.Sub = makeSub(false, hasFrom(next.Sub))
		return next, true
	case TypeSubscribed:
		if s.PendingIn {
			// §3.1.5, A.2.3: approval of the pending request.
			next.PendingIn = false
			next.Approved = false
			next.Exists = true
			next.Sub = makeSub(hasTo(next.Sub), true)
			return next, true
		}
		if hasFrom(next.Sub) {
			// Already subscribed: no change. Routed anyway so that a
			// contact still waiting for an answer gets one.
			return next, true
		}
		// §3.4.2: pre-approval, a local matter that is not routed.
		next.Approved = true
		next.Exists = true
		return next, false
	case TypeUnsubscribed:
		// §3.2.2, A.2.4: denial of a pending request, cancellation of
		// the contact's subscription, or of a pre-approval.
		next.PendingIn = false
		next.Approved = false
		next.Sub = makeSub(hasTo(next.Sub), false)
		return next, true
	}
	return next, false
}

// inbound applies a subscription stanza of type typ that the contact sent
// to the user (RFC 6121 §3.1.3, §3.1.6, §3.2.3, §3.3.3 and Appendix A.3).
// deliver reports whether the stanza is delivered to the user's available
// resources; reply is the type of an automatic answer the user's server
// sends back to the contact ("" for none).
func inbound(s state, typ string) (next state, deliver bool, reply string) {
	next = s
	next.Sub = s.sub()
	switch typ {
	case TypeSubscribe:
		if hasFrom(next.Sub) {
			// §3.1.3: already subscribed, answer on the user's behalf.
			return next, false, TypeSubscribed
		}
		if next.Approved {
			// §3.4: pre-approved, approve automatically.
			next.Approved = false
			next.PendingIn = false
			next.Sub = makeSub(hasTo(next.Sub), true)
			return next, false, TypeSubscribed
		}
		// A.3.1: → Pending In, stored and delivered (again, if it
		// already was pending).
		next.PendingIn = true
		return next, true, ""
	case TypeUnsubscribe:
		// A.3.2: the contact's subscription to the user (or its pending
		// request) ends; otherwise the stanza is ignored.
		if !next.PendingIn && !hasFrom(next.Sub) {
			return next, false, ""
		}
		next.PendingIn = false
		next.Sub = makeSub(hasTo(next.Sub), false)
		return next, true, ""
	case TypeSubscribed:
		// A.3.3: only meaningful while the user's request is pending.
		if !next.Ask {
			return next, false, ""
		}
		next.Ask = false
		next.Sub = makeSub(true, hasFrom(next.Sub))
		return next, true, ""
	case TypeUnsubscribed:
		// A.3.4: denial or cancellation of the user's subscription.
		if !next.Ask && !hasTo(next.Sub) {
			return next, false, ""
		}
		next.Ask = false
		next.Sub = makeSub(false, hasFrom(next.Sub))
		return next, true, ""
	}
	return next, false, ""
}
