package private_test

import (
	"context"
	"testing"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
)

// TestStorage checks the stored form (one key per fragment, with its
// namespace), deletion by an empty element and on account deletion.
func TestStorage(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("private"))
	srv.CreateUser(t, "hamlet@localhost", "password")
	c := srv.Login(t, "hamlet@localhost/denmark", "password")
	c.Send(t, `<iq type="set" id="p1"><query xmlns="jabber:iq:private"><exodus xmlns="exodus:prefs"><defaultnick>Hamlet</defaultnick></exodus><storage xmlns="storage:bookmarks"/></query></iq>`)
	c.Expect(t, `<iq type="result" id="p1"/>`)
	ctx := context.Background()
	m := srv.Driver.Map("localhost", "private")
	all, err := m.All(ctx, "hamlet")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || string(all["{exodus:prefs}exodus"]) != `<exodus xmlns="exodus:prefs"><defaultnick>Hamlet</defaultnick></exodus>` {
		t.Fatalf("stored %q, want only the exodus fragment with its namespace", all)
	}
	c.Send(t, `<iq type="set" id="p2"><query xmlns="jabber:iq:private"><exodus xmlns="exodus:prefs"/></query></iq>`)
	c.Expect(t, `<iq type="result" id="p2"/>`)
	if all, _ := m.All(ctx, "hamlet"); len(all) != 0 {
		t.Fatalf("after empty set: %q, want nothing", all)
	}
	c.Send(t, `<iq type="set" id="p3"><query xmlns="jabber:iq:private"><exodus xmlns="exodus:prefs"><x/></exodus></query></iq>`)
	c.Expect(t, `<iq type="result" id="p3"/>`)
	if err := srv.Core.DeleteUser(ctx, jid.MustParse("hamlet@localhost")); err != nil {
		t.Fatal(err)
	}
	if all, _ := m.All(ctx, "hamlet"); len(all) != 0 {
		t.Fatalf("after account deletion: %q, want nothing", all)
	}
}

// TestFailedSetStoresNothing: a set with one bad fragment stores none.
func TestFailedSetStoresNothing(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("private"))
	srv.CreateUser(t, "hamlet@localhost", "password")
	c := srv.Login(t, "hamlet@localhost/denmark", "password")
	c.Send(t, `<iq type="set" id="p1"><query xmlns="jabber:iq:private"><a xmlns="urn:example:a"><x/></a><b xmlns="jabber:x:oob"/></query></iq>`)
	c.Expect(t, `<iq type="error" id="p1"><error type="modify"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	if all, _ := srv.Driver.Map("localhost", "private").All(context.Background(), "hamlet"); len(all) != 0 {
		t.Fatalf("stored %q, want nothing", all)
	}
}
