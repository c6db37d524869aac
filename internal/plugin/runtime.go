package plugin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/metronome-xmpp/metronome/event"
	"github.com/metronome-xmpp/metronome/module"
	"github.com/metronome-xmpp/metronome/sdk/abi"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Limits of one plugin pool.
type Limits struct {
	CallTimeout time.Duration // one event
	InitTimeout time.Duration // instantiation and init
	MaxFailures int           // traps and timeouts before the plugin is disabled
	Instances   int           // instances running at once
}

// maxResult bounds a value or HTTP response handed to a guest, and a
// stanza or request a guest hands to the host.
const maxResult = 1 << 20

// phases of an instance, for the host functions allowed in each.
const (
	phaseIdle = iota
	phaseInit
	phaseEvent
)

// pool runs one plugin on one host: up to Limits.Instances instances,
// created on demand and reused. An instance is used by one goroutine at a
// time; it is discarded after a trap or a timeout.
type pool struct {
	c      *Compiled
	m      *Manifest
	h      module.Host
	log    *slog.Logger
	config []byte // the JSON options init receives
	limits Limits
	http   *http.Client

	idle  chan *instance
	slots chan struct{} // one token per live instance

	failures atomic.Int32
	disabled atomic.Bool
	closed   atomic.Bool
	active   atomic.Int32 // calls in progress, for drain
	calls    atomic.Uint64
	probe    bool     // instantiate and check the ABI only, without init (dry runs)
	denied   sync.Map // capability → struct{}: warned once
}

// registrations is what an instance's init asked for.
type registrations struct {
	hooks           []hookReg
	features        []string
	accountFeatures []string
	identities      []module.Identity
}

type hookReg struct {
	name    string
	prio    int
	handler uint32
}

// instance is one instantiated guest module.
type instance struct {
	p        *pool
	mod      api.Module
	fnBuffer api.Function
	fnEvent  api.Function
	gptr     uint32 // guest buffer
	gcap     uint32
	hbuf     []byte // host-side encoding buffer
	stack    [2]uint64
	stderr   *tailWriter

	// Call state, touched only by the goroutine that holds the instance.
	phase     int
	ev        *event.Event
	errCond   string
	errText   string
	result    []byte
	regs      registrations
	violation error
	failMsg   string
}

func newPool(c *Compiled, m *Manifest, h module.Host, config []byte, limits Limits) *pool {
	p := &pool{
		c: c, m: m, h: h, log: h.Logger(), config: config, limits: limits,
		idle:  make(chan *instance, limits.Instances),
		slots: make(chan struct{}, limits.Instances),
	}
	if len(m.Capabilities.HTTP) > 0 {
		p.http = &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !m.Capabilities.AllowsHTTP(req.URL.Host, req.URL.Hostname()) {
				return fmt.Errorf("redirect to %s is not allowed by the manifest", req.URL.Host)
			}
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			return nil
		}}
	}
	return p
}

// start creates the first instance, whose init's registrations are
// applied to the host by the caller. The instance goes back to the pool.
func (p *pool) start(ctx context.Context) (registrations, error) {
	p.slots <- struct{}{}
	in, err := p.newInstance(ctx)
	if err != nil {
		<-p.slots
		return registrations{}, err
	}
	regs := in.regs
	in.regs = registrations{}
	p.release(in)
	if !p.probe {
		livePools.Store(p, struct{}{})
	}
	return regs, nil
}

// livePools are the started pools, for Statuses.
var livePools sync.Map // *pool → struct{}

// PoolStatus describes a plugin running on a host.
type PoolStatus struct {
	Plugin   string `json:"plugin"`
	Version  string `json:"version"`
	Host     string `json:"host"`
	Calls    uint64 `json:"calls"`
	Failures int    `json:"failures"`
	Disabled bool   `json:"disabled"`
}

// Statuses reports every plugin running in this process, by plugin and host.
func Statuses() []PoolStatus {
	var out []PoolStatus
	livePools.Range(func(k, _ any) bool {
		p := k.(*pool)
		out = append(out, PoolStatus{Plugin: p.m.Name, Version: p.m.Version, Host: p.h.Name(),
			Calls: p.calls.Load(), Failures: int(p.failures.Load()), Disabled: p.disabled.Load()})
		return true
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Plugin != out[j].Plugin {
			return out[i].Plugin < out[j].Plugin
		}
		return out[i].Host < out[j].Host
	})
	return out
}

