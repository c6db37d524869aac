// Package sdk is the Go SDK for Metronome plugins: WebAssembly modules that
// the server loads at run time, without a compiler on the server, and that
// get the same API as a first-party module (package module): hooks on named
// events with priorities, disco features and identities, IQ handlers,
// stanza sending and rewriting, the plugin's own stores, outbound HTTP to
// the hosts its manifest names, and options from the server's TOML file.
//
// A plugin is a main package built for GOOS=wasip1 GOARCH=wasm as a
// reactor (go build -buildmode=c-shared). It registers its setup function
// from init(); main is never called:
//
//	func init() { sdk.Main(setup) }
//
//	func setup(p *sdk.Plugin) error {
//		var cfg struct{ Greeting string `json:"greeting"` }
//		if err := p.Config(&cfg); err != nil {
//			return err
//		}
//		return p.Hook(sdk.EventSessionBound, sdk.PrioDefault, func(ev *sdk.Event) sdk.Verdict {
//			msg := stanza.New("", "message", "from", ev.Host, "to", ev.From)
//			msg.AddChild(stanza.New("", "body").AddText(cfg.Greeting))
//			_ = sdk.Send(msg)
//			return sdk.Continue
//		})
//	}
//
//	func main() {}
//
// The server calls setup once per plugin instance, on every virtual host
// the plugin is enabled on, with that host's options. A plugin keeps no
// per-user state in memory: several instances run side by side and each
// reload starts fresh ones; per-user state goes in stores (OpenStore).
//
// Every call into the plugin has a time limit and every instance a memory
// cap; a plugin that traps (panics) or overruns is counted and, after
// repeated failures, disabled until the next reload. What a plugin may do
// is declared in its manifest (plugin.toml): a hook on an event, a store
// or an HTTP host that is not declared is refused. See sdk/README.md and
// docs/design/002_plugins.md.
//
// Outside wasip1 the package compiles with stubs that return ErrState, so
// that plugin code can be vetted and unit-tested on the build machine.
package sdk

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unsafe"

	"github.com/metronome-xmpp/metronome/sdk/abi"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// Priority bands, as in package event: higher runs first.
const (
	PrioPolicy   = 1000  // filters and policy
	PrioRewrite  = 500   // stanza rewriting
	PrioDefault  = 0     // the handler that does the work
	PrioFallback = -1000 // fallbacks and logging
)

// Event names (see package module for the full list and their payloads).
const (
	EventSessionBound  = "session/bound"  // a client bound a resource; From is its full JID
	EventSessionClosed = "session/closed" // a client session ended; From is its full JID
	EventUserCreated   = "user/created"   // an account was created; User is its bare JID
	EventUserDeleted   = "user/deleted"   // an account was deleted; User is its bare JID
	EventStanzaIn      = "stanza/in"      // any stanza for a local address, before the rest
	EventPresenceOut   = "presence/self"  // a client broadcast its presence
)

// StanzaEvent names the event of a stanza kind ("message", "presence",
// "iq") for a destination ("bare", "full", "host"), e.g. "message/bare".
// Client-originated stanzas first fire "pre-" + StanzaEvent(kind, dest) on
// the sender's host.
func StanzaEvent(kind, dest string) string { return kind + "/" + dest }

// IQEvent names the event of an iq get/set with payload <local xmlns=ns/>
// addressed to dest ("host", "bare" or "full").
func IQEvent(dest, ns, local string) string { return "iq/" + dest + "/" + ns + ":" + local }

// Verdict is a handler's answer.
type Verdict int32

const (
	// Continue lets the next handler run.
	Continue Verdict = abi.VerdictContinue
	// Handled stops the chain: the plugin answered or dropped the stanza.
	Handled Verdict = abi.VerdictHandled
)

// Error stops the chain and asks the server to bounce e to the sender.
func Error(e stanza.Error) Verdict {
	c, t := string(e.Condition), e.Text
	hostSetError(c, t)
	return abi.VerdictError
}

// Errno is an error a host function returned.
type Errno int32

func (e Errno) Error() string {
	return "metronome: " + abi.ErrnoText(int32(e)) + " (" + strconv.Itoa(int(e)) + ")"
}

// Errors host functions return; compare with errors.Is.
var (
	ErrNotFound error = Errno(abi.ErrNotFound)
	ErrDenied   error = Errno(abi.ErrDenied)
	ErrInvalid  error = Errno(abi.ErrInvalid)
	ErrFailed   error = Errno(abi.ErrFailed)
	ErrState    error = Errno(abi.ErrState)
	ErrTooLarge error = Errno(abi.ErrTooLarge)
)

