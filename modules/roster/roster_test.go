package roster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	"github.com/metronome-xmpp/metronome/modules/roster"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
)

func features(t *testing.T, srv *xmpptest.Server) map[string]bool {
	t.Helper()
	h := srv.Core.LookupHost("localhost")
	if h == nil {
		t.Fatal("no host")
	}
	out := map[string]bool{}
	for _, f := range h.StreamFeatures(false) {
		out[f.Space+" "+f.Name] = true
	}
	for _, f := range h.StreamFeatures(true) {
		if f.Space == roster.NSRosterVer || f.Space == roster.NSPreApproval {
			t.Errorf("%s advertised before authentication", f.Space)
		}
	}
	return out
}

// TestStreamFeatures: RFC 6121 §2.6.1 and §3.4.1 stream features, after authentication.
func TestStreamFeatures(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster"))
	f := features(t, srv)
	if !f[roster.NSRosterVer+" ver"] || !f[roster.NSPreApproval+" sub"] {
		t.Fatalf("features = %v", f)
	}

	srv = xmpptest.NewServer(t, xmpptest.Modules("roster"), xmpptest.Config("[modules.roster]\nversioning = false"))
	f = features(t, srv)
	if f[roster.NSRosterVer+" ver"] || !f[roster.NSPreApproval+" sub"] {
		t.Fatalf("features without versioning = %v", f)
	}
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	c.Send(t, `<iq type="get" id="r1"><query xmlns="jabber:iq:roster" ver="0"/></iq>`)
	r := c.Expect(t, `<iq type="result" id="r1"><query xmlns="jabber:iq:roster"/></iq>`)
	if r.FirstChild().HasAttr("ver") {
		t.Errorf("ver in %s", r)
	}
	c.Send(t, `<iq type="set" id="a1"><query xmlns="jabber:iq:roster"><item jid="nurse@localhost"/></query></iq>`)
	push := c.Expect(t, `<iq type="set"><query xmlns="jabber:iq:roster"><item jid="nurse@localhost"/></query></iq>`)
	if push.FirstChild().HasAttr("ver") {
		t.Errorf("ver in %s", push)
	}
}

// TestSameVersionEmptyResult: RFC 6121 §2.6.3, the empty result carries no <query/>.
func TestSameVersionEmptyResult(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster"))
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	c.Send(t, `<iq type="set" id="a1"><query xmlns="jabber:iq:roster"><item jid="nurse@localhost"/></query></iq>`)
	c.Expect(t, `<iq type="result" id="a1"/>`) // not interested yet: no push
	c.Send(t, `<iq type="get" id="r1"><query xmlns="jabber:iq:roster" ver="1"/></iq>`)
	r := c.Expect(t, `<iq type="result" id="r1"/>`)
	if r.FirstChild() != nil {
		t.Errorf("empty result expected, got %s", r)
	}
	c.ExpectNothing(t)
	// Now interested: a later change is pushed.
	c.Send(t, `<iq type="set" id="a2"><query xmlns="jabber:iq:roster"><item jid="nurse@localhost" name="N"/></query></iq>`)
	c.Expect(t, `<iq type="set"><query xmlns="jabber:iq:roster" ver="2"><item jid="nurse@localhost" name="N"/></query></iq>`)
	c.Expect(t, `<iq type="result" id="a2"/>`)
}

// TestLimits: the server-configured limits of RFC 6121 §2.3.3 (not-acceptable)
// and max_items (not-allowed).
func TestLimits(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster"),
		xmpptest.Config("[modules.roster]\nmax_name_length = 5\nmax_group_length = 3\nmax_items = 1"))
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	for _, tc := range []struct{ item, want string }{
		{`<item jid="a@localhost" name="123456"/>`, "not-acceptable"},
		{`<item jid="a@localhost" name="12345"><group>abcd</group></item>`, "not-acceptable"},
		{`<item jid="a@localhost" name="ééééé"><group>ééé</group></item>`, ""}, // characters, not bytes
		{`<item jid="a@localhost" name="x"/>`, ""},                             // update: no new item
		{`<item jid="b@localhost"/>`, "not-allowed"},
	} {
		c.Send(t, `<iq type="set" id="s"><query xmlns="jabber:iq:roster">`+tc.item+`</query></iq>`)
		if tc.want == "" {
			c.Expect(t, `<iq type="result" id="s"/>`)
			continue
		}
		c.Expect(t, `<iq type="error" id="s"><error><`+tc.want+` xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`)
	}
}

func TestValidate(t *testing.T) {
	for _, r := range []*roster.Roster{
		{MaxItems: -1, MaxNameLength: 1, MaxGroupLength: 1},
		{MaxNameLength: 0, MaxGroupLength: 1},
		{MaxNameLength: 1, MaxGroupLength: 0},
	} {
		if r.Validate() == nil {
			t.Errorf("%+v: no error", r)
		}
	}
	if err := (&roster.Roster{MaxNameLength: 1, MaxGroupLength: 1}).Validate(); err != nil {
		t.Error(err)
	}
}

// TestUserDeleted: the roster store of a deleted account is emptied.
func TestUserDeleted(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster"))
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	c.Send(t, `<iq type="set" id="a1"><query xmlns="jabber:iq:roster"><item jid="nurse@localhost"/></query></iq>`)
	c.Expect(t, `<iq type="result" id="a1"/>`)
	st := srv.Driver.Map("localhost", "roster")
	ctx := context.Background()
	if all, err := st.All(ctx, "romeo"); err != nil || len(all) != 2 {
		t.Fatalf("before: %v %v", all, err)
	}
	if err := srv.Core.DeleteUser(ctx, jid.MustParse("romeo@localhost")); err != nil {
		t.Fatal(err)
	}
	if all, err := st.All(ctx, "romeo"); err != nil || len(all) != 0 {
		t.Fatalf("after: %v %v", all, err)
	}
}

// TestConcurrentSets: roster sets from several resources at once get
// unique, strictly increasing versions and every push reaches every
// interested resource in version order (XEP-0237: "Roster pushes MUST
// occur in order of modification and the version ... MUST be unique").
func TestConcurrentSets(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("roster"))
	srv.CreateUser(t, "romeo@localhost", "password")
	const writers, each = 4, 15
	watcher := srv.Login(t, "romeo@localhost/watcher", "password")
	watcher.Send(t, `<iq type="get" id="w"><query xmlns="jabber:iq:roster"/></iq>`)
	watcher.Expect(t, `<iq type="result" id="w"/>`)
	var wg sync.WaitGroup
	for w := range writers {
		c := srv.Login(t, fmt.Sprintf("romeo@localhost/w%d", w), "password")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				c.Send(t, fmt.Sprintf(`<iq type="set" id="s%d"><query xmlns="jabber:iq:roster"><item jid="c%d-%d@localhost"/></query></iq>`, i, w, i))
			}
		}()
	}
	wg.Wait()
	last := uint64(0)
	for range writers * each {
		el, err := watcher.RecvTimeout(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		v, err := strconv.ParseUint(el.FirstChild().Attr("ver"), 10, 64)
		if err != nil || v != last+1 {
			t.Fatalf("push %s after version %d", el, last)
		}
		last = v
	}
	b, err := srv.Driver.Map("localhost", "roster").Get(context.Background(), "romeo", "@meta")
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Ver uint64 }
	if err := json.Unmarshal(b, &m); err != nil || m.Ver != writers*each {
		t.Fatalf("meta %s: %v", b, err)
	}
}
