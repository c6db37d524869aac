package disco_test

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/stream"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"

	_ "github.com/metronome-xmpp/metronome/modules/disco"
	_ "github.com/metronome-xmpp/metronome/modules/ping"
	// Only for TestWithRosterModule: the modules register themselves.
	_ "github.com/metronome-xmpp/metronome/modules/presence"
	_ "github.com/metronome-xmpp/metronome/modules/roster"
)

const testConfig = `[modules.disco]
items = [{ jid = "conference.localhost", name = "Chatrooms" }]
[modules.disco.contact_info]
abuse = ["mailto:abuse@localhost"]
admin = ["xmpp:admin@localhost", "mailto:admin@localhost"]
`

func TestScripts(t *testing.T) {
	xmpptest.RunScripts(t, "testdata", xmpptest.Modules("disco", "ping"), xmpptest.Config(testConfig))
}

// fakeRoster stands for the roster module: juliet@localhost shares
// presence with romeo@localhost ("from"), nurse@localhost only receives
// romeo's presence the other way round ("to").
type fakeRoster struct{}

func (*fakeRoster) Info() module.Info {
	return module.Info{ID: "test.discofakeroster", New: func() module.Module { return new(fakeRoster) }}
}

func (*fakeRoster) Provision(h module.Host) error {
	h.Provide("roster", rosterAPI{})
	// Stand-in for the presence module: remember the broadcast presence so
	// that the session counts as available.
	h.Hook(module.EventPresenceOut, event.PrioDefault, func(_ context.Context, ev *event.Event) event.Verdict {
		if s, ok := module.SessionOf(ev); ok {
			s.SetPresence(ev.Stanza)
		}
		return event.Handled
	})
	return nil
}

type rosterAPI struct{}

func (rosterAPI) Subscribed(_ context.Context, user, contact jid.JID) bool {
	return user.String() == "romeo@localhost" && contact.String() == "juliet@localhost"
}

// nodeModule uses the disco registry as another module would.
type nodeModule struct{}

func (*nodeModule) Info() module.Info {
	return module.Info{ID: "test.disconodes", New: func() module.Module { return new(nodeModule) }}
}

type discoRegistry interface {
	AddNode(node string, info, items func(ctx context.Context, from jid.JID) ([]*stanza.Element, error)) (remove func())
	AddItem(jid, node, name string) (remove func())
	AddAccountItems(fn func(ctx context.Context, user, from jid.JID) ([]*stanza.Element, error)) (remove func())
}

func (*nodeModule) Provision(h module.Host) error {
	v, ok := h.Lookup("disco")
	if !ok {
		return fmt.Errorf("no disco registry")
	}
	reg, ok := v.(discoRegistry)
	if !ok {
		return fmt.Errorf("disco registry has type %T", v)
	}
	reg.AddItem("upload.localhost", "", "Uploads")
	reg.AddNode("urn:example:node", func(_ context.Context, from jid.JID) ([]*stanza.Element, error) {
		if from.Local() == "juliet" {
			return nil, stanza.Err(stanza.Forbidden)
		}
		return []*stanza.Element{
			stanza.New("http://jabber.org/protocol/disco#info", "identity", "category", "automation", "type", "command-list"),
			stanza.New("http://jabber.org/protocol/disco#info", "feature", "var", "urn:example"),
		}, nil
	}, func(context.Context, jid.JID) ([]*stanza.Element, error) {
		return []*stanza.Element{stanza.New("http://jabber.org/protocol/disco#items", "item", "jid", "localhost", "node", "urn:example:child")}, nil
	})
	remove := reg.AddNode("urn:example:removed", nil, nil)
	remove()
	reg.AddAccountItems(func(_ context.Context, user, _ jid.JID) ([]*stanza.Element, error) {
		return []*stanza.Element{stanza.New("http://jabber.org/protocol/disco#items", "item", "jid", user.String(), "node", "urn:xmpp:microblog:0")}, nil
	})
	return nil
}

