package core_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// XEP-0198 stream management, over real sockets.

const nsSM = "urn:xmpp:sm:3"

// recvNonza returns the next element, failing the test after the timeout.
func recv(t *testing.T, c *xmpptest.Client) *stanza.Element {
	t.Helper()
	el, err := c.RecvTimeout(10 * time.Second)
	if err != nil {
		t.Fatalf("%s: %v", c.JID, err)
	}
	return el
}

// enableSM enables stream management (with resumption if resume) and
// returns the SM-ID.
func enableSM(t *testing.T, c *xmpptest.Client, resume bool) string {
	t.Helper()
	if c.Features.Child(nsSM, "sm") == nil {
		t.Fatalf("no <sm/> stream feature: %s", c.Features)
	}
	if resume {
		c.Send(t, `<enable xmlns="urn:xmpp:sm:3" resume="true"/>`)
	} else {
		c.Send(t, `<enable xmlns="urn:xmpp:sm:3"/>`)
	}
	el := recv(t, c)
	if el.Space != nsSM || el.Name != "enabled" {
		t.Fatalf("enable: got %s", el)
	}
	if resume && (el.Attr("id") == "" || el.Attr("resume") != "true" || el.Attr("max") == "") {
		t.Fatalf("enable resume: got %s", el)
	}
	if !resume && el.Attr("resume") != "" {
		t.Fatalf("enable without resume: got %s", el)
	}
	return el.Attr("id")
}

// bodies reads elements until it has n messages, answering nothing, and
// returns their bodies; <r/> requests are counted in reqs.
func bodies(t *testing.T, c *xmpptest.Client, n int) (got []string, reqs int) {
	t.Helper()
	for len(got) < n {
		el := recv(t, c)
		switch {
		case el.Space == nsSM && el.Name == "r":
			reqs++
		case el.Name == "message":
			got = append(got, el.ChildText("", "body"))
		}
	}
	return got, reqs
}

// noStanza fails if a stanza (not an SM element) arrives within a short
// quiet period.
func noStanza(t *testing.T, c *xmpptest.Client) {
	t.Helper()
	for {
		el, err := c.RecvTimeout(300 * time.Millisecond)
		if err != nil {
			return
		}
		if el.Space != nsSM {
			t.Fatalf("%s received unexpected %s", c.JID, el)
		}
	}
}

func sendMessages(t *testing.T, from *xmpptest.Client, to string, first, last int) {
	t.Helper()
	for i := first; i <= last; i++ {
		from.Send(t, fmt.Sprintf(`<message to="%s" type="chat" id="m%d"><body>%d</body></message>`, to, i, i))
	}
}

func wantBodies(t *testing.T, got []string, first, last int) {
	t.Helper()
	var want []string
	for i := first; i <= last; i++ {
		want = append(want, strconv.Itoa(i))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("messages: got %v, want %v", got, want)
	}
}

// offlineBodies logs juliet@localhost/phone in, sends her initial
// presence and returns the client and the bodies of the messages that
// arrive before the echo of that presence: her offline messages.
func offlineBodies(t *testing.T, srv *xmpptest.Server) (*xmpptest.Client, []string) {
	t.Helper()
	c := srv.Login(t, "juliet@localhost/phone", "password")
	c.Send(t, `<presence/>`)
	var got []string
	for {
		el := recv(t, c)
		if el.Name == "presence" && el.From() == "juliet@localhost/phone" {
			return c, got
		}
		if el.Name == "message" {
			got = append(got, el.ChildText("", "body"))
		}
	}
}

// untilStreamError reads c's elements, passing each to each (if not nil),
// until a stream error, which must have the condition cond.
func untilStreamError(t *testing.T, c *xmpptest.Client, cond string, each func(*stanza.Element)) {
	t.Helper()
	for {
		el := recv(t, c)
		if el.Name == "error" {
			if el.Child("urn:ietf:params:xml:ns:xmpp-streams", cond) == nil {
				t.Fatalf("stream error: %s, want %s", el, cond)
			}
			return
		}
		if each != nil {
			each(el)
		}
	}
}

