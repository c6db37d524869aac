package register_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/stream"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"

	_ "github.com/metronome-xmpp/metronome/modules/register"
)

func TestScripts(t *testing.T) {
	xmpptest.RunScripts(t, "testdata", xmpptest.Modules("register"))
}

// probe records the user/* events fired on the host.
type probe struct{}

var (
	probeMu     sync.Mutex
	probeEvents []string
)

func (*probe) Info() module.Info {
	return module.Info{ID: "test.registerprobe", New: func() module.Module { return new(probe) }}
}

func (*probe) Provision(h module.Host) error {
	for _, name := range []string{module.EventUserCreated, module.EventUserDeleted} {
		h.Hook(name, event.PrioDefault, func(_ context.Context, ev *event.Event) event.Verdict {
			probeMu.Lock()
			probeEvents = append(probeEvents, ev.Name+" "+ev.Data.(module.UserEvent).User.String())
			probeMu.Unlock()
			return event.Continue
		})
	}
	return nil
}

func init() { module.Register(new(probe)) }

func takeEvents() []string {
	probeMu.Lock()
	defer probeMu.Unlock()
	out := probeEvents
	probeEvents = nil
	return out
}

// raw is an unauthenticated client stream after STARTTLS.
type raw struct {
	t        *testing.T
	conn     net.Conn
	dec      *xmlstream.Decoder
	features *stanza.Element
}

func dialPreAuth(t *testing.T, srv *xmpptest.Server) *raw {
	t.Helper()
	conn, err := net.DialTimeout("tcp", srv.C2SAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := &raw{t: t, conn: conn, dec: xmlstream.NewDecoder(conn, xmlstream.Limits{MaxBytes: 1 << 20})}
	r.open()
	r.send(`<starttls xmlns="` + stream.NSTLS + `"/>`)
	if el := r.recv(); el.Name != "proceed" {
		t.Fatalf("starttls: %s", el)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	r.conn = tc
	r.dec.Reset(tc)
	r.open()
	return r
}

func (r *raw) open() {
	r.t.Helper()
	r.send(`<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="` + stream.NS + `" to="localhost" version="1.0">`)
	if _, err := r.dec.Header(); err != nil {
		r.t.Fatal(err)
	}
	r.features = r.recv()
}

func (r *raw) send(s string) {
	r.t.Helper()
	if _, err := fmt.Fprint(r.conn, s); err != nil {
		r.t.Fatal(err)
	}
}

func (r *raw) recv() *stanza.Element {
	r.t.Helper()
	el, err := r.dec.Element()
	if err != nil {
		r.t.Fatal(err)
	}
	return el
}

// expect sends an iq and matches the answer against pattern.
func (r *raw) expect(req, pattern string) *stanza.Element {
	r.t.Helper()
	r.send(req)
	got := r.recv()
	want, err := xmlstream.ParseNS([]byte(pattern), stanza.NSClient)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := xmpptest.Match(want, got, nil); err != nil {
		r.t.Fatalf("received\n\t%s\nexpected\n\t%s\n%v", got, want, err)
	}
	return got
}

func regSet(id, user, pw string) string {
	return `<iq type="set" id="` + id + `"><query xmlns="jabber:iq:register"><username>` + user +
		`</username><password>` + pw + `</password></query></iq>`
}

func errPattern(id, typ, cond string) string {
	return `<iq type="error" id="` + id + `"><error type="` + typ + `"><` + cond +
		` xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`
}

func TestRegistrationDisabled(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("register"))
	r := dialPreAuth(t, srv)
	if r.features.Child("http://jabber.org/features/iq-register", "register") != nil {
		t.Errorf("registration feature offered although disabled: %s", r.features)
	}
	// XEP-0077 §3.1: a host without in-band registration answers service-unavailable.
	r.expect(`<iq type="get" id="g1"><query xmlns="jabber:iq:register"/></iq>`, errPattern("g1", "cancel", "service-unavailable"))
	r.expect(regSet("s1", "bill", "Calliope-long"), errPattern("s1", "cancel", "service-unavailable"))
	if _, err := srv.Connect("bill@localhost/x", "Calliope-long", false); err == nil {
		t.Fatal("an account was created although registration is disabled")
	}
}

const allow = "[modules.register]\nallow_registration = true\n"

func TestRegistration(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("register", "registerprobe"), xmpptest.Config(allow))
	takeEvents()
	r := dialPreAuth(t, srv)
	if r.features.Child("http://jabber.org/features/iq-register", "register") == nil {
		t.Errorf("no registration stream feature: %s", r.features)
	}
	// §3.1: the fields, and the §4 form.
	r.expect(`<iq type="get" id="g1" to="localhost"><query xmlns="jabber:iq:register"/></iq>`,
		`<iq type="result" id="g1"><query xmlns="jabber:iq:register"><instructions/><username/><password/>
			<x xmlns="jabber:x:data" type="form">
				<field var="FORM_TYPE" type="hidden"><value>jabber:iq:register</value></field>
				<field var="username"><required/></field><field var="password"><required/></field>
			</x></query></iq>`)
	r.expect(regSet("s1", "Bill", "Calliope-long"), `<iq type="result" id="s1"/>`)
	if ev := takeEvents(); len(ev) != 1 || ev[0] != "user/created bill@localhost" {
		t.Errorf("events = %q, want user/created for bill (nodeprep'd)", ev)
	}
	c := srv.Login(t, "bill@localhost/globe", "Calliope-long")
	c.Send(t, `<iq type="get" id="q1"><query xmlns="jabber:iq:register"/></iq>`)
	c.Expect(t, `<iq type="result" id="q1"><query xmlns="jabber:iq:register"><registered/><username>bill</username></query></iq>`)
}

