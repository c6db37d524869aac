// Package abi is the binary interface between the Metronome server and a
// WebAssembly plugin: the names of the functions each side exports, the
// numeric codes they exchange, and the byte layout of events. The server
// (internal/plugin) and the guest SDK (package sdk) both use it, so the two
// cannot drift apart. docs/design/002_plugins.md explains the design; this
// package is its normative part.
//
// Version 1. All integers are little-endian; a pointer is an offset into
// the guest's linear memory (32-bit). Strings are UTF-8 and are passed as
// (pointer, length) pairs; they are never NUL-terminated.
//
// The package has no dependencies so that it compiles for any GOOS,
// wasip1 included, and adds nothing to a plugin's size.
package abi

import (
	"encoding/binary"
	"errors"
)

// Version is the ABI version this package describes. A plugin reports the
// version it was built against from its ExportABI function; the server
// refuses plugins whose version it does not implement.
const Version = 1

// ImportModule is the WebAssembly module name of the host functions.
const ImportModule = "metronome"

// Functions the guest exports.
const (
	// ExportABI: () -> i32. Returns the ABI version the guest implements.
	ExportABI = "metronome_abi"
	// ExportBuffer: (size i32) -> ptr i32. Returns a guest buffer of at
	// least size bytes that the host writes the argument of the next
	// ExportInit or ExportEvent call into. It stays valid until the next
	// ExportBuffer call.
	ExportBuffer = "metronome_buffer"
	// ExportInit: (len i32) -> i32. The buffer holds the plugin's
	// configuration as a JSON object (len bytes). The guest registers its
	// hooks and features with the host functions and returns 0, or calls
	// HostFail and returns non-zero.
	ExportInit = "metronome_init"
	// ExportEvent: (handler i32, len i32) -> verdict i32. The buffer holds
	// an event (see AppendEvent) for the handler the guest numbered handler
	// when it called HostHook.
	ExportEvent = "metronome_event"
)

// Functions the host provides in module ImportModule. Signatures use i32
// unless noted; (p, n) is a pointer and a length.
const (
	// HostHook(name p, n, priority, handler) -> errno. Only during init.
	HostHook = "hook"
	// HostAddFeature(ns p, n, account) -> errno: a disco#info feature of
	// the host (account = 0) or of user accounts (account = 1). Only
	// during init.
	HostAddFeature = "add_feature"
	// HostAddIdentity(category p, n, type p, n, name p, n) -> errno. Only
	// during init.
	HostAddIdentity = "add_identity"
	// HostFail(message p, n): the reason ExportInit returns non-zero.
	HostFail = "fail"
	// HostLog(level, message p, n).
	HostLog = "log"
	// HostSend(stanza p, n) -> errno: route a stanza as the server. Its
	// 'from' must be this host or an address on it.
	HostSend = "send"
	// HostReply(stanza p, n) -> errno: deliver a stanza to the origin of
	// the current event (the client session, when its address is the
	// stanza's 'to'), else route it like HostSend. Only during an event.
	HostReply = "reply"
	// HostReplace(stanza p, n) -> errno: replace the stanza of the
	// current event; handlers after this one and the router see the new
	// one. Only during an event of a stanza.
	HostReplace = "replace"
	// HostSetError(condition p, n, text p, n): the stanza error a handler
	// returning VerdictError bounces (RFC 6120 §8.3.3 condition name).
	HostSetError = "set_error"
	// HostStoreGet(store p, n, user p, n, key p, n) -> length or errno.
	// The value becomes the pending result (HostResult).
	HostStoreGet = "store_get"
	// HostStoreSet(store p, n, user p, n, key p, n, value p, n) -> errno.
	HostStoreSet = "store_set"
	// HostStoreDelete(store p, n, user p, n, key p, n) -> errno.
	HostStoreDelete = "store_delete"
	// HostHTTP(request p, n) -> length or errno. The request is
	// AppendHTTPRequest's layout; the pending result is a 4-byte status
	// code followed by the response body.
	HostHTTP = "http_fetch"
	// HostResult(dst p) -> errno: copy the pending result (whose length
	// the previous call returned) to dst and clear it.
	HostResult = "result"
)

