package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// Namespaces of BOSH (XEP-0124) and XMPP over BOSH (XEP-0206).
const (
	nsHTTPBind = "http://jabber.org/protocol/httpbind"
	nsXBOSH    = "urn:xmpp:xbosh"
	// boshWait and boshHold are what the tool asks for: one request held
	// by the server for up to a minute, as browser clients do.
	boshWait = 60
	boshHold = 1
	// maxBOSHResponse bounds one response body.
	maxBOSHResponse = 4 << 20
)

// boshWire is XMPP over BOSH (XEP-0206): a session of HTTP requests whose
// <body/> wrappers carry the stanzas. Outside the login, exactly one request
// is normally pending: the server holds it (hold=1, wait=60) until it has
// something to send or the wait is over, and the tool sends a new one
// whenever one is answered. Stanzas to send go in a new request at once if
// the session allows one more ('requests', 2 with hold=1: the server then
// answers the held one), else in the next request; the elements received
// are handed to next in 'rid' order.
//
// Each session has its own HTTP client, with at most two keep-alive
// connections, as a browser page has (sessions sharing one pool would
// dial new connections in bursts whenever the server is slow, and spend
// the time on TLS handshakes). Each request runs on its own goroutine,
// owned by the wire: shutdown cancels them and waits for them.
type boshWire struct {
	tr     *http.Transport
	hc     *http.Client
	url    string
	to     string
	ctx    context.Context // every request's; ends with shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup
	signal chan struct{} // something for next (buffered, 1)

	mu        sync.Mutex
	sid       string // "" until the creation response
	rid       uint64 // last rid sent
	inflight  int    // requests sent and not answered
	requests  int    // at most this many unanswered requests
	queue     []byte // stanzas for the next request
	restart   bool   // a stream restart is due (XEP-0206 §5)
	closing   bool   // the client ends the session
	ended     bool   // the session is over; err says why
	err       error
	nextResp  uint64                     // rid of the next response to hand over
	early     map[uint64]*stanza.Element // responses ahead of nextResp
	ready     []*stanza.Element          // received, for next
	lastBytes []byte                     // the last response, for error reports
}

func newBOSHWire(p loginParams) *boshWire {
	w := &boshWire{url: p.url, to: p.domain, signal: make(chan struct{}, 1), requests: 1}
	w.tr = p.httpTr.Clone()
	w.tr.MaxConnsPerHost = boshHold + 1
	w.tr.MaxIdleConnsPerHost = boshHold + 1
	w.hc = &http.Client{Transport: w.tr}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	// XEP-0124 §14.1: a random first rid, far enough below 2^53 for the
	// session never to reach it.
	w.rid = 1<<20 + rand.Uint64N(1<<40)
	return w
}

// open creates the session (XEP-0124 §7, XEP-0206 §3) or restarts the
// stream after SASL (XEP-0206 §5), and returns the stream features.
func (w *boshWire) open(domain string, restart bool) (*stanza.Element, error) {
	w.mu.Lock()
	if w.ended {
		err := w.err
		w.mu.Unlock()
		return nil, err
	}
	if restart {
		w.restart = true
		w.issueLocked()
	} else {
		w.rid++
		w.nextResp = w.rid
		w.inflight++
		b := fmt.Appendf(nil, `<body xmlns="%s" xmlns:xmpp="%s" content="text/xml; charset=utf-8" hold="%d" rid="%d" to="%s" ver="1.11" wait="%d" xml:lang="en" xmpp:version="1.0"/>`,
			nsHTTPBind, nsXBOSH, boshHold, w.rid, domain, boshWait)
		w.wg.Add(1)
		go w.do(w.rid, b)
	}
	w.mu.Unlock()
	return expectFeatures(w.next())
}

// issueLocked sends what is due, within the session's 'requests': a
// restart, the terminate request, the queued stanzas, or an empty request
// so that one is always pending for the server to answer with.
func (w *boshWire) issueLocked() {
	for !w.ended && w.sid != "" && w.inflight < w.requests {
		var attrs string
		var payload []byte
		switch {
		case w.restart:
			// A restart carries no payload (XEP-0206 §5).
			attrs = ` xmlns:xmpp="` + nsXBOSH + `" xmpp:restart="true" to="` + w.to + `" xml:lang="en"`
			w.restart = false
		case w.closing:
			// §13: the last stanzas, and the end of the session.
			attrs = ` type="terminate"`
			payload, w.queue = w.queue, nil
			w.closing = false
			w.requests = 0 // nothing after the terminate request
		case len(w.queue) > 0:
			payload, w.queue = w.queue, nil
		case w.inflight == 0:
			// the empty request the server holds
		default:
			return
		}
		w.rid++
		w.inflight++
		b := make([]byte, 0, 96+len(w.sid)+len(attrs)+len(payload))
		b = append(b, `<body xmlns="`+nsHTTPBind+`" rid="`...)
		b = strconv.AppendUint(b, w.rid, 10)
		b = append(b, `" sid="`...)
		b = append(b, w.sid...)
		b = append(b, '"')
		b = append(b, attrs...)
		if len(payload) == 0 {
			b = append(b, "/>"...)
		} else {
			b = append(b, '>')
			b = append(b, payload...)
			b = append(b, "</body>"...)
		}
		w.wg.Add(1)
		go w.do(w.rid, b)
	}
}

