package muc_test

import (
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

func xmpptestParse(s string) (*stanza.Element, error) {
	return xmlstream.ParseNS([]byte(s), stanza.NSClient)
}