// Room configuration: host functions for the events a MUC service fires
// when an owner asks for a room's configuration form (EventRoomConfigForm)
// and submits it (EventRoomConfigSubmit). Added to version 1 without
// changing anything else: a plugin that does not import them runs on
// servers without them. Every field name ('var') a plugin adds, reads or
// sets must start with RoomFieldPrefix(its name) ("x-wordfilter#");
// others are refused with ErrDenied. Values cross the boundary in
// AppendValues' layout. The event's To is the room's bare JID and From
// the owner's full JID; it carries no stanza. A handler of
// EventRoomConfigSubmit that returns VerdictError (after HostSetError)
// rejects the whole submission: the owner gets the error, nothing changes.
const (
	// EventRoomConfigForm is fired when an owner asks for the form.
	EventRoomConfigForm = "muc/config-form"
	// EventRoomConfigSubmit is fired when an owner submits the form,
	// before anything is applied.
	EventRoomConfigSubmit = "muc/config-submit"

	// HostFormAddField(field p, n) -> errno: during EventRoomConfigForm,
	// append a data form field, <field xmlns='jabber:x:data' var='…'/> as
	// XML (the namespace may be left out), to the form.
	HostFormAddField = "form_add_field"
	// HostFormGet(field p, n) -> length or errno: during
	// EventRoomConfigForm, the values the room stores for field; during
	// EventRoomConfigSubmit, the values submitted for it. ErrNotFound when
	// there are none (nothing stored, or the field was not submitted). The
	// pending result is in AppendValues' layout.
	HostFormGet = "form_get"
	// HostFormSet(field p, n, values p, n) -> errno: during
	// EventRoomConfigSubmit, keep values (AppendValues' layout) with the
	// room, stored with it if it is persistent, once the submission is
	// accepted; no values removes the field.
	HostFormSet = "form_set"
	// HostRoomConfig(room p, n, field p, n) -> length or errno: during any
	// event, the values the room (a bare JID) stores for field, read from
	// the MUC service of the room's domain when it is this host or another
	// host of this server that runs the same plugin. ErrNotFound when
	// there are none, or no such room or service. The pending result is in
	// AppendValues' layout.
	HostRoomConfig = "room_config"
)

// NSData is the namespace of data form fields (XEP-0004).
const NSData = "jabber:x:data"

// RoomFieldPrefix is the prefix of the room configuration fields the
// plugin called name may add, read and set.
func RoomFieldPrefix(name string) string { return "x-" + name + "#" }

// AppendValues appends values as consecutive length-prefixed fields (no
// count: the layout ends with the data).
func AppendValues(buf []byte, values []string) []byte {
	for _, v := range values {
		buf = AppendField(buf, v)
	}
	return buf
}

// DecodeValues decodes AppendValues' layout.
func DecodeValues(b []byte) ([]string, error) {
	var out []string
	for len(b) > 0 {
		f, rest, ok := NextField(b)
		if !ok {
			return nil, ErrShort
		}
		out = append(out, string(f))
		b = rest
	}
	return out, nil
}

// Verdicts ExportEvent returns (event.Verdict on the server).
const (
	VerdictContinue = 0 // let the next handler run
	VerdictHandled  = 1 // stop: the plugin answered or dropped the stanza
	VerdictError    = 2 // stop and bounce the error set with HostSetError
)

// Error numbers host functions return (negative; 0 is success).
const (
	OK          = 0
	ErrNotFound = -1 // no such value
	ErrDenied   = -2 // the manifest does not grant this capability
	ErrInvalid  = -3 // malformed argument (bad XML, bad address, bad URL)
	ErrFailed   = -4 // the server failed (storage, network); see the log
	ErrState    = -5 // not allowed now (e.g. hook after init, reply outside an event)
	ErrTooLarge = -6 // argument or result over the host's size limit
)

// Log levels of HostLog.
const (
	LogDebug = 0
	LogInfo  = 1
	LogWarn  = 2
	LogError = 3
)

// ErrnoText describes an error number.
func ErrnoText(n int32) string {
	switch n {
	case OK:
		return "ok"
	case ErrNotFound:
		return "not found"
	case ErrDenied:
		return "not permitted by the plugin's manifest"
	case ErrInvalid:
		return "invalid argument"
	case ErrFailed:
		return "server failure"
	case ErrState:
		return "not allowed at this point"
	case ErrTooLarge:
		return "too large"
	}
	return "unknown error"
}

