package mam_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	"github.com/metronome-xmpp/metronome/modules/mam"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/storage/memory"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// page is what one archive query returned.
type page struct {
	ids      []string // result ids, in the order received
	bodies   []string // the forwarded messages' bodies
	first    string
	index    string // first's index attribute
	last     string
	count    string
	complete bool
}

// query sends an archive query (form fields and RSM elements as XML) and
// collects the results and the fin; a stanza error fails the test unless
// wantErr names its condition.
func query(t *testing.T, c *xmpptest.Client, inner string) page {
	t.Helper()
	p, err := tryQuery(t, c, inner)
	if err != nil {
		t.Fatalf("query %s: %v", inner, err)
	}
	return p
}

var querySeq atomic.Int64 // tests run in parallel

func tryQuery(t *testing.T, c *xmpptest.Client, inner string) (page, error) {
	t.Helper()
	id := fmt.Sprintf("q%d", querySeq.Add(1))
	c.Send(t, `<iq type="set" id="`+id+`"><query xmlns="urn:xmpp:mam:2" queryid="`+id+`">`+inner+`</query></iq>`)
	var p page
	for {
		el := c.Recv(t)
		switch {
		case el.Name == "message":
			res := el.Child(mam.NS, "result")
			if res == nil || res.Attr("queryid") != id {
				t.Fatalf("unexpected %s", el)
			}
			p.ids = append(p.ids, res.Attr("id"))
			fwd := res.Child(mam.NSForward, "forwarded")
			if fwd == nil || fwd.Child(mam.NSDelay, "delay") == nil || fwd.Child(stanza.NSClient, "message") == nil {
				t.Fatalf("malformed result %s", el)
			}
			p.bodies = append(p.bodies, fwd.Child(stanza.NSClient, "message").ChildText("", "body"))
		case el.Name == "iq" && el.ID() == id:
			if el.Type() == "error" {
				return p, stanza.ParseError(el)
			}
			fin := el.Child(mam.NS, "fin")
			if fin == nil {
				t.Fatalf("no fin in %s", el)
			}
			p.complete = fin.Attr("complete") == "true"
			set := fin.Child(mam.NSRSM, "set")
			if f := set.Child(mam.NSRSM, "first"); f != nil {
				p.first, p.index = f.Text(), f.Attr("index")
			}
			p.last = set.ChildText(mam.NSRSM, "last")
			p.count = set.ChildText(mam.NSRSM, "count")
			return p, nil
		default:
			t.Fatalf("unexpected %s", el)
		}
	}
}

func form(fields ...string) string {
	var b strings.Builder
	b.WriteString(`<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>urn:xmpp:mam:2</value></field>`)
	for i := 0; i+1 < len(fields); i += 2 {
		b.WriteString(`<field var="` + fields[i] + `">`)
		for _, v := range strings.Split(fields[i+1], ",") {
			b.WriteString("<value>" + v + "</value>")
		}
		b.WriteString(`</field>`)
	}
	return b.String() + `</x>`
}

func rsm(max int, extra string) string {
	return fmt.Sprintf(`<set xmlns="http://jabber.org/protocol/rsm"><max>%d</max>%s</set>`, max, extra)
}

// setup starts a server where romeo (connected) sent juliet n messages
// "m0".."m<n-1>" while she was offline, then logs juliet in (without
// presence). mamConfig is added to [modules.mam], which has
// include_count = true.
func setup(t *testing.T, n int, mamConfig string, opts ...xmpptest.Option) (*xmpptest.Server, *xmpptest.Client, *xmpptest.Client) {
	t.Helper()
	opts = append([]xmpptest.Option{modules, xmpptest.Config("[modules.mam]\ninclude_count = true\n" + mamConfig)}, opts...)
	srv := xmpptest.NewServer(t, opts...)
	for _, u := range []string{"romeo", "juliet", "nurse"} {
		srv.CreateUser(t, u+"@localhost", "password")
	}
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	for i := range n {
		romeo.Send(t, fmt.Sprintf(`<message to="juliet@localhost" type="chat" id="id%d"><body>m%d</body></message>`, i, i))
	}
	juliet := srv.Login(t, "juliet@localhost/balcony", "password")
	sync(t, romeo)
	return srv, romeo, juliet
}