func errno(n int32) error {
	if n >= 0 {
		return nil
	}
	return Errno(n)
}

// Handler handles one event.
type Handler func(ev *Event) Verdict

// Plugin is what setup receives: the registration side of the API. Its
// methods may only be called during setup.
type Plugin struct {
	config []byte
}

var (
	//lint:ignore U1000 used by the wasip1 exports (wasm.go), which staticcheck does not see as roots
	setupFn  func(p *Plugin) error
	handlers []Handler
)

// Main registers the plugin's setup function. Call it from init().
func Main(setup func(p *Plugin) error) { setupFn = setup }

// Config decodes the plugin's options ([modules.<name>] overlaid by the
// host's table, with the manifest's defaults filled in) into dst with
// encoding/json.
func (p *Plugin) Config(dst any) error {
	if len(p.config) == 0 {
		return nil
	}
	return json.Unmarshal(p.config, dst)
}

// RawConfig returns the options as a JSON object.
func (p *Plugin) RawConfig() []byte { return p.config }

// Hook calls fn for every event named name on the plugin's host, in
// priority order with the server's own modules. The manifest must list the
// event under capabilities.events.
func (p *Plugin) Hook(name string, prio int, fn Handler) error {
	handlers = append(handlers, fn)
	if err := errno(hostHook(name, int32(prio), uint32(len(handlers)-1))); err != nil {
		return errors.New("hook " + name + ": " + err.Error())
	}
	return nil
}

// OnIQ hooks iq requests of type typ ("get" or "set") carrying the payload
// <local xmlns=ns/> addressed to dest ("host", "bare" or "full"). fn
// answers with ev.ReplyResult or ev.ReplyError.
func (p *Plugin) OnIQ(dest, typ, ns, local string, prio int, fn Handler) error {
	return p.Hook(IQEvent(dest, ns, local), prio, func(ev *Event) Verdict {
		st := ev.Stanza()
		if st == nil || st.Type() != typ {
			return Continue
		}
		return fn(ev)
	})
}

// AddFeature advertises a disco#info feature of the host (XEP-0030).
func (p *Plugin) AddFeature(ns string) error { return errno(hostAddFeature(ns, 0)) }

// AddAccountFeature advertises a disco#info feature on users' bare JIDs.
func (p *Plugin) AddAccountFeature(ns string) error { return errno(hostAddFeature(ns, 1)) }

// AddIdentity advertises a disco#info identity of the host.
func (p *Plugin) AddIdentity(category, typ, name string) error {
	return errno(hostAddIdentity(category, typ, name))
}

// Event is one event delivered to a handler.
//
// Its strings and RawStanza point into the buffer the server wrote the
// event to: they are valid only until the handler returns. Copy what you
// keep (strings.Clone). This makes the common case, a handler that looks
// at the header and lets the event continue, free of allocations, which
// matters: allocating is the slowest thing a Go plugin does.
type Event struct {
	Name       string // e.g. "message/bare"
	Host       string // the virtual host
	OriginKind string // "c2s", "s2s", "component", "local" or ""
	Origin     string // the origin's address (a client's full JID)
	// OriginState lists flags of a client session origin, as the session
	// was before this event: "available", "interested", "secure" (see
	// abi.Event). Use OriginAvailable.
	OriginState string
	From        string // the sender, or the session's full JID for session events
	To          string // the recipient of a stanza
	User        string // the account's bare JID for user/* events
	Type        string // the stanza's type attribute ("chat", "groupchat", "get"...)

	raw    []byte
	parsed bool
	st     *stanza.Element
}

// Stanza returns the event's stanza, parsed on first use; nil for events
// without one. Changing it changes nothing on the server: use Replace.
func (ev *Event) Stanza() *stanza.Element {
	if !ev.parsed {
		ev.parsed = true
		if len(ev.raw) > 0 {
			ev.st, _ = xmlstream.ParseNS(ev.raw, stanza.NSClient)
		}
	}
	return ev.st
}

// OriginAvailable reports whether the origin is a client session that had
// already sent available presence. For a presence/self event hooked above
// the presence module (priority > 0), false means this is the client's
// initial presence: the moment Prosody's presence/initial names.
func (ev *Event) OriginAvailable() bool { return hasFlag(ev.OriginState, "available") }

func hasFlag(flags, f string) bool {
	for flags != "" {
		var w string
		w, flags, _ = strings.Cut(flags, " ")
		if w == f {
			return true
		}
	}
	return false
}

// RawStanza returns the stanza's XML as the server sent it (valid during
// the call only).
func (ev *Event) RawStanza() []byte { return ev.raw }

