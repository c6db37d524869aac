// Package standard links in the first-party modules. Binaries import it for
// its side effects: each module registers itself from init().
package standard

import (
	_ "github.com/metronome-xmpp/metronome/modules/adhoc"
	_ "github.com/metronome-xmpp/metronome/modules/blocking"
	_ "github.com/metronome-xmpp/metronome/modules/bosh"
	_ "github.com/metronome-xmpp/metronome/modules/carbons"
	_ "github.com/metronome-xmpp/metronome/modules/csi"
	_ "github.com/metronome-xmpp/metronome/modules/disco"
	_ "github.com/metronome-xmpp/metronome/modules/hostmeta"
	_ "github.com/metronome-xmpp/metronome/modules/http_upload"
	_ "github.com/metronome-xmpp/metronome/modules/last"
	_ "github.com/metronome-xmpp/metronome/modules/mam"
	_ "github.com/metronome-xmpp/metronome/modules/message"
	_ "github.com/metronome-xmpp/metronome/modules/muc"
	_ "github.com/metronome-xmpp/metronome/modules/offline"
	_ "github.com/metronome-xmpp/metronome/modules/ping"
	_ "github.com/metronome-xmpp/metronome/modules/presence"
	_ "github.com/metronome-xmpp/metronome/modules/private"
	_ "github.com/metronome-xmpp/metronome/modules/push"
	_ "github.com/metronome-xmpp/metronome/modules/register"
	_ "github.com/metronome-xmpp/metronome/modules/roster"
	_ "github.com/metronome-xmpp/metronome/modules/time"
	_ "github.com/metronome-xmpp/metronome/modules/vcard"
	_ "github.com/metronome-xmpp/metronome/modules/version"
	_ "github.com/metronome-xmpp/metronome/modules/websocket"
)
