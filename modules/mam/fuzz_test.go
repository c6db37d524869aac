package mam

import (
	"testing"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// FuzzParseRequest feeds archive queries from untrusted clients to the
// query parser and the archiving rules: they must not panic.
func FuzzParseRequest(f *testing.F) {
	f.Add(`<query xmlns="urn:xmpp:mam:2" queryid="q"><x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE"><value>urn:xmpp:mam:2</value></field><field var="with"><value>a@b/c</value></field><field var="ids"><value>1</value></field></x><set xmlns="http://jabber.org/protocol/rsm"><max>5</max><before>x</before></set><flip-page/></query>`)
	f.Add(`<query xmlns="urn:xmpp:mam:2"><x xmlns="jabber:x:data"><field var="start"><value>2010-06-07T00:00:00Z</value></field></x></query>`)
	f.Add(`<prefs xmlns="urn:xmpp:mam:2" default="roster"><always><jid>a@b</jid></always><never><jid>c@d/e</jid></never></prefs>`)
	f.Fuzz(func(t *testing.T, s string) {
		el, err := xmlstream.ParseNS([]byte(s), stanza.NSClient)
		if err != nil {
			return
		}
		_, _ = parseRequest(el)
		_, _ = parsePrefs(el)
		_ = archivable(el)
		_ = withoutStanzaIDs(el, "a@b")
	})
}
