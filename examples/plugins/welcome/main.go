// Command welcome is a Metronome plugin that sends a welcome message to
// every account created on its host (in-band registration, the admin
// commands or `metronomectl user add`), like Prosody's mod_welcome. The
// message goes to the bare JID, so a client that is not online yet gets it
// from offline storage at its first login.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
package main

import (
	"strings"

	"github.com/metronome-xmpp/metronome/sdk"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

type config struct {
	Message string `json:"message"`
	Subject string `json:"subject"`
}

var cfg config

func init() { sdk.Main(setup) }

func setup(p *sdk.Plugin) error {
	if err := p.Config(&cfg); err != nil {
		return err
	}
	return p.Hook(sdk.EventUserCreated, sdk.PrioDefault, created)
}

// created runs once per new account; ev.User is its bare JID.
func created(ev *sdk.Event) sdk.Verdict {
	local, _, _ := strings.Cut(ev.User, "@")
	r := strings.NewReplacer("{host}", ev.Host, "{user}", local, "{jid}", ev.User)
	msg := sdk.Message(ev.Host, ev.User, "", "")
	if cfg.Subject != "" {
		msg.AddChild(stanza.New(stanza.NSClient, "subject").AddText(r.Replace(cfg.Subject)))
	}
	msg.AddChild(stanza.New(stanza.NSClient, "body").AddText(r.Replace(cfg.Message)))
	if err := sdk.Send(msg); err != nil {
		sdk.Log(sdk.LevelWarn, "welcome: send to "+ev.User+": "+err.Error())
	}
	return sdk.Continue
}

func main() {}