// waitSessions waits (up to 10 s) until the server has n sessions.
func waitSessions(srv *xmpptest.Server, n int) {
	deadline := time.Now().Add(10 * time.Second)
	for srv.Core.SessionCount() != n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSMAcks(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message", "ping"))
	srv.CreateUser(t, "juliet@localhost", "password")
	c := srv.Login(t, "juliet@localhost/balcony", "password")

	// <r/> before <enable/>: <failed/>.
	c.Send(t, `<r xmlns="urn:xmpp:sm:3"/>`)
	if el := recv(t, c); el.Name != "failed" || el.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "unexpected-request") == nil {
		t.Fatalf("r before enable: %s", el)
	}
	enableSM(t, c, false)
	c.Send(t, `<iq type="get" id="p1" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`)
	c.Send(t, `<iq type="get" id="p2" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`)
	c.Send(t, `<r xmlns="urn:xmpp:sm:3"/>`)
	// Two results, and an ack that counts both requests; the server asks
	// for an ack of what it sent.
	var results, reqs int
	var ack *stanza.Element
	for ack == nil || results < 2 || reqs == 0 {
		el := recv(t, c)
		switch {
		case el.Name == "iq" && el.Type() == "result":
			results++
		case el.Space == nsSM && el.Name == "a":
			ack = el
		case el.Space == nsSM && el.Name == "r":
			reqs++
		default:
			t.Fatalf("unexpected %s", el)
		}
	}
	if ack.Attr("h") != "2" {
		t.Fatalf("ack: %s, want h=2", ack)
	}
	c.Send(t, `<a xmlns="urn:xmpp:sm:3" h="2"/>`)
	noStanza(t, c)

	// An h above what was sent: XEP-0198 §5's stream error.
	c.Send(t, `<a xmlns="urn:xmpp:sm:3" h="7"/>`)
	el := recv(t, c)
	if el.Name != "error" || el.Child("", "undefined-condition") == nil && el.Child("urn:ietf:params:xml:ns:xmpp-streams", "undefined-condition") == nil {
		t.Fatalf("h too high: %s", el)
	}
	if tooHigh := el.Child(nsSM, "handled-count-too-high"); tooHigh == nil || tooHigh.Attr("h") != "7" || tooHigh.Attr("send-count") != "2" {
		t.Fatalf("h too high: %s", el)
	}
}

func TestSMSecondEnableFails(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message"))
	srv.CreateUser(t, "juliet@localhost", "password")
	c := srv.Login(t, "juliet@localhost/balcony", "password")
	enableSM(t, c, true)
	c.Send(t, `<enable xmlns="urn:xmpp:sm:3"/>`)
	if el := recv(t, c); el.Name != "failed" || el.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "unexpected-request") == nil {
		t.Fatalf("second enable: %s", el)
	}
	if el := recv(t, c); el.Name != "error" {
		t.Fatalf("second enable: want a stream error, got %s", el)
	}
}

// smPair logs in romeo and juliet, juliet with resumable stream
// management.
func smPair(t *testing.T, opts ...xmpptest.Option) (*xmpptest.Server, *xmpptest.Client, *xmpptest.Client, string) {
	t.Helper()
	opts = append([]xmpptest.Option{xmpptest.Modules("roster", "presence", "message", "offline")}, opts...)
	srv := xmpptest.NewServer(t, opts...)
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	juliet := srv.Login(t, "juliet@localhost/balcony", "password")
	id := enableSM(t, juliet, true)
	juliet.Send(t, `<presence/>`)
	// The echo of her presence is the first stanza she is sent.
	if el := recv(t, juliet); el.Name != "presence" {
		t.Fatalf("juliet: %s, want her presence", el)
	}
	return srv, romeo, juliet, id
}

