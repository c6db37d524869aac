package presence_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
)

const rosterGet = `<iq type="get" id="rg"><query xmlns="jabber:iq:roster"/></iq>`

// login connects user/res, requests the roster and sends initial presence.
func login(t *testing.T, srv *xmpptest.Server, full string) *xmpptest.Client {
	t.Helper()
	c := srv.Login(t, full, "password")
	c.Send(t, rosterGet)
	c.Expect(t, `<iq type="result" id="rg"/>`)
	c.Send(t, `<presence/>`)
	c.Expect(t, `<presence from="`+full+`"/>`)
	return c
}

// drain reads until the client has been quiet for a while.
func drain(c *xmpptest.Client) int {
	n := 0
	for {
		if _, err := c.RecvTimeout(500 * time.Millisecond); err != nil {
			return n
		}
		n++
	}
}

type item struct {
	Sub      string `json:"sub"`
	Ask      bool   `json:"ask"`
	Approved bool   `json:"approved"`
}

func rosterItem(t *testing.T, srv *xmpptest.Server, user, contact string) (item, bool) {
	t.Helper()
	b, err := srv.Driver.Map("localhost", "roster").Get(context.Background(), user, contact)
	if err != nil {
		return item{}, false
	}
	var it item
	if err := json.Unmarshal(b, &it); err != nil {
		t.Fatal(err)
	}
	return it, true
}

// mutual makes romeo and juliet subscribed to each other through pre-approvals.
func mutual(t *testing.T, romeo, juliet *xmpptest.Client) {
	t.Helper()
	juliet.Send(t, `<presence to="romeo@localhost" type="subscribed"/>`)
	romeo.Send(t, `<presence to="juliet@localhost" type="subscribed"/>`)
	drain(juliet)
	drain(romeo)
	romeo.Send(t, `<presence to="juliet@localhost" type="subscribe"/>`)
	drain(romeo)
	juliet.Send(t, `<presence to="romeo@localhost" type="subscribe"/>`)
	drain(juliet)
	drain(romeo)
}

// TestUserDeletedCancelsSubscriptions: deleting an account cancels its
// subscriptions at its contacts (XEP-0077 §3.2) and deletes its data.
func TestUserDeletedCancelsSubscriptions(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence"))
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	romeo := login(t, srv, "romeo@localhost/orchard")
	juliet := login(t, srv, "juliet@localhost/balcony")
	mutual(t, romeo, juliet)
	if it, _ := rosterItem(t, srv, "juliet", "romeo@localhost"); it.Sub != "both" {
		t.Fatalf("set-up: juliet's item %+v", it)
	}
	if err := srv.Core.DeleteUser(context.Background(), jid.MustParse("romeo@localhost")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		it, ok := rosterItem(t, srv, "juliet", "romeo@localhost")
		if ok && it.Sub == "none" && !it.Ask {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("juliet's item for the deleted romeo: %+v", it)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if all, err := srv.Driver.Map("localhost", "roster").All(context.Background(), "romeo"); err != nil || len(all) != 0 {
		t.Fatalf("romeo's roster: %v %v", all, err)
	}
	if _, err := srv.Driver.KeyVal("localhost", "presence").Get(context.Background(), "romeo"); err == nil {
		t.Fatal("romeo's last presence kept")
	}
}

// TestRosterFullBounce: a subscription that would add an item beyond
// max_items is bounced with not-allowed and not routed.
func TestRosterFullBounce(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence"), xmpptest.Config("[modules.roster]\nmax_items = 1"))
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	romeo := login(t, srv, "romeo@localhost/orchard")
	juliet := login(t, srv, "juliet@localhost/balcony")
	romeo.Send(t, `<iq type="set" id="a1"><query xmlns="jabber:iq:roster"><item jid="nurse@localhost"/></query></iq>`)
	romeo.Expect(t, `<iq type="set"/>`)
	romeo.Expect(t, `<iq type="result" id="a1"/>`)
	romeo.Send(t, `<presence to="juliet@localhost" type="subscribe"/>`)
	romeo.Expect(t, `<presence type="error" from="juliet@localhost"><error type="cancel"><not-allowed xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`)
	juliet.ExpectNothing(t)
	// A contact already in the roster can still be subscribed to.
	romeo.Send(t, `<presence to="nurse@localhost" type="subscribe"/>`)
	romeo.Expect(t, `<iq type="set"><query xmlns="jabber:iq:roster"><item jid="nurse@localhost" ask="subscribe"/></query></iq>`)
}

// TestDirectedToSubscriberNotDuplicated: a subscriber that also got
// directed presence receives one unavailable presence, not two.
func TestDirectedToSubscriberNotDuplicated(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence"))
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	romeo := login(t, srv, "romeo@localhost/orchard")
	juliet := login(t, srv, "juliet@localhost/balcony")
	mutual(t, romeo, juliet)
	romeo.Send(t, `<presence to="juliet@localhost/balcony"><status>psst</status></presence>`)
	juliet.Expect(t, `<presence from="romeo@localhost/orchard"><status>psst</status></presence>`)
	romeo.Close()
	juliet.Expect(t, `<presence from="romeo@localhost/orchard" type="unavailable"/>`)
	juliet.ExpectNothing(t)
}

// TestConcurrentMutualSubscriptions: every pair of a group of users
// subscribes both ways at the same time; every roster ends "both" and
// nothing is left pending (run with -race).
func TestConcurrentMutualSubscriptions(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster", "presence"))
	const n = 5
	users := make([]string, n)
	clients := make([]*xmpptest.Client, n)
	for i := range n {
		users[i] = fmt.Sprintf("u%d", i)
		srv.CreateUser(t, users[i]+"@localhost", "password")
		clients[i] = login(t, srv, users[i]+"@localhost/r")
	}
	send := func(typ string) {
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range n {
					if j != i {
						c.Send(t, `<presence to="`+users[j]+`@localhost" type="`+typ+`"/>`)
					}
				}
			}()
		}
		wg.Wait()
		for _, c := range clients {
			drain(c)
		}
	}
	send("subscribed") // pre-approvals
	send("subscribe")
	ctx := context.Background()
	for i := range n {
		for j := range n {
			if i == j {
				continue
			}
			it, ok := rosterItem(t, srv, users[i], users[j]+"@localhost")
			if !ok || it.Sub != "both" || it.Ask || it.Approved {
				t.Errorf("%s's item for %s: %+v (exists %v)", users[i], users[j], it, ok)
			}
		}
		all, err := srv.Driver.Map("localhost", "roster").All(ctx, users[i])
		if err != nil {
			t.Fatal(err)
		}
		for k := range all {
			if len(k) > 9 && k[:9] == "@pending:" {
				t.Errorf("%s: request left pending: %s", users[i], k)
			}
		}
	}
	// Presence now flows to everyone.
	clients[0].Send(t, `<presence><show>chat</show></presence>`)
	for i := 1; i < n; i++ {
		clients[i].Expect(t, `<presence from="u0@localhost/r"><show>chat</show></presence>`)
	}
}