// newInstance instantiates the module and runs its init. The caller holds a slot.
func (p *pool) newInstance(ctx context.Context) (*instance, error) {
	ctx, cancel := context.WithTimeout(ctx, p.limits.InitTimeout)
	defer cancel()
	in := &instance{p: p, stderr: &tailWriter{}}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions("_initialize").
		WithSysWalltime().WithSysNanotime().
		WithRandSource(rand.Reader).
		WithStdout(in.stderr).WithStderr(in.stderr)
	mod, err := p.c.rt.InstantiateModule(ctx, p.c.mod, cfg)
	if err != nil {
		return nil, p.describe(in, "start", err)
	}
	in.mod = mod
	p.c.instances.Store(mod, in)
	fail := func(err error) (*instance, error) {
		in.close()
		return nil, err
	}
	fns := mod.ExportedFunction
	in.fnBuffer, in.fnEvent = fns(abi.ExportBuffer), fns(abi.ExportEvent)
	res, err := fns(abi.ExportABI).Call(ctx)
	if err != nil {
		return fail(p.describe(in, "abi", err))
	}
	if v := int(int32(res[0])); !compatible([]int{v}) {
		return fail(fmt.Errorf("plugin: built for plugin API version %d; this server implements %v", v, SupportedAPIVersions))
	}
	if p.probe {
		return in, nil
	}
	if err := in.ensureBuffer(ctx, uint32(max(len(p.config), 4096))); err != nil {
		return fail(p.describe(in, "buffer", err))
	}
	if !mod.Memory().Write(in.gptr, p.config) {
		return fail(errors.New("plugin: guest buffer outside its memory"))
	}
	in.phase = phaseInit
	res, err = fns(abi.ExportInit).Call(ctx, uint64(len(p.config)))
	in.phase = phaseIdle
	switch {
	case err != nil:
		return fail(p.describe(in, "init", err))
	case in.violation != nil:
		return fail(in.violation)
	case int32(res[0]) != 0:
		msg := in.failMsg
		if msg == "" {
			msg = fmt.Sprintf("returned %d", int32(res[0]))
		}
		return fail(fmt.Errorf("plugin: init failed: %s", msg))
	}
	return in, nil
}

// describe turns a call error into a message: time limit, exit, trap.
func (p *pool) describe(in *instance, what string, err error) error {
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		switch ee.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return fmt.Errorf("plugin: %s: exceeded its time limit", what)
		case sys.ExitCodeContextCanceled:
			return fmt.Errorf("plugin: %s: canceled", what)
		}
		if tail := in.stderr.last(); tail != "" {
			return fmt.Errorf("plugin: %s: exited with status %d: %s", what, ee.ExitCode(), tail)
		}
		return fmt.Errorf("plugin: %s: exited with status %d", what, ee.ExitCode())
	}
	if tail := in.stderr.last(); tail != "" {
		return fmt.Errorf("plugin: %s: %v (%s)", what, firstLine(err.Error()), tail)
	}
	return fmt.Errorf("plugin: %s: %v", what, firstLine(err.Error()))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// ensureBuffer makes the guest buffer hold at least n bytes.
func (in *instance) ensureBuffer(ctx context.Context, n uint32) error {
	if n <= in.gcap && in.gptr != 0 {
		return nil
	}
	in.stack[0] = uint64(n)
	if err := in.fnBuffer.CallWithStack(ctx, in.stack[:]); err != nil {
		return err
	}
	in.gptr, in.gcap = uint32(in.stack[0]), n
	return nil
}

func (in *instance) close() {
	in.p.c.instances.Delete(in.mod)
	_ = in.mod.Close(context.Background())
}

// acquire returns an idle instance or creates one, waiting for a free
// slot until ctx ends.
func (p *pool) acquire(ctx context.Context) (*instance, error) {
	select {
	case in := <-p.idle:
		return in, nil
	default:
	}
	select {
	case in := <-p.idle:
		return in, nil
	case p.slots <- struct{}{}:
		in, err := p.newInstance(ctx)
		if err != nil {
			<-p.slots
			return nil, err
		}
		return in, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("plugin: no free instance: %w", ctx.Err())
	}
}

// release returns a healthy instance to the pool.
func (p *pool) release(in *instance) {
	if p.closed.Load() {
		in.close()
		<-p.slots
		return
	}
	p.idle <- in
}

// discard drops a broken instance and counts the failure.
func (p *pool) discard(in *instance, err error) {
	in.close()
	<-p.slots
	p.fail(err)
}

// fail counts a failure; enough failures disable the plugin until the next
// reload.
func (p *pool) fail(err error) {
	n := p.failures.Add(1)
	p.log.Warn("plugin call failed", "err", err, "failures", n, "max_failures", p.limits.MaxFailures)
	if int(n) >= p.limits.MaxFailures && p.disabled.CompareAndSwap(false, true) {
		p.log.Error("plugin disabled after repeated failures; it stays off until the next reload", "failures", n)
	}
}

