package c2s

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/sasl"
	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/stream"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

var errClosed = errors.New("c2s: session closed")

// Config holds the c2s limits and policies.
type Config struct {
	RequireEncryption bool
	StreamOpenTimeout time.Duration
	AuthTimeout       time.Duration
	IdleTimeout       time.Duration
	PingTimeout       time.Duration // grace after an idle ping before closing
	MaxStanzaSize     int
	MaxQueue          int // outbound bytes queued before the session is closed
	MaxAuthFailures   int // SASL attempts per stream
	// ResumeTimeout is how long a session whose connection failed waits
	// for the client to resume it (XEP-0198); 0 turns resumption off.
	ResumeTimeout time.Duration
	// MaxUnacked is how many stanzas a stream management client may
	// leave unacknowledged before its session is ended (default 1000).
	MaxUnacked int
	// AckTimeout is how long a stream management client may stay silent
	// while an ack request of the server is unanswered before its
	// connection is taken for dead and the session is hibernated (or
	// ended when it cannot be resumed); 0 = no limit.
	AckTimeout time.Duration
	// ParkAfter is how long a session must be silent before it gives up
	// its goroutine for the poller (idle.go); 0 means 10s. Tests make it
	// short so that every conversation goes through the poller.
	ParkAfter time.Duration
	// ReadRate (bytes/s) and ReadBurst (bytes) shape what one client may
	// send: past its burst, its stream is read more slowly. 0 = no limit.
	ReadRate, ReadBurst int64
}

// Core is what a stream needs from the server.
type Core interface {
	Logger() *slog.Logger
	C2SConfig() Config
	TLSConfig() *tls.Config
	// LookupHost returns the served host for a domain, or nil.
	LookupHost(domain string) Host
	// Bind publishes s under a resource (empty: server-generated) and
	// returns the full JID, applying the resource-conflict policy.
	Bind(ctx context.Context, s *Session, resource string) (jid.JID, error)
	// Process routes a stanza from a bound session.
	Process(ctx context.Context, s *Session, st *stanza.Element)
	// PreAuth handles a stanza sent before authentication (in-band
	// registration); false means it is not allowed.
	PreAuth(ctx context.Context, s *Session, st *stanza.Element) bool
	// Idle is called when a bound session sent nothing for the idle
	// timeout; true means it was pinged and gets a grace period.
	Idle(s *Session) bool
	// Closed is called once when a bound session ends.
	Closed(s *Session)
	// AuthAllowed and AuthFailed implement failed-login throttling.
	AuthAllowed(ip, user string) bool
	AuthFailed(ip, user string)
	Tracked(s *Session, add bool)
	// Resumptions is the registry of resumable sessions (XEP-0198).
	Resumptions() *Resumptions
	// Unacked hands over the stanzas a session that ended for good
	// never had acknowledged (after Closed): the core treats each as
	// sent to an unavailable resource.
	Unacked(s *Session, items []Unacked)
	// Queued is called when a message is kept for a hibernated session
	// (push notifications). st must not be kept or changed.
	Queued(s *Session, st *stanza.Element)
	// Resumed is called once a hibernated session was resumed.
	Resumed(s *Session)
}

// Host is a served virtual host as the stream sees it.
type Host interface {
	Name() string
	SASL(secure bool, cb sasl.ChannelBinding) sasl.Config
	// StreamFeatures are extra features: before auth (registration) or after bind.
	StreamFeatures(preAuth bool) []*stanza.Element
}

// Refuse answers a connection the server will not serve (too many from
// one address): a stream header, a stream error, the close tag.
func Refuse(conn net.Conn, cond stream.Condition, text string) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	b := stream.Header{ContentNS: stanza.NSClient, ID: randomID()}.Append(nil)
	b = (&stream.Error{Condition: cond, Text: text}).Append(b)
	_, _ = conn.Write(append(b, stream.Close...))
}

// Serve runs a client stream on conn. directTLS says conn is already a
// *tls.Conn whose handshake Serve performs (XEP-0368). done (may be nil) is
// called once the stream has ended; Serve itself may return before that.
func Serve(ctx context.Context, conn net.Conn, core Core, directTLS bool, done func()) {
	serve(ctx, conn, core, directTLS, StreamFraming, directTLS, done)
}