func init() {
	module.Register(new(fakeRoster))
	module.Register(new(nodeModule))
}

func TestAccountSubscribedContact(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("disco", "discofakeroster"))
	for _, u := range []string{"romeo", "juliet", "nurse"} {
		srv.CreateUser(t, u+"@localhost", "password")
	}
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	romeo.Send(t, `<presence/>`)
	// A round trip: once answered, the presence before it was processed.
	romeo.Send(t, `<iq type="get" id="sync" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	romeo.Expect(t, `<iq type="result" id="sync"/>`)
	juliet := srv.Login(t, "juliet@localhost/balcony", "password")
	nurse := srv.Login(t, "nurse@localhost/kitchen", "password")

	// XEP-0030 §8: a contact with a "from" subscription sees the account
	// and its available resources.
	juliet.Send(t, `<iq type="get" id="c1" to="romeo@localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	juliet.Expect(t, `<iq type="result" id="c1" from="romeo@localhost"><query xmlns="http://jabber.org/protocol/disco#info">
		<identity category="account" type="registered"/><feature var="http://jabber.org/protocol/disco#info"/></query></iq>`)
	juliet.Send(t, `<iq type="get" id="c2" to="romeo@localhost"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	juliet.Expect(t, `<iq type="result" id="c2" from="romeo@localhost"><query xmlns="http://jabber.org/protocol/disco#items">
		<item jid="`+romeo.JID.String()+`"/></query></iq>`)

	// Anyone else: service-unavailable and an empty list.
	nurse.Send(t, `<iq type="get" id="c3" to="romeo@localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	nurse.Expect(t, `<iq type="error" id="c3"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	nurse.Send(t, `<iq type="get" id="c4" to="romeo@localhost"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	if el := nurse.Expect(t, `<iq type="result" id="c4"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`); el.FirstChild().FirstChild() != nil {
		t.Errorf("items leaked to a stranger: %s", el)
	}
	romeo.ExpectNothing(t)
}

func TestRegistry(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("disco", "disconodes"), xmpptest.Config(testConfig))
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	juliet := srv.Login(t, "juliet@localhost/balcony", "password")

	romeo.Send(t, `<iq type="get" id="r1" to="localhost"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	romeo.Expect(t, `<iq type="result" id="r1"><query xmlns="http://jabber.org/protocol/disco#items">
		<item jid="conference.localhost" name="Chatrooms"/><item jid="upload.localhost" name="Uploads"/></query></iq>`)
	romeo.Send(t, `<iq type="get" id="r2" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info" node="urn:example:node"/></iq>`)
	romeo.Expect(t, `<iq type="result" id="r2"><query xmlns="http://jabber.org/protocol/disco#info" node="urn:example:node">
		<identity category="automation" type="command-list"/><feature var="urn:example"/></query></iq>`)
	romeo.Send(t, `<iq type="get" id="r3" to="localhost"><query xmlns="http://jabber.org/protocol/disco#items" node="urn:example:node"/></iq>`)
	romeo.Expect(t, `<iq type="result" id="r3"><query xmlns="http://jabber.org/protocol/disco#items" node="urn:example:node">
		<item jid="localhost" node="urn:example:child"/></query></iq>`)
	// A provider's stanza error reaches the requester.
	juliet.Send(t, `<iq type="get" id="r4" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info" node="urn:example:node"/></iq>`)
	juliet.Expect(t, `<iq type="error" id="r4"><error type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	// A removed node is gone.
	romeo.Send(t, `<iq type="get" id="r5" to="localhost"><query xmlns="http://jabber.org/protocol/disco#items" node="urn:example:removed"/></iq>`)
	romeo.Expect(t, `<iq type="error" id="r5"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	// Account item providers add to the user's own disco#items.
	romeo.Send(t, `<iq type="get" id="r6"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	romeo.Expect(t, `<iq type="result" id="r6"><query xmlns="http://jabber.org/protocol/disco#items">
		<item jid="`+romeo.JID.String()+`"/><item jid="romeo@localhost" node="urn:xmpp:microblog:0"/></query></iq>`)
}

// TestCaps checks the XEP-0115 stream feature after authentication, that
// its ver is the hash of the server's disco#info, and that disco#info
// answers the node "<node>#<ver>".
func TestCaps(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("disco", "ping"), xmpptest.Config(testConfig))
	srv.CreateUser(t, "romeo@localhost", "password")
	features := featuresAfterAuth(t, srv.C2SAddr, "localhost", "romeo", "password")
	c := features.Child("http://jabber.org/protocol/caps", "c")
	if c == nil {
		t.Fatalf("no caps in stream features: %s", features)
	}
	if c.Attr("hash") != "sha-1" || c.Attr("node") != "https://metronome.im" || c.Attr("ver") == "" {
		t.Fatalf("caps feature = %s", c)
	}
	ver := c.Attr("ver")

	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	romeo.Send(t, `<iq type="get" id="v1" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	info := romeo.Expect(t, `<iq type="result" id="v1"/>`).FirstChild()
	if got := verOf(info); got != ver {
		t.Errorf("advertised ver %q, but disco#info hashes to %q\n%s", ver, got, info)
	}
	romeo.Send(t, `<iq type="get" id="v2" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info" node="https://metronome.im#`+ver+`"/></iq>`)
	romeo.Expect(t, `<iq type="result" id="v2"><query xmlns="http://jabber.org/protocol/disco#info" node="https://metronome.im#`+ver+`">
		<identity category="server" type="im"/><feature var="urn:xmpp:ping"/></query></iq>`)
	romeo.Send(t, `<iq type="get" id="v3" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info" node="https://metronome.im#bogus"/></iq>`)
	romeo.Expect(t, `<iq type="error" id="v3"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
}

func TestCapsDisabled(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("disco"), xmpptest.Config("[modules.disco]\ncaps = false\n"))
	srv.CreateUser(t, "romeo@localhost", "password")
	features := featuresAfterAuth(t, srv.C2SAddr, "localhost", "romeo", "password")
	if c := features.Child("http://jabber.org/protocol/caps", "c"); c != nil {
		t.Fatalf("caps advertised although disabled: %s", features)
	}
}

// verOf recomputes the XEP-0115 ver of a disco#info result the way a client
// would (§5.4), independently of the module's code.
func verOf(q *stanza.Element) string {
	var ids, feats []string
	var forms []*stanza.Element
	for c := range q.Elements {
		switch c.Name {
		case "identity":
			ids = append(ids, c.Attr("category")+"/"+c.Attr("type")+"//"+c.Attr("name"))
		case "feature":
			feats = append(feats, c.Attr("var"))
		case "x":
			forms = append(forms, c)
		}
	}
	return refVer(ids, feats, forms)
}

// featuresAfterAuth negotiates STARTTLS and SCRAM-SHA-256 on a raw
// connection and returns the stream features offered after authentication.
func featuresAfterAuth(t *testing.T, addr, domain, user, password string) *stanza.Element {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var c net.Conn = conn
	dec := xmlstream.NewDecoder(c, xmlstream.Limits{MaxBytes: 1 << 20})
	open := func() *stanza.Element {
		t.Helper()
		fmt.Fprintf(c, `<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="%s" to="%s" version="1.0">`, stream.NS, domain)
		if _, err := dec.Header(); err != nil {
			t.Fatal(err)
		}
		el, err := dec.Element()
		if err != nil {
			t.Fatal(err)
		}
		return el
	}
	open()
	fmt.Fprintf(c, `<starttls xmlns="%s"/>`, stream.NSTLS)
	if el, err := dec.Element(); err != nil || el.Name != "proceed" {
		t.Fatalf("starttls: %v %v", el, err)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: domain, InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c = tc
	dec.Reset(c)
	open()
	cl, err := scram.SHA256.NewClient(user, password, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := cl.NewConversation()
	first, _ := conv.Step("")
	fmt.Fprintf(c, `<auth xmlns="%s" mechanism="SCRAM-SHA-256">%s</auth>`, stream.NSSASL, base64.StdEncoding.EncodeToString([]byte(first)))
	for done := false; !done; {
		el, err := dec.Element()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(el.Text()))
		switch el.Name {
		case "challenge":
			resp, err := conv.Step(string(data))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, `<response xmlns="%s">%s</response>`, stream.NSSASL, base64.StdEncoding.EncodeToString([]byte(resp)))
		case "success":
			done = true
		default:
			t.Fatalf("SASL: %s", el)
		}
	}
	dec.Reset(c)
	return open()
}

// refVer is a straightforward XEP-0115 §5.1 implementation for the tests.
func refVer(ids, features []string, forms []*stanza.Element) string {
	slices.Sort(ids)
	slices.Sort(features)
	s := ""
	for _, i := range ids {
		s += i + "<"
	}
	for _, f := range features {
		s += f + "<"
	}
	type form struct {
		typ  string
		rest []string
	}
	var fs []form
	for _, x := range forms {
		var f form
		var fields []string
		for fe := range x.Elements {
			var vals []string
			for v := range fe.Elements {
				vals = append(vals, v.Text())
			}
			if fe.Attr("var") == "FORM_TYPE" {
				f.typ = vals[0]
				continue
			}
			slices.Sort(vals)
			fields = append(fields, fe.Attr("var")+"<"+strings.Join(vals, "<")+"<")
		}
		slices.Sort(fields)
		f.rest = fields
		fs = append(fs, f)
	}
	slices.SortFunc(fs, func(a, b form) int { return strings.Compare(a.typ, b.typ) })
	for _, f := range fs {
		s += f.typ + "<" + strings.Join(f.rest, "")
	}
	sum := sha1.Sum([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// recvID returns the next stanza with the given id, skipping others
// (roster pushes, presence).
func recvID(t *testing.T, c *xmpptest.Client, id string) *stanza.Element {
	t.Helper()
	for {
		el := c.Recv(t)
		if el.ID() == id {
			return el
		}
	}
}

// TestWithRosterModule checks the access rule against the real roster and
// presence modules: once romeo approved juliet's subscription, juliet sees
// romeo's account.
func TestWithRosterModule(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence", "disco"))
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	romeo.Send(t, `<iq type="get" id="roster"><query xmlns="jabber:iq:roster"/></iq>`) // to get roster pushes
	recvID(t, romeo, "roster")
	romeo.Send(t, `<presence/>`) // subscription requests go to available resources
	juliet := srv.Login(t, "juliet@localhost/balcony", "password")
	info := `<iq type="get" id="%s" to="romeo@localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`

	juliet.Send(t, fmt.Sprintf(info, "before"))
	if el := recvID(t, juliet, "before"); el.Type() != "error" {
		t.Fatalf("before the subscription: %s", el)
	}
	juliet.Send(t, `<presence type="subscribe" to="romeo@localhost"/>`)
	for {
		if el := romeo.Recv(t); el.Name == "presence" && el.Type() == "subscribe" {
			break
		}
	}
	romeo.Send(t, `<presence type="subscribed" to="juliet@localhost"/>`)
	// Wait until romeo's roster says "from" (the push), then ask.
	for {
		el := romeo.Recv(t)
		if q := el.Child("jabber:iq:roster", "query"); q != nil {
			if it := q.Child("jabber:iq:roster", "item"); it != nil && it.Attr("subscription") == "from" {
				break
			}
		}
	}
	juliet.Send(t, fmt.Sprintf(info, "after"))
	el := recvID(t, juliet, "after")
	want, _ := xmlstream.ParseNS([]byte(`<iq type="result"><query xmlns="http://jabber.org/protocol/disco#info"><identity category="account" type="registered"/></query></iq>`), stanza.NSClient)
	if err := xmpptest.Match(want, el, nil); err != nil {
		t.Fatalf("after the subscription: %s: %v", el, err)
	}
}
