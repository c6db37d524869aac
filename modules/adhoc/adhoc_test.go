package adhoc_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/stream"

	_ "github.com/metronome-xmpp/metronome/modules/adhoc"
	_ "github.com/metronome-xmpp/metronome/modules/disco"
)

const (
	nsCmd   = "http://jabber.org/protocol/commands"
	nsAdmin = "http://jabber.org/protocol/admin"
)

func TestScripts(t *testing.T) {
	xmpptest.RunScripts(t, "testdata", xmpptest.Modules("disco", "adhoc"))
}

var idSeq atomic.Int64

// exec sends one command request and returns the <command/> of the
// result, failing on an error.
func exec(t *testing.T, c *xmpptest.Client, node, sid, action, fields string) *stanza.Element {
	t.Helper()
	r := send(t, c, node, sid, action, fields)
	if r.Type() != "result" {
		t.Fatalf("command %s: %s", node, r)
	}
	cmd := r.Child(nsCmd, "command")
	if cmd == nil || cmd.Attr("node") != node || cmd.Attr("sessionid") == "" {
		t.Fatalf("command %s: bad answer %s", node, r)
	}
	return cmd
}

func send(t *testing.T, c *xmpptest.Client, node, sid, action, fields string) *stanza.Element {
	t.Helper()
	id := fmt.Sprintf("c%d", idSeq.Add(1))
	req := `<iq type="set" id="` + id + `" to="localhost"><command xmlns="` + nsCmd + `" node="` + node + `"`
	if sid != "" {
		req += ` sessionid="` + sid + `"`
	}
	if action != "" {
		req += ` action="` + action + `"`
	}
	req += `>`
	if fields != "" {
		req += `<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>` + nsAdmin + `</value></field>` + fields + `</x>`
	}
	req += `</command></iq>`
	c.Send(t, req)
	r := c.Recv(t)
	if r.ID() != id {
		t.Fatalf("expected the answer to %s, got %s", id, r)
	}
	return r
}

func field(v string, values ...string) string {
	s := `<field var="` + v + `">`
	for _, val := range values {
		s += `<value>` + val + `</value>`
	}
	return s + `</field>`
}

func values(cmd *stanza.Element, v string) []string {
	x := cmd.Child("jabber:x:data", "x")
	if x == nil {
		return nil
	}
	for f := range x.Elements {
		if f.Attr("var") == v {
			out := []string{}
			for val := range f.Elements {
				out = append(out, val.Text())
			}
			return out
		}
	}
	return nil
}

// twoStep runs a form command: execute, then complete with fields.
func twoStep(t *testing.T, c *xmpptest.Client, node, fields string) *stanza.Element {
	t.Helper()
	first := exec(t, c, node, "", "execute", "")
	if first.Attr("status") != "executing" || first.Child("jabber:x:data", "x") == nil {
		t.Fatalf("%s: first step %s", node, first)
	}
	last := exec(t, c, node, first.Attr("sessionid"), "complete", fields)
	if last.Attr("status") != "completed" {
		t.Fatalf("%s: last step %s", node, last)
	}
	return last
}

func errCond(r *stanza.Element) string {
	if r.Type() != "error" {
		return ""
	}
	e := stanza.ParseError(r)
	s := string(e.Condition)
	if e.App != nil {
		s += "/" + e.App.Name
	}
	return s
}

func newServer(t *testing.T, users ...string) *xmpptest.Server {
	srv := xmpptest.NewServer(t, xmpptest.Modules("disco", "adhoc"))
	for _, u := range append([]string{"admin"}, users...) {
		srv.CreateUser(t, u+"@localhost", "password")
	}
	return srv
}

