// Package mam implements XEP-0313 Message Archive Management (version
// 1.1.3) for user archives, with the urn:xmpp:mam:2#extended features
// (before-id/after-id/ids, flipped pages, archive metadata), XEP-0359
// stanza ids on archived messages, XEP-0059 result set management, and the
// XEP-0441 archiving preferences (default always/never/roster, always and
// never JID lists).
//
// Archiving happens in the routing path, before delivery: a message is
// written to the archive store, and only then handed on to the next
// handlers (carbons, delivery, offline storage) with a
// <stanza-id xmlns='urn:xmpp:sid:0' by='user@host' id='…'/> added. If the
// write fails the message is bounced with internal-server-error rather
// than delivered unarchived: an accepted message is always in the archive.
//
// What is archived (XEP-0313 §Business Rules, XEP-0334): one-to-one
// messages of type chat or normal (or without type) that carry a body, a
// subject, an encrypted payload (OMEMO, OpenPGP, XEP-0027, XEP-0380), an
// invitation (XEP-0249 or XEP-0045 mediated), a retraction, a reaction or a
// XEP-0353 call signal, and any non-error, non-groupchat message carrying
// the XEP-0334 <store/> hint. Never: errors, groupchat messages (the MUC
// archives those), headlines without <store/>, messages with nothing but
// chat states, receipts or markers, and messages with the <no-store/> or
// <no-permanent-store/> hints. Incoming messages are archived in the
// recipient's archive, outgoing ones (sent by a local client) in the
// sender's; a message to oneself is archived once.
//
// Interplay with offline storage (XEP-0160): an archived message for a user
// without available resources counts as stored even if no offline module
// keeps it; and a session that queried its archive before sending initial
// presence does not get the offline messages flushed to it (they stay for
// legacy clients), as Prosody does.
//
// Not implemented: the include-groupchat field (groupchat messages are not
// archived), RSM <index/> paging, XEP-0441 advanced (ad-hoc) configuration,
// MUC and PubSub archives.
package mam

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Namespaces.
const (
	NS         = "urn:xmpp:mam:2"
	NSExtended = "urn:xmpp:mam:2#extended"
	NSSID      = "urn:xmpp:sid:0"
	NSRSM      = "http://jabber.org/protocol/rsm"
	NSForward  = "urn:xmpp:forward:0"
	NSDelay    = "urn:xmpp:delay"
	NSData     = "jabber:x:data"
	NSHints    = "urn:xmpp:hints"
)

// Event names this module hooks but does not own.
const (
	// eventOffline is mod.message's message.EventOffline.
	eventOffline = "message/offline"
	// eventOfflineFlush is mod.offline's offline.EventFlush.
	eventOfflineFlush = "message/offline/flush"
)

// SessionQueried is the module.Session value key set (to true) on a
// session once it has queried its archive.
const SessionQueried = "mam/queried"

// Store names.
const (
	archiveStore = "archive"
	prefsStore   = "archive_prefs"
)

// Priorities. Archiving runs after policy (blocking, PrioPolicy, on
// stanza/in and pre-*) so that refused messages are not archived, and
// before mod.carbons (PrioDefault+100) so that carbon copies carry the
// stanza-id, which must be stripped again from outgoing messages after
// every other pre-message handler ran (prioStrip).
const (
	prioArchive = event.PrioDefault + 200
	prioStrip   = event.PrioFallback
)

// Default configuration values.
const (
	DefaultMaxPage         = 100
	DefaultCleanupInterval = time.Hour
)

func init() { module.Register(new(MAM)) }

// MAM is the message archive module.
type MAM struct {
	// DefaultPolicy is the archiving default of users who set no
	// preference: "always", "never" or "roster".
	DefaultPolicy string `json:"default_policy"`
	// ExpireAfter deletes archived messages older than this; 0 keeps them forever.
	ExpireAfter module.Duration `json:"expire_after"`
	// CleanupInterval is how often expired messages are deleted.
	CleanupInterval module.Duration `json:"cleanup_interval"`
	// MaxPage is the largest page a query returns (and the page size when
	// the client asks for none).
	MaxPage int `json:"max_page"`
	// AllowPrefs lets users change their preferences (XEP-0441); when
	// false, prefs sets are answered with not-allowed.
	AllowPrefs bool `json:"allow_prefs"`
	// IncludeCount adds the XEP-0059 <count/> (and the index of <first/>
	// on last pages) to query results. Counting reads every matching item,
	// which costs milliseconds on archives of 100,000 messages, so the
	// default (nil) is to count only when ExpireAfter bounds the archive.
	IncludeCount *bool `json:"include_count"`

	h       module.Host
	count   bool // IncludeCount resolved
	archive storage.Archive
	prefs   storage.KeyVal

	prefsCache  sync.Map // localpart → Prefs
	prefsCached atomic.Int64
	now         func() time.Time
}

// Info implements module.Module.
func (*MAM) Info() module.Info {
	return module.Info{ID: "mod.mam", New: func() module.Module {
		return &MAM{
			DefaultPolicy:   PolicyAlways,
			CleanupInterval: module.Duration(DefaultCleanupInterval),
			MaxPage:         DefaultMaxPage,
			AllowPrefs:      true,
		}
	}}
}

