package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// handlers are the callbacks of a client's reader goroutine.
type handlers struct {
	message  func(*client, *stanza.Element)
	presence func(*client, *stanza.Element)
}

// stepResult reports one offered rate of the chat or muc scenario. In the
// muc scenario, delivered, lost, the rates and the CPU costs count
// deliveries (one message reaches every occupant).
type stepResult struct {
	OfferedRate      float64 `json:"offered_rate"`      // messages per second
	Seconds          float64 `json:"seconds"`           // first send to last delivery
	Sent             int     `json:"sent"`              // messages
	Expected         int     `json:"expected"`          // deliveries
	Delivered        int     `json:"delivered"`         // within the step and its drain
	Lost             int     `json:"lost"`              // not delivered within the step and its drain
	NeverDelivered   int     `json:"never_delivered"`   // not delivered by the end of the run
	Duplicates       int     `json:"duplicates"`        //
	Misrouted        int     `json:"misrouted"`         //
	Bounced          int     `json:"bounced"`           //
	DeliveredRate    float64 `json:"delivered_per_s"`   //
	P50ms            float64 `json:"p50_ms"`            //
	P99ms            float64 `json:"p99_ms"`            //
	P999ms           float64 `json:"p999_ms"`           //
	Maxms            float64 `json:"max_ms"`            //
	SenderLagms      float64 `json:"sender_max_lag_ms"` // how far the load tool's sender fell behind schedule
	ServerCPU        float64 `json:"server_cpu_s"`      // -1: not measured
	ServerCPUPer1000 float64 `json:"server_cpu_s_per_1000"`
	LoadCPU          float64 `json:"load_cpu_s"`
	LoadCPUPer1000   float64 `json:"load_cpu_s_per_1000"`
	LoadBound        bool    `json:"load_bound"` // the load tool used all its CPUs: the figures measure it, not the server
	Sustained        bool    `json:"sustained"`  // no loss and p99 within --p99-limit
}

// step is the state of one offered rate.
type step struct {
	rate   float64
	base   int // sequence number of the first message
	n      int // messages
	k      int // deliveries per message
	sender []int32
	target []int32 // chat: the recipient
	got    []atomic.Uint64

	delivered, dup, misrouted, bounced atomic.Int64
	last                               atomic.Int64 // time of the last delivery (loader.now)

	latMu sync.Mutex
	lat   []time.Duration
	open  bool // latencies are still recorded

	all     chan struct{} // closed when every delivery arrived
	allOnce sync.Once
}

// traffic runs the chat and muc scenarios.
type traffic struct {
	l     *loader
	muc   bool
	steps atomic.Pointer[[]*step] // every step so far, by base
	jids  []string                // bound JIDs by session index, set before the first step
	late  atomic.Int64            // deliveries of a closed step
	stray atomic.Int64            // messages that belong to no step

	// muc
	rooms  []string // room bare JIDs
	roomOf []int32  // session → room, -1 for none
	posOf  []uint8  // session → position in its room
	joined []chan *stanza.Element
}

func newTraffic(l *loader) *traffic {
	t := &traffic{l: l, muc: l.o.scenario == "muc"}
	t.steps.Store(&[]*step{})
	if t.muc {
		t.joined = make([]chan *stanza.Element, l.o.sessions)
		for i := range t.joined {
			t.joined[i] = make(chan *stanza.Element, 1)
		}
	}
	return t
}

func (t *traffic) handlers() handlers {
	h := handlers{message: t.onMessage}
	if t.muc {
		h.presence = t.onPresence
	}
	return h
}

