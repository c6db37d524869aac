package websocket

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/metronome-xmpp/metronome/internal/c2s"
)

// conn presents a WebSocket as the net.Conn internal/c2s reads and writes
// (c2s.WebSocketFraming): Read returns the bytes of the client's text
// messages in order, Write sends each top-level element it is given as one
// text message (RFC 7395 §3.3). Unlike websocket.NetConn, a read deadline
// only interrupts the read and leaves the connection open: the session
// uses deadlines to ping idle clients.
//
// A reader goroutine takes messages off the socket (it must keep reading
// for pongs and close frames to be seen) and hands them to Read through a
// small queue; a second goroutine sends the keepalive pings.
type conn struct {
	ws            *websocket.Conn
	ctx           context.Context // ends when the connection is closed
	cancel        context.CancelFunc
	local, remote net.Addr

	msgs chan []byte // client messages; closed after the reader's last
	rerr error       // why msgs was closed (set before closing it)
	cur  []byte      // rest of the message being read

	dmu      sync.Mutex
	rdl, wdl time.Time // read and write deadlines

	wmu     sync.Mutex
	pending []byte // an incomplete element from the last Write

	closing   chan struct{} // closed by Close: messages are dropped, not queued
	closeOnce sync.Once

	// c2s.ReadNotifier: the session's callback for the next message, and
	// whether the reader has stopped (msgs is closed).
	nmu      sync.Mutex
	notify   func()
	readDone bool
}

// queued bounds the messages read ahead of the session: the reader keeps
// reading (pongs, close frames) while the session is busy for that long.
const queued = 4

func newConn(ws *websocket.Conn, local, remote string, ping time.Duration) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{ws: ws, ctx: ctx, cancel: cancel, local: addr(local), remote: addr(remote),
		msgs: make(chan []byte, queued), closing: make(chan struct{})}
	go c.readLoop()
	if ping > 0 {
		go c.pingLoop(ping)
	}
	return c
}

func addr(s string) net.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return &net.TCPAddr{}
}

func (c *conn) readLoop() {
	defer func() {
		close(c.msgs)
		c.nmu.Lock()
		c.readDone = true
		c.nmu.Unlock()
		c.fire()
	}()
	for {
		typ, b, err := c.ws.Read(c.ctx)
		if err != nil {
			c.rerr = io.EOF // closed by the client, by us, or dropped: the stream ends
			if !isClosed(err) {
				c.rerr = err
			}
			return
		}
		if typ != websocket.MessageText {
			// RFC 7395 §3.2: the XMPP subprotocol uses text messages only.
			c.rerr = errors.New("websocket: binary message")
			_ = c.ws.Close(websocket.StatusUnsupportedData, "XMPP messages are text (RFC 7395)")
			return
		}
		select {
		case c.msgs <- b:
			c.fire()
		case <-c.closing:
			// The session is gone: keep reading for the client's close
			// frame, which Close waits for.
		case <-c.ctx.Done():
			c.rerr = io.EOF
			return
		}
	}
}

// fire calls the session's callback once input is there.
func (c *conn) fire() {
	c.nmu.Lock()
	f := c.notify
	c.notify = nil
	c.nmu.Unlock()
	if f != nil {
		f()
	}
}

// NotifyReadable implements c2s.ReadNotifier.
func (c *conn) NotifyReadable(f func()) bool {
	c.nmu.Lock()
	defer c.nmu.Unlock()
	if len(c.cur) > 0 || len(c.msgs) > 0 || c.readDone {
		return false
	}
	c.notify = f
	return true
}

// Buffered implements c2s.ReadNotifier.
func (c *conn) Buffered() bool { return len(c.cur) > 0 || len(c.msgs) > 0 }

func isClosed(err error) bool {
	return websocket.CloseStatus(err) != -1 || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, context.Canceled)
}

// pingLoop pings the client every interval and closes the connection when
// a pong does not come back within the interval.
func (c *conn) pingLoop(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, interval)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			_ = c.ws.CloseNow()
			c.cancel()
			return
		}
	}
}

// Read implements net.Conn.
func (c *conn) Read(p []byte) (int, error) {
	if len(c.cur) == 0 {
		c.dmu.Lock()
		dl := c.rdl
		c.dmu.Unlock()
		var expired <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			t := time.NewTimer(d)
			defer t.Stop()
			expired = t.C
		}
		select {
		case b, ok := <-c.msgs:
			if !ok {
				return 0, c.rerr
			}
			c.cur = b
		case <-expired:
			return 0, os.ErrDeadlineExceeded
		}
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

// Write implements net.Conn: p holds whole top-level elements, each sent
// as one message (an element cut short is kept for the next Write).
func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := p
	if len(c.pending) > 0 {
		b = append(c.pending, p...)
		c.pending = nil
	}
	ctx := c.ctx
	c.dmu.Lock()
	if dl := c.wdl; !dl.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	c.dmu.Unlock()
	rest, err := c2s.SplitElements(b, func(el []byte) error {
		return c.ws.Write(ctx, websocket.MessageText, el)
	})
	if err != nil {
		return 0, err
	}
	if len(rest) > 0 {
		c.pending = append([]byte(nil), rest...)
	}
	return len(p), nil
}

// Close implements net.Conn: a normal closure (the close handshake waits
// for the client's close frame for a few seconds at most).
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		_ = c.ws.Close(websocket.StatusNormalClosure, "")
		c.cancel()
	})
	return nil
}

// LocalAddr implements net.Conn.
func (c *conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr implements net.Conn: the client's address (after the HTTP
// server resolved trusted proxies).
func (c *conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline implements net.Conn.
func (c *conn) SetDeadline(t time.Time) error {
	c.dmu.Lock()
	c.rdl, c.wdl = t, t
	c.dmu.Unlock()
	return nil
}

// SetReadDeadline implements net.Conn.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	c.rdl = t
	c.dmu.Unlock()
	return nil
}

// SetWriteDeadline implements net.Conn.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	c.wdl = t
	c.dmu.Unlock()
	return nil
}
