// Package csi implements XEP-0352 Client State Indication (version 1.0.0)
// on the server side: it advertises <csi xmlns='urn:xmpp:csi:0'/> in the
// stream features of bound sessions, which lets clients send <active/>
// and <inactive/>.
//
// The buffering itself lives in the c2s session (internal/c2s/csi.go),
// where stanzas are queued: while a client is inactive, presence updates
// and messages that carry only chat states are held back and written, in
// order, before the next important stanza (any other message, any IQ, a
// subscription request), when the client becomes active, when 32 KiB are
// held, or when the stream closes. Nothing is dropped.
package csi

import (
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// NS is the XEP-0352 namespace.
const NS = "urn:xmpp:csi:0"

func init() { module.Register(new(CSI)) }

// CSI is the module. It has no options.
type CSI struct{}

// Info implements module.Module.
func (*CSI) Info() module.Info {
	return module.Info{ID: "mod.csi", New: func() module.Module { return new(CSI) }}
}

// Provision implements module.Provisioner.
func (*CSI) Provision(h module.Host) error {
	h.AddStreamFeature(stanza.New(NS, "csi"), false)
	return nil
}