// TestSMResumeAfterConnectionLoss kills the client's TCP connection
// without a close, mid-conversation, and resumes: every message arrives
// once, in order.
func TestSMResumeAfterConnectionLoss(t *testing.T) {
	srv, romeo, juliet, id := smPair(t)
	to := "juliet@localhost/balcony"
	sendMessages(t, romeo, to, 1, 3)
	got, _ := bodies(t, juliet, 3)
	wantBodies(t, got, 1, 3)
	// Juliet acknowledges her presence and the first two messages, then
	// her connection dies.
	juliet.Send(t, `<a xmlns="urn:xmpp:sm:3" h="3"/>`)
	juliet.Kill()
	sendMessages(t, romeo, to, 4, 6)

	c, answer, err := srv.Resume(to, "password", id, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if answer.Name != "resumed" || answer.Attr("previd") != id || answer.Attr("h") != "1" {
		t.Fatalf("resume: %s (want h=1: the presence)", answer)
	}
	// Message 3 was never acknowledged: sent again, then 4–6.
	got, _ = bodies(t, c, 4)
	wantBodies(t, got, 3, 6)
	noStanza(t, c)

	// The resumed stream works both ways and keeps counting.
	c.Send(t, `<message to="romeo@localhost/orchard" type="chat" id="back"><body>back</body></message>`)
	romeo.Expect(t, `<message from="juliet@localhost/balcony" type="chat" id="back"><body>back</body></message>`)
	c.Send(t, `<r xmlns="urn:xmpp:sm:3"/>`)
	for {
		el := recv(t, c)
		if el.Space == nsSM && el.Name == "a" {
			if el.Attr("h") != "2" {
				t.Fatalf("ack after resume: %s, want h=2", el)
			}
			break
		}
	}
	// The SM-ID is not reusable while resumed elsewhere... and after a
	// clean close, a resumption fails with the final h.
	c.Send(t, `<a xmlns="urn:xmpp:sm:3" h="6"/>`)
	c.Close()
	c2, answer, err := srv.Resume(to, "password", id, 6)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if answer.Name != "failed" || answer.Attr("h") != "2" || answer.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "item-not-found") == nil {
		t.Fatalf("resume after close: %s", answer)
	}
	// The client may bind instead.
	c2.Bind(t, "balcony")
	if el := recv(t, c2); el.Name != "iq" || el.Type() != "result" {
		t.Fatalf("bind after failed resume: %s", el)
	}
}

// TestSMResumeBeforeServerNoticed resumes while the old connection still
// looks alive to the server: the old stream gets <conflict/>.
func TestSMResumeBeforeServerNoticed(t *testing.T) {
	srv, romeo, juliet, id := smPair(t)
	to := "juliet@localhost/balcony"
	sendMessages(t, romeo, to, 1, 2)
	got, _ := bodies(t, juliet, 2)
	wantBodies(t, got, 1, 2)

	c := srv.Resumed(t, to, "password", id, 0)
	// The old stream ends with a conflict.
	for {
		el, err := juliet.RecvTimeout(10 * time.Second)
		if err != nil {
			t.Fatalf("old stream: no conflict before %v", err)
		}
		if el.Name == "error" {
			if el.Child("urn:ietf:params:xml:ns:xmpp-streams", "conflict") == nil {
				t.Fatalf("old stream: %s", el)
			}
			break
		}
	}
	// h=0: the presence echo and both messages again.
	got, _ = bodies(t, c, 2)
	wantBodies(t, got, 1, 2)
	sendMessages(t, romeo, to, 3, 3)
	got, _ = bodies(t, c, 1)
	wantBodies(t, got, 3, 3)
}

// TestSMResumptionTimeout lets the resumption time out: the messages the
// client never acknowledged go to offline storage, with the time they
// were first sent, and are delivered once at the next login.
func TestSMResumptionTimeout(t *testing.T) {
	srv, romeo, juliet, id := smPair(t, xmpptest.Config("[c2s]\nsm_resume_timeout = \"1s\""))
	to := "juliet@localhost/balcony"
	sendMessages(t, romeo, to, 1, 2)
	got, _ := bodies(t, juliet, 2)
	wantBodies(t, got, 1, 2)
	juliet.Send(t, `<a xmlns="urn:xmpp:sm:3" h="2"/>`) // presence and message 1
	juliet.Kill()
	sendMessages(t, romeo, to, 3, 3)
	// Romeo sees juliet go unavailable once the session ends.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if srv.Core.SessionCount() == 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := srv.Core.SessionCount(); n != 1 {
		t.Fatalf("sessions: %d, want 1 (the hibernated one ended)", n)
	}
	c, answer, err := srv.Resume(to, "password", id, 2)
	if err != nil {
		t.Fatal(err)
	}
	if answer.Name != "failed" || answer.Attr("h") != "1" {
		t.Fatalf("late resume: %s", answer)
	}
	c.Close()
	again := srv.Login(t, "juliet@localhost/phone", "password")
	again.Send(t, `<presence/>`)
	var stamps []string
	presence := false
	for len(stamps) < 2 || !presence {
		el := recv(t, again)
		presence = presence || el.Name == "presence"
		if el.Name == "message" {
			if d := el.Child("urn:xmpp:delay", "delay"); d == nil {
				t.Fatalf("offline message without delay: %s", el)
			} else {
				stamps = append(stamps, el.ChildText("", "body")+"@"+d.Attr("stamp"))
			}
		}
	}
	if !strings.HasPrefix(stamps[0], "2@") || !strings.HasPrefix(stamps[1], "3@") {
		t.Fatalf("offline: %v, want messages 2 and 3", stamps)
	}
	noStanza(t, again)
}

