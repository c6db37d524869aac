package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdg-go/scram"
)

// maxErrorLines bounds the errors printed one by one.
const maxErrorLines = 10

type loader struct {
	o      *options
	out    io.Writer // results
	log    io.Writer // progress and errors
	logMu  sync.Mutex
	errs   int
	epoch  time.Time // monotonic origin of the timestamps
	wall0  int64     // epoch in Unix nanoseconds
	client []*client
	res    *result
	tr     *traffic // nil in the idle scenario

	scram    []*scram.Client // --relogin: by session index
	tlsCache tls.ClientSessionCache
	hc       *http.Client    // websocket: for the upgrade requests
	httpTr   *http.Transport // websocket: hc's; bosh: what each session's transport is cloned from
}

// result is what a run reports, as JSON and as a table.
type result struct {
	Scenario   string       `json:"scenario"`
	Started    time.Time    `json:"started"`
	Machine    machine      `json:"machine"`
	Server     string       `json:"server"`
	ServerPID  int          `json:"server_pid,omitempty"`
	Transport  string       `json:"transport"`
	Mechanism  string       `json:"mechanism"`
	Sessions   int          `json:"sessions"`
	Login      *loginResult `json:"login,omitempty"`
	FirstLogin *loginResult `json:"first_login,omitempty"` // --relogin: the first wave
	Relogin    bool         `json:"relogin,omitempty"`
	TLSResume  bool         `json:"tls_resume,omitempty"`
	Idle       *idleResult  `json:"idle,omitempty"`
	Rooms      int          `json:"rooms,omitempty"`
	RoomSize   int          `json:"room_size,omitempty"`
	Steps      []stepResult `json:"steps,omitempty"`
	Saturation float64      `json:"saturation_rate,omitempty"`
	OK         bool         `json:"ok"`
	Error      string       `json:"error,omitempty"`
}

type machine struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
}

