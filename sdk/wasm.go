//go:build wasip1

package sdk

import (
	"unsafe"

	"github.com/metronome-xmpp/metronome/sdk/abi"
)

// Exports (abi.Export*).

//go:wasmexport metronome_abi
//lint:ignore U1000 exported to the host
func wasmABI() int32 { return abi.Version }

//go:wasmexport metronome_buffer
//lint:ignore U1000 exported to the host
func wasmBuffer(size uint32) uint32 {
	b := exportBuffer(size)
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

//go:wasmexport metronome_init
//lint:ignore U1000 exported to the host
func wasmInit(n uint32) int32 { return exportInit(n) }

//go:wasmexport metronome_event
//lint:ignore U1000 exported to the host
func wasmEvent(handler, n uint32) int32 { return exportEvent(handler, n) }

// Imports (abi.Host*). Strings and slices are passed as pointer and length.

//go:wasmimport metronome hook
func impHook(p unsafe.Pointer, n uint32, prio int32, handler uint32) int32

//go:wasmimport metronome add_feature
func impAddFeature(p unsafe.Pointer, n uint32, account uint32) int32

//go:wasmimport metronome add_identity
func impAddIdentity(cp unsafe.Pointer, cn uint32, tp unsafe.Pointer, tn uint32, np unsafe.Pointer, nn uint32) int32

//go:wasmimport metronome fail
func impFail(p unsafe.Pointer, n uint32)

//go:wasmimport metronome log
func impLog(level int32, p unsafe.Pointer, n uint32)

//go:wasmimport metronome send
func impSend(p unsafe.Pointer, n uint32) int32

//go:wasmimport metronome reply
func impReply(p unsafe.Pointer, n uint32) int32

//go:wasmimport metronome replace
func impReplace(p unsafe.Pointer, n uint32) int32

//go:wasmimport metronome set_error
func impSetError(cp unsafe.Pointer, cn uint32, tp unsafe.Pointer, tn uint32)

//go:wasmimport metronome store_get
func impStoreGet(sp unsafe.Pointer, sn uint32, up unsafe.Pointer, un uint32, kp unsafe.Pointer, kn uint32) int32

//go:wasmimport metronome store_set
func impStoreSet(sp unsafe.Pointer, sn uint32, up unsafe.Pointer, un uint32, kp unsafe.Pointer, kn uint32, vp unsafe.Pointer, vn uint32) int32

//go:wasmimport metronome store_delete
func impStoreDelete(sp unsafe.Pointer, sn uint32, up unsafe.Pointer, un uint32, kp unsafe.Pointer, kn uint32) int32

//go:wasmimport metronome http_fetch
func impHTTP(p unsafe.Pointer, n uint32) int32

//go:wasmimport metronome result
func impResult(p unsafe.Pointer) int32

//go:wasmimport metronome form_add_field
func impFormAddField(p unsafe.Pointer, n uint32) int32

//go:wasmimport metronome form_get
func impFormGet(p unsafe.Pointer, n uint32) int32

//go:wasmimport metronome form_set
func impFormSet(fp unsafe.Pointer, fn uint32, vp unsafe.Pointer, vn uint32) int32

//go:wasmimport metronome room_config
func impRoomConfig(rp unsafe.Pointer, rn uint32, fp unsafe.Pointer, fn uint32) int32

func sp(s string) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}
func bp(b []byte) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b))
}

func hostHook(name string, prio int32, handler uint32) int32 {
	p, n := sp(name)
	return impHook(p, n, prio, handler)
}

func hostAddFeature(ns string, account uint32) int32 {
	p, n := sp(ns)
	return impAddFeature(p, n, account)
}

func hostAddIdentity(category, typ, name string) int32 {
	cp, cn := sp(category)
	tp, tn := sp(typ)
	np, nn := sp(name)
	return impAddIdentity(cp, cn, tp, tn, np, nn)
}

func hostFail(msg string) {
	p, n := sp(msg)
	impFail(p, n)
}

func hostLog(level int32, msg string) {
	p, n := sp(msg)
	impLog(level, p, n)
}

func hostSend(b []byte) int32 {
	p, n := bp(b)
	return impSend(p, n)
}

func hostReply(b []byte) int32 {
	p, n := bp(b)
	return impReply(p, n)
}

func hostReplace(b []byte) int32 {
	p, n := bp(b)
	return impReplace(p, n)
}

func hostSetError(cond, text string) {
	cp, cn := sp(cond)
	tp, tn := sp(text)
	impSetError(cp, cn, tp, tn)
}

func hostStoreGet(store, user, key string) int32 {
	s, sn := sp(store)
	u, un := sp(user)
	k, kn := sp(key)
	return impStoreGet(s, sn, u, un, k, kn)
}

func hostStoreSet(store, user, key string, value []byte) int32 {
	s, sn := sp(store)
	u, un := sp(user)
	k, kn := sp(key)
	v, vn := bp(value)
	return impStoreSet(s, sn, u, un, k, kn, v, vn)
}

func hostStoreDelete(store, user, key string) int32 {
	s, sn := sp(store)
	u, un := sp(user)
	k, kn := sp(key)
	return impStoreDelete(s, sn, u, un, k, kn)
}

func hostHTTP(req []byte) int32 {
	p, n := bp(req)
	return impHTTP(p, n)
}

func hostResult(dst []byte) int32 {
	p, _ := bp(dst)
	return impResult(p)
}

func hostFormAddField(b []byte) int32 {
	p, n := bp(b)
	return impFormAddField(p, n)
}

func hostFormGet(field string) int32 {
	p, n := sp(field)
	return impFormGet(p, n)
}

func hostFormSet(field string, values []byte) int32 {
	fp, fn := sp(field)
	vp, vn := bp(values)
	return impFormSet(fp, fn, vp, vn)
}

func hostRoomConfig(room, field string) int32 {
	rp, rn := sp(room)
	fp, fn := sp(field)
	return impRoomConfig(rp, rn, fp, fn)
}
