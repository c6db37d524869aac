package core_test

import (
	"strings"
	"testing"

	"github.com/metronome-xmpp/metronome/internal/core"
	"github.com/metronome-xmpp/metronome/internal/xmpptest"
)

// TestComponentHost checks that a component is a routable domain without
// accounts, listed in its parent host's disco#items, and that reloads keep
// it, refuse turning it into a virtual host, and skip external components.
func TestComponentHost(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.Modules("disco"), xmpptest.Component("rooms.localhost", "muc", `name = "Rooms"`))
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	c.Send(t, `<iq type="get" to="localhost" id="d1"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	c.Expect(t, `<iq type="result" id="d1"><query xmlns="http://jabber.org/protocol/disco#items"><item jid="rooms.localhost" name="Rooms"/></query></iq>`)
	c.Send(t, `<iq type="get" to="rooms.localhost" id="d2"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	c.Expect(t, `<iq type="result" id="d2" from="rooms.localhost"><query xmlns="http://jabber.org/protocol/disco#info"><identity category="conference" name="Rooms"/></query></iq>`)
	if _, ok := srv.Core.Accounts("rooms.localhost"); ok {
		t.Fatal("a component has accounts")
	}

	opts := *srv.Core.Options()
	bad := opts
	bad.Components = nil
	bad.Hosts = append(append(bad.Hosts[:0:0], bad.Hosts...), core.HostOptions{Name: "rooms.localhost"})
	if err := srv.Core.Reload(&bad); err == nil || !strings.Contains(err.Error(), "component") {
		t.Fatalf("component turned into a host: %v", err)
	}
	unknown := opts
	unknown.Components = []core.ComponentOptions{{Name: "rooms.localhost", Module: "no_such_module"}}
	if err := srv.Core.Reload(&unknown); err == nil || !strings.Contains(err.Error(), "no_such_module") {
		t.Fatalf("unknown component module: %v", err)
	}
	ext := opts
	ext.Components = append(append(ext.Components[:0:0], ext.Components...), core.ComponentOptions{Name: "gateway.localhost", Module: "external"})
	if err := srv.Core.Reload(&ext); err != nil {
		t.Fatal(err)
	}
	c.Send(t, `<iq type="get" to="rooms.localhost" id="d3"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	c.Expect(t, `<iq type="result" id="d3"/>`)
	c.Send(t, `<iq type="get" to="gateway.localhost" id="d4"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	c.Expect(t, `<iq type="error" id="d4"><error><remote-server-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
}

// TestMUCOnVirtualHostRefused: the muc module only runs as a component.
func TestMUCOnVirtualHostRefused(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t)
	opts := *srv.Core.Options()
	opts.Hosts = append(opts.Hosts[:0:0], opts.Hosts...)
	opts.Hosts[0].Modules = []string{"muc"}
	if err := srv.Core.Reload(&opts); err == nil || !strings.Contains(err.Error(), "component") {
		t.Fatalf("muc on a virtual host: %v", err)
	}
}