func serve(ctx context.Context, conn net.Conn, core Core, directTLS bool, framing Framing, secure bool, done func()) {
	cfg := core.C2SConfig()
	s := newSession(conn, core, secure, cfg.MaxQueue)
	s.framing = framing
	core.Tracked(s, true)
	end := func(err error) {
		s.finish(err)
		core.Tracked(s, false)
		if done != nil {
			done()
		}
	}
	dec, err := s.negotiate(ctx, cfg, directTLS)
	if dec == nil {
		end(err)
		return
	}
	run := s
	if s.resumedInto != nil {
		// XEP-0198: this stream resumed a hibernated session, which
		// now owns the connection; s is done with.
		run = s.resumedInto
		core.Tracked(s, false)
	}
	// Hand the bound stream over (idle.go) and let this goroutine end.
	// The TLS handshake and SASL grew its stack to 16 KiB, and a
	// goroutine waiting in Read keeps its stack: every idle session would
	// hold that.
	run.serveBound(ctx, dec, func(err error) {
		if !run.finish(err) {
			core.Tracked(run, false)
		}
		if done != nil {
			done()
		}
	})
}

type streamErr = stream.Error

func serr(c stream.Condition, text string) error { return &streamErr{Condition: c, Text: text} }

// deadlineReader sets a read deadline before each read and, for bound
// sessions, asks the core for an idle ping instead of failing at once.
type deadlineReader struct {
	s     *Session // the session reading (replaced when a stream is resumed)
	cfg   Config
	limit bucket
	// The stream's timeouts: opened once a stream header was read,
	// pingedAt while an idle ping waits for an answer.
	opened   bool
	pingedAt time.Time
	ackLost  bool // the client did not answer an ack request in time
	// For Session.pending: the last read filled the caller's buffer (the
	// connection may hold more), and a readiness wait saw input that no
	// read has taken yet.
	full, woke bool
	set        time.Time // read deadline last set
}

// bucket is a token bucket of bytes: a client may send burst bytes at
// once and rate bytes per second after that (Prosody's mod_limits does
// the same: the stream is read more slowly, nobody is disconnected).
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

// take accounts for n bytes read and returns how long to wait before
// reading more.
func (b *bucket) take(n int, now time.Time) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate) - float64(n)
	b.last = now
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// maxPause bounds one pause so that a closed stream is noticed quickly.
const maxPause = time.Second

func (r *deadlineReader) Read(p []byte) (int, error) {
	for {
		// The first read after a readiness wait must not block: the
		// readiness may be stale (see idle.go).
		woke := r.woke && r.s.rec != nil
		if woke {
			r.s.rec.nonblock = true
		}
		r.arm()
		n, err := r.s.conn.Read(p)
		r.full, r.woke = n == len(p), false
		if woke {
			r.s.rec.nonblock = false
			if n == 0 && errors.Is(err, errSockWouldBlock) {
				return 0, xmlstream.ErrWouldBlock
			}
		}
		if n > 0 {
			now := time.Now()
			r.s.lastActive.Store(now.UnixNano())
			if d := r.limit.take(n, now); d > 0 {
				time.Sleep(min(d, maxPause))
			}
		}
		if n == 0 && isTimeout(err) {
			if r.expired() {
				continue
			}
			err = r.timeoutErr(err)
		}
		return n, err
	}
}

// arm makes sure a read deadline no later than the one the session's
// state asks for is set. Moving a deadline costs a timer update, so an
// earlier one stays: expired tells an early timeout from a real one and
// re-arms. (The readiness wait sets the session's quiet time, usually
// sooner than its idle timeout; moving the deadline out and back in
// around every stanza took 5 % of the server's CPU.)
func (r *deadlineReader) arm() {
	if d := r.deadline(); r.set.IsZero() || d.Before(r.set) {
		_ = r.s.conn.SetReadDeadline(d)
		r.set = d
	}
}

