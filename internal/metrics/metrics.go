// Package metrics holds the server's process-wide metrics and writes them in
// the Prometheus text exposition format (version 0.0.4), which OpenMetrics
// scrapers also read.
//
// It is a small hand-written substitute for prometheus/client_golang: a few
// counters, gauges and histograms kept in atomics, so that the hot paths
// (routing, stanza counting) pay one atomic add and no allocation. Values
// are process-wide: several servers in one process (tests) share them.
//
// The core reports through the functions of core.go (StanzaIn, StanzaOut,
// ObserveRoute, AuthFailed, SessionOpened, SessionClosed); storage latency
// is measured by wrapping the driver (MeasureDriver); HTTP by the HTTP
// server. The package does not do: summaries, exemplars, timestamps, or
// per-user labels (unbounded cardinality).
package metrics

import (
	"bufio"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Counter is a monotonically increasing count.
type Counter struct{ v atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value returns the count.
func (c *Counter) Value() uint64 { return c.v.Load() }

// Gauge is a value that goes up and down.
type Gauge struct{ v atomic.Int64 }

// Inc adds one.
func (g *Gauge) Inc() { g.v.Add(1) }

// Dec subtracts one.
func (g *Gauge) Dec() { g.v.Add(-1) }

// Set sets the value.
func (g *Gauge) Set(n int64) { g.v.Store(n) }

// Value returns the value.
func (g *Gauge) Value() int64 { return g.v.Load() }

// Histogram counts durations into fixed buckets (cumulative on output).
type Histogram struct {
	bounds []time.Duration // upper bounds, ascending
	counts []atomic.Uint64 // len(bounds)+1; the last is +Inf
	sum    atomic.Int64    // nanoseconds
}

// DefaultBuckets suit in-process operations: 50 µs to 5 s.
var DefaultBuckets = []time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// NewHistogram returns a histogram with the given upper bounds (sorted).
func NewHistogram(bounds []time.Duration) *Histogram {
	b := slices.Clone(bounds)
	slices.Sort(b)
	return &Histogram{bounds: b, counts: make([]atomic.Uint64, len(b)+1)}
}

// Observe records one duration. It does not allocate.
func (h *Histogram) Observe(d time.Duration) {
	i := 0
	for i < len(h.bounds) && d > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// Kind is the type line of a metric family.
type Kind string

// Metric family types.
const (
	KindCounter   Kind = "counter"
	KindGauge     Kind = "gauge"
	KindHistogram Kind = "histogram"
)

// Family is a named metric with labelled series.
type Family struct {
	Name, Help string
	Kind       Kind
	Labels     []string

	mu     sync.RWMutex
	series map[string]*series // by joined label values
}

type series struct {
	values []string
	c      *Counter
	g      *Gauge
	h      *Histogram
	fn     func() float64 // a value read at scrape time
}

func newFamily(name, help string, kind Kind, labels ...string) *Family {
	return &Family{Name: name, Help: help, Kind: kind, Labels: labels, series: map[string]*series{}}
}

func (f *Family) get(values []string) *series {
	key := strings.Join(values, "\xff")
	f.mu.RLock()
	s := f.series[key]
	f.mu.RUnlock()
	if s != nil {
		return s
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s = f.series[key]; s == nil {
		s = &series{values: slices.Clone(values)}
		switch f.Kind {
		case KindCounter:
			s.c = new(Counter)
		case KindGauge:
			s.g = new(Gauge)
		case KindHistogram:
			s.h = NewHistogram(DefaultBuckets)
		}
		f.series[key] = s
	}
	return s
}

// Counter returns the counter of the given label values (created on first use).
func (f *Family) Counter(values ...string) *Counter { return f.get(values).c }

// Gauge returns the gauge of the given label values.
func (f *Family) Gauge(values ...string) *Gauge { return f.get(values).g }

// Histogram returns the histogram of the given label values.
func (f *Family) Histogram(values ...string) *Histogram { return f.get(values).h }

// attach adds a pre-built series (package-level fast-path metrics).
func (f *Family) attach(s *series) *Family {
	f.mu.Lock()
	f.series[strings.Join(s.values, "\xff")] = s
	f.mu.Unlock()
	return f
}

// Registry is an ordered set of families.
type Registry struct {
	mu       sync.Mutex
	families []*Family
}

// Default is the process-wide registry the server exposes.
var Default = &Registry{}

// Add registers f and returns it.
func (r *Registry) Add(f *Family) *Family {
	r.mu.Lock()
	r.families = append(r.families, f)
	r.mu.Unlock()
	return f
}

// NewCounter registers a counter family.
func (r *Registry) NewCounter(name, help string, labels ...string) *Family {
	return r.Add(newFamily(name, help, KindCounter, labels...))
}

// NewGauge registers a gauge family.
func (r *Registry) NewGauge(name, help string, labels ...string) *Family {
	return r.Add(newFamily(name, help, KindGauge, labels...))
}

// NewHistogram registers a histogram family (durations, exposed in seconds).
func (r *Registry) NewHistogram(name, help string, labels ...string) *Family {
	return r.Add(newFamily(name, help, KindHistogram, labels...))
}

// NewGaugeFunc registers a gauge without labels whose value fn computes at
// scrape time.
func (r *Registry) NewGaugeFunc(name, help string, fn func() float64) *Family {
	return r.Add(newFamily(name, help, KindGauge).attach(&series{fn: fn}))
}

// ContentType is the media type of WriteText's output.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// WriteText writes every family in the text exposition format, series
// sorted by label values so that the output is stable.
func (r *Registry) WriteText(w io.Writer) error {
	r.mu.Lock()
	fams := slices.Clone(r.families)
	r.mu.Unlock()
	bw := bufio.NewWriter(w)
	for _, f := range fams {
		f.write(bw)
	}
	return bw.Flush()
}

func (f *Family) write(w *bufio.Writer) {
	f.mu.RLock()
	list := make([]*series, 0, len(f.series))
	for _, s := range f.series {
		list = append(list, s)
	}
	f.mu.RUnlock()
	sort.Slice(list, func(i, j int) bool { return slices.Compare(list[i].values, list[j].values) < 0 })
	w.WriteString("# HELP " + f.Name + " " + escapeHelp(f.Help) + "\n")
	w.WriteString("# TYPE " + f.Name + " " + string(f.Kind) + "\n")
	for _, s := range list {
		labels := f.labelString(s.values, "", "")
		switch {
		case s.fn != nil:
			writeSample(w, f.Name, labels, formatFloat(s.fn()))
		case s.c != nil:
			writeSample(w, f.Name, labels, strconv.FormatUint(s.c.Value(), 10))
		case s.g != nil:
			writeSample(w, f.Name, labels, strconv.FormatInt(s.g.Value(), 10))
		case s.h != nil:
			var cum uint64
			for i := range s.h.counts {
				cum += s.h.counts[i].Load()
				le := "+Inf"
				if i < len(s.h.bounds) {
					le = formatFloat(s.h.bounds[i].Seconds())
				}
				writeSample(w, f.Name+"_bucket", f.labelString(s.values, "le", le), strconv.FormatUint(cum, 10))
			}
			writeSample(w, f.Name+"_sum", labels, formatFloat(time.Duration(s.h.sum.Load()).Seconds()))
			writeSample(w, f.Name+"_count", labels, strconv.FormatUint(cum, 10))
		}
	}
}

func writeSample(w *bufio.Writer, name, labels, value string) {
	w.WriteString(name)
	w.WriteString(labels)
	w.WriteByte(' ')
	w.WriteString(value)
	w.WriteByte('\n')
}

// labelString renders {a="x",b="y"} plus an optional extra label.
func (f *Family) labelString(values []string, extraName, extraValue string) string {
	if len(f.Labels) == 0 && extraName == "" {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range f.Labels {
		if i > 0 {
			b.WriteByte(',')
		}
		v := ""
		if i < len(values) {
			v = values[i]
		}
		b.WriteString(l + `="` + escapeLabel(v) + `"`)
	}
	if extraName != "" {
		if len(f.Labels) > 0 {
			b.WriteByte(',')
		}
		b.WriteString(extraName + `="` + escapeLabel(extraValue) + `"`)
	}
	b.WriteByte('}')
	return b.String()
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