func TestRegistrationForm(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("register"), xmpptest.Config(allow))
	r := dialPreAuth(t, srv)
	r.expect(`<iq type="set" id="f1"><query xmlns="jabber:iq:register"><x xmlns="jabber:x:data" type="submit">
		<field var="FORM_TYPE" type="hidden"><value>jabber:iq:register</value></field>
		<field var="username"><value>juliet</value></field>
		<field var="password"><value>R0m30-R0m30</value></field>
	</x></query></iq>`, `<iq type="result" id="f1"/>`)
	srv.Login(t, "juliet@localhost/balcony", "R0m30-R0m30")
}

func TestRegistrationErrors(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("register"), xmpptest.Config(allow+"throttle_max = 0\n"))
	srv.CreateUser(t, "bill@localhost", "password")
	r := dialPreAuth(t, srv)
	for _, tc := range []struct {
		name, req, typ, cond string
	}{
		// §3.1: a username conflict is 409 conflict; the error does not echo the password.
		{"conflict", regSet("e1", "bill", "m1cro$oft-long"), "cancel", "conflict"},
		{"conflict after nodeprep", regSet("e2", "BILL", "m1cro$oft-long"), "cancel", "conflict"},
		{"blocked name", regSet("e3", "admin", "m1cro$oft-long"), "cancel", "conflict"},
		// §3.1: missing or empty fields are not-acceptable.
		{"empty password", regSet("e4", "newbie", ""), "modify", "not-acceptable"},
		{"no username", `<iq type="set" id="e5"><query xmlns="jabber:iq:register"><password>long-enough</password></query></iq>`, "modify", "not-acceptable"},
		{"short password", regSet("e6", "newbie", "short"), "modify", "not-acceptable"},
		{"invalid username", regSet("e7", "a b", "long-enough"), "modify", "jid-malformed"},
		// §3.2 error table: removing before being registered.
		{"remove", `<iq type="set" id="e8"><query xmlns="jabber:iq:register"><remove/></query></iq>`, "wait", "unexpected-request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.t = t
			id := tc.req[strings.Index(tc.req, `id="`)+4:]
			id = id[:strings.IndexByte(id, '"')]
			got := r.expect(tc.req, errPattern(id, tc.typ, tc.cond))
			if strings.Contains(got.String(), "m1cro") || got.Child("jabber:iq:register", "query") != nil {
				t.Errorf("error echoes the request: %s", got)
			}
		})
	}
}

func TestRegistrationThrottle(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("register"), xmpptest.Config(allow+"throttle_max = 1\nthrottle_period = \"1h\"\n"))
	r := dialPreAuth(t, srv)
	r.expect(regSet("t1", "first", "long-enough"), `<iq type="result" id="t1"/>`)
	// §3.1.1: too many registrations from the same address.
	r2 := dialPreAuth(t, srv)
	r2.expect(regSet("t2", "second", "long-enough"), errPattern("t2", "wait", "not-acceptable"))
}

func TestChangePassword(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("register"))
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	c.Send(t, `<iq type="set" id="c1"><query xmlns="jabber:iq:register"><username>romeo</username><password>n3w-passw0rd</password></query></iq>`)
	c.Expect(t, `<iq type="result" id="c1"/>`)
	if _, err := srv.Connect("romeo@localhost/x", "password", false); err == nil {
		t.Error("the old password still works")
	}
	srv.Login(t, "romeo@localhost/y", "n3w-passw0rd")
}

func TestRemove(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("register", "registerprobe"))
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	takeEvents()
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	other := srv.Login(t, "romeo@localhost/garden", "password")
	juliet := srv.Login(t, "juliet@localhost/balcony", "password")
	c.Send(t, `<iq type="set" id="u1"><query xmlns="jabber:iq:register"><remove/></query></iq>`)
	c.Expect(t, `<iq type="result" id="u1"/>`)
	// §3.2: then a not-authorized stream error on every session of the account.
	for _, s := range []*xmpptest.Client{c, other} {
		el, err := s.RecvTimeout(5 * time.Second)
		if err != nil {
			t.Fatalf("no stream error: %v", err)
		}
		if el.Name != "error" || el.Space != stream.NS || el.Child("", "not-authorized") == nil {
			t.Fatalf("got %s, want a not-authorized stream error", el)
		}
		if el, err := s.RecvTimeout(5 * time.Second); err == nil {
			t.Fatalf("stream still open: %s", el)
		}
	}
	juliet.ExpectNothing(t)
	if ev := takeEvents(); len(ev) != 1 || ev[0] != "user/deleted romeo@localhost" {
		t.Errorf("events = %q, want user/deleted for romeo", ev)
	}
	acc, _ := srv.Core.Accounts("localhost")
	if ok, err := acc.Exists(context.Background(), "romeo"); ok || err != nil {
		t.Errorf("account still exists (%v, %v)", ok, err)
	}
	if _, err := srv.Connect("romeo@localhost/x", "password", false); err == nil {
		t.Error("the removed account can still log in")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []string{
		"[modules.register]\nthrottle_max = 2\nthrottle_period = \"0s\"\n",
		"[modules.register]\nmin_password_length = -1\n",
		"[modules.register]\nblocked_usernames = [\"a@b\"]\n",
	} {
		t.Run(cfg, func(t *testing.T) {
			ft := &fatalRecorder{TB: t}
			func() {
				defer func() { recover() }()
				xmpptest.NewServer(ft, xmpptest.Modules("register"), xmpptest.Config(cfg))
			}()
			if !ft.failed {
				t.Errorf("config accepted:\n%s", cfg)
			}
		})
	}
}

// fatalRecorder turns Fatalf into a recorded failure and stops the caller.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.failed = true
	panic("fatal")
}