// sync waits until the server has processed what c sent: stanzas of a
// session are processed in order, and a message is archived before it is
// accepted, so the archive has c's messages once this returns.
func sync(t *testing.T, c *xmpptest.Client) {
	t.Helper()
	c.Send(t, `<iq type="get" id="sync" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	c.Expect(t, `<iq type="result" id="sync"/>`)
}

func bodies(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("m%d", i))
	}
	return out
}

func wantPage(t *testing.T, what string, p page, wantBodies []string, count string, complete bool) {
	t.Helper()
	if !slices.Equal(p.bodies, wantBodies) {
		t.Errorf("%s: bodies %v, want %v", what, p.bodies, wantBodies)
	}
	if p.count != count {
		t.Errorf("%s: count %q, want %q", what, p.count, count)
	}
	if p.complete != complete {
		t.Errorf("%s: complete %v, want %v", what, p.complete, complete)
	}
	if len(p.ids) > 0 && (p.first == "" || p.last == "") {
		t.Errorf("%s: first %q last %q", what, p.first, p.last)
	}
}

// TestPaging pages through 25 messages both ways with XEP-0059 (max,
// after, before, empty before), checking first/last/count/complete and the
// first index, and flips a page (§Flipped pages).
func TestPaging(t *testing.T) {
	t.Parallel()
	_, _, juliet := setup(t, 25, "")

	// Forwards.
	p := query(t, juliet, rsm(10, ""))
	wantPage(t, "page 1", p, bodies(0, 10), "25", false)
	if p.index != "0" || p.first != p.ids[0] || p.last != p.ids[9] {
		t.Errorf("page 1: first %q index %q last %q, ids %v", p.first, p.index, p.last, p.ids)
	}
	all := p.ids
	p = query(t, juliet, rsm(10, "<after>"+p.last+"</after>"))
	wantPage(t, "page 2", p, bodies(10, 20), "25", false)
	all = append(all, p.ids...)
	p = query(t, juliet, rsm(10, "<after>"+p.last+"</after>"))
	wantPage(t, "page 3", p, bodies(20, 25), "25", true)
	all = append(all, p.ids...)
	p = query(t, juliet, rsm(10, "<after>"+p.last+"</after>"))
	wantPage(t, "after the end", p, nil, "25", true)

	// Backwards from the end: pages stay chronological.
	p = query(t, juliet, rsm(10, "<before/>"))
	wantPage(t, "last page", p, bodies(15, 25), "25", false)
	if p.index != "15" || p.first != all[15] || p.last != all[24] {
		t.Errorf("last page: first %q index %q last %q", p.first, p.index, p.last)
	}
	p = query(t, juliet, rsm(10, "<before>"+p.first+"</before>"))
	wantPage(t, "previous page", p, bodies(5, 15), "25", false)
	p = query(t, juliet, rsm(10, "<before>"+p.first+"</before>"))
	wantPage(t, "first page backwards", p, bodies(0, 5), "25", true)

	// A flipped page: the same page, newest first; first/last unchanged.
	p = query(t, juliet, rsm(10, "<before/>")+"<flip-page/>")
	want := bodies(15, 25)
	slices.Reverse(want)
	wantPage(t, "flipped last page", p, want, "25", false)
	if p.first != all[15] || p.last != all[24] {
		t.Errorf("flipped: first %q last %q", p.first, p.last)
	}
	p = query(t, juliet, rsm(3, "<after>"+all[4]+"</after>")+"<flip-page/>")
	wantPage(t, "flipped page after", p, []string{"m7", "m6", "m5"}, "25", false)

	// max 0: the count only (XEP-0059 §2.6).
	p = query(t, juliet, rsm(0, ""))
	wantPage(t, "max 0", p, nil, "25", false)

	// Without RSM: up to max_page (here all 25).
	p = query(t, juliet, "")
	wantPage(t, "no RSM", p, bodies(0, 25), "25", true)
}

// TestMaxPage checks that max_page caps what a client asks for.
func TestMaxPage(t *testing.T) {
	t.Parallel()
	_, _, juliet := setup(t, 8, "max_page = 5")
	p := query(t, juliet, rsm(50, ""))
	wantPage(t, "capped", p, bodies(0, 5), "8", false)
	p = query(t, juliet, "")
	wantPage(t, "default page", p, bodies(0, 5), "8", false)
}

// TestIDFields checks the #extended fields after-id, before-id and ids
// (§Limiting results by id), alone and with RSM paging inside the range.
func TestIDFields(t *testing.T) {
	t.Parallel()
	_, _, juliet := setup(t, 20, "")
	ids := query(t, juliet, "").ids

	p := query(t, juliet, form("after-id", ids[4], "before-id", ids[10]))
	wantPage(t, "range", p, bodies(5, 10), "5", true)
	p = query(t, juliet, form("after-id", ids[15]))
	wantPage(t, "after-id", p, bodies(16, 20), "4", true)
	p = query(t, juliet, form("before-id", ids[2]))
	wantPage(t, "before-id", p, bodies(0, 2), "2", true)

	// Paging inside a range, both ways.
	p = query(t, juliet, form("after-id", ids[4], "before-id", ids[15])+rsm(4, ""))
	wantPage(t, "range page 1", p, bodies(5, 9), "10", false)
	p = query(t, juliet, form("after-id", ids[4], "before-id", ids[15])+rsm(4, "<after>"+p.last+"</after>"))
	wantPage(t, "range page 2", p, bodies(9, 13), "10", false)
	p = query(t, juliet, form("after-id", ids[4], "before-id", ids[15])+rsm(4, "<after>"+p.last+"</after>"))
	wantPage(t, "range page 3", p, bodies(13, 15), "10", true)
	p = query(t, juliet, form("after-id", ids[4], "before-id", ids[15])+rsm(4, "<before/>"))
	wantPage(t, "range last page", p, bodies(11, 15), "10", false)
	// An RSM cursor before the range does not widen it.
	p = query(t, juliet, form("after-id", ids[10])+rsm(3, "<after>"+ids[1]+"</after>"))
	wantPage(t, "cursor before the range", p, bodies(11, 14), "9", false)

	p = query(t, juliet, form("ids", ids[3]+","+ids[17]+","+ids[3]))
	wantPage(t, "ids", p, []string{"m3", "m17"}, "2", true)
	p = query(t, juliet, form("ids", ids[3])+rsm(10, "<before/>"))
	wantPage(t, "single item", p, []string{"m3"}, "1", true)
	for _, inner := range []string{
		form("ids", ids[3]+",unknown"),
		form("after-id", "unknown"),
		form("before-id", "unknown"),
		rsm(5, "<after>unknown</after>"),
		rsm(5, "<before>unknown</before>"),
	} {
		if _, err := tryQuery(t, juliet, inner); !isCondition(err, stanza.ItemNotFound) {
			t.Errorf("%s: %v, want item-not-found", inner, err)
		}
	}
	// An id that exists but does not match the other filters is not an error.
	p = query(t, juliet, form("ids", ids[3], "with", "nurse@localhost"))
	wantPage(t, "id filtered out", p, nil, "0", true)
}

func isCondition(err error, c stanza.Condition) bool {
	var e stanza.Error
	return errors.As(err, &e) && e.Condition == c
}

// TestWithAndTime checks §Filtering by JID (bare JIDs match every
// resource, full JIDs only themselves; both directions of a conversation)
// and §Filtering by time received.
func TestWithAndTime(t *testing.T) {
	t.Parallel()
	srv, romeo, juliet := setup(t, 3, "")
	nurse := srv.Login(t, "nurse@localhost/kitchen", "password")
	garden := srv.Login(t, "romeo@localhost/garden", "password")
	nurse.Send(t, `<message to="juliet@localhost" type="chat" id="n1"><body>nurse</body></message>`)
	sync(t, nurse)
	garden.Send(t, `<message to="juliet@localhost" type="chat" id="g1"><body>garden</body></message>`)
	sync(t, garden)
	juliet.Send(t, `<message to="romeo@localhost/orchard" type="chat" id="j1"><body>reply</body></message>`)
	romeo.Expect(t, `<message id="j1"/>`)

	p := query(t, juliet, form("with", "romeo@localhost"))
	wantPage(t, "with bare", p, []string{"m0", "m1", "m2", "garden", "reply"}, "5", true)
	p = query(t, juliet, form("with", "romeo@localhost/garden"))
	wantPage(t, "with full", p, []string{"garden"}, "", true)
	p = query(t, juliet, form("with", "romeo@localhost/orchard")+rsm(2, ""))
	wantPage(t, "with full, paged", p, []string{"m0", "m1"}, "", false)
	p = query(t, juliet, form("with", "romeo@localhost/orchard")+rsm(2, "<after>"+p.last+"</after>"))
	wantPage(t, "with full, page 2", p, []string{"m2", "reply"}, "", true)
	p = query(t, juliet, form("with", "romeo@localhost/orchard")+rsm(3, "<before/>"))
	wantPage(t, "with full, backwards", p, []string{"m1", "m2", "reply"}, "", false)
	p = query(t, juliet, form("with", "nurse@localhost"))
	wantPage(t, "with nurse", p, []string{"nurse"}, "1", true)
	// Romeo's own archive has both sides with juliet, from both resources.
	p = query(t, romeo, form("with", "juliet@localhost"))
	wantPage(t, "romeo with juliet", p, []string{"m0", "m1", "m2", "garden", "reply"}, "5", true)

	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	p = query(t, juliet, form("start", past, "end", future))
	wantPage(t, "window", p, []string{"m0", "m1", "m2", "nurse", "garden", "reply"}, "6", true)
	p = query(t, juliet, form("start", future))
	wantPage(t, "future", p, nil, "0", true)
	p = query(t, juliet, form("end", past))
	wantPage(t, "past", p, nil, "0", true)
}

// TestStanzaIDs checks XEP-0359's business rules as XEP-0313 uses them:
// a stanza-id claiming the recipient's archive is replaced by the real
// one; the sender's stanza-id is never sent to the recipient; nothing
// archived carries a stanza-id of the archive itself.
func TestStanzaIDs(t *testing.T) {
	t.Parallel()
	srv, romeo, juliet := setup(t, 0, "")
	juliet.Send(t, `<presence/>`)
	juliet.Expect(t, `<presence/>`)
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="f1"><body>hello</body>`+
		`<stanza-id xmlns="urn:xmpp:sid:0" by="juliet@localhost" id="forged"/>`+
		`<stanza-id xmlns="urn:xmpp:sid:0" by="romeo@localhost" id="forged-too"/>`+
		`<stanza-id xmlns="urn:xmpp:sid:0" by="muc.example.net" id="kept"/></message>`)
	el := juliet.Expect(t, `<message id="f1"/>`)
	var byJuliet, byRomeo, other int
	var id string
	for c := range el.Elements {
		if c.Space != mam.NSSID || c.Name != "stanza-id" {
			continue
		}
		switch c.Attr("by") {
		case "juliet@localhost":
			byJuliet++
			id = c.Attr("id")
		case "romeo@localhost":
			byRomeo++
		default:
			other++
		}
	}
	if byJuliet != 1 || byRomeo != 0 || other != 1 || id == "forged" {
		t.Fatalf("stanza-ids in %s", el)
	}
	p := query(t, juliet, "")
	if len(p.ids) != 1 || p.ids[0] != id {
		t.Fatalf("archive ids %v, stanza-id %q", p.ids, id)
	}
	// Juliet's archive has neither forged id; Romeo's (the sender's) keeps
	// what his client sent except the id claiming his own archive.
	for user, forbidden := range map[string]string{"juliet": "forged", "romeo": `id="forged-too"`} {
		items, _, err := srv.Driver.Archive("localhost", "archive").Find(t.Context(), user, storage.Query{})
		if err != nil || len(items) != 1 {
			t.Fatalf("%s: %d items, %v", user, len(items), err)
		}
		v := string(items[0].Value)
		if strings.Contains(v, forbidden) || !strings.Contains(v, `id="kept"`) {
			t.Errorf("%s archived %s", user, v)
		}
	}
}