// drain waits (up to d) for the calls in progress to end, after close:
// the compiled module must outlive them.
func (p *pool) drain(d time.Duration) {
	deadline := time.Now().Add(d)
	for p.active.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// close drops the idle instances; busy ones are closed when released.
func (p *pool) close() {
	p.closed.Store(true)
	livePools.Delete(p)
	for {
		select {
		case in := <-p.idle:
			in.close()
			<-p.slots
		default:
			return
		}
	}
}

// handler returns the event handler for the guest's handler number id.
func (p *pool) handler(id uint32) event.Handler {
	return func(ctx context.Context, ev *event.Event) event.Verdict { return p.dispatch(ctx, id, ev) }
}

// dispatch runs one event through the guest. Failures are logged and
// counted and let the event continue: a broken plugin must not stop the
// server's own handling.
func (p *pool) dispatch(ctx context.Context, id uint32, ev *event.Event) event.Verdict {
	if p.disabled.Load() {
		return event.Continue
	}
	p.active.Add(1)
	defer p.active.Add(-1)
	if p.closed.Load() {
		return event.Continue
	}
	ctx, cancel := context.WithTimeout(ctx, p.limits.CallTimeout)
	defer cancel()
	in, err := p.acquire(ctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			p.log.Warn("plugin call skipped", "event", ev.Name, "err", err)
			return event.Continue
		}
		p.fail(err) // a new instance failed to start
		return event.Continue
	}
	p.calls.Add(1)
	in.hbuf = encodeEvent(in.hbuf[:0], ev)
	if err := in.ensureBuffer(ctx, uint32(len(in.hbuf))); err != nil {
		p.discard(in, p.describe(in, ev.Name, err))
		return event.Continue
	}
	if !in.mod.Memory().Write(in.gptr, in.hbuf) {
		p.discard(in, errors.New("plugin: guest buffer outside its memory"))
		return event.Continue
	}
	in.phase, in.ev = phaseEvent, ev
	in.stack[0], in.stack[1] = uint64(id), uint64(len(in.hbuf))
	err = in.fnEvent.CallWithStack(ctx, in.stack[:])
	in.phase, in.ev, in.result = phaseIdle, nil, nil
	if err != nil {
		p.discard(in, p.describe(in, ev.Name, err))
		return event.Continue
	}
	v := int32(in.stack[0])
	cond, text := in.errCond, in.errText
	in.errCond, in.errText = "", ""
	p.release(in)
	switch v {
	case abi.VerdictHandled:
		return event.Handled
	case abi.VerdictError:
		if cond == "" {
			cond = string(stanza.UndefinedCondition)
		}
		return event.Error(stanza.Error{Condition: stanza.Condition(cond), Text: text})
	}
	return event.Continue
}

// encodeEvent appends ev in abi.AppendEvent's layout without building an
// abi.Event: the stanza is serialized straight into buf.
func encodeEvent(buf []byte, ev *event.Event) []byte {
	buf = abi.AppendField(buf, ev.Name)
	buf = abi.AppendField(buf, ev.Host)
	var kind, origin string
	if ev.Origin != nil {
		kind, origin = ev.Origin.Kind(), ev.Origin.JID().String()
	}
	buf = abi.AppendField(buf, kind)
	buf = abi.AppendField(buf, origin)
	state := 0
	if sess, ok := ev.Origin.(module.Session); ok {
		if sess.Available() {
			state |= 1
		}
		if sess.Interested() {
			state |= 2
		}
		if sess.Secure() {
			state |= 4
		}
	}
	buf = abi.AppendField(buf, originStates[state])
	buf = abi.AppendField(buf, ev.From.String())
	buf = abi.AppendField(buf, ev.To.String())
	var user string
	switch d := ev.Data.(type) {
	case module.UserEvent:
		user = d.User.String()
	case *module.UserEvent:
		if d != nil {
			user = d.User.String()
		}
	}
	buf = abi.AppendField(buf, user)
	var typ string
	if ev.Stanza != nil {
		typ = ev.Stanza.Type()
	}
	buf = abi.AppendField(buf, typ)
	off := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	if ev.Stanza != nil {
		buf = ev.Stanza.Append(buf, stanza.NSClient)
	}
	binary.LittleEndian.PutUint32(buf[off:], uint32(len(buf)-off-4))
	return buf
}

