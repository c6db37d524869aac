package c2s

import (
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Client State Indication (XEP-0352)
//
// A client that says <inactive/> (a phone with its screen off) does not
// need presence updates and chat states at once: while it is inactive,
// Send keeps such stanzas in s.held instead of writing them, and writes
// them, in order, before the next important stanza, on <active/>, when
// maxHeld bytes are held, or when the stream closes. Nothing is dropped
// or reordered; only the radio wakes less often. The csi module
// advertises the feature; the session handles the two nonzas only when
// its host advertises it.

// NSCSI is the XEP-0352 namespace.
const NSCSI = "urn:xmpp:csi:0"

// maxHeld bounds what an inactive session holds back.
const maxHeld = 32 << 10

const nsChatStates = "http://jabber.org/protocol/chatstates"

// important reports whether st must reach an inactive client at once:
// every IQ; messages, unless they carry nothing but chat states (or are
// errors); presence only for subscription management.
func important(st *stanza.Element) bool {
	switch st.Name {
	case "presence":
		switch st.Type() {
		case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
			return true
		}
		return false
	case "message":
		if st.Type() == "error" {
			return true
		}
		for c := range st.Elements {
			if c.Space != nsChatStates {
				return true
			}
		}
		return false
	}
	return true
}

// csiAdvertised reports whether the session's host offers CSI.
func (s *Session) csiAdvertised() bool {
	if s.host == nil {
		return false
	}
	for _, f := range s.host.StreamFeatures(false) {
		if f.Space == NSCSI && f.Name == "csi" {
			return true
		}
	}
	return false
}

// handleCSI processes <active/> or <inactive/>; false if el is not one.
func (s *Session) handleCSI(el *stanza.Element) bool {
	if el.Space != NSCSI || (el.Name != "active" && el.Name != "inactive") || !s.csiAdvertised() {
		return false
	}
	s.wmu.Lock()
	s.inactive = el.Name == "inactive"
	kick := false
	if !s.inactive {
		kick = s.releaseHeldLocked()
	}
	s.wmu.Unlock()
	if kick {
		writers.run(s)
	}
	return true
}

// Inactive reports whether the client said it is inactive (XEP-0352).
func (s *Session) Inactive() bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.inactive
}
