package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/metronome-xmpp/metronome/account"
	"github.com/metronome-xmpp/metronome/internal/metrics"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Kinds of operation errors, for callers that map them to statuses (the
// HTTP API): test with errors.Is.
var (
	ErrInvalid     = errors.New("invalid request")
	ErrNotFound    = errors.New("not found")
	ErrConflict    = errors.New("already exists")
	ErrUnavailable = errors.New("not available while the server is not running")
)

// Core is what the operations need from the server (internal/core.Server
// implements it).
type Core interface {
	Hosts() []string
	Accounts(host string) (*account.Manager, bool)
	CreateUser(ctx context.Context, bare jid.JID, password string) error
	DeleteUser(ctx context.Context, bare jid.JID) error
	SessionCount() int
	Started() time.Time
}

// Ops are the administrative operations, one implementation behind the
// local admin socket (metronomectl) and the HTTP admin API. Session and
// message operations need a running server (Host set); account operations
// also work on a server built in-process without listeners.
type Ops struct {
	Core    Core
	Version string
	// Host returns a module's view of a served host (sessions, routing);
	// nil when the server does not run.
	Host func(name string) (module.Host, bool)
	// Modules lists the modules loaded on a host; nil when unknown.
	Modules func(host string) []string
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// userJID parses a bare user JID of a served host.
func (o *Ops) userJID(s string) (jid.JID, *account.Manager, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, nil, invalid("%q is not a valid JID: %v", s, err)
	}
	if j.Local() == "" || j.Resource() != "" {
		return jid.JID{}, nil, invalid("%q is not a user JID (expected user@host)", s)
	}
	acc, ok := o.Core.Accounts(j.Domain())
	if !ok {
		return jid.JID{}, nil, fmt.Errorf("%w: %s is not a host of this server", ErrNotFound, j.Domain())
	}
	return j, acc, nil
}

// accountErr maps account errors onto the operation error kinds.
func accountErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, account.ErrExists):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case errors.Is(err, account.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, account.ErrInvalidUser), errors.Is(err, account.ErrInvalidPassword):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return err
}

// hosts returns the served hosts, sorted, or just host after checking it.
func (o *Ops) hosts(host string) ([]string, error) {
	all := o.Core.Hosts()
	sort.Strings(all)
	if host == "" {
		return all, nil
	}
	if !slices.Contains(all, host) {
		return nil, fmt.Errorf("%w: %s is not a host of this server", ErrNotFound, host)
	}
	return []string{host}, nil
}

// UserArgs are the arguments of the user operations.
type UserArgs struct {
	JID      string `json:"jid"`
	Password string `json:"password,omitempty"`
}

// CreateUser creates an account; modules see user/created.
func (o *Ops) CreateUser(ctx context.Context, a UserArgs) error {
	j, _, err := o.userJID(a.JID)
	if err != nil {
		return err
	}
	if a.Password == "" {
		return invalid("empty password")
	}
	return accountErr(o.Core.CreateUser(ctx, j, a.Password))
}

// DeleteUser deletes an account and its data; modules see user/deleted.
func (o *Ops) DeleteUser(ctx context.Context, a UserArgs) error {
	j, _, err := o.userJID(a.JID)
	if err != nil {
		return err
	}
	return accountErr(o.Core.DeleteUser(ctx, j))
}

// SetPassword changes an account's password.
func (o *Ops) SetPassword(ctx context.Context, a UserArgs) error {
	j, acc, err := o.userJID(a.JID)
	if err != nil {
		return err
	}
	if a.Password == "" {
		return invalid("empty password")
	}
	return accountErr(acc.SetPassword(ctx, j.Local(), a.Password))
}

// ListUsers returns the bare JIDs of the accounts of host ("" = every host), sorted.
func (o *Ops) ListUsers(ctx context.Context, host string) ([]string, error) {
	hosts, err := o.hosts(host)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, h := range hosts {
		acc, ok := o.Core.Accounts(h)
		if !ok {
			continue
		}
		users, err := acc.Users(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the accounts of %s: %w", h, err)
		}
		for _, u := range users {
			out = append(out, u+"@"+h)
		}
	}
	sort.Strings(out)
	return out, nil
}

// SessionInfo describes one bound client session.
type SessionInfo struct {
	JID        string    `json:"jid"`
	Host       string    `json:"host"`
	Transport  string    `json:"transport"`
	Started    time.Time `json:"started"`
	LastActive time.Time `json:"last_active"`
	Secure     bool      `json:"secure"`
	RemoteAddr string    `json:"remote_addr"`
	Available  bool      `json:"available"`
	Priority   int       `json:"priority"`
	// Hibernated: the connection was lost and the session waits for the
	// client to resume it (XEP-0198).
	Hibernated bool `json:"hibernated,omitempty"`
}

// Transport names the transport of a session: "tcp" unless the session
// says otherwise through a Transport() string method (BOSH, WebSocket).
func Transport(s module.Session) string {
	if t, ok := s.(interface{ Transport() string }); ok {
		return t.Transport()
	}
	return "tcp"
}