// expired handles a read timeout: it reports whether reading should go
// on (the deadline fired early, or the idle session was pinged), or the
// stream must end.
func (r *deadlineReader) expired() bool {
	r.set = time.Time{} // re-arm on the next read
	if time.Now().Before(r.deadline()) {
		return true
	}
	return r.onIdle()
}

// timeoutErr is the error that ends a stream whose read deadline passed.
func (r *deadlineReader) timeoutErr(err error) error {
	if r.ackLost {
		return errAckTimeout
	}
	return err
}

// deadline is when the stream times out in its current state: the
// stream header, authentication and binding each have their own limit;
// a bound session, its idle timeout or, once pinged, the ping's, or
// sooner its stream management ack deadline.
func (r *deadlineReader) deadline() time.Time {
	d := r.streamDeadline()
	if a := r.ackDeadline(); !a.IsZero() && a.Before(d) {
		return a
	}
	return d
}

func (r *deadlineReader) streamDeadline() time.Time {
	s := r.s
	if !r.pingedAt.IsZero() && s.LastActive().After(r.pingedAt) {
		r.pingedAt = time.Time{} // the client answered (or sent anything): idle again
	}
	switch {
	case !r.opened:
		return s.started.Add(r.cfg.StreamOpenTimeout)
	case s.full.IsZero():
		return s.started.Add(r.cfg.AuthTimeout)
	case !r.pingedAt.IsZero():
		return r.pingedAt.Add(r.cfg.PingTimeout)
	default:
		return time.Unix(0, s.lastActive.Load()).Add(r.cfg.IdleTimeout)
	}
}

// onIdle is called when a bound session's idle deadline passed: it asks
// the core to ping the client and reports whether to keep waiting.
func (r *deadlineReader) onIdle() bool {
	s := r.s
	if s.full.IsZero() || !r.pingedAt.IsZero() && time.Since(r.pingedAt) >= r.cfg.PingTimeout {
		return false
	}
	if a := r.ackDeadline(); !a.IsZero() && !time.Now().Before(a) {
		r.ackLost = true
		s.Logger().Info("no answer to an ack request: connection taken for lost", "after", r.cfg.AckTimeout)
		return false
	}
	if time.Since(s.LastActive()) < r.cfg.IdleTimeout {
		return true // activity raced with the deadline
	}
	if s.core.Idle(s) {
		r.pingedAt = time.Now()
		return true
	}
	return false
}

// deadlineSlack is how far a read deadline may lag behind the one the
// session's state asks for.
const deadlineSlack = 5 * time.Second

func isTimeout(err error) bool {
	var ne net.Error
	return err != nil && errors.As(err, &ne) && ne.Timeout()
}