// Reply delivers st to the event's origin: to the client session when st
// is addressed to it, otherwise it is routed like Send.
func (ev *Event) Reply(st *stanza.Element) error {
	return errno(hostReply(st.Append(nil, stanza.NSClient)))
}

// ReplyResult answers the event's iq request with a result carrying
// payload (may be nil) and returns Handled.
func (ev *Event) ReplyResult(payload *stanza.Element) Verdict {
	if st := ev.Stanza(); st != nil {
		_ = ev.Reply(stanza.ResultReply(st, payload))
	}
	return Handled
}

// ReplyError answers the event's stanza with an error and returns Handled.
func (ev *Event) ReplyError(e stanza.Error) Verdict {
	if st := ev.Stanza(); st != nil {
		_ = ev.Reply(stanza.ErrorReply(st, e))
	}
	return Handled
}

// Replace replaces the event's stanza on the server: later handlers and
// the router see st. Keep 'from' and 'to' unless you mean to re-address it.
func (ev *Event) Replace(st *stanza.Element) error {
	if err := errno(hostReplace(st.Append(nil, stanza.NSClient))); err != nil {
		return err
	}
	ev.st, ev.parsed, ev.raw = st, true, nil
	return nil
}

// Send routes a stanza as the server. It needs 'from' (this host, or an
// address on it) and 'to'.
func Send(st *stanza.Element) error { return errno(hostSend(st.Append(nil, stanza.NSClient))) }

// Log levels.
const (
	LevelDebug = abi.LogDebug
	LevelInfo  = abi.LogInfo
	LevelWarn  = abi.LogWarn
	LevelError = abi.LogError
)

// Log writes msg to the server's log with the plugin and host attached.
func Log(level int, msg string) { hostLog(int32(level), msg) }

// Store is one of the plugin's stores: per user, a map of keys to values.
// The manifest must list its name under capabilities.stores. Stores are
// private to the plugin and to the virtual host.
type Store struct{ name string }

// OpenStore returns the store called name.
func OpenStore(name string) Store { return Store{name: name} }

// Get returns the value of key for user (a bare JID or any string), or
// ErrNotFound.
func (s Store) Get(user, key string) ([]byte, error) {
	n := hostStoreGet(s.name, user, key)
	if n < 0 {
		return nil, Errno(n)
	}
	return takeResult(n)
}

// Set stores value under key for user.
func (s Store) Set(user, key string, value []byte) error {
	return errno(hostStoreSet(s.name, user, key, value))
}

// Delete removes key of user; it is not an error if there is none.
func (s Store) Delete(user, key string) error { return errno(hostStoreDelete(s.name, user, key)) }

// Room configuration forms of MUC services.
//
// A plugin enabled on a MUC component (`[component."conference.example.org"]
// modules = ["myplugin"]`) that hooks EventRoomConfigForm and
// EventRoomConfigSubmit (both listed in capabilities.events) adds fields to
// the rooms' configuration form and keeps their values with the rooms. Its
// fields' names must start with "x-" + the plugin's name + "#"
// ("x-wordfilter#enabled"); any other name is refused with ErrDenied. In
// these events ev.To is the room's bare JID and ev.From the owner. A
// handler of EventRoomConfigSubmit rejects the whole submission by
// returning Error(…): the owner gets that error and nothing changes.
const (
	// EventRoomConfigForm: an owner asks for a room's configuration form
	// (Event.AddField, Event.FieldValues).
	EventRoomConfigForm = abi.EventRoomConfigForm
	// EventRoomConfigSubmit: an owner submits it, before anything is
	// applied (Event.FieldValues, Event.SetField, or reject with Error).
	EventRoomConfigSubmit = abi.EventRoomConfigSubmit
)

// Field returns a data form field <field xmlns='jabber:x:data' var=name
// type=typ label=label/> with a <value/> per value (XEP-0004); typ and
// label may be empty. Booleans are "1" and "0".
func Field(name, typ, label string, values ...string) *stanza.Element {
	f := stanza.New(abi.NSData, "field", "var", name, "type", typ, "label", label)
	for _, v := range values {
		f.AddChild(stanza.New(abi.NSData, "value")).AddText(v)
	}
	return f
}

// AddField appends a data form field (see Field) to the room
// configuration form, during EventRoomConfigForm.
func (ev *Event) AddField(field *stanza.Element) error {
	return errno(hostFormAddField(field.Append(nil, abi.NSData)))
}

// FieldValues returns, during EventRoomConfigForm, the values the room
// stores for the plugin's field name; during EventRoomConfigSubmit, the
// values submitted for it. ErrNotFound when there are none (nothing stored,
// or the field was not submitted); a field submitted without a value gives
// an empty slice.
func (ev *Event) FieldValues(name string) ([]string, error) {
	return takeValues(hostFormGet(name))
}