func exists(t *testing.T, srv *xmpptest.Server, user string) bool {
	acc, _ := srv.Core.Accounts("localhost")
	ok, err := acc.Exists(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestAddUser(t *testing.T) {
	srv := newServer(t)
	admin := srv.Login(t, "admin@localhost/console", "password")
	last := twoStep(t, admin, nsAdmin+"#add-user",
		field("accountjid", "juliet@localhost")+field("password", "R0m30-R0m30")+field("password-verify", "R0m30-R0m30"))
	if last.Child(nsCmd, "note") == nil {
		t.Errorf("no note in %s", last)
	}
	srv.Login(t, "juliet@localhost/balcony", "R0m30-R0m30")

	// XEP-0133 §5: an existing account is a conflict.
	first := exec(t, admin, nsAdmin+"#add-user", "", "", "")
	r := send(t, admin, nsAdmin+"#add-user", first.Attr("sessionid"), "complete",
		field("accountjid", "juliet@localhost")+field("password", "x"))
	if got := errCond(r); got != "conflict" {
		t.Errorf("existing account: %s", r)
	}
	// The session survives a failed step: the admin may correct the form.
	for _, tc := range []struct{ name, fields, want string }{
		{"mismatch", field("accountjid", "nurse@localhost") + field("password", "a") + field("password-verify", "b"), "bad-request/bad-payload"},
		{"other host", field("accountjid", "nurse@example.org") + field("password", "a"), "bad-request/bad-payload"},
		{"no password", field("accountjid", "nurse@localhost"), "bad-request/bad-payload"},
		{"no jid", field("password", "a"), "bad-request/bad-payload"},
	} {
		r := send(t, admin, nsAdmin+"#add-user", first.Attr("sessionid"), "complete", tc.fields)
		if got := errCond(r); got != tc.want {
			t.Errorf("%s: got %q (%s), want %s", tc.name, got, r, tc.want)
		}
	}
	if exists(t, srv, "nurse") {
		t.Error("nurse was created by an invalid form")
	}
}

func TestDeleteUser(t *testing.T) {
	srv := newServer(t, "romeo", "juliet")
	admin := srv.Login(t, "admin@localhost/console", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	last := twoStep(t, admin, nsAdmin+"#delete-user",
		field("accountjids", "romeo@localhost", "ghost@localhost"))
	notes := ""
	for n := range last.Elements {
		if n.Name == "note" {
			notes += n.Attr("type") + ":" + n.Text() + ";"
		}
	}
	if !strings.Contains(notes, "info:Deleted: romeo@localhost") || !strings.Contains(notes, "error:No such account: ghost@localhost") {
		t.Errorf("notes = %q", notes)
	}
	if exists(t, srv, "romeo") || !exists(t, srv, "juliet") {
		t.Error("wrong accounts deleted")
	}
	// XEP-0133 §4.2: the user's sessions end.
	el, err := romeo.RecvTimeout(5 * time.Second)
	if err != nil || el.Name != "error" || el.Space != stream.NS {
		t.Fatalf("romeo got %v, %v; want a stream error", el, err)
	}
}

func TestChangeUserPassword(t *testing.T) {
	srv := newServer(t, "romeo")
	admin := srv.Login(t, "admin@localhost/console", "password")
	twoStep(t, admin, nsAdmin+"#change-user-password",
		field("accountjid", "romeo@localhost")+field("password", "n3w-pw"))
	if _, err := srv.Connect("romeo@localhost/x", "password", false); err == nil {
		t.Error("old password still works")
	}
	srv.Login(t, "romeo@localhost/y", "n3w-pw")

	first := exec(t, admin, nsAdmin+"#change-user-password", "", "execute", "")
	r := send(t, admin, nsAdmin+"#change-user-password", first.Attr("sessionid"), "complete",
		field("accountjid", "ghost@localhost")+field("password", "x"))
	if got := errCond(r); got != "item-not-found" {
		t.Errorf("unknown account: %s", r)
	}
}

func TestUserLists(t *testing.T) {
	srv := newServer(t, "romeo", "juliet", "nurse")
	admin := srv.Login(t, "admin@localhost/console", "password")
	srv.Login(t, "romeo@localhost/orchard", "password")
	srv.Login(t, "romeo@localhost/garden", "password")

	num := exec(t, admin, nsAdmin+"#get-registered-users-num", "", "execute", "")
	if v := values(num, "registeredusersnum"); num.Attr("status") != "completed" || len(v) != 1 || v[0] != "4" {
		t.Errorf("registered num: %s", num)
	}
	last := twoStep(t, admin, nsAdmin+"#get-registered-users-list", field("max_items", "none"))
	if got := strings.Join(values(last, "registereduserjids"), " "); got != "admin@localhost juliet@localhost nurse@localhost romeo@localhost" {
		t.Errorf("registered list = %q", got)
	}
	last = twoStep(t, admin, nsAdmin+"#get-registered-users-list", field("max_items", "2"))
	if got := values(last, "registereduserjids"); len(got) != 2 {
		t.Errorf("registered list with max_items 2 = %q", got)
	}
	num = exec(t, admin, nsAdmin+"#get-online-users-num", "", "", "")
	if v := values(num, "onlineusersnum"); len(v) != 1 || v[0] != "2" {
		t.Errorf("online num: %s", num)
	}
	last = twoStep(t, admin, nsAdmin+"#get-online-users-list", field("max_items", "25"))
	if got := strings.Join(values(last, "onlineuserjids"), " "); got != "admin@localhost romeo@localhost" {
		t.Errorf("online list = %q", got)
	}
}

func TestAnnounce(t *testing.T) {
	srv := newServer(t, "romeo", "juliet")
	admin := srv.Login(t, "admin@localhost/console", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	juliet := srv.Login(t, "juliet@localhost/balcony", "password")
	first := exec(t, admin, nsAdmin+"#announce", "", "execute", "")
	// The announcement reaches every session, the admin's included,
	// before the command's result.
	admin.Send(t, `<iq type="set" id="ann" to="localhost"><command xmlns="`+nsCmd+`" node="`+nsAdmin+`#announce" sessionid="`+
		first.Attr("sessionid")+`" action="complete"><x xmlns="jabber:x:data" type="submit">`+
		field("announcement", "Going down", "in 2 minutes")+`</x></command></iq>`)
	want := `<message type="headline" from="localhost"><body>Going down
in 2 minutes</body></message>`
	romeo.Expect(t, want)
	juliet.Expect(t, want)
	admin.Expect(t, want)
	admin.Expect(t, `<iq type="result" id="ann"><command xmlns="`+nsCmd+`" status="completed"/></iq>`)

	// An empty announcement is refused.
	first = exec(t, admin, nsAdmin+"#announce", "", "execute", "")
	r := send(t, admin, nsAdmin+"#announce", first.Attr("sessionid"), "complete", field("announcement", " "))
	if got := errCond(r); got != "bad-request/bad-payload" {
		t.Errorf("empty announcement: %s", r)
	}
	romeo.ExpectNothing(t)
}

func TestSessions(t *testing.T) {
	srv := newServer(t, "romeo")
	admin := srv.Login(t, "admin@localhost/console", "password")
	admin2 := srv.Login(t, "admin@localhost/laptop", "password")
	node := nsAdmin + "#add-user"

	// XEP-0050 §2.4.3: cancel ends the session.
	first := exec(t, admin, node, "", "execute", "")
	sid := first.Attr("sessionid")
	cancel := exec(t, admin, node, sid, "cancel", "")
	if cancel.Attr("status") != "canceled" {
		t.Errorf("cancel: %s", cancel)
	}
	r := send(t, admin, node, sid, "complete", field("accountjid", "x@localhost")+field("password", "p"))
	if got := errCond(r); got != "not-allowed/session-expired" {
		t.Errorf("after cancel: %s", r)
	}

	// Only the full JID that started a session may continue it.
	first = exec(t, admin, node, "", "execute", "")
	r = send(t, admin2, node, first.Attr("sessionid"), "complete", field("accountjid", "x@localhost")+field("password", "p"))
	if got := errCond(r); got != "bad-request/bad-sessionid" {
		t.Errorf("other resource: %s", r)
	}
	// Nor use it for another command.
	r = send(t, admin, nsAdmin+"#delete-user", first.Attr("sessionid"), "complete", field("accountjids", "romeo@localhost"))
	if got := errCond(r); got != "bad-request/bad-sessionid" {
		t.Errorf("other node: %s", r)
	}
	// A session cannot be started with complete.
	r = send(t, admin, node, "", "complete", "")
	if got := errCond(r); got != "bad-request/bad-action" {
		t.Errorf("complete without session: %s", r)
	}
	// prev is not supported by the single-stage admin forms.
	r = send(t, admin, node, first.Attr("sessionid"), "prev", "")
	if got := errCond(r); got != "bad-request/bad-action" {
		t.Errorf("prev: %s", r)
	}
	// A completed session is gone. (The default action of an executing
	// session is its <actions execute='complete'/>.)
	exec(t, admin, node, first.Attr("sessionid"), "", field("accountjid", "x@localhost")+field("password", "p"))
	r = send(t, admin, node, first.Attr("sessionid"), "complete", field("accountjid", "y@localhost")+field("password", "p"))
	if got := errCond(r); got != "not-allowed/session-expired" {
		t.Errorf("after completion: %s", r)
	}
	if !exists(t, srv, "x") || exists(t, srv, "y") {
		t.Error("wrong accounts created")
	}
}

func TestNonAdmin(t *testing.T) {
	srv := newServer(t, "romeo")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	// The command list hides admin commands from non-admins.
	romeo.Send(t, `<iq type="get" id="l1" to="localhost"><query xmlns="http://jabber.org/protocol/disco#items" node="`+nsCmd+`"/></iq>`)
	q := romeo.Expect(t, `<iq type="result" id="l1"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`).FirstChild()
	if q.FirstChild() != nil {
		t.Errorf("non-admin sees commands: %s", q)
	}
	for _, node := range []string{"add-user", "delete-user", "change-user-password", "get-registered-users-num",
		"get-registered-users-list", "get-online-users-num", "get-online-users-list", "announce"} {
		r := send(t, romeo, nsAdmin+"#"+node, "", "execute", "")
		if got := errCond(r); got != "forbidden" {
			t.Errorf("%s: %s", node, r)
		}
	}
}

// extCommand is another module adding a command through the "adhoc" registry.
type extCommand struct{}

func (*extCommand) Info() module.Info {
	return module.Info{ID: "test.adhocext", New: func() module.Module { return new(extCommand) }}
}

type commands interface {
	Add(node, name string, allowed func(jid.JID) bool,
		run func(context.Context, jid.JID, string, *stanza.Element, map[string]any) (*stanza.Element, error)) (remove func())
}

func (*extCommand) Provision(h module.Host) error {
	v, ok := h.Lookup("adhoc")
	if !ok {
		return fmt.Errorf("no adhoc registry")
	}
	reg := v.(commands)
	reg.Add("urn:example:count", "Count", nil, func(_ context.Context, from jid.JID, action string, req *stanza.Element, state map[string]any) (*stanza.Element, error) {
		n, _ := state["n"].(int)
		n++
		state["n"] = n
		c := stanza.New(nsCmd, "command", "status", "executing")
		if n == 3 {
			c.SetAttr("status", "completed")
		}
		c.AddChild(stanza.New(nsCmd, "note", "type", "info")).AddText(fmt.Sprintf("%s %d %s", action, n, from.Local()))
		return c, nil
	})
	return nil
}

func init() { module.Register(new(extCommand)) }

func TestRegistryAPI(t *testing.T) {
	// adhoc is loaded after the module using it and disco last: the
	// registry must still be found and listed.
	srv := xmpptest.NewServer(t, xmpptest.Modules("adhoc", "adhocext", "disco"))
	srv.CreateUser(t, "romeo@localhost", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	romeo.Send(t, `<iq type="get" id="l1" to="localhost"><query xmlns="http://jabber.org/protocol/disco#items" node="`+nsCmd+`"/></iq>`)
	romeo.Expect(t, `<iq type="result" id="l1"><query xmlns="http://jabber.org/protocol/disco#items">
		<item jid="localhost" node="urn:example:count" name="Count"/></query></iq>`)
	first := exec(t, romeo, "urn:example:count", "", "execute", "")
	sid := first.Attr("sessionid")
	second := exec(t, romeo, "urn:example:count", sid, "next", "")
	third := exec(t, romeo, "urn:example:count", sid, "complete", "")
	for i, c := range []*stanza.Element{first, second, third} {
		if c.Attr("sessionid") != sid {
			t.Errorf("step %d: sessionid %q, want %q", i+1, c.Attr("sessionid"), sid)
		}
	}
	if got := third.ChildText(nsCmd, "note"); got != "complete 3 romeo" || third.Attr("status") != "completed" {
		t.Errorf("third step: %s", third)
	}
	if got := second.ChildText(nsCmd, "note"); got != "next 2 romeo" {
		t.Errorf("second step: %s", second)
	}
}
