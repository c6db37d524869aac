package time_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"
	mtime "github.com/metronome-xmpp/metronome/modules/time"
)

func TestScripts(t *testing.T) {
	xmpptest.RunScripts(t, "testdata", xmpptest.Modules("time"))
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       time.Time
		tzo, utc string
	}{
		{"utc", time.Date(2006, 12, 19, 17, 58, 35, 0, time.UTC), "+00:00", "2006-12-19T17:58:35Z"},
		// XEP-0202 §3 example: 11:58 in UTC-6.
		{"negative offset", time.Date(2006, 12, 19, 11, 58, 35, 0, time.FixedZone("CST", -6*3600)), "-06:00", "2006-12-19T17:58:35Z"},
		{"half hour", time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("IST", 5*3600+1800)), "+05:30", "2024-01-01T21:34:05Z"},
		{"milliseconds", time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC), "+00:00", "2024-01-02T03:04:05.123Z"},
		{"sub-millisecond", time.Date(2024, 1, 2, 3, 4, 5, 999, time.UTC), "+00:00", "2024-01-02T03:04:05Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mtime.TZO(tc.in); got != tc.tzo {
				t.Errorf("TZO = %q, want %q", got, tc.tzo)
			}
			if got := mtime.UTC(tc.in); got != tc.utc {
				t.Errorf("UTC = %q, want %q", got, tc.utc)
			}
			el := mtime.Element(tc.in)
			if el.ChildText(mtime.NS, "tzo") != tc.tzo || el.ChildText(mtime.NS, "utc") != tc.utc {
				t.Errorf("Element = %s", el)
			}
		})
	}
}

// XEP-0082 §3.2 DateTime in UTC, and TZD as ±hh:mm.
var (
	utcRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$`)
	tzoRe = regexp.MustCompile(`^[+-]\d{2}:\d{2}$`)
)

func TestServerTime(t *testing.T) {
	srv := xmpptest.NewServer(t, xmpptest.Modules("time"))
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	before := time.Now().Add(-time.Second)
	c.Send(t, `<iq type="get" id="t1" to="localhost"><time xmlns="urn:xmpp:time"/></iq>`)
	tm := c.Expect(t, `<iq type="result" id="t1"><time xmlns="urn:xmpp:time"/></iq>`).FirstChild()
	utc, tzo := tm.ChildText(mtime.NS, "utc"), tm.ChildText(mtime.NS, "tzo")
	if !utcRe.MatchString(utc) || !tzoRe.MatchString(tzo) {
		t.Fatalf("utc %q tzo %q do not follow XEP-0082", utc, tzo)
	}
	got, err := time.Parse(time.RFC3339, utc)
	if err != nil {
		t.Fatal(err)
	}
	if got.Before(before) || got.After(time.Now().Add(time.Second)) {
		t.Errorf("server time %v is not now", got)
	}
}
