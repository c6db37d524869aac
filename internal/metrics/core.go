package metrics

import (
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// The server's metrics. Families with a fixed, small label set keep their
// series in arrays so that the functions below are one atomic operation.

// Stanza kinds, as counted by StanzaIn and StanzaOut.
var stanzaKinds = [...]string{"message", "presence", "iq", "other"}

// Transports of client sessions, as counted by SessionOpened/SessionClosed.
var transports = [...]string{"tcp", "bosh", "websocket", "other"}

var (
	stanzasIn, stanzasOut [len(stanzaKinds)]Counter
	sessions              [len(transports)]Gauge
	sessionsTotal         [len(transports)]Counter
	authFailures          Counter
	routeLatency          = NewHistogram(DefaultBuckets)
	version               atomic.Pointer[string]
	started               atomic.Int64 // unix nanoseconds
	buildInfo             *Family
)

// Families exposed by the HTTP server and storage wrappers.
var (
	// HTTPRequests counts HTTP requests by route pattern, method and status class.
	HTTPRequests = Default.NewCounter("metronome_http_requests_total",
		"HTTP requests served, by route pattern, method and status class.", "route", "method", "code")
	// HTTPDuration is the time to serve HTTP requests, by route pattern.
	HTTPDuration = Default.NewHistogram("metronome_http_request_duration_seconds",
		"Time to serve an HTTP request (until the handler returned).", "route")
	// StorageDuration is the latency of storage calls, by store kind and operation.
	StorageDuration = Default.NewHistogram("metronome_storage_duration_seconds",
		"Latency of storage calls, by store kind (keyval, map, archive) and operation (read, write).", "kind", "op")
	// StorageErrors counts failed storage calls (not-found answers excluded).
	StorageErrors = Default.NewCounter("metronome_storage_errors_total",
		"Storage calls that failed (not counting not-found answers).", "kind", "op")
)

func init() {
	s := ""
	version.Store(&s)
	started.Store(time.Now().UnixNano())

	st := Default.NewCounter("metronome_stanzas_total",
		"Stanzas received from (in) and sent to (out) local sessions, by kind.", "direction", "kind")
	for i, k := range stanzaKinds {
		st.attach(&series{values: []string{"in", k}, c: &stanzasIn[i]})
		st.attach(&series{values: []string{"out", k}, c: &stanzasOut[i]})
	}
	ss := Default.NewGauge("metronome_sessions", "Bound client sessions, by transport.", "transport")
	so := Default.NewCounter("metronome_sessions_opened_total", "Client sessions bound since start, by transport.", "transport")
	for i, t := range transports {
		ss.attach(&series{values: []string{t}, g: &sessions[i]})
		so.attach(&series{values: []string{t}, c: &sessionsTotal[i]})
	}
	Default.NewCounter("metronome_auth_failures_total", "Failed client authentication attempts.").
		attach(&series{c: &authFailures})
	Default.NewHistogram("metronome_route_duration_seconds",
		"Time to route one stanza (from reception to delivery or hand-off).").
		attach(&series{h: routeLatency})
	buildInfo = Default.NewGauge("metronome_build_info", "Always 1; the version label names the running version.", "version").
		attach(&series{values: []string{""}, fn: func() float64 { return 1 }})
	Default.NewGaugeFunc("metronome_start_time_seconds", "When the server started (Unix time).", func() float64 {
		return float64(started.Load()) / 1e9
	})
	Default.NewGaugeFunc("go_goroutines", "Goroutines that currently exist.", func() float64 {
		return float64(runtime.NumGoroutine())
	})
	Default.NewGaugeFunc("go_heap_objects_bytes", "Bytes of live and not yet swept heap objects.", readRuntime("/memory/classes/heap/objects:bytes"))
	Default.NewGaugeFunc("go_memory_total_bytes", "All memory mapped by the Go runtime.", readRuntime("/memory/classes/total:bytes"))
}

func readRuntime(name string) func() float64 {
	return func() float64 {
		s := []metrics.Sample{{Name: name}}
		metrics.Read(s)
		if s[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return float64(s[0].Value.Uint64())
	}
}

// SetBuildInfo records the running version and start time.
func SetBuildInfo(v string, start time.Time) {
	version.Store(&v)
	started.Store(start.UnixNano())
	buildInfo.mu.Lock()
	buildInfo.series = map[string]*series{v: {values: []string{v}, fn: func() float64 { return 1 }}}
	buildInfo.mu.Unlock()
}

// Version is the version given to SetBuildInfo.
func Version() string { return *version.Load() }

func kindIndex(kind string) int {
	switch kind {
	case "message":
		return 0
	case "presence":
		return 1
	case "iq":
		return 2
	}
	return 3
}

func transportIndex(t string) int {
	switch t {
	case "tcp", "":
		return 0
	case "bosh":
		return 1
	case "websocket":
		return 2
	}
	return 3
}

// StanzaIn counts a stanza received from a local client session; kind is
// the element name (message, presence, iq). No allocation.
func StanzaIn(kind string) { stanzasIn[kindIndex(kind)].Inc() }

// StanzaOut counts a stanza written to a local client session.
func StanzaOut(kind string) { stanzasOut[kindIndex(kind)].Inc() }

// ObserveRoute records how long routing one stanza took.
func ObserveRoute(d time.Duration) { routeLatency.Observe(d) }

// AuthFailed counts a failed client authentication attempt.
func AuthFailed() { authFailures.Inc() }

// SessionOpened counts a bound session of a transport ("tcp", "bosh",
// "websocket"; "" is tcp).
func SessionOpened(transport string) {
	i := transportIndex(transport)
	sessions[i].Inc()
	sessionsTotal[i].Inc()
}

// SessionClosed counts a bound session gone.
func SessionClosed(transport string) { sessions[transportIndex(transport)].Dec() }

// Snapshot is a summary of the main metrics for the admin API.
type Snapshot struct {
	Sessions       map[string]int64  `json:"sessions"`
	SessionsOpened map[string]uint64 `json:"sessions_opened"`
	StanzasIn      map[string]uint64 `json:"stanzas_in"`
	StanzasOut     map[string]uint64 `json:"stanzas_out"`
	AuthFailures   uint64            `json:"auth_failures"`
	Routed         uint64            `json:"routed"`
	HTTPRequests   uint64            `json:"http_requests"`
}

// Take returns the current values.
func Take() Snapshot {
	s := Snapshot{Sessions: map[string]int64{}, SessionsOpened: map[string]uint64{},
		StanzasIn: map[string]uint64{}, StanzasOut: map[string]uint64{}}
	for i, t := range transports {
		s.Sessions[t] = sessions[i].Value()
		s.SessionsOpened[t] = sessionsTotal[i].Value()
	}
	for i, k := range stanzaKinds {
		s.StanzasIn[k] = stanzasIn[i].Value()
		s.StanzasOut[k] = stanzasOut[i].Value()
	}
	s.AuthFailures = authFailures.Value()
	s.Routed = routeLatency.Count()
	HTTPRequests.mu.RLock()
	for _, se := range HTTPRequests.series {
		s.HTTPRequests += se.c.Value()
	}
	HTTPRequests.mu.RUnlock()
	return s
}