// negotiate runs the stream until a resource is bound and returns the
// decoder to go on with, or nil and the error that ended the stream.
func (s *Session) negotiate(ctx context.Context, cfg Config, directTLS bool) (*xmlstream.Decoder, error) {
	rd := &deadlineReader{s: s, cfg: cfg, limit: bucket{rate: float64(cfg.ReadRate), burst: float64(cfg.ReadBurst),
		tokens: float64(cfg.ReadBurst), last: time.Now()}}
	s.rd = rd
	if directTLS {
		if err := s.handshake(ctx, s.conn.(*tls.Conn)); err != nil {
			return nil, err
		}
	}
	dec := xmlstream.NewDecoder(rd, xmlstream.Limits{MaxBytes: cfg.MaxStanzaSize})
	if s.framed() {
		dec.SetFragmentMode(stanza.NSClient)
	}
	var (
		authenticated bool
		sasl          *saslState
		failures      int
	)
	for {
		// Stream header.
		hdr, err := s.readHeader(dec)
		if err != nil {
			if !rd.opened {
				// RFC 6120 §4.9.1.2: open a stream before sending the error.
				s.sendRaw(s.appendHeader(nil, stream.Header{ContentNS: stanza.NSClient, ID: s.id}))
			}
			return nil, err
		}
		rd.opened = true
		if err := s.openReply(hdr); err != nil {
			return nil, err
		}
		features := stanza.New(stream.NS, "features")
		switch {
		case !s.secure && cfg.RequireEncryption && s.framed():
			return nil, serr(stream.PolicyViolation, "encryption is required: connect over HTTPS (wss://)")
		case !s.secure && cfg.RequireEncryption:
			st := features.AddChild(stanza.New(stream.NSTLS, "starttls"))
			st.AddChild(stanza.New(stream.NSTLS, "required"))
		case !authenticated:
			if !s.secure && !s.framed() {
				features.AddChild(stanza.New(stream.NSTLS, "starttls"))
			}
			sc := s.host.SASL(s.secure, s.channelBinding())
			mechs := features.AddChild(stanza.New(stream.NSSASL, "mechanisms"))
			for _, m := range sc.Offered() {
				mechs.AddChild(stanza.New(stream.NSSASL, "mechanism")).AddText(m)
			}
			if cbs := sc.CBTypes(); len(cbs) > 0 {
				cb := features.AddChild(stanza.New(stream.NSSASLCB, "sasl-channel-binding"))
				for _, t := range cbs {
					cb.AddChild(stanza.New(stream.NSSASLCB, "channel-binding", "type", t))
				}
			}
			for _, f := range s.host.StreamFeatures(true) {
				features.AddChild(f)
			}
		default:
			features.AddChild(stanza.New(stream.NSBind, "bind"))
			sess := features.AddChild(stanza.New(stream.NSSession, "session"))
			sess.AddChild(stanza.New(stream.NSSession, "optional"))
			features.AddChild(stanza.New(NSSM, "sm"))
			for _, f := range s.host.StreamFeatures(false) {
				features.AddChild(f)
			}
		}
		s.sendRaw(appendStreamElement(nil, features, s.framed()))
		if err := s.flush(); err != nil {
			return nil, err
		}

		// Elements until the next stream restart.
	negotiate:
		for {
			el, err := dec.Element()
			if err != nil {
				return nil, err
			}
			switch {
			case el.Space == stream.NSTLS && el.Name == "starttls":
				if s.framed() {
					return nil, serr(stream.PolicyViolation, "no STARTTLS over WebSocket: use wss://")
				}
				if s.secure || authenticated {
					return nil, serr(stream.PolicyViolation, "TLS already negotiated")
				}
				if dec.Buffered() != 0 {
					// Bytes sent after <starttls/> before the handshake would
					// be plaintext smuggled into the encrypted stream.
					return nil, serr(stream.PolicyViolation, "data after <starttls/> before the TLS handshake")
				}
				s.sendRaw([]byte(`<proceed xmlns="` + stream.NSTLS + `"/>`))
				if err := s.flush(); err != nil {
					return nil, err
				}
				tc := TLSServer(s.conn, s.core.TLSConfig())
				if err := s.handshake(ctx, tc); err != nil {
					return nil, err
				}
				dec.Reset(rd)
				break negotiate
			case el.Space == stream.NSSASL && !authenticated:
				if !s.secure && cfg.RequireEncryption {
					s.sendRaw(saslFailure("encryption-required", "use STARTTLS first"))
					if err := s.flush(); err != nil {
						return nil, err
					}
					return nil, serr(stream.PolicyViolation, "authentication before encryption")
				}
				done, err := s.handleSASL(ctx, el, &sasl)
				if err != nil {
					var f *saslRefused
					if errors.As(err, &f) {
						failures++
						if failures >= cfg.MaxAuthFailures {
							if ferr := s.flush(); ferr != nil {
								return nil, ferr
							}
							return nil, serr(stream.PolicyViolation, "too many failed authentication attempts")
						}
						if ferr := s.flush(); ferr != nil {
							return nil, ferr
						}
						continue
					}
					return nil, err
				}
				if err := s.flush(); err != nil {
					return nil, err
				}
				if done {
					authenticated = true
					// Keep buffered input: a client may pipeline the new header.
					dec.Restart()
					break negotiate
				}
			case el.Name == "iq" && el.Space == stanza.NSClient && authenticated:
				bound, err := s.handleBind(ctx, el)
				if err != nil {
					return nil, err
				}
				if err := s.flush(); err != nil {
					return nil, err
				}
				if bound {
					s.startWriter()
					return dec, nil
				}
			case el.Space == NSSM && el.Name == "resume" && authenticated:
				old, err := s.resumeSM(ctx, el)
				if err != nil {
					return nil, err
				}
				if old != nil {
					s.resumedInto = old
					return dec, nil
				}
				if err := s.flush(); err != nil {
					return nil, err
				}
			case el.Space == NSSM && authenticated:
				// XEP-0198 §3: <enable/> only after binding.
				s.sendRaw(smFailed("unexpected-request", -1))
				if err := s.flush(); err != nil {
					return nil, err
				}
			case stanza.IsStanza(el) && !authenticated:
				if !s.secure && cfg.RequireEncryption || !s.core.PreAuth(ctx, s, el) {
					return nil, serr(stream.NotAuthorized, "authenticate first")
				}
				if err := s.flush(); err != nil {
					return nil, err
				}
			case stanza.IsStanza(el):
				return nil, serr(stream.NotAuthorized, "bind a resource first")
			case s.framed() && isFramingClose(el):
				return nil, xmlstream.ErrStreamEnd
			default:
				return nil, serr(stream.UnsupportedStanzaType, "unexpected <"+el.Name+"/> during negotiation")
			}
		}
	}
}

