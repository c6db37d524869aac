package roster

import (
	"fmt"
	"testing"
)

// The nine states of RFC 6121 Appendix A.1, plus pre-approval variants.
var (
	sNone        = state{Sub: SubNone}
	sNoneItem    = state{Exists: true, Sub: SubNone}
	sNoneOut     = state{Exists: true, Sub: SubNone, Ask: true}
	sNoneIn      = state{Sub: SubNone, PendingIn: true}
	sNoneItemIn  = state{Exists: true, Sub: SubNone, PendingIn: true}
	sNoneOutIn   = state{Exists: true, Sub: SubNone, Ask: true, PendingIn: true}
	sTo          = state{Exists: true, Sub: SubTo}
	sToIn        = state{Exists: true, Sub: SubTo, PendingIn: true}
	sFrom        = state{Exists: true, Sub: SubFrom}
	sFromOut     = state{Exists: true, Sub: SubFrom, Ask: true}
	sBoth        = state{Exists: true, Sub: SubBoth}
	sNonePre     = state{Exists: true, Sub: SubNone, Approved: true}
	sNoneOutPre  = state{Exists: true, Sub: SubNone, Ask: true, Approved: true}
	sToPre       = state{Exists: true, Sub: SubTo, Approved: true}
	sNoneItemOut = state{Exists: true, Sub: SubNone, Ask: true} // same as sNoneOut, created from nothing
)

func name(s state) string {
	out := s.Sub
	if s.Ask {
		out += "+out"
	}
	if s.PendingIn {
		out += "+in"
	}
	if s.Approved {
		out += "+pre"
	}
	if !s.Exists {
		out += "(no item)"
	}
	return out
}

// TestOutbound checks RFC 6121 Appendix A.2 (user → contact).
func TestOutbound(t *testing.T) {
	for _, tc := range []struct {
		typ   string
		from  state
		want  state
		route bool
	}{
		// A.2.1 subscribe
		{TypeSubscribe, sNone, sNoneItemOut, true},
		{TypeSubscribe, sNoneItem, sNoneOut, true},
		{TypeSubscribe, sNoneOut, sNoneOut, true},
		{TypeSubscribe, sNoneIn, sNoneOutIn, true},
		{TypeSubscribe, sNoneOutIn, sNoneOutIn, true},
		{TypeSubscribe, sTo, sTo, true},
		{TypeSubscribe, sToIn, sToIn, true},
		{TypeSubscribe, sFrom, sFromOut, true},
		{TypeSubscribe, sFromOut, sFromOut, true},
		{TypeSubscribe, sBoth, sBoth, true},
		// A.2.2 unsubscribe
		{TypeUnsubscribe, sNoneItem, sNoneItem, true},
		{TypeUnsubscribe, sNoneOut, sNoneItem, true},
		{TypeUnsubscribe, sNoneItemIn, sNoneItemIn, true},
		{TypeUnsubscribe, sNoneOutIn, sNoneItemIn, true},
		{TypeUnsubscribe, sTo, sNoneItem, true},
		{TypeUnsubscribe, sToIn, sNoneItemIn, true},
		{TypeUnsubscribe, sFrom, sFrom, true},
		{TypeUnsubscribe, sFromOut, sFrom, true},
		{TypeUnsubscribe, sBoth, sFrom, true},
		// A.2.3 subscribed (approval, or pre-approval per §3.4.2)
		{TypeSubscribed, sNone, sNonePre, false},
		{TypeSubscribed, sNoneItem, sNonePre, false},
		{TypeSubscribed, sNoneOut, sNoneOutPre, false},
		{TypeSubscribed, sNoneIn, sFrom, true},
		{TypeSubscribed, sNoneOutIn, sFromOut, true},
		{TypeSubscribed, sTo, sToPre, false},
		{TypeSubscribed, sToIn, sBoth, true},
		{TypeSubscribed, sFrom, sFrom, true},
		{TypeSubscribed, sFromOut, sFromOut, true},
		{TypeSubscribed, sBoth, sBoth, true},
		{TypeSubscribed, sNonePre, sNonePre, false},
		// A.2.4 unsubscribed (denial, cancellation, pre-approval cancelled)
		{TypeUnsubscribed, sNoneItem, sNoneItem, true},
		{TypeUnsubscribed, sNoneOut, sNoneOut, true},
		{TypeUnsubscribed, sNoneIn, sNone, true},
		{TypeUnsubscribed, sNoneOutIn, sNoneOut, true},
		{TypeUnsubscribed, sTo, sTo, true},
		{TypeUnsubscribed, sToIn, sTo, true},
		{TypeUnsubscribed, sFrom, sNoneItem, true},
		{TypeUnsubscribed, sFromOut, sNoneOut, true},
		{TypeUnsubscribed, sBoth, sTo, true},
		{TypeUnsubscribed, sNonePre, sNoneItem, true},
		{TypeUnsubscribed, sToPre, sTo, true},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.typ, name(tc.from)), func(t *testing.T) {
			got, route := outbound(tc.from, tc.typ)
			if got != tc.want || route != tc.route {
				t.Errorf("got %s route=%v, want %s route=%v", name(got), route, name(tc.want), tc.route)
			}
		})
	}
}