// run sends the steps and reports; it returns the exit status.
func (t *traffic) run(ctx context.Context) int {
	l, o := t.l, t.l.o
	t.jids = make([]string, len(l.client))
	for i, c := range l.client {
		t.jids[i] = c.jid
	}
	if t.muc {
		if err := t.joinRooms(ctx); err != nil {
			return l.fail("joining rooms: %v", err)
		}
	}
	rng := rand.New(rand.NewPCG(o.seed, o.seed^0x9e3779b97f4a7c15))
	seq := 0
	best := 0.0
	rates := slices.Clone(o.rates)
	for i := 0; i < len(rates) && ctx.Err() == nil; i++ {
		st := t.newStep(rates[i], seq, rng)
		seq += st.n
		r := t.runStep(ctx, st)
		l.res.Steps = append(l.res.Steps, r)
		if r.Sustained && r.OfferedRate > best {
			best = r.OfferedRate
		}
		if o.saturate && i == len(rates)-1 && r.Sustained && !r.LoadBound && rates[i]*1.5 <= o.maxRate {
			rates = append(rates, rates[i]*1.5)
		}
	}
	if o.saturate {
		l.res.Saturation = best
	}
	// Whatever is still missing gets one more drain period.
	if t.missing() > 0 {
		sleepUntil(ctx, time.Now().Add(o.drain))
	}
	failed := ""
	for i, st := range *t.steps.Load() {
		r := &l.res.Steps[i]
		r.NeverDelivered = st.n*st.k - int(st.delivered.Load())
		r.Duplicates, r.Misrouted = int(st.dup.Load()), int(st.misrouted.Load())
		listed := i < len(o.rates)
		switch {
		case r.NeverDelivered > 0 || r.Duplicates > 0 || r.Misrouted > 0:
			failed = fmt.Sprintf("offered %.0f/s: %d never delivered, %d duplicates, %d misrouted", r.OfferedRate, r.NeverDelivered, r.Duplicates, r.Misrouted)
		case listed && r.Lost > 0 && !o.saturate:
			failed = fmt.Sprintf("offered %.0f/s: %d deliveries late beyond --drain", r.OfferedRate, r.Lost)
		}
	}
	if n := t.stray.Load(); n > 0 && failed == "" {
		failed = fmt.Sprintf("%d unexpected messages", n)
	}
	if n := l.dropped(); n > 0 && failed == "" {
		failed = fmt.Sprintf("%d sessions dropped", n)
	}
	if ctx.Err() != nil && failed == "" {
		failed = context.Cause(ctx).Error()
	}
	if failed != "" {
		return l.fail("%s", failed)
	}
	return 0
}

// missing counts the deliveries still expected over all steps.
func (t *traffic) missing() int {
	n := 0
	for _, st := range *t.steps.Load() {
		n += st.n*st.k - int(st.delivered.Load())
	}
	return n
}

// newStep draws the senders and recipients of the messages of one step.
func (t *traffic) newStep(rate float64, base int, rng *rand.Rand) *step {
	o := t.l.o
	n := max(int(rate*o.step.Seconds()), 1)
	st := &step{rate: rate, base: base, n: n, k: 1, sender: make([]int32, n), got: make([]atomic.Uint64, n),
		all: make(chan struct{}), open: true}
	if t.muc {
		st.k = o.roomSize
		members := len(t.rooms) * o.roomSize
		for i := range st.sender {
			st.sender[i] = int32(rng.IntN(members))
		}
	} else {
		st.target = make([]int32, n)
		s := len(t.l.client)
		for i := range st.sender {
			a := rng.IntN(s)
			b := rng.IntN(s - 1)
			if b >= a {
				b++
			}
			st.sender[i], st.target[i] = int32(a), int32(b)
		}
	}
	st.lat = make([]time.Duration, 0, n*st.k)
	steps := append(slices.Clone(*t.steps.Load()), st)
	t.steps.Store(&steps)
	return st
}

