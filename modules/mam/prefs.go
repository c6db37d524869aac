package mam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Archiving policies (XEP-0441 §Default behaviour).
const (
	PolicyAlways = "always"
	PolicyNever  = "never"
	PolicyRoster = "roster"
)

// Prefs are a user's archiving preferences, stored as JSON in the
// archive_prefs KeyVal store.
type Prefs struct {
	Default string   `json:"default"`
	Always  []string `json:"always,omitempty"` // JIDs, bare or full
	Never   []string `json:"never,omitempty"`
}

// maxPrefsJIDs bounds the always and never lists together.
const maxPrefsJIDs = 1000

// rosterAPI is the part of mod.roster's API (Host.Lookup("roster")) the
// roster policy uses.
type rosterAPI interface {
	Item(ctx context.Context, user, contact jid.JID) (subscription string, ok bool, err error)
}

// loadPrefs returns user's preferences, or the configured default.
// Preferences are read for every archived message, twice per message
// between two local users: they are cached (this module writes them all,
// and drops a cached entry when it changes them).
func (m *MAM) loadPrefs(ctx context.Context, user jid.JID) (Prefs, error) {
	if p, ok := m.prefsCache.Load(user.Local()); ok {
		return p.(Prefs), nil
	}
	p := Prefs{Default: m.DefaultPolicy}
	b, err := m.prefs.Get(ctx, user.Local())
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return Prefs{}, err
	default:
		if err := json.Unmarshal(b, &p); err != nil {
			return Prefs{}, fmt.Errorf("mam: preferences of %s: %w", user, err)
		}
	}
	if m.prefsCached.Add(1) > maxCachedPrefs {
		m.prefsCache.Clear() // crude bound: start over
		m.prefsCached.Store(1)
	}
	m.prefsCache.Store(user.Local(), p)
	return p, nil
}

// maxCachedPrefs bounds the preference cache (entries are small).
const maxCachedPrefs = 100_000

// decide applies XEP-0441 §JID matching: a listed full JID matches the
// target as is, a listed bare JID matches the target's bare JID; full
// matches win over bare ones, and never over always. ok is false when no
// list matched (the default applies).
func (p Prefs) decide(target jid.JID) (archive, ok bool) {
	keys := []string{target.String()}
	if target.IsFull() {
		keys = append(keys, target.Bare().String())
	}
	for _, key := range keys {
		if slices.Contains(p.Never, key) {
			return false, true
		}
		if slices.Contains(p.Always, key) {
			return true, true
		}
	}
	return false, false
}

// allowed reports whether user's preferences let a message with peer be archived.
func (m *MAM) allowed(ctx context.Context, user, peer jid.JID) (bool, error) {
	p, err := m.loadPrefs(ctx, user)
	if err != nil {
		return false, err
	}
	if v, ok := p.decide(peer); ok {
		return v, nil
	}
	switch p.Default {
	case PolicyNever:
		return false, nil
	case PolicyRoster:
		if peer.Bare() == user {
			return true, nil
		}
		v, ok := m.h.Lookup("roster")
		if !ok {
			return false, nil
		}
		r, ok := v.(rosterAPI)
		if !ok {
			return false, nil
		}
		_, in, err := r.Item(ctx, user, peer.Bare())
		return in, err
	default:
		return true, nil
	}
}

// prefsElement renders p (XEP-0441: <always/> and <never/> always present).
func prefsElement(p Prefs) *stanza.Element {
	el := stanza.New(NS, "prefs", "default", p.Default)
	for _, l := range []struct {
		name string
		jids []string
	}{{"always", p.Always}, {"never", p.Never}} {
		list := el.AddChild(stanza.New(NS, l.name))
		for _, j := range l.jids {
			list.AddChild(stanza.New(NS, "jid")).AddText(j)
		}
	}
	return el
}

// parsePrefs reads a <prefs/> set request.
func parsePrefs(el *stanza.Element) (Prefs, error) {
	p := Prefs{Default: el.Attr("default")}
	switch p.Default {
	case PolicyAlways, PolicyNever, PolicyRoster:
	default:
		return Prefs{}, fmt.Errorf("default must be always, never or roster, not %q", p.Default)
	}
	seen := map[string]bool{}
	for _, l := range []struct {
		name string
		dst  *[]string
	}{{"always", &p.Always}, {"never", &p.Never}} {
		list := el.Child(NS, l.name)
		if list == nil {
			continue
		}
		for c := range list.Elements {
			if c.Name != "jid" || c.Space != NS {
				continue
			}
			j, err := jid.Parse(strings.TrimSpace(c.Text()))
			if err != nil {
				return Prefs{}, fmt.Errorf("invalid JID %q: %v", c.Text(), err)
			}
			if seen[j.String()] {
				return Prefs{}, fmt.Errorf("%s is listed twice", j)
			}
			seen[j.String()] = true
			*l.dst = append(*l.dst, j.String())
		}
	}
	if len(seen) > maxPrefsJIDs {
		return Prefs{}, fmt.Errorf("more than %d JIDs", maxPrefsJIDs)
	}
	return p, nil
}

// handlePrefs answers prefs get and set (XEP-0441 §Simple configuration).
func (m *MAM) handlePrefs(ctx context.Context, ev *event.Event) event.Verdict {
	user, ok := m.owner(ev)
	if !ok {
		return module.ReplyError(ctx, m.h, ev, stanza.Err(stanza.Forbidden))
	}
	if ev.Stanza.Type() == stanza.Get {
		p, err := m.loadPrefs(ctx, user)
		if err != nil {
			m.h.Logger().Error("archive preferences load failed", "user", user.String(), "err", err)
			return module.ReplyError(ctx, m.h, ev, stanza.Err(stanza.InternalServerError))
		}
		return module.Reply(ctx, m.h, ev, prefsElement(p))
	}
	if !m.AllowPrefs {
		return module.ReplyError(ctx, m.h, ev, stanza.Err(stanza.NotAllowed))
	}
	p, err := parsePrefs(ev.Stanza.FirstChild())
	if err != nil {
		return module.ReplyError(ctx, m.h, ev, stanza.ErrText(stanza.BadRequest, err.Error()))
	}
	b, err := json.Marshal(p)
	if err == nil {
		m.prefsCache.Delete(user.Local())
		err = m.prefs.Set(ctx, user.Local(), b)
		m.prefsCache.Delete(user.Local())
	}
	if err != nil {
		m.h.Logger().Error("archive preferences save failed", "user", user.String(), "err", err)
		return module.ReplyError(ctx, m.h, ev, stanza.Err(stanza.InternalServerError))
	}
	return module.Reply(ctx, m.h, ev, prefsElement(p))
}

// owner returns the bare JID of the archive a request addresses, if the
// request comes from a session of that account (only users see their
// archive: XEP-0313 §Security Considerations).
func (m *MAM) owner(ev *event.Event) (jid.JID, bool) {
	s, ok := module.SessionOf(ev)
	if !ok || s.JID().Bare() != ev.To.Bare() {
		return jid.JID{}, false
	}
	return ev.To.Bare(), true
}