// TestInbound checks RFC 6121 Appendix A.3 (contact → user).
func TestInbound(t *testing.T) {
	for _, tc := range []struct {
		typ     string
		from    state
		want    state
		deliver bool
		reply   string
	}{
		// A.3.1 subscribe
		{TypeSubscribe, sNone, sNoneIn, true, ""},
		{TypeSubscribe, sNoneItem, sNoneItemIn, true, ""},
		{TypeSubscribe, sNoneOut, sNoneOutIn, true, ""},
		{TypeSubscribe, sNoneIn, sNoneIn, true, ""},
		{TypeSubscribe, sNoneOutIn, sNoneOutIn, true, ""},
		{TypeSubscribe, sTo, sToIn, true, ""},
		{TypeSubscribe, sToIn, sToIn, true, ""},
		{TypeSubscribe, sFrom, sFrom, false, TypeSubscribed},
		{TypeSubscribe, sFromOut, sFromOut, false, TypeSubscribed},
		{TypeSubscribe, sBoth, sBoth, false, TypeSubscribed},
		// §3.4: pre-approved requests are approved at once
		{TypeSubscribe, sNonePre, sFrom, false, TypeSubscribed},
		{TypeSubscribe, sNoneOutPre, sFromOut, false, TypeSubscribed},
		{TypeSubscribe, sToPre, sBoth, false, TypeSubscribed},
		// A.3.2 unsubscribe
		{TypeUnsubscribe, sNone, sNone, false, ""},
		{TypeUnsubscribe, sNoneOut, sNoneOut, false, ""},
		{TypeUnsubscribe, sNoneIn, sNone, true, ""},
		{TypeUnsubscribe, sNoneOutIn, sNoneOut, true, ""},
		{TypeUnsubscribe, sTo, sTo, false, ""},
		{TypeUnsubscribe, sToIn, sTo, true, ""},
		{TypeUnsubscribe, sFrom, sNoneItem, true, ""},
		{TypeUnsubscribe, sFromOut, sNoneOut, true, ""},
		{TypeUnsubscribe, sBoth, sTo, true, ""},
		// A.3.3 subscribed
		{TypeSubscribed, sNone, sNone, false, ""},
		{TypeSubscribed, sNoneOut, sTo, true, ""},
		{TypeSubscribed, sNoneIn, sNoneIn, false, ""},
		{TypeSubscribed, sNoneOutIn, sToIn, true, ""},
		{TypeSubscribed, sTo, sTo, false, ""},
		{TypeSubscribed, sToIn, sToIn, false, ""},
		{TypeSubscribed, sFrom, sFrom, false, ""},
		{TypeSubscribed, sFromOut, sBoth, true, ""},
		{TypeSubscribed, sBoth, sBoth, false, ""},
		// A.3.4 unsubscribed
		{TypeUnsubscribed, sNone, sNone, false, ""},
		{TypeUnsubscribed, sNoneOut, sNoneItem, true, ""},
		{TypeUnsubscribed, sNoneIn, sNoneIn, false, ""},
		{TypeUnsubscribed, sNoneOutIn, sNoneItemIn, true, ""},
		{TypeUnsubscribed, sTo, sNoneItem, true, ""},
		{TypeUnsubscribed, sToIn, sNoneItemIn, true, ""},
		{TypeUnsubscribed, sFrom, sFrom, false, ""},
		{TypeUnsubscribed, sFromOut, sFrom, true, ""},
		{TypeUnsubscribed, sBoth, sFrom, true, ""},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.typ, name(tc.from)), func(t *testing.T) {
			got, deliver, reply := inbound(tc.from, tc.typ)
			if got != tc.want || deliver != tc.deliver || reply != tc.reply {
				t.Errorf("got %s deliver=%v reply=%q, want %s deliver=%v reply=%q",
					name(got), deliver, reply, name(tc.want), tc.deliver, tc.reply)
			}
		})
	}
}

func TestItemChanged(t *testing.T) {
	if itemChanged(sNoneIn, sNone) {
		t.Error("a pending request is not part of the roster item")
	}
	if !itemChanged(sNone, sNoneItemOut) || !itemChanged(sTo, sBoth) || !itemChanged(sNoneItem, sNonePre) {
		t.Error("visible changes not detected")
	}
}