// do sends one request and hands its response over.
func (w *boshWire) do(rid uint64, body []byte) {
	defer w.wg.Done()
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		w.fail(err)
		return
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	resp, err := w.hc.Do(req)
	if err != nil {
		w.fail(err)
		return
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBOSHResponse))
	_ = resp.Body.Close()
	if err != nil {
		w.fail(err)
		return
	}
	if resp.StatusCode != http.StatusOK {
		w.fail(fmt.Errorf("HTTP %s: %q", resp.Status, data))
		return
	}
	el, err := xmlstream.Parse(data)
	if err == nil && (el.Space != nsHTTPBind || el.Name != "body") {
		err = errors.New("the response is not a BOSH <body/>")
	}
	if err != nil {
		w.fail(fmt.Errorf("%w: %q", err, data))
		return
	}
	w.deliver(rid, el, data)
}

// deliver takes the response to request rid: its elements go to next in
// rid order, and the next request is sent if one is due.
func (w *boshWire) deliver(rid uint64, el *stanza.Element, data []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.notify()
	w.inflight--
	w.lastBytes = append(w.lastBytes[:0], data[max(0, len(data)-320):]...)
	if w.ended {
		return
	}
	if w.sid == "" {
		// The creation response (§7.1).
		if w.sid = el.Attr("sid"); w.sid == "" && el.Attr("type") != "terminate" {
			w.endLocked(errors.New("no sid in the session creation response"))
			return
		}
		if n, err := strconv.Atoi(el.Attr("requests")); err == nil && n > 0 {
			w.requests = min(n, boshHold+1)
		} else {
			w.requests = boshHold + 1
		}
	}
	if rid != w.nextResp {
		if w.early == nil {
			w.early = make(map[uint64]*stanza.Element)
		}
		w.early[rid] = el
		return
	}
	for el != nil {
		w.nextResp++
		for c := range el.Elements {
			w.ready = append(w.ready, c)
		}
		switch el.Attr("type") {
		case "terminate":
			cond := el.Attr("condition")
			if cond == "" {
				cond = "none"
			}
			w.endLocked(fmt.Errorf("BOSH session terminated (condition %s)", cond))
			return
		case "error":
			// A recoverable binding error (§17.3): this tool never sends
			// what causes one, so it is a failure.
			w.endLocked(errors.New("BOSH recoverable binding error"))
			return
		}
		el = w.early[w.nextResp]
		delete(w.early, w.nextResp)
	}
	w.issueLocked()
}

func (w *boshWire) fail(err error) {
	w.mu.Lock()
	w.endLocked(err)
	w.mu.Unlock()
	w.notify()
}

// endLocked ends the session with err, unless it already ended.
func (w *boshWire) endLocked(err error) {
	if !w.ended {
		w.ended, w.err = true, err
	}
}

func (w *boshWire) notify() {
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

func (w *boshWire) next() (*stanza.Element, error) {
	for {
		w.mu.Lock()
		if len(w.ready) > 0 {
			el := w.ready[0]
			w.ready[0] = nil
			w.ready = w.ready[1:]
			w.mu.Unlock()
			return el, nil
		}
		if w.ended {
			err := w.err
			w.mu.Unlock()
			return nil, err
		}
		w.mu.Unlock()
		select {
		case <-w.signal:
		case <-w.ctx.Done():
			return nil, errors.New("BOSH session closed")
		}
	}
}

// write queues the elements of b for the next request, declaring
// jabber:client where they do not: inside the <body/> wrapper the default
// namespace is BOSH's (XEP-0206 §6).
func (w *boshWire) write(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return w.err
	}
	err := eachElement(b, func(el []byte, nameEnd int, declared bool) error {
		if declared {
			w.queue = append(w.queue, el...)
			return nil
		}
		w.queue = append(w.queue, el[:nameEnd]...)
		w.queue = append(w.queue, ` xmlns="`+stanza.NSClient+`"`...)
		w.queue = append(w.queue, el[nameEnd:]...)
		return nil
	})
	w.issueLocked()
	return err
}

// end terminates the session (§13), with unavailable presence as its last
// stanza.
func (w *boshWire) end() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return w.err
	}
	w.queue = append(w.queue, `<presence type="unavailable" xmlns="`+stanza.NSClient+`"/>`...)
	w.closing = true
	w.issueLocked()
	return nil
}

func (w *boshWire) established() {}

// shutdown abandons the session: the requests in flight are cancelled.
func (w *boshWire) shutdown() {
	w.mu.Lock()
	w.endLocked(errors.New("BOSH session closed"))
	w.mu.Unlock()
	w.cancel()
	w.wg.Wait()
	w.tr.CloseIdleConnections()
	w.notify()
}

// closeIdle closes the session's connections that no request is using.
func (w *boshWire) closeIdle() { w.tr.CloseIdleConnections() }

func (w *boshWire) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.lastBytes)
}