// TestSMAckTimeoutWithoutResumption: a client with stream management but
// no resumption that goes silent after an ack request loses its stream
// with <connection-timeout/> after sm_ack_timeout, and what it did not
// acknowledge is stored offline. The client keeps its socket open and
// reads: only its silence counts.
func TestSMAckTimeoutWithoutResumption(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message", "offline"),
		xmpptest.Config("[c2s]\nsm_ack_timeout = \"1s\""))
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	juliet := srv.Login(t, "juliet@localhost/balcony", "password")
	enableSM(t, juliet, false)
	juliet.Send(t, `<presence/>`)
	start := time.Now()
	sendMessages(t, romeo, "juliet@localhost/balcony", 1, 2)
	untilStreamError(t, juliet, "connection-timeout", nil)
	if d := time.Since(start); d < time.Second {
		t.Fatalf("stream ended after %v, before sm_ack_timeout", d)
	}
	_, got := offlineBodies(t, srv)
	wantBodies(t, got, 1, 2)
}

// TestSMShutdownStoresUnacked stops the server with a hibernated session:
// its unacknowledged messages are stored before the server exits.
func TestSMShutdownStoresUnacked(t *testing.T) {
	srv, romeo, juliet, _ := smPair(t)
	to := "juliet@localhost/balcony"
	sendMessages(t, romeo, to, 1, 1)
	got, _ := bodies(t, juliet, 1)
	wantBodies(t, got, 1, 1)
	juliet.Kill()
	sendMessages(t, romeo, to, 2, 2)
	time.Sleep(200 * time.Millisecond)
	// A second server on the same storage stands for the restart.
	driver := srv.Driver
	srv.Stop(t)
	srv2 := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message", "offline"), xmpptest.Driver(driver))
	c := srv2.Login(t, "juliet@localhost/balcony", "password")
	c.Send(t, `<presence/>`)
	got, _ = bodies(t, c, 2)
	wantBodies(t, got, 1, 2)
}