// TestDisco checks the features on the account (§Determining support).
func TestDisco(t *testing.T) {
	t.Parallel()
	_, _, juliet := setup(t, 0, "")
	juliet.Send(t, `<iq type="get" id="d1" to="juliet@localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	juliet.Expect(t, `<iq type="result" id="d1"><query xmlns="http://jabber.org/protocol/disco#info">`+
		`<feature var="urn:xmpp:mam:2"/><feature var="urn:xmpp:mam:2#extended"/><feature var="urn:xmpp:sid:0"/></query></iq>`)
}

// TestUserDeleted checks that deleting an account deletes its archive and
// preferences.
func TestUserDeleted(t *testing.T) {
	t.Parallel()
	srv, _, juliet := setup(t, 3, "")
	juliet.Send(t, `<iq type="set" id="p1"><prefs xmlns="urn:xmpp:mam:2" default="never"/></iq>`)
	juliet.Expect(t, `<iq type="result" id="p1"/>`)
	ctx := t.Context()
	if err := srv.Core.DeleteUser(ctx, jid.MustParse("juliet@localhost")); err != nil {
		t.Fatal(err)
	}
	if _, total, err := srv.Driver.Archive("localhost", "archive").Find(ctx, "juliet", storage.Query{Total: true}); err != nil || total != 0 {
		t.Errorf("archive after deletion: %d items, %v", total, err)
	}
	if _, err := srv.Driver.KeyVal("localhost", "archive_prefs").Get(ctx, "juliet"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("preferences after deletion: %v", err)
	}
	if _, total, _ := srv.Driver.Archive("localhost", "archive").Find(ctx, "romeo", storage.Query{Total: true}); total != 3 {
		t.Errorf("romeo's archive: %d items, want 3", total)
	}
}

// TestExpiry checks retention: with expire_after, the periodic cleanup
// deletes messages older than that, and only those.
func TestExpiry(t *testing.T) {
	t.Parallel()
	srv, _, juliet := setup(t, 2, "expire_after = \"1h\"\ncleanup_interval = \"20ms\"")
	ctx := t.Context()
	a := srv.Driver.Archive("localhost", "archive")
	if _, err := a.Append(ctx, "juliet", storage.Item{When: time.Now().Add(-2 * time.Hour), With: "romeo@localhost", Type: "message",
		Value: []byte(`<message from="romeo@localhost/orchard" to="juliet@localhost" type="chat"><body>old</body></message>`)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(xmpptest.Timeout)
	for {
		_, total, err := a.Find(ctx, "juliet", storage.Query{Total: true})
		if err != nil {
			t.Fatal(err)
		}
		if total == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old message was not expired: %d items", total)
		}
		time.Sleep(10 * time.Millisecond)
	}
	wantPage(t, "after expiry", query(t, juliet, ""), bodies(0, 2), "2", true)
}

// failingDriver fails every archive append for juliet.
type failingDriver struct{ storage.Driver }

func (d failingDriver) Archive(host, store string) storage.Archive {
	return failingArchive{d.Driver.Archive(host, store)}
}

type failingArchive struct{ storage.Archive }

func (a failingArchive) Append(ctx context.Context, user string, it storage.Item) (string, error) {
	if user == "juliet" {
		return "", errors.New("disk on fire")
	}
	return a.Archive.Append(ctx, user, it)
}

// TestWriteFailureBounces checks that a message is not accepted unless
// archived: when the recipient's archive write fails, the sender gets an
// error and the recipient nothing.
func TestWriteFailureBounces(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, modules, xmpptest.Driver(failingDriver{memory.New()}))
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	juliet := srv.Login(t, "juliet@localhost/balcony", "password")
	juliet.Send(t, `<presence/>`)
	juliet.Expect(t, `<presence/>`)
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="m1"><body>lost?</body></message>`)
	romeo.Expect(t, `<message type="error" id="m1" from="juliet@localhost"><error type="cancel"><internal-server-error xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`)
	juliet.ExpectNothing(t)
}

