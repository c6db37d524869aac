package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// maxErrorLines bounds the errors printed one by one.
const maxErrorLines = 10

type loader struct {
	o      *options
	out    io.Writer // results
	log    io.Writer // progress and errors
	logMu  sync.Mutex
	errs   int
	msgs   *msgStats // nil in idle mode
	epoch  time.Time // monotonic origin of the timestamps
	wall0  int64     // epoch in Unix nanoseconds
	pairs  int
	client []*client
	// jids are the bound JIDs by session index, published to the readers
	// once every session is up.
	jids atomic.Pointer[[]string]
}

// run executes one load run and returns the exit status.
func run(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeoutCause(ctx, o.duration, errDurationCap)
	defer cancel()
	l := &loader{o: o, out: stdout, log: stderr, epoch: time.Now()}
	l.wall0 = l.epoch.UnixNano()
	if o.messages > 0 {
		l.pairs = o.sessions / 2
		l.msgs = newMsgStats(o.messages)
		if o.sessions%2 == 1 {
			l.logf("note: %d sessions: the last one has no partner and stays idle", o.sessions)
		}
	}
	mode := "idle"
	if !o.idle {
		mode = fmt.Sprintf("%d messages at %g/s", o.messages, o.rate)
	}
	fmt.Fprintf(stdout, "metronome-load: %d sessions to %s (%s), %s\n", o.sessions, o.resolved, map[bool]string{false: "STARTTLS", true: "direct TLS"}[o.directTLS], mode)

	start := time.Now()
	failed := l.loginAll(ctx)
	defer l.closeAll()
	el := time.Since(start)
	up := o.sessions - failed
	if failed > 0 || ctx.Err() != nil {
		fmt.Fprintf(stdout, "FAILED sessions=%d up=%d failed=%d elapsed=%s%s\n", o.sessions, up, failed,
			el.Round(time.Millisecond), causeSuffix(ctx))
		return 1
	}
	fmt.Fprintf(stdout, "UP sessions=%d elapsed=%s rate=%.1f/s\n", up, el.Round(time.Millisecond), float64(up)/el.Seconds())
	if o.idle {
		return l.holdIdle(ctx)
	}
	return l.runMessages(ctx)
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
// o.connectRate per second, and returns the number of failures (sessions
// not attempted because ctx ended count as failed).
func (l *loader) loginAll(ctx context.Context) int {
	o := l.o
	l.client = make([]*client, o.sessions)
	p := loginParams{addr: o.resolved, directTLS: o.directTLS, domain: o.domain, password: o.password,
		resource: o.resource, timeout: o.loginTimeout}
	var onMessage func(*client, *stanza.Element)
	if l.msgs != nil {
		onMessage = l.onMessage
	}
	var up, failed atomic.Int64
	stopProgress := l.progressLoop(func() string {
		return fmt.Sprintf("logging in: %d/%d up, %d failed", up.Load(), o.sessions, failed.Load())
	})
	defer stopProgress()
	sem := make(chan struct{}, o.concurrency)
	var wg sync.WaitGroup
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
			c, err := login(ctx, pi, i, onMessage)
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
// duration cap, then checks that none was dropped.
func (l *loader) holdIdle(ctx context.Context) int {
	t := time.NewTimer(l.o.hold)
	defer t.Stop()
	end := "hold time elapsed"
	select {
	case <-t.C:
	case <-ctx.Done():
		end = context.Cause(ctx).Error()
	}
	if n := l.dropped(); n > 0 {
		fmt.Fprintf(l.out, "FAILED %d sessions dropped while idle (%s)\n", n, end)
		return 1
	}
	fmt.Fprintf(l.out, "DONE %d sessions held idle, none dropped (%s)\n", len(l.client), end)
	return 0
}

// closeAll ends every stream, in parallel.
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

// now is the current time in Unix nanoseconds, on the monotonic clock
// (immune to wall-clock steps during the run).
func (l *loader) now() int64 { return l.wall0 + int64(time.Since(l.epoch)) }

// sender returns the index of the session that sends message seq; its
// partner (index ^ 1) receives it.
func (l *loader) sender(seq int) int { return seq % (2 * l.pairs) }

// runMessages sends o.messages chat messages at o.rate per second, open
// loop, waits for the deliveries and reports.
func (l *loader) runMessages(ctx context.Context) int {
	o, st := l.o, l.msgs
	jids := make([]string, len(l.client))
	for i, c := range l.client {
		jids[i] = c.jid
	}
	l.jids.Store(&jids)
	stopProgress := l.progressLoop(func() string {
		d, b := st.counts()
		return fmt.Sprintf("messages: %d sent, %d delivered, %d bounced", st.sent.Load(), d, b)
	})
	defer stopProgress()
	interval := float64(time.Second) / o.rate
	start := time.Now()
	var maxLag time.Duration
	for seq := range o.messages {
		due := start.Add(time.Duration(float64(seq) * interval))
		// Sleep only when ahead by more than a timer's granularity; send
		// what is due in a burst otherwise.
		if d := time.Until(due); d > 200*time.Microsecond && !sleepUntil(ctx, due) {
			break
		}
		if ctx.Err() != nil {
			break
		}
		if lag := time.Since(due); lag > maxLag {
			maxLag = lag
		}
		s := l.sender(seq)
		from, to := l.client[s], l.client[s^1]
		// The timestamp is the scheduled send time: a sender that falls
		// behind shows up as latency, not as a lower offered rate.
		sent := l.wall0 + int64(due.Sub(l.epoch))
		if err := from.sendMessage(to.jid, seq, sent); err != nil {
			st.unsent.Add(1)
			l.logErr("send %d from %s: %v", seq, from.jid, err)
			continue
		}
		st.sent.Add(1)
	}
	sendTime := time.Since(start)
	drain := time.NewTimer(o.drain)
	defer drain.Stop()
	select {
	case <-st.all:
	case <-drain.C:
	case <-ctx.Done():
	}
	total := time.Since(start)
	stopProgress()
	return l.report(ctx, sendTime, total, maxLag)
}

// onMessage records a message received by c.
func (l *loader) onMessage(c *client, el *stanza.Element) {
	st, now := l.msgs, l.now()
	id := el.ID()
	seq, err := strconv.Atoi(strings.TrimPrefix(id, "m"))
	if !strings.HasPrefix(id, "m") || err != nil || seq < 0 || seq >= len(st.state) {
		st.unexpected.Add(1)
		l.logErr("%s received an unexpected message: %s", c.jid, el)
		return
	}
	if el.Type() == "error" {
		st.bounce(seq)
		l.logErr("message %d bounced: %s", seq, el)
		return
	}
	jids := l.jids.Load()
	if jids == nil {
		st.unexpected.Add(1)
		l.logErr("%s received a message before the first send: %s", c.jid, el)
		return
	}
	bseq, sent, ok := parseBody(el.ChildText("", "body"))
	s := l.sender(seq)
	if !ok || bseq != seq || c.idx != s^1 || el.From() != (*jids)[s] {
		st.misrouted.Add(1)
		l.logErr("message %d: expected from %s to session %d, got %s at session %d", seq, (*jids)[s], s^1, el, c.idx)
		return
	}
	if !st.deliver(seq, time.Duration(now-sent)) {
		st.duplicates.Add(1)
		l.logErr("message %d delivered twice", seq)
	}
}

// report prints the message statistics and returns the exit status.
func (l *loader) report(ctx context.Context, sendTime, total, maxLag time.Duration) int {
	st := l.msgs
	lat, delivered, bounced := st.result()
	sent := int(st.sent.Load())
	lost := l.o.messages - delivered
	w := l.out
	fmt.Fprintf(w, "sent %d of %d messages in %s: offered %.0f/s, achieved %.0f/s (sender at most %s behind schedule)\n",
		sent, l.o.messages, sendTime.Round(time.Millisecond), l.o.rate, float64(sent)/sendTime.Seconds(), maxLag.Round(time.Microsecond))
	fmt.Fprintf(w, "delivered %d (%.0f/s from first send to last delivery), lost %d (bounced %d, unsent %d), misrouted %d, duplicates %d, unexpected %d\n",
		delivered, float64(delivered)/total.Seconds(), lost, bounced, st.unsent.Load(), st.misrouted.Load(), st.duplicates.Load(), st.unexpected.Load())
	p := func(q float64) time.Duration { return percentile(lat, q) }
	if len(lat) > 0 {
		fmt.Fprintf(w, "latency: p50 %s, p90 %s, p99 %s, max %s (send scheduled → received)\n",
			fmtDur(p(0.50)), fmtDur(p(0.90)), fmtDur(p(0.99)), fmtDur(lat[len(lat)-1]))
	}
	dropped := l.dropped()
	ok := lost == 0 && st.misrouted.Load() == 0 && st.duplicates.Load() == 0 && st.unexpected.Load() == 0 && dropped == 0
	status := "OK"
	if !ok {
		status = "FAILED"
	}
	var maxLat time.Duration
	if len(lat) > 0 {
		maxLat = lat[len(lat)-1]
	}
	fmt.Fprintf(w, "RESULT %s sent=%d delivered=%d lost=%d misrouted=%d duplicates=%d dropped=%d rate=%.0f/s p50=%s p90=%s p99=%s max=%s%s\n",
		status, sent, delivered, lost, st.misrouted.Load(), st.duplicates.Load(), dropped,
		float64(delivered)/total.Seconds(), fmtDur(p(0.50)), fmtDur(p(0.90)), fmtDur(p(0.99)), fmtDur(maxLat), causeSuffix(ctx))
	if !ok {
		return 1
	}
	return 0
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

// percentile returns the nearest-rank q-quantile of sorted.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// msgStats tracks the fate of every message.
type msgStats struct {
	sent, unsent                      atomic.Int64
	misrouted, duplicates, unexpected atomic.Int64

	mu        sync.Mutex
	state     []uint8 // per sequence number: 0 pending, 1 delivered, 2 bounced
	lat       []time.Duration
	delivered int
	bounced   int
	all       chan struct{} // closed once every message is delivered or bounced
}

func newMsgStats(n int) *msgStats {
	return &msgStats{state: make([]uint8, n), lat: make([]time.Duration, 0, n), all: make(chan struct{})}
}

func (s *msgStats) settle() {
	if s.delivered+s.bounced == len(s.state) {
		close(s.all)
	}
}

// deliver records the delivery of seq; false if it was already settled.
func (s *msgStats) deliver(seq int, lat time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state[seq] != 0 {
		return false
	}
	s.state[seq] = 1
	s.delivered++
	s.lat = append(s.lat, lat)
	s.settle()
	return true
}

func (s *msgStats) bounce(seq int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state[seq] != 0 {
		return
	}
	s.state[seq] = 2
	s.bounced++
	s.settle()
}

func (s *msgStats) counts() (delivered, bounced int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered, s.bounced
}

// result returns the sorted latencies and the counts.
func (s *msgStats) result() ([]time.Duration, int, int) {
	s.mu.Lock()
	lat := slices.Clone(s.lat)
	d, b := s.delivered, s.bounced
	s.mu.Unlock()
	slices.Sort(lat)
	return lat, d, b
}
