// Package admin is the local control channel between metronomectl and the
// daemon: a unix socket (mode 0600, so only the daemon's user and root can
// use it) carrying one JSON request and one JSON response per connection.
//
// It also holds the administrative operations themselves (ops.go: users,
// sessions, messages, status, statistics), one implementation behind both
// the socket and the HTTP admin API of internal/httpd.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"
)

// Request is one command.
type Request struct {
	Op   string          `json:"op"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Response is the answer to a Request.
type Response struct {
	OK    bool            `json:"ok"`
	Error string          `json:"error,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// Handler answers a request; the returned value is encoded as Data.
type Handler func(ctx context.Context, op string, args json.RawMessage) (any, error)

// Server serves the admin socket.
type Server struct {
	l   net.Listener
	log *slog.Logger
}

// Listen opens the unix socket at path (removing a stale one) and serves h.
func Listen(path string, h Handler, log *slog.Logger) (*Server, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		return nil, fmt.Errorf("admin socket %s is in use: is another metronome running?", path)
	}
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	s := &Server{l: l, log: log}
	go s.serve(h)
	return s, nil
}

func (s *Server) serve(h Handler) {
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
			var req Request
			if err := json.NewDecoder(c).Decode(&req); err != nil {
				_ = json.NewEncoder(c).Encode(Response{Error: "bad request: " + err.Error()})
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			v, err := h(ctx, req.Op, req.Args)
			resp := Response{OK: err == nil}
			if err != nil {
				resp.Error = err.Error()
			} else if v != nil {
				resp.Data, _ = json.Marshal(v)
			}
			_ = json.NewEncoder(c).Encode(resp)
		}()
	}
}

// Close stops serving and removes the socket.
func (s *Server) Close() error {
	err := s.l.Close()
	_ = os.Remove(s.l.Addr().String())
	return err
}

// ErrNotRunning means nothing answers on the socket.
var ErrNotRunning = errors.New("the server is not running (no answer on the admin socket)")

// Call sends one request to the daemon and decodes Data into out (if non-nil).
func Call(ctx context.Context, path, op string, args any, out any) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return ErrNotRunning
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	req := Request{Op: op}
	if args != nil {
		if req.Args, err = json.Marshal(args); err != nil {
			return err
		}
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return err
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return fmt.Errorf("admin: reading the answer: %w", err)
	}
	if !resp.OK {
		return errors.New(resp.Error)
	}
	if out != nil && len(resp.Data) > 0 {
		return json.Unmarshal(resp.Data, out)
	}
	return nil
}