// TestOfflineFull checks the interplay with a full offline store: a
// message that is archived is not bounced even when mod.offline refuses
// it; one the archive does not take (preference never) is.
func TestOfflineFull(t *testing.T) {
	t.Parallel()
	srv, romeo, juliet := setup(t, 2, "", xmpptest.Config("[modules.offline]\nmax_messages = 1"))
	romeo.ExpectNothing(t) // m1 was over the limit but archived: no bounce
	juliet.Send(t, `<iq type="set" id="p1"><prefs xmlns="urn:xmpp:mam:2" default="always"><never><jid>nurse@localhost</jid></never></prefs></iq>`)
	juliet.Expect(t, `<iq type="result" id="p1"/>`)
	nurse := srv.Login(t, "nurse@localhost/kitchen", "password")
	nurse.Send(t, `<message to="juliet@localhost" type="chat" id="n1"><body>y</body></message>`)
	nurse.Expect(t, `<message type="error" id="n1"><error><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`)
	romeo.Send(t, `<message to="juliet@localhost" type="chat" id="r1"><body>z</body></message>`)
	romeo.ExpectNothing(t)
	wantPage(t, "archive", query(t, juliet, ""), []string{"m0", "m1", "z"}, "3", true)
}

// TestCountOff checks that without include_count (and without expiry) the
// results have no count, and the rest of the fin is unchanged.
func TestCountOff(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, modules)
	srv.CreateUser(t, "romeo@localhost", "password")
	srv.CreateUser(t, "juliet@localhost", "password")
	romeo := srv.Login(t, "romeo@localhost/orchard", "password")
	for i := range 3 {
		romeo.Send(t, fmt.Sprintf(`<message to="juliet@localhost" type="chat"><body>m%d</body></message>`, i))
	}
	p := query(t, romeo, rsm(2, "<before/>"))
	wantPage(t, "last page", p, bodies(1, 3), "", false)
	if p.index != "" {
		t.Errorf("index %q without a count", p.index)
	}
	p = query(t, romeo, rsm(2, "<before>"+p.first+"</before>"))
	wantPage(t, "first page", p, bodies(0, 1), "", true)
}