// SetField keeps values for the plugin's field name with the room, during
// EventRoomConfigSubmit; they are stored once the submission is accepted
// (with the room, if it is persistent). No values removes the field.
func (ev *Event) SetField(name string, values ...string) error {
	return errno(hostFormSet(name, abi.AppendValues(nil, values)))
}

// RoomConfig returns, during any event, the values a room (bare JID)
// stores for the plugin's field name. The room's MUC service must be this
// host or another host of the server where the plugin runs too.
// ErrNotFound when there are none, or no such room or service.
func RoomConfig(room, name string) ([]string, error) {
	return takeValues(hostRoomConfig(room, name))
}

// takeValues fetches a pending result in abi.AppendValues' layout.
func takeValues(n int32) ([]string, error) {
	if n < 0 {
		return nil, Errno(n)
	}
	if n == 0 {
		return []string{}, nil
	}
	b, err := takeResult(n)
	if err != nil {
		return nil, err
	}
	v, err := abi.DecodeValues(b)
	if err != nil {
		return nil, ErrFailed
	}
	return v, nil
}

// HTTPRequest is an outbound HTTP request.
type HTTPRequest = abi.HTTPRequest

// Fetch performs an HTTP request to a host listed in the manifest under
// capabilities.http and returns the status code and body. It counts
// against the time limit of the current call.
func Fetch(req HTTPRequest) (status int, body []byte, err error) {
	n := hostHTTP(abi.AppendHTTPRequest(nil, &req))
	if n < 0 {
		return 0, nil, Errno(n)
	}
	b, err := takeResult(n)
	if err != nil {
		return 0, nil, err
	}
	if len(b) < 4 {
		return 0, nil, ErrFailed
	}
	status = int(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
	return status, b[4:], nil
}

func takeResult(n int32) ([]byte, error) {
	b := make([]byte, n)
	if err := errno(hostResult(b)); err != nil {
		return nil, err
	}
	return b, nil
}

// The guest side of ExportBuffer, ExportInit and ExportEvent; the wasip1
// build exports them.

//lint:ignore U1000 used by the wasip1 exports (wasm.go), which staticcheck does not see as roots
var buffer []byte

//lint:ignore U1000 used by the wasip1 exports (wasm.go), which staticcheck does not see as roots
func exportBuffer(size uint32) []byte {
	if uint32(cap(buffer)) < size || buffer == nil {
		buffer = make([]byte, max(size, 4096))
	}
	return buffer[:cap(buffer)]
}

//lint:ignore U1000 used by the wasip1 exports (wasm.go), which staticcheck does not see as roots
func exportInit(n uint32) int32 {
	if setupFn == nil {
		hostFail("the plugin did not call sdk.Main from init()")
		return 1
	}
	cfg := make([]byte, n)
	copy(cfg, buffer[:n])
	if err := setupFn(&Plugin{config: cfg}); err != nil {
		hostFail(err.Error())
		return 1
	}
	return 0
}

// current is the event being handled; reused to avoid allocating.
//
//lint:ignore U1000 used by the wasip1 exports (wasm.go), which staticcheck does not see as roots
var current Event

//lint:ignore U1000 used by the wasip1 exports (wasm.go), which staticcheck does not see as roots
func exportEvent(handler, n uint32) int32 {
	if int(handler) >= len(handlers) || int(n) > len(buffer) {
		return abi.VerdictContinue
	}
	var f [abi.EventFields][]byte
	b := buffer[:n]
	for i := range f {
		var ok bool
		if f[i], b, ok = abi.NextField(b); !ok {
			return abi.VerdictContinue
		}
	}
	current = Event{Name: alias(f[0]), Host: alias(f[1]), OriginKind: alias(f[2]), Origin: alias(f[3]),
		OriginState: alias(f[4]), From: alias(f[5]), To: alias(f[6]), User: alias(f[7]), Type: alias(f[8]), raw: f[9]}
	v := handlers[handler](&current)
	current = Event{}
	return int32(v)
}

// alias returns b as a string without copying (see Event).
//
//lint:ignore U1000 used by the wasip1 exports (wasm.go), which staticcheck does not see as roots
func alias(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// Message returns a <message/> in the client namespace with a body (when
// body is not empty); typ may be empty for a normal message.
func Message(from, to, typ, body string) *stanza.Element {
	m := stanza.New(stanza.NSClient, "message", "from", from, "to", to, "type", typ)
	if body != "" {
		m.AddChild(stanza.New(stanza.NSClient, "body").AddText(body))
	}
	return m
}