// finish ends the stream after err: the stream error it calls for, the
// session unbound, the connection closed once everything queued is
// written, what the client did not acknowledge handed over. A resumable
// session whose connection failed is parked instead (XEP-0198): finish
// then reports true.
func (s *Session) finish(err error) (parked bool) {
	bound := !s.full.IsZero()
	if bound && s.park(err) {
		return true
	}
	var se *streamErr
	var xe *xmlstream.Error
	var ne net.Error
	var e *stream.Error
	switch {
	case errors.As(err, &se):
		e = se
	case errors.As(err, &xe):
		e = &stream.Error{Condition: stream.Condition(xe.Condition), Text: xe.Msg}
	case errors.Is(err, xmlstream.ErrStreamEnd), errors.Is(err, errClosed):
	case errors.As(err, &ne) && ne.Timeout():
		e = &stream.Error{Condition: stream.ConnectionTimeout}
	default:
		if err != nil {
			s.Logger().Debug("stream ended", "err", err)
		}
	}
	if e != nil {
		s.Logger().Info("stream error sent", "condition", string(e.Condition), "text", e.Text)
	}
	// Unbind first: stanzas routed from now on go to other resources
	// or offline storage, not to a stream that is closing.
	if bound {
		s.core.Closed(s)
	}
	s.closeWith(e)
	if bound {
		s.wmu.Lock()
		detached := s.detached
		s.wmu.Unlock()
		if detached {
			// No writer will close the connection (XEP-0198).
			s.fmu.Lock()
			s.closeConn()
			s.fmu.Unlock()
			s.closeOnce.Do(func() { close(s.wclosed) })
		}
		<-s.wclosed
		s.handOverUnacked()
	}
	return false
}

// appendStreamElement writes an element in the streams namespace with the
// conventional stream: prefix, as clients expect for features. declare
// adds the prefix's declaration (RFC 7395: each element stands alone).
func appendStreamElement(buf []byte, el *stanza.Element, declare bool) []byte {
	buf = append(buf, "<stream:"...)
	buf = append(buf, el.Name...)
	if declare {
		buf = append(buf, ` xmlns:stream="`+stream.NS+`"`...)
	}
	buf = append(buf, '>')
	for _, c := range el.Children {
		if c.El != nil {
			buf = c.El.Append(buf, stream.NS)
		}
	}
	buf = append(buf, "</stream:"...)
	buf = append(buf, el.Name...)
	return append(buf, '>')
}