// Validate implements module.Validator.
func (m *MAM) Validate() error {
	switch m.DefaultPolicy {
	case PolicyAlways, PolicyNever, PolicyRoster:
	default:
		return fmt.Errorf("default_policy: %q is not one of \"always\", \"never\", \"roster\"", m.DefaultPolicy)
	}
	if m.ExpireAfter < 0 {
		return errors.New("expire_after: must not be negative")
	}
	if m.CleanupInterval <= 0 {
		return errors.New("cleanup_interval: must be positive")
	}
	if m.MaxPage < 1 {
		return errors.New("max_page: must be at least 1")
	}
	return nil
}

// Provision wires the module to the host.
func (m *MAM) Provision(h module.Host) error {
	m.h = h
	m.count = m.ExpireAfter > 0
	if m.IncludeCount != nil {
		m.count = *m.IncludeCount
	}
	m.archive = h.Store(archiveStore).Archive()
	m.prefs = h.Store(prefsStore).KeyVal()
	if m.now == nil {
		m.now = time.Now
	}
	h.AddAccountFeature(NS)
	h.AddAccountFeature(NSExtended)
	h.AddAccountFeature(NSSID)

	for _, dest := range []string{"bare", "full"} {
		h.Hook(module.StanzaEvent(stanza.KindMessage, dest), prioArchive, m.incoming)
	}
	for _, dest := range []string{"bare", "full", "host"} {
		h.Hook("pre-"+module.StanzaEvent(stanza.KindMessage, dest), prioArchive, m.outgoing)
		h.Hook("pre-"+module.StanzaEvent(stanza.KindMessage, dest), prioStrip, m.stripOutgoing)
	}
	module.OnIQ(h, "bare", stanza.Set, NS, "query", event.PrioDefault, module.Bounded(m.handleQuery))
	module.OnIQ(h, "bare", stanza.Get, NS, "query", event.PrioDefault, m.handleForm)
	module.OnIQ(h, "bare", stanza.Get, NS, "metadata", event.PrioDefault, module.Bounded(m.handleMetadata))
	module.OnIQ(h, "bare", stanza.Get, NS, "prefs", event.PrioDefault, module.Bounded(m.handlePrefs))
	module.OnIQ(h, "bare", stanza.Set, NS, "prefs", event.PrioDefault, module.Bounded(m.handlePrefs))

	// Offline interplay: after mod.offline (PrioDefault) had its chance.
	h.Hook(eventOffline, event.PrioFallback, m.archivedCountsAsStored)
	h.Hook(eventOfflineFlush, event.PrioDefault, m.skipOfflineFlush)

	module.OnUserDeleted(h, m.userDeleted)
	if m.ExpireAfter > 0 {
		h.Every(m.CleanupInterval.D(), m.cleanup)
	}
	return nil
}

// userDeleted removes a deleted account's archive and preferences.
func (m *MAM) userDeleted(ctx context.Context, user jid.JID) {
	if _, err := m.archive.Delete(ctx, user.Local(), storage.Query{}); err != nil {
		m.h.Logger().Error("archive purge failed", "user", user.String(), "err", err)
	}
	err := m.prefs.Delete(ctx, user.Local())
	m.prefsCache.Delete(user.Local())
	if err != nil {
		m.h.Logger().Error("archive preferences purge failed", "user", user.String(), "err", err)
	}
}

// cleanup deletes the messages older than ExpireAfter, of every user.
func (m *MAM) cleanup(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, m.CleanupInterval.D())
	defer cancel()
	t0 := time.Now()
	n, err := m.archive.DeleteAll(ctx, storage.Query{End: m.now().Add(-m.ExpireAfter.D())})
	if err != nil {
		m.h.Logger().Error("archive expiry failed", "err", err)
		return
	}
	if n > 0 {
		m.h.Logger().Info("expired archived messages deleted", "removed", n, "took", time.Since(t0))
	}
}

// archivedCountsAsStored handles message/offline after the offline module:
// a message that no offline store kept but that is in the user's archive
// is not bounced (the user will find it with MAM).
func (m *MAM) archivedCountsAsStored(_ context.Context, ev *event.Event) event.Verdict {
	if ownStanzaID(ev.Stanza, ev.To.Bare().String()) != nil {
		return event.Handled
	}
	return event.Continue
}

// skipOfflineFlush handles mod.offline's flush event: a session that
// already queried the archive has those messages; the offline queue is
// left for legacy clients (XEP-0313 §Business Rules, User Archives).
func (m *MAM) skipOfflineFlush(_ context.Context, ev *event.Event) event.Verdict {
	s, ok := module.SessionOf(ev)
	if ok && s.Value(SessionQueried) != nil {
		return event.Handled
	}
	return event.Continue
}

// Stamp formats t as an XEP-0082 DateTime in UTC, with milliseconds when
// they are not zero.
func Stamp(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/int(time.Millisecond) != 0 {
		return t.Format("2006-01-02T15:04:05.000Z")
	}
	return t.Format("2006-01-02T15:04:05Z")
}