// Event is the decoded form of an event crossing the boundary.
type Event struct {
	Name       string // event name, e.g. "message/bare"
	Host       string // the virtual host whose bus fired it
	OriginKind string // "c2s", "s2s", "component", "local" or ""
	Origin     string // the origin's address (a client's full JID)
	// OriginState describes a client session origin before the event is
	// handled: space-separated flags among "available" (it has sent
	// available presence), "interested" (it requested the roster) and
	// "secure" (its stream is encrypted). A client's initial presence is a
	// presence/self event whose origin is not yet "available".
	OriginState string
	From        string // stanza events: the sender; session events: the session's JID
	To          string // stanza events: the recipient
	User        string // user/* events: the account's bare JID
	Type        string // stanza events: the stanza's 'type' attribute
	Stanza      []byte // the stanza as XML, empty for other events
}

// EventFields is the number of fields of an event: in this order, each a
// 4-byte length and the bytes, Name, Host, OriginKind, Origin,
// OriginState, From, To, User, Type, Stanza. The header fields come first so that a guest can
// decide from them alone, without parsing the stanza.
const EventFields = 10

// AppendField appends s as a length-prefixed field.
func AppendField(buf []byte, s string) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(s)))
	return append(buf, s...)
}

// AppendBytesField appends b as a length-prefixed field.
func AppendBytesField(buf []byte, b []byte) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(b)))
	return append(buf, b...)
}

// NextField splits the first length-prefixed field off b without
// allocating; ok is false when b is too short.
func NextField(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	l := binary.LittleEndian.Uint32(b)
	if uint64(l) > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+l : 4+l], b[4+l:], true
}

// AppendEvent appends ev in the layout ExportEvent receives.
func AppendEvent(buf []byte, ev *Event) []byte {
	for _, s := range []string{ev.Name, ev.Host, ev.OriginKind, ev.Origin, ev.OriginState, ev.From, ev.To, ev.User, ev.Type} {
		buf = AppendField(buf, s)
	}
	return AppendBytesField(buf, ev.Stanza)
}

// ErrShort reports a truncated or malformed buffer.
var ErrShort = errors.New("abi: truncated data")

// Fields splits b into n length-prefixed fields. The returned slices alias b.
func Fields(b []byte, n int) ([][]byte, error) {
	out := make([][]byte, 0, n)
	for range n {
		if len(b) < 4 {
			return nil, ErrShort
		}
		l := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(l) > uint64(len(b)) {
			return nil, ErrShort
		}
		out = append(out, b[:l:l])
		b = b[l:]
	}
	return out, nil
}

// DecodeEvent decodes an event written by AppendEvent. Stanza aliases b.
func DecodeEvent(b []byte) (Event, error) {
	f, err := Fields(b, EventFields)
	if err != nil {
		return Event{}, err
	}
	return Event{Name: string(f[0]), Host: string(f[1]), OriginKind: string(f[2]), Origin: string(f[3]),
		OriginState: string(f[4]), From: string(f[5]), To: string(f[6]), User: string(f[7]), Type: string(f[8]),
		Stanza: f[9]}, nil
}

// HTTPRequest is the argument of HostHTTP.
type HTTPRequest struct {
	Method string // GET, POST, PUT, DELETE...
	URL    string // http or https; its host must be listed in the manifest
	Type   string // Content-Type of Body, may be empty
	Body   []byte
}

// AppendHTTPRequest appends r as four fields: method, URL, content type, body.
func AppendHTTPRequest(buf []byte, r *HTTPRequest) []byte {
	buf = AppendField(buf, r.Method)
	buf = AppendField(buf, r.URL)
	buf = AppendField(buf, r.Type)
	return AppendBytesField(buf, r.Body)
}

// DecodeHTTPRequest decodes AppendHTTPRequest's layout. Body aliases b.
func DecodeHTTPRequest(b []byte) (HTTPRequest, error) {
	f, err := Fields(b, 4)
	if err != nil {
		return HTTPRequest{}, err
	}
	return HTTPRequest{Method: string(f[0]), URL: string(f[1]), Type: string(f[2]), Body: f[3]}, nil
}