func (s *Session) openReply(hdr xmlstream.Header) error {
	reply := stream.Header{ContentNS: stanza.NSClient, ID: s.id + "-" + randomID(), Lang: "en"}
	to := hdr.Attr("to")
	if s.host != nil {
		reply.From = s.host.Name()
	} else if j, err := jid.Parse(to); err == nil {
		reply.From = j.Domain()
	}
	s.sendRaw(s.appendHeader(nil, reply))
	if s.framed() {
		if hdr.Space != NSFraming || hdr.Name != "open" {
			return serr(stream.InvalidNamespace, "the stream must be opened with <open xmlns=\""+NSFraming+"\"/>")
		}
	} else if hdr.Space != stream.NS || hdr.Name != "stream" {
		return serr(stream.InvalidNamespace, "the stream root must be <stream xmlns=\""+stream.NS+"\">")
	}
	if hdr.DefaultNS != stanza.NSClient {
		return serr(stream.InvalidNamespace, "the content namespace must be jabber:client")
	}
	if v := hdr.Attr("version"); v == "" || !versionOK(v) {
		return serr(stream.UnsupportedVersion, "XMPP 1.0 is required")
	}
	if to == "" {
		return serr(stream.HostUnknown, "the stream header has no 'to'")
	}
	j, err := jid.Parse(to)
	if err != nil || !j.IsDomain() {
		return serr(stream.HostUnknown, "'to' is not a domain")
	}
	if s.host != nil {
		if s.host.Name() != j.Domain() {
			return serr(stream.HostUnknown, "the host changed across a stream restart")
		}
		return nil
	}
	h := s.core.LookupHost(j.Domain())
	if h == nil {
		return serr(stream.HostUnknown, "this server does not serve "+j.Domain())
	}
	s.host = h
	return nil
}

func versionOK(v string) bool {
	major, _, _ := strings.Cut(v, ".")
	return major != "" && major != "0" && strings.Trim(major, "0123456789") == ""
}

func (s *Session) handshake(ctx context.Context, tc *tls.Conn) error {
	cfg := s.core.C2SConfig()
	hctx, cancel := context.WithTimeout(ctx, cfg.StreamOpenTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		s.Logger().Debug("TLS handshake failed", "err", err)
		return errClosed
	}
	s.setConn(tc)
	s.secure = true
	releaseTLSBuffers(tc, false) // the handshake's; see tlsbuf.go
	return nil
}

// channelBinding returns the channel binding data of the TLS connection.
func (s *Session) channelBinding() sasl.ChannelBinding {
	tc, ok := s.conn.(*tls.Conn)
	if !ok {
		return sasl.ChannelBinding{}
	}
	st := tc.ConnectionState()
	var cb sasl.ChannelBinding
	// RFC 9266: tls-exporter needs TLS 1.3 (or 1.2 with extended master secret).
	if st.Version >= tls.VersionTLS13 {
		cb.ExportFunc = func() []byte {
			b, _ := sasl.TLSExporter(&st)
			return b
		}
	}
	if certs := s.core.TLSConfig(); certs != nil {
		if c, err := certs.GetCertificate(&tls.ClientHelloInfo{ServerName: st.ServerName}); err == nil && c != nil && len(c.Certificate) > 0 {
			cb.EndPoint = endPoints.get(c)
		}
	}
	return cb
}

// endPointCache keeps the tls-server-end-point value of each certificate
// served, so that a login does not parse the certificate again. A reload
// of the certificates brings new ones; the cache starts over when it holds
// more than a few hundred.
type endPointCache struct {
	mu sync.Mutex
	m  map[*tls.Certificate][]byte
}

var endPoints endPointCache

func (c *endPointCache) get(cert *tls.Certificate) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.m[cert]; ok {
		return h
	}
	if c.m == nil || len(c.m) >= 256 {
		c.m = make(map[*tls.Certificate][]byte)
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil
		}
	}
	h, _ := sasl.TLSServerEndPoint(leaf) // nil: no such binding for this certificate
	c.m[cert] = h
	return h
}

type saslState struct {
	srv  sasl.Server
	mech string
}

// saslFlags is per-stream SASL state that outlives one exchange.
type saslFlags struct {
	plusRefused bool // a -PLUS attempt failed on an unsupported channel-binding type
}

type saslRefused struct{ cond string }

func (f *saslRefused) Error() string { return "sasl failure: " + f.cond }

