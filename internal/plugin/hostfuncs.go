package plugin

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/tetratelabs/wazero/api"

	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/sdk/abi"
	"github.com/metronome-xmpp/metronome/storage"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// The implementations of the abi.Host* functions. Each reads its
// arguments from stack and writes its result (an errno or a length) to
// stack[0]. They run on the goroutine that called into the guest.

func hostHook(_ context.Context, in *instance, mem api.Memory, s []uint64) {
	if in.phase != phaseInit {
		ret(s, abi.ErrState)
		return
	}
	name, ok := str(mem, s[0], s[1])
	if !ok || name == "" {
		ret(s, abi.ErrInvalid)
		return
	}
	if !in.p.m.Capabilities.AllowsEvent(name) {
		if in.violation == nil {
			in.violation = fmt.Errorf("plugin: hooks event %q, which its manifest does not declare in capabilities.events", name)
		}
		ret(s, abi.ErrDenied)
		return
	}
	in.regs.hooks = append(in.regs.hooks, hookReg{name: name, prio: int(int32(s[2])), handler: uint32(s[3])})
	ret(s, abi.OK)
}

func hostAddFeature(_ context.Context, in *instance, mem api.Memory, s []uint64) {
	if in.phase != phaseInit {
		ret(s, abi.ErrState)
		return
	}
	ns, ok := str(mem, s[0], s[1])
	if !ok || ns == "" {
		ret(s, abi.ErrInvalid)
		return
	}
	if uint32(s[2]) != 0 {
		in.regs.accountFeatures = append(in.regs.accountFeatures, ns)
	} else {
		in.regs.features = append(in.regs.features, ns)
	}
	ret(s, abi.OK)
}

func hostAddIdentity(_ context.Context, in *instance, mem api.Memory, s []uint64) {
	if in.phase != phaseInit {
		ret(s, abi.ErrState)
		return
	}
	cat, ok1 := str(mem, s[0], s[1])
	typ, ok2 := str(mem, s[2], s[3])
	name, ok3 := str(mem, s[4], s[5])
	if !ok1 || !ok2 || !ok3 || cat == "" || typ == "" {
		ret(s, abi.ErrInvalid)
		return
	}
	in.regs.identities = append(in.regs.identities, module.Identity{Category: cat, Type: typ, Name: name})
	ret(s, abi.OK)
}

func hostFail(_ context.Context, in *instance, mem api.Memory, s []uint64) {
	if msg, ok := str(mem, s[0], min(uint64(uint32(s[1])), 4096)); ok {
		in.failMsg = msg
	}
}

func hostLog(ctx context.Context, in *instance, mem api.Memory, s []uint64) {
	msg, ok := str(mem, s[1], min(uint64(uint32(s[2])), 4096))
	if !ok {
		return
	}
	lvl := slog.LevelInfo
	switch int32(s[0]) {
	case abi.LogDebug:
		lvl = slog.LevelDebug
	case abi.LogWarn:
		lvl = slog.LevelWarn
	case abi.LogError:
		lvl = slog.LevelError
	}
	in.p.log.Log(ctx, lvl, msg)
}

// parseStanza parses a guest stanza: one message, presence or iq.
func parseStanza(mem api.Memory, p, n uint64) (*stanza.Element, int32) {
	b, ok := view(mem, p, n)
	if !ok {
		return nil, abi.ErrTooLarge
	}
	el, err := xmlstream.ParseNS(b, stanza.NSClient)
	if err != nil || !stanza.IsStanza(el) {
		return nil, abi.ErrInvalid
	}
	return el, abi.OK
}

// onHost reports whether addr is the host or an address on it.
func (in *instance) onHost(addr string) bool {
	j, err := jid.Parse(addr)
	return err == nil && j.Domain() == in.p.h.Name()
}

func hostSend(ctx context.Context, in *instance, mem api.Memory, s []uint64) {
	if in.phase != phaseEvent {
		ret(s, abi.ErrState)
		return
	}
	if !in.p.m.Capabilities.Send {
		in.deny("send")
		ret(s, abi.ErrDenied)
		return
	}
	st, errno := parseStanza(mem, s[0], s[1])
	if errno != abi.OK {
		ret(s, errno)
		return
	}
	if !in.onHost(st.From()) || st.To() == "" {
		ret(s, abi.ErrInvalid)
		return
	}
	if err := in.p.h.Route(ctx, st); err != nil {
		in.p.log.Debug("plugin stanza not routed", "err", err)
		ret(s, abi.ErrFailed)
		return
	}
	ret(s, abi.OK)
}

func hostReply(ctx context.Context, in *instance, mem api.Memory, s []uint64) {
	if in.phase != phaseEvent {
		ret(s, abi.ErrState)
		return
	}
	st, errno := parseStanza(mem, s[0], s[1])
	if errno != abi.OK {
		ret(s, errno)
		return
	}
	if f := st.From(); f != "" && !in.onHost(f) {
		ret(s, abi.ErrInvalid)
		return
	}
	// As module.Reply: to the origin session when it is the addressee.
	if sess, ok := in.ev.Origin.(module.Session); ok && sess.JID().String() == st.To() {
		if err := in.p.h.Deliver(ctx, sess, st); err != nil {
			ret(s, abi.ErrFailed)
			return
		}
		ret(s, abi.OK)
		return
	}
	if st.To() == "" {
		ret(s, abi.ErrInvalid)
		return
	}
	if err := in.p.h.Route(ctx, st); err != nil {
		ret(s, abi.ErrFailed)
		return
	}
	ret(s, abi.OK)
}