// originStates are the abi OriginState strings by bit set (1 available,
// 2 interested, 4 secure), so that encoding one allocates nothing.
var originStates = [8]string{"", "available", "interested", "available interested",
	"secure", "available secure", "interested secure", "available interested secure"}

// tailWriter keeps the last line a guest wrote to stdout or stderr (a Go
// panic message, "fatal error: out of memory"), for failure reports.
type tailWriter struct {
	mu   sync.Mutex
	buf  []byte
	line string
}

func (w *tailWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if l := strings.TrimSpace(string(w.buf[:i])); l != "" && !strings.HasPrefix(l, "goroutine ") &&
			!strings.HasPrefix(l, "[") && w.interesting(l) {
			w.line = l
		}
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 4096 {
		w.buf = w.buf[len(w.buf)-4096:]
	}
	return len(b), nil
}

// interesting keeps the first panic or fatal line rather than the stack
// trace that follows it.
func (w *tailWriter) interesting(l string) bool {
	if strings.HasPrefix(w.line, "panic:") || strings.HasPrefix(w.line, "fatal error:") {
		return false
	}
	return true
}

func (w *tailWriter) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.line
}

// --- host functions -------------------------------------------------------

// hostFunctionNames are the functions of abi.ImportModule.
var hostFunctionNames = map[string]bool{}

type hostFunc struct {
	name    string
	params  []api.ValueType
	results []api.ValueType
	fn      func(ctx context.Context, in *instance, mem api.Memory, stack []uint64)
}

var i32 = api.ValueTypeI32

func params(n int) []api.ValueType {
	out := make([]api.ValueType, n)
	for i := range out {
		out[i] = i32
	}
	return out
}

var hostFuncs = []hostFunc{
	{abi.HostHook, params(4), params(1), hostHook},
	{abi.HostAddFeature, params(3), params(1), hostAddFeature},
	{abi.HostAddIdentity, params(6), params(1), hostAddIdentity},
	{abi.HostFail, params(2), nil, hostFail},
	{abi.HostLog, params(3), nil, hostLog},
	{abi.HostSend, params(2), params(1), hostSend},
	{abi.HostReply, params(2), params(1), hostReply},
	{abi.HostReplace, params(2), params(1), hostReplace},
	{abi.HostSetError, params(4), nil, hostSetError},
	{abi.HostStoreGet, params(6), params(1), hostStoreGet},
	{abi.HostStoreSet, params(8), params(1), hostStoreSet},
	{abi.HostStoreDelete, params(6), params(1), hostStoreDelete},
	{abi.HostHTTP, params(2), params(1), hostHTTP},
	{abi.HostResult, params(1), params(1), hostResult},
	{abi.HostFormAddField, params(2), params(1), hostFormAddField},
	{abi.HostFormGet, params(2), params(1), hostFormGet},
	{abi.HostFormSet, params(4), params(1), hostFormSet},
	{abi.HostRoomConfig, params(4), params(1), hostRoomConfig},
}

func init() {
	for _, f := range hostFuncs {
		hostFunctionNames[f.name] = true
	}
}

// instantiateHost defines abi.ImportModule in the compiled module's runtime.
func (c *Compiled) instantiateHost(ctx context.Context) error {
	b := c.rt.NewHostModuleBuilder(abi.ImportModule)
	for _, f := range hostFuncs {
		fn := f.fn
		hasResult := len(f.results) > 0
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
			in := c.lookup(m)
			if in == nil {
				if hasResult {
					ret(stack, abi.ErrState)
				}
				return
			}
			fn(ctx, in, m.Memory(), stack)
		}), f.params, f.results).Export(f.name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("plugin: host module: %w", err)
	}
	return nil
}

func ret(stack []uint64, n int32) { stack[0] = uint64(uint32(n)) }

// str reads a guest string (copied).
func str(mem api.Memory, p, n uint64) (string, bool) {
	// i32 arguments arrive in the low half of a stack slot; the high half
	// is undefined.
	p, n = uint64(uint32(p)), uint64(uint32(n))
	if n > maxResult {
		return "", false
	}
	b, ok := mem.Read(uint32(p), uint32(n))
	if !ok {
		return "", false
	}
	return string(b), true
}

// view reads guest bytes without copying; valid until the guest runs again.
func view(mem api.Memory, p, n uint64) ([]byte, bool) {
	p, n = uint64(uint32(p)), uint64(uint32(n))
	if n > maxResult {
		return nil, false
	}
	return mem.Read(uint32(p), uint32(n))
}

func (in *instance) deny(what string) {
	if _, dup := in.p.denied.LoadOrStore(what, struct{}{}); !dup {
		in.p.log.Warn("plugin used a capability its manifest does not declare", "capability", what)
	}
}