// hibernated reports whether a session waits for a resumption.
func hibernated(s module.Session) bool {
	h, ok := s.(interface{ Hibernated() bool })
	return ok && h.Hibernated()
}

func (o *Ops) host(name string) (module.Host, error) {
	if o.Host == nil {
		return nil, ErrUnavailable
	}
	h, ok := o.Host(name)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a host of this server", ErrNotFound, name)
	}
	return h, nil
}

// ListSessions returns the bound sessions of host ("" = every host), by JID.
func (o *Ops) ListSessions(host string) ([]SessionInfo, error) {
	hosts, err := o.hosts(host)
	if err != nil {
		return nil, err
	}
	out := []SessionInfo{}
	for _, name := range hosts {
		h, err := o.host(name)
		if err != nil {
			if host == "" && errors.Is(err, ErrNotFound) {
				continue // a component: no client sessions
			}
			return nil, err
		}
		for _, s := range h.AllSessions() {
			out = append(out, SessionInfo{JID: s.JID().String(), Host: s.Host(), Transport: Transport(s),
				Started: s.Started().UTC(), LastActive: s.LastActive().UTC(), Secure: s.Secure(),
				RemoteAddr: s.RemoteAddr(), Available: s.Available(), Priority: s.Priority(), Hibernated: hibernated(s)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].JID < out[j].JID })
	return out, nil
}

// KickArgs are the arguments of Kick.
type KickArgs struct {
	// JID is a full JID (one session) or a bare JID (all of the user's sessions).
	JID    string `json:"jid"`
	Reason string `json:"reason,omitempty"`
}

// Kick closes sessions with a policy-violation stream error and returns
// how many were closed; ErrNotFound when there was none.
func (o *Ops) Kick(a KickArgs) (int, error) {
	j, err := jid.Parse(a.JID)
	if err != nil || j.Local() == "" {
		return 0, invalid("%q is not a user JID", a.JID)
	}
	h, err := o.host(j.Domain())
	if err != nil {
		return 0, err
	}
	var victims []module.Session
	if j.Resource() != "" {
		if s := h.Session(j); s != nil {
			victims = append(victims, s)
		}
	} else {
		victims = slices.Clone(h.Sessions(j))
	}
	if len(victims) == 0 {
		return 0, fmt.Errorf("%w: no session of %s", ErrNotFound, j)
	}
	text := a.Reason
	if text == "" {
		text = "disconnected by an administrator"
	}
	for _, s := range victims {
		s.Close("policy-violation", text)
	}
	return len(victims), nil
}

// Message is a message sent by an administrator.
type Message struct {
	// From is a local user's bare JID, or empty/a host name to send as the
	// server (default: the recipient's host if local, else the first host).
	From    string `json:"from,omitempty"`
	To      string `json:"to"`
	Type    string `json:"type,omitempty"` // normal (default), chat or headline
	Subject string `json:"subject,omitempty"`
	Body    string `json:"body"`
}

// SendMessage routes a message as the server or as a local user and
// returns its id.
func (o *Ops) SendMessage(ctx context.Context, m Message) (string, error) {
	to, err := jid.Parse(m.To)
	if err != nil {
		return "", invalid("to: %q is not a valid JID: %v", m.To, err)
	}
	if m.Body == "" && m.Subject == "" {
		return "", invalid("body: a message needs a body or a subject")
	}
	switch m.Type {
	case "", "normal", "chat", "headline":
	default:
		return "", invalid("type: %q (want normal, chat or headline)", m.Type)
	}
	hosts, _ := o.hosts("")
	var from jid.JID
	switch {
	case m.From != "":
		if from, err = jid.Parse(m.From); err != nil {
			return "", invalid("from: %q is not a valid JID: %v", m.From, err)
		}
		if !slices.Contains(hosts, from.Domain()) {
			return "", invalid("from: %s is not a host of this server", from.Domain())
		}
		if from.Local() != "" {
			acc, _ := o.Core.Accounts(from.Domain())
			if ok, err := acc.Exists(ctx, from.Local()); err != nil {
				return "", err
			} else if !ok {
				return "", fmt.Errorf("%w: from: no account %s", ErrNotFound, from.Bare())
			}
		}
	case slices.Contains(hosts, to.Domain()):
		from = to.DomainJID()
	case len(hosts) > 0:
		from = jid.MustParse(hosts[0])
	}
	h, err := o.host(from.Domain())
	if err != nil {
		return "", err
	}
	id := newID()
	if err := h.Route(ctx, buildMessage(from.String(), to.String(), m.Type, id, m.Subject, m.Body)); err != nil {
		return "", err
	}
	return id, nil
}

// Announcement is a message to every online user.
type Announcement struct {
	Host    string `json:"host,omitempty"` // "" = every host
	Subject string `json:"subject,omitempty"`
	Body    string `json:"body"`
}

// Announce sends a message from the host to every bound session of host
// ("" = every host), like XEP-0133's announce command, and returns how many
// sessions it was sent to.
func (o *Ops) Announce(ctx context.Context, a Announcement) (int, error) {
	if a.Body == "" {
		return 0, invalid("body: empty announcement")
	}
	hosts, err := o.hosts(a.Host)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range hosts {
		h, err := o.host(name)
		if err != nil {
			if a.Host == "" && errors.Is(err, ErrNotFound) {
				continue // a component: no client sessions
			}
			return n, err
		}
		for _, s := range h.AllSessions() {
			st := buildMessage(name, s.JID().String(), "", newID(), a.Subject, a.Body)
			if err := h.Deliver(ctx, s, st); err == nil {
				n++
			}
		}
	}
	return n, nil
}

func buildMessage(from, to, typ, id, subject, body string) *stanza.Element {
	st := stanza.New(stanza.NSClient, "message", "from", from, "to", to, "id", id)
	if typ != "" && typ != "normal" {
		st.SetAttr("type", typ)
	}
	if subject != "" {
		st.AddChild(stanza.New(stanza.NSClient, "subject")).AddText(subject)
	}
	if body != "" {
		st.AddChild(stanza.New(stanza.NSClient, "body")).AddText(body)
	}
	return st
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "admin-" + hex.EncodeToString(b[:])
}

// HostStatus describes one virtual host.
type HostStatus struct {
	Name     string   `json:"name"`
	Sessions int      `json:"sessions"`
	Modules  []string `json:"modules"`
}

// Status describes the running server.
type Status struct {
	Version       string       `json:"version"`
	Started       time.Time    `json:"started"`
	UptimeSeconds int64        `json:"uptime_seconds"`
	Sessions      int          `json:"sessions"`
	Hosts         []HostStatus `json:"hosts"`
}

// Status returns the server's status.
func (o *Ops) Status() Status {
	st := Status{Version: o.Version, Started: o.Core.Started().UTC(), Sessions: o.Core.SessionCount(),
		UptimeSeconds: int64(time.Since(o.Core.Started()).Seconds()), Hosts: []HostStatus{}}
	hosts, _ := o.hosts("")
	for _, name := range hosts {
		hs := HostStatus{Name: name, Modules: []string{}}
		if o.Host != nil {
			if h, ok := o.Host(name); ok {
				hs.Sessions = len(h.AllSessions())
			}
		}
		if o.Modules != nil {
			hs.Modules = append(hs.Modules, o.Modules(name)...)
		}
		st.Hosts = append(st.Hosts, hs)
	}
	return st
}

// Stats are the server's statistics: status plus the main metrics.
type Stats struct {
	Status
	Metrics metrics.Snapshot `json:"metrics"`
}

// Stats returns the server's statistics.
func (o *Ops) Stats() Stats { return Stats{Status: o.Status(), Metrics: metrics.Take()} }

// Call runs the operation named op (the admin socket's protocol) with
// JSON-encoded args. handled is false for names it does not know.
func (o *Ops) Call(ctx context.Context, op string, args json.RawMessage) (result any, handled bool, err error) {
	decode := func(dst any) error {
		if len(args) == 0 {
			return nil
		}
		if err := json.Unmarshal(args, dst); err != nil {
			return invalid("arguments of %s: %v", op, err)
		}
		return nil
	}
	var (
		ua UserArgs
		ha struct {
			Host string `json:"host"`
		}
	)
	switch op {
	case "stats":
		return o.Stats(), true, nil
	case "user.add", "user.del", "user.passwd":
		if err := decode(&ua); err != nil {
			return nil, true, err
		}
		switch op {
		case "user.add":
			return nil, true, o.CreateUser(ctx, ua)
		case "user.del":
			return nil, true, o.DeleteUser(ctx, ua)
		}
		return nil, true, o.SetPassword(ctx, ua)
	case "user.list":
		if err := decode(&ha); err != nil {
			return nil, true, err
		}
		users, err := o.ListUsers(ctx, ha.Host)
		return users, true, err
	case "session.list":
		if err := decode(&ha); err != nil {
			return nil, true, err
		}
		ss, err := o.ListSessions(ha.Host)
		return ss, true, err
	case "session.kick":
		var ka KickArgs
		if err := decode(&ka); err != nil {
			return nil, true, err
		}
		n, err := o.Kick(ka)
		return map[string]int{"closed": n}, true, err
	case "message.send":
		var m Message
		if err := decode(&m); err != nil {
			return nil, true, err
		}
		id, err := o.SendMessage(ctx, m)
		return map[string]string{"id": id}, true, err
	case "message.announce":
		var a Announcement
		if err := decode(&a); err != nil {
			return nil, true, err
		}
		n, err := o.Announce(ctx, a)
		return map[string]int{"sent": n}, true, err
	}
	return nil, false, nil
}

// OpNames lists the operations Call knows, for documentation and tests.
var OpNames = strings.Fields("stats user.add user.del user.passwd user.list session.list session.kick message.send message.announce")
