package module

import (
	"context"
	"log/slog"
	"time"

	"github.com/metronome-xmpp/metronome/account"
	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Host is what a module instance gets from the core: one virtual host.
// Everything registered through it is removed when the instance unloads.
type Host interface {
	// Name is the host's domain.
	Name() string
	// JID is the host's domain as a JID.
	JID() jid.JID
	// Logger carries host and module attributes.
	Logger() *slog.Logger

	// Hook adds a handler to an event of this host's bus.
	Hook(name string, prio int, fn event.Handler)
	// HookGlobal adds a handler to the process-wide bus.
	HookGlobal(name string, prio int, fn event.Handler)
	// Fire fires an event on this host's bus.
	Fire(ctx context.Context, ev *event.Event) event.Verdict

	// AddFeature advertises a disco#info feature of the host (XEP-0030).
	AddFeature(ns string)
	// AddAccountFeature advertises a disco#info feature on users' bare JIDs.
	AddAccountFeature(ns string)
	// AddIdentity advertises a disco#info identity of the host.
	AddIdentity(category, typ, name string)
	// AddExtension adds a XEP-0128 extended-info data form to the host's disco#info.
	AddExtension(form *stanza.Element)
	// Disco returns what every module of this host has advertised.
	Disco() DiscoInfo
	// AddStreamFeature adds an element to the c2s stream features, before
	// authentication (preAuth) or after it.
	AddStreamFeature(el *stanza.Element, preAuth bool)

	// Store opens the stores of the given name on this host.
	Store(name string) storage.Stores
	// Accounts is the host's account manager.
	Accounts() *account.Manager
	// CreateUser creates an account of this host and fires user/created.
	CreateUser(ctx context.Context, bare jid.JID, password string) error
	// DeleteUser closes the user's sessions (not-authorized), deletes the
	// account of this host and fires user/deleted so that every module
	// deletes the user's data. account.ErrNotFound if there is none.
	DeleteUser(ctx context.Context, bare jid.JID) error

	// Route sends a stanza through the router as the server. The stanza
	// must carry from and to.
	Route(ctx context.Context, st *stanza.Element) error
	// Deliver writes a stanza to one local session, bypassing routing rules.
	Deliver(ctx context.Context, s Session, st *stanza.Element) error
	// SendIQ sends an IQ get/set and waits for its result or error (or ctx).
	SendIQ(ctx context.Context, iq *stanza.Element) (*stanza.Element, error)

	// Sessions returns the local sessions of a user (bare JID), in binding
	// order. The slice is shared: do not modify it.
	Sessions(bare jid.JID) []Session
	// Session returns the session bound to a full JID, or nil.
	Session(full jid.JID) Session
	// AllSessions returns every c2s session of this host.
	AllSessions() []Session

	// IsLocal reports whether domain is one of this server's hosts.
	IsLocal(domain string) bool
	// IsAdmin reports whether j (bare) is a configured server admin.
	IsAdmin(j jid.JID) bool
	// Server describes the running server.
	Server() ServerInfo

	// Provide publishes a value on this host under name; Lookup finds it.
	Provide(name string, v any)
	Lookup(name string) (any, bool)

	// Go runs fn on a goroutine the core waits for on unload; ctx ends at unload.
	Go(fn func(ctx context.Context) error)
	// Every runs fn every d until unload.
	Every(d time.Duration, fn func(ctx context.Context))
}

// ServerInfo describes the running server.
type ServerInfo struct {
	Name    string // "Metronome"
	Version string
	OS      string
	Started time.Time
}

// DiscoInfo is a host's aggregated service discovery data.
type DiscoInfo struct {
	Identities      []Identity
	Features        []string // sorted, unique
	AccountFeatures []string // sorted, unique
	Extensions      []*stanza.Element
}

// Identity is a disco#info identity.
type Identity struct{ Category, Type, Name string }

// Session is a bound client session as modules see it.
type Session interface {
	event.Origin
	// ID is unique per process.
	ID() string
	// Host is the session's virtual host.
	Host() string
	// Send queues a stanza for the client. It never blocks.
	Send(st *stanza.Element) error
	// Close ends the session with a stream error condition ("" for a clean close).
	Close(condition, text string)

	// Presence is the last available/unavailable presence the client
	// broadcast (nil before initial presence).
	Presence() *stanza.Element
	SetPresence(p *stanza.Element)
	// Available reports whether the session sent available presence.
	Available() bool
	// Priority is the priority of the last broadcast presence.
	Priority() int
	// Interested reports whether the client requested the roster (RFC 6121 §2.1.6).
	Interested() bool
	SetInterested(bool)

	// Value and SetValue keep per-session state of modules.
	Value(key string) any
	SetValue(key string, v any)

	// Started is when the stream was opened; LastActive when the client last sent anything.
	Started() time.Time
	LastActive() time.Time
	// Secure reports whether the stream is encrypted.
	Secure() bool
	// RemoteAddr is the client's network address.
	RemoteAddr() string
}