func saslFailure(cond, text string) []byte {
	b := []byte(`<failure xmlns="` + stream.NSSASL + `"><` + cond + `/>`)
	if text != "" {
		b = append(b, `<text xml:lang="en">`...)
		b = stanza.AppendEscaped(b, text, false)
		b = append(b, "</text>"...)
	}
	return append(b, "</failure>"...)
}

func (s *Session) ip() string {
	h, _, err := net.SplitHostPort(s.remote)
	if err != nil {
		return s.remote
	}
	return h
}

// handleSASL processes one SASL element; done means success was sent.
func (s *Session) handleSASL(ctx context.Context, el *stanza.Element, st **saslState) (bool, error) {
	fail := func(cond, text string) (bool, error) {
		*st = nil
		s.sendRaw(saslFailure(cond, text))
		return false, &saslRefused{cond}
	}
	var in []byte
	switch el.Name {
	case "auth":
		if *st != nil {
			return fail("malformed-request", "an exchange is already in progress")
		}
		if !s.core.AuthAllowed(s.ip(), "") {
			return fail("temporary-auth-failure", "too many failed attempts; try again later")
		}
		cfg := s.host.SASL(s.secure, s.channelBinding())
		cfg.PlusRefused = s.sasl.plusRefused
		srv, err := cfg.NewServer(el.Attr("mechanism"))
		if err != nil {
			return fail("invalid-mechanism", "")
		}
		*st = &saslState{srv: srv, mech: el.Attr("mechanism")}
		text := strings.TrimSpace(el.Text())
		if text == "" {
			// No initial response: send an empty challenge (RFC 6120 §6.4.2).
			s.sendRaw([]byte(`<challenge xmlns="` + stream.NSSASL + `"/>`))
			return false, nil
		}
		if text != "=" {
			if in, err = base64.StdEncoding.DecodeString(text); err != nil {
				return fail("incorrect-encoding", "")
			}
		}
	case "response":
		if *st == nil {
			return fail("malformed-request", "no exchange in progress")
		}
		text := strings.TrimSpace(el.Text())
		if text != "" && text != "=" {
			var err error
			if in, err = base64.StdEncoding.DecodeString(text); err != nil {
				return fail("incorrect-encoding", "")
			}
		}
	case "abort":
		return fail("aborted", "")
	default:
		return false, serr(stream.UnsupportedStanzaType, "unexpected SASL element <"+el.Name+"/>")
	}
	claimed := (*st).srv.Username() // known after the first message; cleared on failure
	out, done, err := (*st).srv.Step(ctx, in)
	if err != nil {
		user := (*st).srv.Username()
		if user == "" {
			user = claimed
		}
		var f *sasl.Failure
		cond, text := "not-authorized", ""
		if errors.As(err, &f) {
			cond, text = f.Condition, f.Text
		} else {
			s.Logger().Error("authentication backend failed", "err", err)
			cond = "temporary-auth-failure"
		}
		if errors.Is(err, sasl.ErrCBType) {
			// Not a wrong password: the client guessed a channel-binding
			// type (slixmpp sends tls-unique, undefined on TLS 1.3) and
			// will try another mechanism. Don't count it as a failure.
			s.sasl.plusRefused = true
			*st = nil
			s.sendRaw(saslFailure(cond, text))
			return false, nil
		}
		if cond == "not-authorized" {
			s.core.AuthFailed(s.ip(), s.accountKey(user))
			s.Logger().Info("authentication failed", "mechanism", (*st).mech, "user", user)
		}
		return fail(cond, text)
	}
	if !done {
		s.sendRaw(append(append([]byte(`<challenge xmlns="`+stream.NSSASL+`">`), base64.StdEncoding.EncodeToString(out)...), "</challenge>"...))
		return false, nil
	}
	user := (*st).srv.Username()
	if !s.core.AuthAllowed(s.ip(), s.accountKey(user)) {
		return fail("temporary-auth-failure", "too many failed attempts for this account; try again later")
	}
	if az := (*st).srv.Authzid(); az != "" {
		if j, err := jid.Parse(az); err != nil || j.Local() != user || j.Domain() != s.host.Name() || j.Resource() != "" {
			return fail("invalid-authzid", "")
		}
	}
	s.authUser = user
	if len(out) > 0 {
		s.sendRaw(append(append([]byte(`<success xmlns="`+stream.NSSASL+`">`), base64.StdEncoding.EncodeToString(out)...), "</success>"...))
	} else {
		s.sendRaw([]byte(`<success xmlns="` + stream.NSSASL + `"/>`))
	}
	s.Logger().Debug("authenticated", "mechanism", (*st).mech)
	*st = nil
	return true, nil
}