type loginResult struct {
	Attempted   int     `json:"attempted"`
	Failed      int     `json:"failed"`
	Seconds     float64 `json:"seconds"`
	Rate        float64 `json:"per_second"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	Maxms       float64 `json:"max_ms"`
	ServerCPUms float64 `json:"server_cpu_ms_per_login,omitempty"`
	LoadCPUms   float64 `json:"load_cpu_ms_per_login"`
}

type idleResult struct {
	RSSBeforeKiB  int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB   int64   `json:"rss_after_kib,omitempty"`
	KiBPerSession float64 `json:"kib_per_session,omitempty"`
	HeldSeconds   float64 `json:"held_seconds"`
	Dropped       int     `json:"dropped"`
}

// run executes one load run and returns the exit status.
func run(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeoutCause(ctx, o.duration, errDurationCap)
	defer cancel()
	l := &loader{o: o, out: stdout, log: stderr, epoch: time.Now()}
	l.wall0 = l.epoch.UnixNano()
	l.res = &result{
		Scenario:  o.scenario,
		Started:   l.epoch.UTC().Truncate(time.Second),
		Machine:   machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH},
		Server:    o.resolved,
		ServerPID: o.serverPID,
		Transport: transportName(o),
		Mechanism: o.mechanism,
		Sessions:  o.sessions,
		Relogin:   o.relogin,
		TLSResume: o.tlsResume,
	}
	if o.scenario != "idle" {
		l.tr = newTraffic(l)
	}
	code := l.run(ctx)
	l.res.OK = code == 0
	l.printTable()
	if o.jsonPath != "" {
		b, _ := json.MarshalIndent(l.res, "", "  ")
		if err := os.WriteFile(o.jsonPath, append(b, '\n'), 0o644); err != nil {
			l.logf("error: --json: %v", err)
			return 1
		}
	}
	return code
}

func (l *loader) run(ctx context.Context) int {
	o := l.o
	fmt.Fprintf(l.out, "metronome-load %s: %d sessions to %s (%s, %s)\n", o.scenario, o.sessions, o.resolved, l.res.Transport, o.mechanism)
	var rssBefore int64
	if o.scenario == "idle" && o.serverPID > 0 {
		var err error
		if rssBefore, err = procRSS(o.serverPID); err != nil {
			return l.fail("--server-pid: %v", err)
		}
	}
	if o.relogin {
		l.scram = make([]*scram.Client, o.sessions)
	}
	if o.tlsResume {
		l.tlsCache = tls.NewLRUClientSessionCache(o.sessions)
	}
	if o.transport != transportTCP {
		l.httpTr = newHTTPTransport(o, l.tlsCache)
		l.hc = &http.Client{Transport: l.httpTr}
		defer l.httpTr.CloseIdleConnections()
	}
	failed := l.loginAll(ctx)
	defer l.closeAll()
	if o.relogin && failed == 0 && ctx.Err() == nil {
		l.res.FirstLogin = l.res.Login
		lr := l.res.Login
		fmt.Fprintf(l.out, "UP1 sessions=%d elapsed=%.3fs rate=%.1f/s p50=%.2fms p99=%.2fms (first wave)\n", o.sessions, lr.Seconds, lr.Rate, lr.P50ms, lr.P99ms)
		l.closeAll()
		sleepUntil(ctx, time.Now().Add(2*time.Second)) // let the server end the old sessions
		failed = l.loginAll(ctx)
	}
	lr := l.res.Login
	if failed > 0 || ctx.Err() != nil {
		fmt.Fprintf(l.out, "FAILED sessions=%d up=%d failed=%d elapsed=%.3fs%s\n", o.sessions, o.sessions-failed, failed,
			lr.Seconds, causeSuffix(ctx))
		return l.fail("%d logins failed%s", failed, causeSuffix(ctx))
	}
	fmt.Fprintf(l.out, "UP sessions=%d elapsed=%.3fs rate=%.1f/s p50=%.2fms p99=%.2fms\n", o.sessions, lr.Seconds, lr.Rate, lr.P50ms, lr.P99ms)
	if o.scenario == "idle" {
		if o.transport == transportBOSH {
			// Keep one connection per session, the one its held request
			// is on, as once the server's keep-alive timeout has closed
			// the other: that one would count in its memory per session.
			for _, c := range l.client {
				c.w.(*boshWire).closeIdle()
			}
		}
		return l.holdIdle(ctx, rssBefore)
	}
	return l.tr.run(ctx)
}

// fail records why the run failed and returns exit status 1.
func (l *loader) fail(format string, args ...any) int {
	l.res.Error = fmt.Sprintf(format, args...)
	return 1
}

func causeSuffix(ctx context.Context) string {
	if ctx.Err() == nil {
		return ""
	}
	return " (" + context.Cause(ctx).Error() + ")"
}

func (l *loader) logf(format string, args ...any) {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	fmt.Fprintf(l.log, format+"\n", args...)
}

// logErr prints the first errors and counts the others.
func (l *loader) logErr(format string, args ...any) {
	l.logMu.Lock()
	l.errs++
	n := l.errs
	l.logMu.Unlock()
	if n <= maxErrorLines {
		l.logf("error: "+format, args...)
	} else if n == maxErrorLines+1 {
		l.logf("error: (further errors are only counted)")
	}
}

// sleepUntil waits until t or until ctx ends (false).
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// loginAll logs every session in, at most o.concurrency at once and at
// o.connectRate per second, fills l.res.Login and returns the number of
// failures (sessions not attempted because ctx ended count as failed).
func (l *loader) loginAll(ctx context.Context) int {
	o := l.o
	l.client = make([]*client, o.sessions)
	p := loginParams{transport: o.transport, url: o.url, hc: l.hc, httpTr: l.httpTr, addr: o.resolved, directTLS: o.directTLS, domain: o.domain, password: o.password,
		resource: o.resource, mechanism: o.mechanism, timeout: o.loginTimeout, tlsCache: l.tlsCache}
	var h handlers
	if l.tr != nil {
		h = l.tr.handlers()
	}
	var up, failed atomic.Int64
	stopProgress := l.progressLoop(func() string {
		return fmt.Sprintf("logging in: %d/%d up, %d failed", up.Load(), o.sessions, failed.Load())
	})
	defer stopProgress()
	lat := make([]time.Duration, o.sessions)
	sem := make(chan struct{}, o.concurrency)
	var wg sync.WaitGroup
	cpu := startCPU(o.serverPID)
	start := time.Now()
	attempted := 0
	for i := range o.sessions {
		if o.connectRate > 0 && !sleepUntil(ctx, start.Add(time.Duration(float64(i)/o.connectRate*float64(time.Second)))) {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		attempted++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			pi := p
			pi.local = o.account(i)
			if l.scram != nil {
				if l.scram[i] == nil {
					cl, err := newSCRAM(o.mechanism, pi.local, o.password)
					if err != nil {
						failed.Add(1)
						l.logErr("login %d: %v", i, err)
						return
					}
					l.scram[i] = cl
				}
				pi.scram = l.scram[i]
			}
			t0 := time.Now()
			c, err := login(ctx, pi, i, h)
			lat[i] = time.Since(t0)
			if err != nil {
				failed.Add(1)
				l.logErr("login %d: %v", i, err)
				return
			}
			l.client[i] = c
			up.Add(1)
		}()
	}
	wg.Wait()
	el := time.Since(start)
	server, self := cpu.stop()
	ok := int(up.Load())
	okLat := make([]time.Duration, 0, ok)
	for i, c := range l.client {
		if c != nil {
			okLat = append(okLat, lat[i])
		}
	}
	slices.Sort(okLat)
	lr := &loginResult{Attempted: attempted, Failed: int(failed.Load()), Seconds: round3(el.Seconds()),
		Rate: round1(float64(ok) / el.Seconds()), P50ms: ms(percentile(okLat, 0.5)), P99ms: ms(percentile(okLat, 0.99))}
	if len(okLat) > 0 {
		lr.Maxms = ms(okLat[len(okLat)-1])
		lr.LoadCPUms = round3(float64(self) / float64(time.Millisecond) / float64(len(okLat)))
		if server >= 0 {
			lr.ServerCPUms = round3(float64(server) / float64(time.Millisecond) / float64(len(okLat)))
		}
	}
	l.res.Login = lr
	return int(failed.Load()) + o.sessions - attempted
}

// progressLoop prints status() every o.progress until the returned
// function is called.
func (l *loader) progressLoop(status func() string) (stop func()) {
	if l.o.progress <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(l.o.progress)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				l.logf("%s", status())
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// dropped counts the sessions whose stream ended without us closing it.
func (l *loader) dropped() int {
	n := 0
	for _, c := range l.client {
		if c == nil {
			continue
		}
		select {
		case <-c.done:
			select {
			case <-c.closing:
			default:
				n++
				l.logErr("session %d (%s) dropped: %v", c.idx, c.jid, c.err)
			}
		default:
		}
	}
	return n
}

// holdIdle keeps the sessions open for o.hold, or until a signal or the
// duration cap, reads the server's memory after o.settle, then checks
// that no session was dropped.
func (l *loader) holdIdle(ctx context.Context, rssBefore int64) int {
	o := l.o
	ir := &idleResult{RSSBeforeKiB: rssBefore}
	l.res.Idle = ir
	start := time.Now()
	end := "hold time elapsed"
	if o.serverPID > 0 {
		if !sleepUntil(ctx, start.Add(min(o.settle, o.hold))) {
			end = context.Cause(ctx).Error()
		}
		after, err := procRSS(o.serverPID)
		if err != nil {
			return l.fail("--server-pid: %v", err)
		}
		ir.RSSAfterKiB = after
		ir.KiBPerSession = round1(float64(after-rssBefore) / float64(len(l.client)))
		fmt.Fprintf(l.out, "MEMORY rss_before=%dKiB rss_after=%dKiB per_session=%.1fKiB\n", rssBefore, after, ir.KiBPerSession)
	}
	if ctx.Err() == nil && !sleepUntil(ctx, start.Add(o.hold)) {
		end = context.Cause(ctx).Error()
	}
	ir.HeldSeconds = round1(time.Since(start).Seconds())
	if ir.Dropped = l.dropped(); ir.Dropped > 0 {
		fmt.Fprintf(l.out, "FAILED %d sessions dropped while idle (%s)\n", ir.Dropped, end)
		return l.fail("%d sessions dropped while idle", ir.Dropped)
	}
	fmt.Fprintf(l.out, "DONE %d sessions held idle, none dropped (%s)\n", len(l.client), end)
	return 0
}

// closeAll ends every stream, in parallel. Closed clients stay in
// l.client (dropped() skips them) until the next loginAll replaces them.
func (l *loader) closeAll() {
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for _, c := range l.client {
		if c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.close(2 * time.Second)
		}()
	}
	wg.Wait()
}

// transportName describes the transport for the results.
func transportName(o *options) string {
	switch o.transport {
	case transportWebSocket:
		if strings.HasPrefix(o.url, "wss:") {
			return "WebSocket over TLS"
		}
		return "WebSocket"
	case transportBOSH:
		if strings.HasPrefix(o.url, "https:") {
			return "BOSH over HTTPS"
		}
		return "BOSH over HTTP"
	}
	if o.directTLS {
		return "direct TLS"
	}
	return "STARTTLS"
}

// newHTTPTransport returns the HTTP transport of the websocket and bosh
// transports: HTTP/1.1 (WebSocket needs it; BOSH over HTTP/1.1 is one
// connection per pending request, as for browsers without HTTP/2),
// keep-alive, the server's certificate not verified (loopback, usually
// self-signed), SNI the XMPP domain. Each BOSH session clones it, with at
// most two connections (see boshWire).
func newHTTPTransport(o *options, cache tls.ClientSessionCache) *http.Transport {
	d := &net.Dialer{Timeout: o.loginTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:         d.DialContext,
		TLSClientConfig:     &tls.Config{ServerName: o.domain, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, ClientSessionCache: cache},
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // no HTTP/2
		TLSHandshakeTimeout: o.loginTimeout,
		DisableCompression:  true,
		IdleConnTimeout:     90 * time.Second,
	}
}

// now is the current time in Unix nanoseconds, on the monotonic clock
// (immune to wall-clock steps during the run).
func (l *loader) now() int64 { return l.wall0 + int64(time.Since(l.epoch)) }

// printTable writes the human-readable summary of the results.
func (l *loader) printTable() {
	r, w := l.res, l.out
	fmt.Fprintf(w, "\n%s scenario, %d sessions, %s, %s, %d CPUs, %s\n", r.Scenario, r.Sessions, r.Transport, r.Mechanism, r.Machine.CPUs, r.Machine.GoVersion)
	if lr := r.FirstLogin; lr != nil {
		fmt.Fprintf(w, "  first logins: %d in %.2fs = %.0f/s, latency p50 %.2f ms, p99 %.2f ms; server CPU %.3f ms/login; load CPU %.3f ms/login\n",
			lr.Attempted-lr.Failed, lr.Seconds, lr.Rate, lr.P50ms, lr.P99ms, lr.ServerCPUms, lr.LoadCPUms)
	}
	if lr := r.Login; lr != nil {
		if r.FirstLogin != nil {
			fmt.Fprintf(w, "  again, with the salted passwords kept%s:\n", map[bool]string{true: " and TLS sessions resumed"}[r.TLSResume])
		}
		fmt.Fprintf(w, "  logins: %d in %.2fs = %.0f/s, latency p50 %.2f ms, p99 %.2f ms, max %.2f ms",
			lr.Attempted-lr.Failed, lr.Seconds, lr.Rate, lr.P50ms, lr.P99ms, lr.Maxms)
		if lr.ServerCPUms > 0 {
			fmt.Fprintf(w, "; server CPU %.3f ms/login", lr.ServerCPUms)
		}
		fmt.Fprintf(w, "; load CPU %.3f ms/login", lr.LoadCPUms)
		if lr.Failed > 0 {
			fmt.Fprintf(w, "; %d FAILED", lr.Failed)
		}
		fmt.Fprintln(w)
	}
	if ir := r.Idle; ir != nil && ir.RSSAfterKiB > 0 {
		fmt.Fprintf(w, "  memory: server VmRSS %d KiB before, %d KiB with the sessions: %.1f KiB per idle session\n",
			ir.RSSBeforeKiB, ir.RSSAfterKiB, ir.KiBPerSession)
	}
	if r.Rooms > 0 {
		fmt.Fprintf(w, "  rooms: %d of %d occupants\n", r.Rooms, r.RoomSize)
	}
	if len(r.Steps) > 0 {
		per := "msg"
		if r.Scenario == "muc" {
			per = "delivery"
		}
		fmt.Fprintf(w, "  %9s %10s %11s %8s %8s %8s %8s %6s %14s %14s  %s\n", "offered/s", "sent", "delivered/s", "p50 ms", "p99 ms", "p999 ms", "max ms", "lost",
			"srv CPU s/1k"+per[:1], "load CPU s/1k"+per[:1], "")
		for _, s := range r.Steps {
			srv := "-"
			if s.ServerCPUPer1000 >= 0 {
				srv = fmt.Sprintf("%.4f", s.ServerCPUPer1000)
			}
			mark := "sustained"
			if !s.Sustained {
				mark = "NOT sustained"
			}
			fmt.Fprintf(w, "  %9.0f %10d %11.0f %8.2f %8.2f %8.2f %8.2f %6d %14s %14.4f  %s\n", s.OfferedRate, s.Sent, s.DeliveredRate,
				s.P50ms, s.P99ms, s.P999ms, s.Maxms, s.Lost, srv, s.LoadCPUPer1000, mark)
		}
		fmt.Fprintf(w, "  (CPU seconds per 1,000 %s; latency from scheduled send to receipt)\n", map[string]string{"msg": "messages", "delivery": "deliveries"}[per])
		if r.Saturation > 0 {
			fmt.Fprintf(w, "  highest sustained rate (p99 <= %s, no loss): %.0f msg/s\n", l.o.p99Limit, r.Saturation)
		}
	}
	status := "OK"
	if !r.OK {
		status = "FAILED: " + r.Error
	}
	fmt.Fprintf(w, "RESULT %s\n", status)
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round1(f float64) float64 { return math.Round(f*10) / 10 }
func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
func round4(f float64) float64 { return math.Round(f*10000) / 10000 }

// percentile returns the nearest-rank q-quantile of sorted.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