// TestReceiptsMarkersUntouched checks that XEP-0184 receipts, XEP-0333
// markers and XEP-0085 chat states pass through as sent: nothing added
// (no stanza-id: they are not archived), nothing removed.
func TestReceiptsMarkersUntouched(t *testing.T) {
	t.Parallel()
	_, romeo, juliet := setup(t, 0, "")
	juliet.Send(t, `<presence/>`)
	juliet.Expect(t, `<presence/>`)
	for _, payload := range []string{
		`<request xmlns="urn:xmpp:receipts"/>`,
		`<received xmlns="urn:xmpp:receipts" id="m1"/>`,
		`<markable xmlns="urn:xmpp:chat-markers:0"/>`,
		`<displayed xmlns="urn:xmpp:chat-markers:0" id="m1"/>`,
		`<composing xmlns="http://jabber.org/protocol/chatstates"/>`,
	} {
		romeo.Send(t, `<message to="juliet@localhost" type="chat" id="x">`+payload+`</message>`)
		el := juliet.Expect(t, `<message to="juliet@localhost" type="chat" id="x" from="romeo@localhost/orchard"/>`)
		var got string
		n := 0
		for c := range el.Elements {
			got += string(c.Append(nil, stanza.NSClient))
			n++
		}
		if n != 1 || got != payload || len(el.Attrs) != 4 {
			t.Errorf("sent %s, got %s (%d children %q, attrs %+v)", payload, el, n, got, el.Attrs)
		}
	}
	wantPage(t, "archive", query(t, juliet, ""), nil, "0", true)
}