// accountKey names an account for throttling ("" when unknown).
func (s *Session) accountKey(user string) string {
	if user == "" {
		return ""
	}
	return user + "@" + s.host.Name()
}

// handleBind answers an IQ after authentication and before binding.
func (s *Session) handleBind(ctx context.Context, iq *stanza.Element) (bool, error) {
	id := iq.ID()
	if id == "" || iq.Type() != stanza.Set && iq.Type() != stanza.Get {
		return false, serr(stream.NotAuthorized, "bind a resource first")
	}
	payload := iq.FirstChild()
	switch {
	case payload != nil && payload.Space == stream.NSBind && payload.Name == "bind" && iq.Type() == stanza.Set:
		j, err := s.core.Bind(ctx, s, strings.TrimSpace(payload.ChildText(stream.NSBind, "resource")))
		if err != nil {
			var se stanza.Error
			if !errors.As(err, &se) {
				s.Logger().Error("bind failed", "err", err)
				se = stanza.Err(stanza.InternalServerError)
			}
			_ = s.Send(stanza.ErrorReply(iq, se))
			return false, nil
		}
		res := stanza.New(stanza.NSClient, "iq", "type", stanza.Result, "id", id)
		res.AddChild(stanza.New(stream.NSBind, "bind")).AddChild(stanza.New(stream.NSBind, "jid")).AddText(j.String())
		_ = s.Send(res)
		s.Logger().Info("resource bound")
		return true, nil
	default:
		return false, serr(stream.NotAuthorized, "bind a resource first")
	}
}

// SetBound is called by the core's Bind to record the full JID before the
// session is published.
func (s *Session) SetBound(full jid.JID) { s.full = full }

// AuthUser is the authenticated localpart.
func (s *Session) AuthUser() string { return s.authUser }

func (s *Session) stanzaLoop(ctx context.Context, dec *xmlstream.Decoder) error {
	for {
		el, err := dec.Element()
		if err != nil {
			return err
		}
		if !stanza.IsStanza(el) {
			if s.framed() && isFramingClose(el) {
				return xmlstream.ErrStreamEnd
			}
			if el.Space == stanza.NSClient && el.Name == "iq" {
				return serr(stream.InvalidXML, "")
			}
			if s.handleCSI(el) {
				continue
			}
			if ok, err := s.handleSM(el); ok {
				if err != nil {
					return err
				}
				continue
			}
			return serr(stream.UnsupportedStanzaType, "<"+el.Name+" xmlns=\""+el.Space+"\"/> is not supported")
		}
		// RFC 6120 §8.1.2.1: a client's 'from' must be its own JID (or absent).
		if f := el.From(); f != "" {
			fj, err := jid.Parse(f)
			if err != nil || !(fj.Equal(s.full) || fj.Equal(s.full.Bare())) {
				return serr(stream.InvalidFrom, "'from' does not match the bound JID")
			}
		}
		if el.Name == "iq" && el.Type() == stanza.Set && (el.To() == "" || el.To() == s.host.Name()) {
			if p := el.FirstChild(); p != nil && p.Space == stream.NSSession && p.Name == "session" {
				// RFC 3921 session establishment: a no-op kept for old clients (RFC 6121 Appendix E).
				_ = s.Send(stanza.New(stanza.NSClient, "iq", "type", stanza.Result, "id", el.ID()))
				s.handled()
				continue
			}
		}
		s.core.Process(ctx, s, el)
		s.handled()
		if s.Closing() {
			return errClosed
		}
	}
}

func randomID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
