// Command motd is a Metronome plugin that sends a message of the day to
// every client session when it sends its initial presence (logs in), like
// Prosody's mod_motd. With once = true it remembers, per account, the last
// message sent and sends each message only once.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/metronome-xmpp/metronome/sdk"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

type config struct {
	Message string `json:"message"`
	Subject string `json:"subject"`
	Type    string `json:"type"`
	Once    bool   `json:"once"`
}

var (
	cfg  config
	hash string // of the configured message, for once
	seen = sdk.OpenStore("seen")
)

func init() { sdk.Main(setup) }

func setup(p *sdk.Plugin) error {
	if err := p.Config(&cfg); err != nil {
		return err
	}
	switch cfg.Type {
	case "normal", "headline":
	default:
		return errors.New(`type: want "normal" or "headline"`)
	}
	if strings.TrimSpace(cfg.Message) == "" {
		sdk.Log(sdk.LevelWarn, "motd: no message configured; nothing will be sent")
		return nil
	}
	sum := sha256.Sum256([]byte(cfg.Subject + "\x00" + cfg.Message))
	hash = hex.EncodeToString(sum[:8])
	// Above the presence module (0), which marks the session available:
	// here a session that is not yet available is sending its initial
	// presence.
	return p.Hook(sdk.EventPresenceOut, 100, presence)
}

// presence runs for every presence a client broadcasts; ev.From is its
// full JID.
func presence(ev *sdk.Event) sdk.Verdict {
	if ev.Type != "" || ev.OriginAvailable() || ev.OriginKind != "c2s" {
		return sdk.Continue // not an initial available presence
	}
	bare, _, _ := strings.Cut(ev.From, "/")
	if cfg.Once {
		if v, err := seen.Get(bare, "motd"); err == nil && string(v) == hash {
			return sdk.Continue
		}
	}
	r := strings.NewReplacer("{host}", ev.Host, "{jid}", bare)
	typ := cfg.Type
	if typ == "normal" {
		typ = ""
	}
	msg := sdk.Message(ev.Host, ev.From, typ, "")
	if cfg.Subject != "" {
		msg.AddChild(stanza.New(stanza.NSClient, "subject").AddText(r.Replace(cfg.Subject)))
	}
	msg.AddChild(stanza.New(stanza.NSClient, "body").AddText(r.Replace(cfg.Message)))
	if err := sdk.Send(msg); err != nil {
		sdk.Log(sdk.LevelWarn, "motd: send to "+ev.From+": "+err.Error())
		return sdk.Continue
	}
	if cfg.Once {
		if err := seen.Set(bare, "motd", []byte(hash)); err != nil {
			sdk.Log(sdk.LevelWarn, "motd: remember "+bare+": "+err.Error())
		}
	}
	return sdk.Continue
}

func main() {}
