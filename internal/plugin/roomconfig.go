package plugin

import (
	"context"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/metronome-xmpp/metronome/sdk/abi"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// Room configuration fields (abi.HostForm*, abi.HostRoomConfig). The MUC
// module (modules/muc) fires muc/config-form and muc/config-submit with
// payloads that have these methods; it is not imported here: like any
// module, the runtime declares the methods it uses.

// configForm is the payload of muc/config-form (*muc.ConfigForm).
type configForm interface {
	Value(field string) []string
	AddField(field *stanza.Element)
}

// configSubmit is the payload of muc/config-submit (*muc.ConfigSubmit).
type configSubmit interface {
	Submitted(field string) ([]string, bool)
	Set(field string, values []string)
}

// roomConfigReader is the API the MUC module publishes on its host.
type roomConfigReader interface {
	RoomConfigValue(room jid.JID, field string) []string
}

const (
	// mucProvideName is the name the MUC module publishes its API under
	// (muc.ProvideName).
	mucProvideName = "muc"
	// nsData is the data forms namespace (XEP-0004).
	nsData = abi.NSData
	// maxField bounds a field's XML and a field's values.
	maxField = 64 << 10
	// maxFieldName bounds a field's name.
	maxFieldName = 256
)

// ownsField reports whether the plugin may add, read or set the room
// configuration field name: it must start with the plugin's prefix
// (abi.RoomFieldPrefix). A refusal is logged once per field.
func (in *instance) ownsField(name string) bool {
	prefix := abi.RoomFieldPrefix(in.p.m.Name)
	ok := len(name) > len(prefix) && len(name) <= maxFieldName && strings.HasPrefix(name, prefix) &&
		!strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f })
	if !ok {
		in.deny("room configuration field " + name + " (plugin fields must start with " + prefix + ")")
	}
	return ok
}

// fieldName reads a field name argument and checks the plugin owns it.
func (in *instance) fieldName(mem api.Memory, p, n uint64) (string, int32) {
	if uint32(n) > maxFieldName {
		return "", abi.ErrInvalid
	}
	name, ok := str(mem, p, n)
	if !ok || name == "" {
		return "", abi.ErrInvalid
	}
	if !in.ownsField(name) {
		return "", abi.ErrDenied
	}
	return name, abi.OK
}

// setValues makes values the pending result; ErrNotFound when there are none.
func (in *instance) setValues(s []uint64, values []string) {
	if len(values) == 0 {
		ret(s, abi.ErrNotFound)
		return
	}
	b := abi.AppendValues(nil, values)
	if len(b) > maxResult {
		ret(s, abi.ErrTooLarge)
		return
	}
	in.result = b
	ret(s, int32(len(b)))
}

func hostFormAddField(_ context.Context, in *instance, mem api.Memory, s []uint64) {
	var form configForm
	if in.phase == phaseEvent {
		form, _ = in.ev.Data.(configForm)
	}
	if form == nil {
		ret(s, abi.ErrState)
		return
	}
	if uint32(s[1]) > maxField {
		ret(s, abi.ErrTooLarge)
		return
	}
	b, ok := view(mem, s[0], s[1])
	if !ok {
		ret(s, abi.ErrInvalid)
		return
	}
	el, err := xmlstream.ParseNS(b, nsData)
	if err != nil || el.Name != "field" || el.Space != nsData {
		ret(s, abi.ErrInvalid)
		return
	}
	if name := el.Attr("var"); name == "" || !in.ownsField(name) {
		if name == "" {
			ret(s, abi.ErrInvalid)
		} else {
			ret(s, abi.ErrDenied)
		}
		return
	}
	form.AddField(el)
	ret(s, abi.OK)
}

func hostFormGet(_ context.Context, in *instance, mem api.Memory, s []uint64) {
	if in.phase != phaseEvent {
		ret(s, abi.ErrState)
		return
	}
	form, isForm := in.ev.Data.(configForm)
	sub, isSubmit := in.ev.Data.(configSubmit)
	if !isForm && !isSubmit {
		ret(s, abi.ErrState)
		return
	}
	name, errno := in.fieldName(mem, s[0], s[1])
	if errno != abi.OK {
		ret(s, errno)
		return
	}
	if isForm {
		in.setValues(s, form.Value(name))
		return
	}
	v, ok := sub.Submitted(name)
	if !ok {
		ret(s, abi.ErrNotFound)
		return
	}
	if len(v) == 0 {
		// Submitted without a value: length 0, not "not found".
		ret(s, 0)
		return
	}
	in.setValues(s, v)
}

func hostFormSet(_ context.Context, in *instance, mem api.Memory, s []uint64) {
	var sub configSubmit
	if in.phase == phaseEvent {
		sub, _ = in.ev.Data.(configSubmit)
	}
	if sub == nil {
		ret(s, abi.ErrState)
		return
	}
	name, errno := in.fieldName(mem, s[0], s[1])
	if errno != abi.OK {
		ret(s, errno)
		return
	}
	if uint32(s[3]) > maxField {
		ret(s, abi.ErrTooLarge)
		return
	}
	b, ok := view(mem, s[2], s[3])
	if !ok {
		ret(s, abi.ErrInvalid)
		return
	}
	values, err := abi.DecodeValues(b)
	if err != nil {
		ret(s, abi.ErrInvalid)
		return
	}
	sub.Set(name, values) // nil (no values) removes the field
	ret(s, abi.OK)
}

func hostRoomConfig(_ context.Context, in *instance, mem api.Memory, s []uint64) {
	if in.phase != phaseEvent {
		ret(s, abi.ErrState)
		return
	}
	r, ok := str(mem, s[0], s[1])
	if !ok {
		ret(s, abi.ErrInvalid)
		return
	}
	room, err := jid.Parse(r)
	if err != nil || room.Local() == "" || room.Resource() != "" {
		ret(s, abi.ErrInvalid)
		return
	}
	name, errno := in.fieldName(mem, s[2], s[3])
	if errno != abi.OK {
		ret(s, errno)
		return
	}
	svc := in.mucService(room.Domain())
	if svc == nil {
		ret(s, abi.ErrNotFound)
		return
	}
	in.setValues(s, svc.RoomConfigValue(room, name))
}

// mucService returns the MUC API of domain when it is this host, or
// another host where a pool of the same plugin runs (the plugin reads
// only what it can set there itself).
func (in *instance) mucService(domain string) roomConfigReader {
	lookup := func(p *pool) roomConfigReader {
		v, ok := p.h.Lookup(mucProvideName)
		if !ok {
			return nil
		}
		r, _ := v.(roomConfigReader)
		return r
	}
	if in.p.h.Name() == domain {
		return lookup(in.p)
	}
	var found roomConfigReader
	livePools.Range(func(k, _ any) bool {
		p := k.(*pool)
		if p.m.Name == in.p.m.Name && p.h.Name() == domain && !p.closed.Load() {
			found = lookup(p)
		}
		return found == nil
	})
	return found
}