// runStep sends the messages of st at its rate, open loop, waits for the
// deliveries and measures.
func (t *traffic) runStep(ctx context.Context, st *step) stepResult {
	l, o := t.l, t.l.o
	stopProgress := l.progressLoop(func() string {
		return fmt.Sprintf("offered %.0f/s: %d of %d deliveries", st.rate, st.delivered.Load(), st.n*st.k)
	})
	defer stopProgress()
	interval := float64(time.Second) / st.rate
	typ := "chat"
	if t.muc {
		typ = "groupchat"
	}
	cpu := startCPU(o.serverPID)
	start := time.Now()
	var maxLag time.Duration
	sent := 0
	for i := range st.n {
		due := start.Add(time.Duration(float64(i) * interval))
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
		from := l.client[st.sender[i]]
		to := ""
		if t.muc {
			to = t.rooms[t.roomOf[st.sender[i]]]
		} else {
			to = t.jids[st.target[i]]
		}
		// The timestamp is the scheduled send time: a sender that falls
		// behind shows up as latency, not as a lower offered rate.
		if err := from.sendMessage(to, typ, st.base+i, l.wall0+int64(due.Sub(l.epoch))); err != nil {
			l.logErr("send %d from %s: %v", st.base+i, from.jid, err)
			continue
		}
		sent++
	}
	drain := time.NewTimer(o.drain)
	select {
	case <-st.all:
	case <-drain.C:
	case <-ctx.Done():
	}
	drain.Stop()
	wall := time.Since(start)
	server, self := cpu.stop()
	st.latMu.Lock()
	st.open = false
	lat := st.lat
	st.latMu.Unlock()
	slices.Sort(lat)

	expected := st.n * st.k
	delivered := len(lat)
	r := stepResult{OfferedRate: st.rate, Sent: sent, Expected: expected, Delivered: delivered, Lost: expected - delivered,
		Bounced: int(st.bounced.Load()), SenderLagms: ms(maxLag), ServerCPU: -1, ServerCPUPer1000: -1,
		LoadCPU: round3(self.Seconds()), P50ms: ms(percentile(lat, 0.5)), P99ms: ms(percentile(lat, 0.99)),
		P999ms: ms(percentile(lat, 0.999))}
	if delivered > 0 {
		r.Maxms = ms(lat[delivered-1])
		span := time.Duration(st.last.Load()-l.wall0) - start.Sub(l.epoch)
		r.Seconds = round3(span.Seconds())
		r.DeliveredRate = round1(float64(delivered) / span.Seconds())
		r.LoadCPUPer1000 = round4(self.Seconds() / float64(delivered) * 1000)
		if server >= 0 {
			r.ServerCPU = round3(server.Seconds())
			r.ServerCPUPer1000 = round4(server.Seconds() / float64(delivered) * 1000)
		}
	}
	r.LoadBound = self.Seconds() > 0.9*wall.Seconds()*float64(runtime.NumCPU())
	r.Sustained = r.Lost == 0 && st.dup.Load() == 0 && st.misrouted.Load() == 0 && percentile(lat, 0.99) <= o.p99Limit
	return r
}

// stepOf finds the step of sequence number seq.
func (t *traffic) stepOf(seq int) *step {
	steps := *t.steps.Load()
	i, _ := slices.BinarySearchFunc(steps, seq, func(s *step, seq int) int {
		switch {
		case seq < s.base:
			return 1
		case seq >= s.base+s.n:
			return -1
		}
		return 0
	})
	if i < len(steps) && seq >= steps[i].base && seq < steps[i].base+steps[i].n {
		return steps[i]
	}
	return nil
}

// onMessage records a message received by c.
func (t *traffic) onMessage(c *client, el *stanza.Element) {
	l := t.l
	now := l.now()
	if el.Type() == "error" {
		seq, err := strconv.Atoi(strings.TrimPrefix(el.ID(), "m"))
		if st := t.stepOf(seq); err == nil && st != nil {
			st.bounced.Add(1)
		} else {
			t.stray.Add(1)
		}
		l.logErr("%s received an error: %s", c.jid, el)
		return
	}
	body := el.ChildText("", "body")
	if body == "" && t.muc {
		return // room subject and the like
	}
	seq, sent, ok := parseBody(body)
	var st *step
	if ok {
		st = t.stepOf(seq)
	}
	if st == nil {
		t.stray.Add(1)
		l.logErr("%s received an unexpected message: %s", c.jid, el)
		return
	}
	i := seq - st.base
	s := st.sender[i]
	var bit uint64 = 1
	if t.muc {
		if t.roomOf[c.idx] != t.roomOf[s] || el.Type() != "groupchat" {
			st.misrouted.Add(1)
			l.logErr("message %d from session %d reached session %d in another room: %s", seq, s, c.idx, el)
			return
		}
		bit <<= t.posOf[c.idx]
	} else if c.idx != int(st.target[i]) || el.From() != t.jids[s] {
		st.misrouted.Add(1)
		l.logErr("message %d: expected from %s to session %d, got %s at session %d", seq, t.jids[s], st.target[i], el, c.idx)
		return
	}
	if st.got[i].Or(bit)&bit != 0 {
		st.dup.Add(1)
		l.logErr("message %d delivered twice to session %d", seq, c.idx)
		return
	}
	st.latMu.Lock()
	if st.open {
		st.lat = append(st.lat, time.Duration(now-sent))
	} else {
		t.late.Add(1)
	}
	st.latMu.Unlock()
	st.last.Store(now)
	if st.delivered.Add(1) == int64(st.n*st.k) {
		st.allOnce.Do(func() { close(st.all) })
	}
}

