// Command wordfilter is a Metronome plugin that filters words out of the
// messages local users send: by default only groupchat messages, so it acts
// on every MUC room the users talk in, whichever service hosts it. A
// message containing a listed word is either censored (each letter of the
// word becomes '*' in <body> and <subject>) or rejected with not-acceptable.
//
// It hooks pre-message/bare and pre-message/full, which the server fires on
// the sender's host for every message a client sends, before routing. The
// common case (no listed word) is checked on the raw XML without parsing or
// allocating; only a message that may contain a word is parsed.
//
// Enabled on a MUC component too, it adds a boolean field
// x-wordfilter#enabled ("Filter listed words in this room", on by default)
// to the rooms' configuration form (muc/config-form, muc/config-submit). A
// room whose owner turned it off is skipped: before censoring or rejecting
// a message, the filter reads the setting of the room the message is
// addressed to (sdk.RoomConfig).
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
package main

import (
	"bytes"
	"errors"
	"strings"

	"github.com/metronome-xmpp/metronome/sdk"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

type config struct {
	Words  []string `json:"words"`
	Action string   `json:"action"`
	Types  []string `json:"types"`
}

var (
	cfg   config
	words [][]byte // lowercased
)

func init() { sdk.Main(setup) }

func setup(p *sdk.Plugin) error {
	if err := p.Config(&cfg); err != nil {
		return err
	}
	if cfg.Action != "censor" && cfg.Action != "reject" {
		return errors.New(`action: want "censor" or "reject"`)
	}
	for _, w := range cfg.Words {
		if w = strings.TrimSpace(w); w != "" {
			words = append(words, []byte(strings.ToLower(w)))
		}
	}
	if len(words) == 0 {
		sdk.Log(sdk.LevelInfo, "wordfilter: no words configured")
		return nil
	}
	for _, e := range []string{"pre-message/bare", "pre-message/full"} {
		if err := p.Hook(e, sdk.PrioRewrite, filter); err != nil {
			return err
		}
	}
	// On a MUC service: the per-room switch.
	if err := p.Hook(sdk.EventRoomConfigForm, sdk.PrioDefault, configForm); err != nil {
		return err
	}
	return p.Hook(sdk.EventRoomConfigSubmit, sdk.PrioDefault, configSubmit)
}

// enabledField is the room configuration field that turns the filter off
// in one room. Only "0" is stored (off); on is the default.
const enabledField = "x-wordfilter#enabled"

func configForm(ev *sdk.Event) sdk.Verdict {
	on := "1"
	if v, err := ev.FieldValues(enabledField); err == nil && len(v) == 1 && !parseBool(v[0], true) {
		on = "0"
	}
	if err := ev.AddField(sdk.Field(enabledField, "boolean", "Filter listed words in this room", on)); err != nil {
		sdk.Log(sdk.LevelWarn, "wordfilter: "+err.Error())
	}
	return sdk.Continue
}

func configSubmit(ev *sdk.Event) sdk.Verdict {
	v, err := ev.FieldValues(enabledField)
	if err != nil { // not submitted: the room keeps its setting
		return sdk.Continue
	}
	if len(v) != 1 || (v[0] != "1" && v[0] != "true" && v[0] != "0" && v[0] != "false") {
		return sdk.Error(stanza.ErrText(stanza.NotAcceptable, enabledField+": want a boolean (1 or 0)"))
	}
	if parseBool(v[0], true) {
		err = ev.SetField(enabledField) // the default: nothing to keep
	} else {
		err = ev.SetField(enabledField, "0")
	}
	if err != nil {
		sdk.Log(sdk.LevelWarn, "wordfilter: "+err.Error())
		return sdk.Error(stanza.ErrText(stanza.InternalServerError, "the word filter could not keep its setting"))
	}
	return sdk.Continue
}

// parseBool reads a data form boolean; def for anything else.
func parseBool(s string, def bool) bool {
	switch s {
	case "1", "true":
		return true
	case "0", "false":
		return false
	}
	return def
}

// roomEnabled reports whether the filter applies to messages to addr: false
// only when addr is (an occupant of) a room whose owner turned it off. The
// room's MUC service must run the plugin too; otherwise the filter applies.
func roomEnabled(addr string) bool {
	if i := strings.IndexByte(addr, '/'); i >= 0 {
		addr = addr[:i]
	}
	if !strings.Contains(addr, "@") {
		return true
	}
	v, err := sdk.RoomConfig(addr, enabledField)
	return err != nil || len(v) != 1 || parseBool(v[0], true)
}

func filtered(typ string) bool {
	if typ == "" {
		typ = "normal"
	}
	for _, t := range cfg.Types {
		if t == typ {
			return true
		}
	}
	return false
}

func filter(ev *sdk.Event) sdk.Verdict {
	if !filtered(ev.Type) || !mayContain(ev.RawStanza()) || !roomEnabled(ev.To) {
		return sdk.Continue
	}
	st := ev.Stanza()
	if st == nil {
		return sdk.Continue
	}
	out := st.Copy()
	changed := false
	for i, n := range out.Children {
		if n.El == nil || (n.El.Name != "body" && n.El.Name != "subject") {
			continue
		}
		text := n.El.Text()
		clean := censor(text)
		if clean == text {
			continue
		}
		if cfg.Action == "reject" {
			return sdk.Error(stanza.ErrText(stanza.NotAcceptable, "your message contains a word that is not allowed here"))
		}
		el := stanza.New(n.El.Space, n.El.Name)
		el.Attrs = n.El.Attrs
		out.Children[i].El = el.AddText(clean)
		changed = true
	}
	if changed {
		if err := ev.Replace(out); err != nil {
			sdk.Log(sdk.LevelWarn, "wordfilter: "+err.Error())
		}
	}
	return sdk.Continue
}

// mayContain reports whether the text of a <body> or <subject> in the raw
// stanza b may contain a listed word, ignoring ASCII case. It looks only
// between the element tags (attributes and addresses cannot match) and
// does not allocate; a false positive only costs a parse.
func mayContain(b []byte) bool {
	for _, tag := range [][]byte{bodyTag, subjectTag} {
		rest := b
		for {
			i := bytes.Index(rest, tag)
			if i < 0 {
				break
			}
			rest = rest[i+len(tag):]
			end := bytes.IndexByte(rest, '<')
			if end < 0 {
				end = len(rest)
			}
			for _, w := range words {
				if indexFold(rest[:end], w, 0) >= 0 {
					return true
				}
			}
			rest = rest[end:]
		}
	}
	return false
}

// The start of a body or subject element as the server serializes it
// (client namespace, no prefix); "<body " covers one with attributes.
var (
	bodyTag    = []byte("<body")
	subjectTag = []byte("<subject")
)

// indexFold finds the lowercase word w in b from position from, ignoring
// ASCII case; -1 if absent.
func indexFold(b, w []byte, from int) int {
	for i := from; i+len(w) <= len(b); i++ {
		j := 0
		for j < len(w) && lower(b[i+j]) == w[j] {
			j++
		}
		if j == len(w) {
			return i
		}
	}
	return -1
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// censor replaces every listed word in s with as many '*' as it has characters.
func censor(s string) string {
	b := []byte(s)
	for _, w := range words {
		for i := indexFold(b, w, 0); i >= 0; i = indexFold(b, w, i+len(w)) {
			stars := strings.Repeat("*", len([]rune(string(b[i:i+len(w)]))))
			b = append(b[:i], append([]byte(stars), b[i+len(w):]...)...)
		}
	}
	return string(b)
}

func main() {}
