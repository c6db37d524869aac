package version_test

import (
	"testing"

	"github.com/metronome-xmpp/metronome/internal/xmpptest"

	_ "github.com/metronome-xmpp/metronome/modules/version"
)

func TestScripts(t *testing.T) {
	xmpptest.RunScripts(t, "testdata", xmpptest.Modules("version"))
}

func query(t *testing.T, opts ...xmpptest.Option) (name, version, os string, hasOS bool) {
	t.Helper()
	srv := xmpptest.NewServer(t, append([]xmpptest.Option{xmpptest.Modules("version")}, opts...)...)
	srv.CreateUser(t, "romeo@localhost", "password")
	c := srv.Login(t, "romeo@localhost/orchard", "password")
	c.Send(t, `<iq type="get" id="v1" to="localhost"><query xmlns="jabber:iq:version"/></iq>`)
	q := c.Expect(t, `<iq type="result" id="v1"><query xmlns="jabber:iq:version"/></iq>`).FirstChild()
	return q.ChildText("jabber:iq:version", "name"), q.ChildText("jabber:iq:version", "version"),
		q.ChildText("jabber:iq:version", "os"), q.Child("jabber:iq:version", "os") != nil
}

func TestOSHiddenByDefault(t *testing.T) {
	name, version, _, hasOS := query(t)
	if name != "Metronome" || version == "" {
		t.Errorf("name %q version %q", name, version)
	}
	if hasOS {
		t.Error("os shown although show_os is off")
	}
}

func TestShowOS(t *testing.T) {
	_, _, os, hasOS := query(t, xmpptest.Config("[modules.version]\nshow_os = true"))
	if !hasOS || os == "" {
		t.Errorf("os %q (present %v), want it shown", os, hasOS)
	}
}