// onPresence passes a MUC self-presence (status 110) to the join waiting
// for it.
func (t *traffic) onPresence(c *client, el *stanza.Element) {
	x := el.Child(nsMUCUser, "x")
	if x == nil && el.Type() != "error" {
		return
	}
	if el.Type() != "error" {
		self := false
		for s := range x.Elements {
			if s.Name == "status" && s.Attr("code") == "110" {
				self = true
			}
		}
		if !self {
			return
		}
	}
	if j, err := jid.Parse(el.From()); err != nil || t.roomOf[c.idx] < 0 || j.Bare().String() != t.rooms[t.roomOf[c.idx]] {
		return
	}
	select {
	case t.joined[c.idx] <- el:
	default:
	}
}

const (
	nsMUC      = "http://jabber.org/protocol/muc"
	nsMUCUser  = nsMUC + "#user"
	nsMUCOwner = nsMUC + "#owner"
)

// joinRooms puts the sessions in rooms of o.roomSize: the first occupant
// of each room creates it (accepting the default configuration if the
// service locks new rooms, XEP-0045 §10.1.2), then the others join.
func (t *traffic) joinRooms(ctx context.Context) error {
	l, o := t.l, t.l.o
	nrooms := len(l.client) / o.roomSize
	t.rooms = make([]string, nrooms)
	t.roomOf = make([]int32, len(l.client))
	t.posOf = make([]uint8, len(l.client))
	for i := range t.roomOf {
		t.roomOf[i] = -1
	}
	for r := range nrooms {
		t.rooms[r] = fmt.Sprintf("loadroom%d@%s", r, o.service)
		for p := range o.roomSize {
			i := r*o.roomSize + p
			t.roomOf[i], t.posOf[i] = int32(r), uint8(p)
		}
	}
	if rest := len(l.client) - nrooms*o.roomSize; rest > 0 {
		l.logf("note: %d sessions do not fill a room of %d and stay out of the rooms", rest, o.roomSize)
	}
	l.res.Rooms, l.res.RoomSize = nrooms, o.roomSize
	join := func(i int) error {
		c := l.client[i]
		r := t.rooms[t.roomOf[i]]
		if err := c.writeString(`<presence to="` + r + `/n` + strconv.Itoa(i) + `"><x xmlns="` + nsMUC + `"><history maxstanzas="0"/></x></presence>`); err != nil {
			return err
		}
		timer := time.NewTimer(o.loginTimeout)
		defer timer.Stop()
		select {
		case el := <-t.joined[i]:
			if el.Type() == "error" {
				return fmt.Errorf("session %d joining %s: %s", i, r, el)
			}
			if created(el) {
				return c.instantRoom(ctx, r, o.loginTimeout)
			}
			return nil
		case <-timer.C:
			return fmt.Errorf("session %d joining %s: no self-presence within %s", i, r, o.loginTimeout)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, o.concurrency)
	for pass := range 2 { // the creators first, then everyone else
		for r := range nrooms {
			lo, hi := r*o.roomSize, r*o.roomSize+1
			if pass == 1 {
				lo, hi = hi, (r+1)*o.roomSize
			}
			for i := lo; i < hi; i++ {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					if err := join(i); err != nil {
						mu.Lock()
						firstErr = cmpOr(firstErr, err)
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
	}
	fmt.Fprintf(l.out, "JOINED rooms=%d occupants=%d\n", nrooms, nrooms*o.roomSize)
	return nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// created reports whether a self-presence says the room was just created
// (status 201).
func created(el *stanza.Element) bool {
	if x := el.Child(nsMUCUser, "x"); x != nil {
		for s := range x.Elements {
			if s.Name == "status" && s.Attr("code") == "201" {
				return true
			}
		}
	}
	return false
}

// instantRoom accepts the default configuration of a new room.
func (c *client) instantRoom(ctx context.Context, room string, timeout time.Duration) error {
	res, err := c.request(ctx, `<iq type="set" to="`+room+`" id="create"><query xmlns="`+nsMUCOwner+`"><x xmlns="jabber:x:data" type="submit"/></query></iq>`, "create", timeout)
	if err != nil {
		return err
	}
	if res.Type() != "result" {
		return errors.New("instant room refused: " + res.String())
	}
	return nil
}