func hostReplace(_ context.Context, in *instance, mem api.Memory, s []uint64) {
	if in.phase != phaseEvent || in.ev.Stanza == nil {
		ret(s, abi.ErrState)
		return
	}
	if !in.p.m.Capabilities.Rewrite {
		in.deny("rewrite")
		ret(s, abi.ErrDenied)
		return
	}
	st, errno := parseStanza(mem, s[0], s[1])
	if errno != abi.OK {
		ret(s, errno)
		return
	}
	old := in.ev.Stanza
	// A rewrite changes content, not addressing: routing decisions were
	// made on these attributes.
	if st.Name != old.Name || st.From() != old.From() || st.To() != old.To() {
		ret(s, abi.ErrInvalid)
		return
	}
	st.Space = old.Space
	*old = *st
	ret(s, abi.OK)
}

func hostSetError(_ context.Context, in *instance, mem api.Memory, s []uint64) {
	cond, ok1 := str(mem, s[0], min(uint64(uint32(s[1])), 64))
	text, ok2 := str(mem, s[2], min(uint64(uint32(s[3])), 1024))
	if ok1 && ok2 {
		in.errCond, in.errText = cond, text
	}
}

// store opens a store the manifest declares. Stores are named
// "plugin/<plugin>/<store>" so that no plugin reaches another's data or
// the server's own.
func (in *instance) store(mem api.Memory, s []uint64) (storage.Map, string, string, int32) {
	if in.phase != phaseEvent && in.phase != phaseInit {
		return nil, "", "", abi.ErrState
	}
	name, ok1 := str(mem, s[0], s[1])
	user, ok2 := str(mem, s[2], s[3])
	key, ok3 := str(mem, s[4], s[5])
	if !ok1 || !ok2 || !ok3 {
		return nil, "", "", abi.ErrInvalid
	}
	allowed := false
	for _, st := range in.p.m.Capabilities.Stores {
		if st == name {
			allowed = true
		}
	}
	if !allowed {
		in.deny("store " + name)
		return nil, "", "", abi.ErrDenied
	}
	return in.p.h.Store("plugin/" + in.p.m.Name + "/" + name).Map(), user, key, abi.OK
}

func hostStoreGet(ctx context.Context, in *instance, mem api.Memory, s []uint64) {
	m, user, key, errno := in.store(mem, s)
	if errno != abi.OK {
		ret(s, errno)
		return
	}
	v, err := m.Get(ctx, user, key)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		ret(s, abi.ErrNotFound)
	case err != nil:
		in.p.log.Warn("plugin store read failed", "err", err)
		ret(s, abi.ErrFailed)
	case len(v) > maxResult:
		ret(s, abi.ErrTooLarge)
	default:
		in.result = v
		ret(s, int32(len(v)))
	}
}

func hostStoreSet(ctx context.Context, in *instance, mem api.Memory, s []uint64) {
	m, user, key, errno := in.store(mem, s)
	if errno != abi.OK {
		ret(s, errno)
		return
	}
	v, ok := view(mem, s[6], s[7])
	if !ok {
		ret(s, abi.ErrTooLarge)
		return
	}
	if err := m.Set(ctx, user, key, bytes.Clone(v)); err != nil {
		in.p.log.Warn("plugin store write failed", "err", err)
		ret(s, abi.ErrFailed)
		return
	}
	ret(s, abi.OK)
}

func hostStoreDelete(ctx context.Context, in *instance, mem api.Memory, s []uint64) {
	m, user, key, errno := in.store(mem, s)
	if errno != abi.OK {
		ret(s, errno)
		return
	}
	if err := m.Delete(ctx, user, key); err != nil {
		in.p.log.Warn("plugin store delete failed", "err", err)
		ret(s, abi.ErrFailed)
		return
	}
	ret(s, abi.OK)
}

func hostHTTP(ctx context.Context, in *instance, mem api.Memory, s []uint64) {
	if in.phase != phaseEvent {
		ret(s, abi.ErrState)
		return
	}
	b, ok := view(mem, s[0], s[1])
	if !ok {
		ret(s, abi.ErrTooLarge)
		return
	}
	r, err := abi.DecodeHTTPRequest(b)
	if err != nil {
		ret(s, abi.ErrInvalid)
		return
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ret(s, abi.ErrInvalid)
		return
	}
	if in.p.http == nil || !in.p.m.Capabilities.AllowsHTTP(u.Host, u.Hostname()) {
		in.deny("http " + u.Host)
		ret(s, abi.ErrDenied)
		return
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(bytes.Clone(r.Body)))
	if err != nil {
		ret(s, abi.ErrInvalid)
		return
	}
	if r.Type != "" {
		req.Header.Set("Content-Type", r.Type)
	}
	req.Header.Set("User-Agent", "Metronome-plugin/"+in.p.m.Name)
	resp, err := in.p.http.Do(req)
	if err != nil {
		in.p.log.Debug("plugin HTTP request failed", "url", u.Redacted(), "err", err)
		ret(s, abi.ErrFailed)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResult-3))
	if err != nil {
		ret(s, abi.ErrFailed)
		return
	}
	if len(body) > maxResult-4 {
		ret(s, abi.ErrTooLarge)
		return
	}
	out := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(resp.StatusCode))
	in.result = append(out, body...)
	ret(s, int32(len(in.result)))
}

func hostResult(_ context.Context, in *instance, mem api.Memory, s []uint64) {
	if in.result == nil {
		ret(s, abi.ErrState)
		return
	}
	if !mem.Write(uint32(s[0]), in.result) {
		ret(s, abi.ErrInvalid)
		return
	}
	in.result = nil
	ret(s, abi.OK)
}