// TestSMUnackedLeftToTheArchive: a client that fetched its archive
// catches up from there, so the messages its session never acknowledged
// are not stored offline as well (they would arrive twice); a client
// that never queried the archive gets them offline.
func TestSMUnackedLeftToTheArchive(t *testing.T) {
	for _, queried := range []bool{true, false} {
		t.Run(fmt.Sprintf("queried=%v", queried), func(t *testing.T) {
			srv, romeo, juliet, _ := smPair(t, xmpptest.Modules("roster", "presence", "message", "offline", "mam"),
				xmpptest.Config("[c2s]\nsm_resume_timeout = \"1s\""))
			if queried {
				juliet.Send(t, `<iq type="set" id="q1"><query xmlns="urn:xmpp:mam:2" queryid="q1"/></iq>`)
				for {
					if el := recv(t, juliet); el.Name == "iq" {
						break
					}
				}
			}
			sendMessages(t, romeo, "juliet@localhost/balcony", 1, 1)
			got, _ := bodies(t, juliet, 1)
			wantBodies(t, got, 1, 1)
			juliet.Kill()
			waitSessions(srv, 1)
			c, offline := offlineBodies(t, srv)
			if queried && len(offline) != 0 || !queried && strings.Join(offline, ",") != "1" {
				t.Fatalf("offline: %v", offline)
			}
			// The archive has it either way.
			c.Send(t, `<iq type="set" id="q2"><query xmlns="urn:xmpp:mam:2" queryid="q2"/></iq>`)
			n := 0
			for {
				el := recv(t, c)
				if el.Name == "iq" {
					break
				}
				if el.Child("urn:xmpp:mam:2", "result") != nil {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("archive: %d messages, want 1", n)
			}
		})
	}
}

// TestSMPingAnsweredWhileHibernated: the server answers a ping to a
// hibernated client's full JID on its behalf (XEP-0410 rooms ping their
// occupants); other IQs wait for the resumption.
func TestSMPingAnsweredWhileHibernated(t *testing.T) {
	srv, romeo, juliet, id := smPair(t)
	juliet.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		hib := false
		for _, s := range srv.Core.Sessions("localhost") {
			hib = hib || s.Hibernated()
		}
		if hib {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	romeo.Send(t, `<iq type="get" id="p1" to="juliet@localhost/balcony"><ping xmlns="urn:xmpp:ping"/></iq>`)
	romeo.Expect(t, `<iq type="result" id="p1" from="juliet@localhost/balcony"/>`)
	romeo.Send(t, `<iq type="get" id="v1" to="juliet@localhost/balcony"><query xmlns="jabber:iq:version"/></iq>`)
	c := srv.Resumed(t, "juliet@localhost/balcony", "password", id, 1)
	if el := recv(t, c); el.Name != "iq" || el.ID() != "v1" {
		t.Fatalf("after resume: %s, want the version request", el)
	}
}

// TestSMTooManyUnacked: a client that never acknowledges is closed past
// sm_max_unacked, and what it did not acknowledge is stored offline, in
// order, once.
func TestSMTooManyUnacked(t *testing.T) {
	srv, romeo, juliet, _ := smPair(t, xmpptest.Config("[c2s]\nsm_max_unacked = 5"))
	// The presence echo and messages 1–4 fill the window; 5 ends the
	// session.
	sendMessages(t, romeo, "juliet@localhost/balcony", 1, 5)
	untilStreamError(t, juliet, "policy-violation", func(el *stanza.Element) {
		if el.Name == "message" && el.ChildText("", "body") == "5" {
			t.Fatalf("message 5 was written past the limit")
		}
	})
	waitSessions(srv, 1)
	sendMessages(t, romeo, "juliet@localhost", 6, 6)
	_, got := offlineBodies(t, srv)
	wantBodies(t, got, 1, 6)
}

// TestSMUnackedBytesBounded: a client that reads but never acknowledges
// cannot make the server keep more than 4 MiB for it: past that its
// session ends, and every message is stored offline once.
func TestSMUnackedBytesBounded(t *testing.T) {
	srv, romeo, juliet, _ := smPair(t, xmpptest.Config("[c2s]\nread_rate = 0"))
	big := strings.Repeat("x", 240000)
	for i := 1; i <= 20; i++ {
		romeo.Send(t, fmt.Sprintf(`<message to="juliet@localhost/balcony" type="chat" id="m%d"><body>%d %s</body></message>`, i, i, big))
	}
	untilStreamError(t, juliet, "policy-violation", nil)
	// Romeo's stream is processed in order: once his ping is answered,
	// all 20 messages were routed. The session is unbound before its
	// 4 MiB are handed over to offline storage; the new session's initial
	// presence waits for the handover.
	romeo.Send(t, `<iq type="get" id="done" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`)
	for el := recv(t, romeo); el.ID() != "done"; el = recv(t, romeo) {
	}
	waitSessions(srv, 1)
	_, bodies := offlineBodies(t, srv)
	var got []string
	for _, b := range bodies {
		n, _, _ := strings.Cut(b, " ")
		got = append(got, n)
	}
	// Messages that arrived while the session ended wait for its
	// handover: the order is kept.
	wantBodies(t, got, 1, 20)
}

// TestSMHandoverBounceToOwnResource: a message from the user's other
// resource that the closing session never acknowledged goes back to that
// resource at once; the bounce does not wait for the handover it is
// part of.
func TestSMHandoverBounceToOwnResource(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "message", "offline"))
	srv.CreateUser(t, "juliet@localhost", "password")
	desk := srv.Login(t, "juliet@localhost/desk", "password")
	desk.Send(t, `<presence/>`)
	phone := srv.Login(t, "juliet@localhost/phone", "password")
	enableSM(t, phone, false)
	phone.Send(t, `<presence/>`)
	desk.Send(t, `<message to="juliet@localhost/phone" type="chat" id="m1"><body>note to self</body></message>`)
	for el := recv(t, phone); el.Name != "message"; el = recv(t, phone) {
	}
	start := time.Now()
	phone.Close()
	for {
		el := recv(t, desk)
		if el.Name == "message" && el.ID() == "m1" {
			if el.Type() != "error" {
				t.Fatalf("got %s, want the bounce", el)
			}
			break
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("bounce after %v: it waited for its own handover", d)
	}
}
