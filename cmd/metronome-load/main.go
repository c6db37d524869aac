// Command metronome-load is a load generator for a Metronome server running
// on the same machine. It talks XMPP over loopback only, with its own small
// client: STARTTLS (or direct TLS, XEP-0368), SCRAM-SHA-256, resource
// binding and initial presence.
//
// It does not create accounts: create them first with metronomectl, in bulk
// ('jid password' lines), then run the tool against the same user pattern:
//
//	seq 0 9999 | sed 's/.*/load&@localhost secret/' > users.txt
//	metronomectl --config metronome.toml user import users.txt
//	metronome-load --addr 127.0.0.1:5222 --user 'load%d@localhost' --password secret \
//	    --sessions 10000 --idle --hold 10m
//
// Two modes:
//
//   - --idle logs the sessions in, prints a line starting with "UP" once
//     all are established, and holds them idle for --hold (or until
//     SIGINT/SIGTERM), so that the server's memory can be measured. It
//     fails if a login fails or a session is dropped while held.
//   - --messages N pairs the sessions (0↔1, 2↔3, ...) and sends N chat
//     messages among them at the fixed offered rate --rate, open loop. Each
//     message carries its scheduled send time (Unix nanoseconds) in its
//     body; the tool reports delivered, lost, bounced and misrouted counts
//     and latency percentiles, on a last line starting with "RESULT", and
//     fails if any message was not delivered exactly once.
//
// Everything is bounded: logins by --login-timeout, the whole run by
// --duration, the wait for the last deliveries by --drain. Exit status: 0
// success, 1 failure (failed logins, lost messages, dropped sessions, cap
// reached), 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/metronome-xmpp/metronome/xmpp/jid"
)

type options struct {
	addr         string
	directTLS    bool
	domain       string
	sessions     int
	first        int
	user         string // pattern with one %d
	password     string
	resource     string
	connectRate  float64
	concurrency  int
	loginTimeout time.Duration
	idle         bool
	hold         time.Duration
	messages     int
	rate         float64
	drain        time.Duration
	duration     time.Duration
	progress     time.Duration

	resolved string // loopback ip:port actually dialled
}

var (
	errInterrupted = errors.New("interrupted by a signal")
	errDurationCap = errors.New("duration cap (--duration) reached")
)

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "metronome-load:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		cancel(errInterrupted)
		signal.Stop(sig) // a second signal kills the process
	}()
	code := run(ctx, o, os.Stdout, os.Stderr)
	cancel(nil)
	os.Exit(code)
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("metronome-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		io.WriteString(stderr, "usage: metronome-load --sessions N --user 'load%d@localhost' --password P (--idle | --messages N) [flags]\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.addr, "addr", "", "server address, loopback only (default 127.0.0.1:5222, or 127.0.0.1:5223 with --tls)")
	fs.BoolVar(&o.directTLS, "tls", false, "direct TLS (XEP-0368) instead of STARTTLS: --addr is then the c2s_tls listener")
	fs.StringVar(&o.domain, "domain", "", "XMPP domain (default: the domain of --user, else localhost)")
	fs.IntVar(&o.sessions, "sessions", 10, "number of sessions")
	fs.IntVar(&o.first, "first", 0, "index of the first account (to split the accounts among several runs)")
	fs.StringVar(&o.user, "user", "load%d@localhost", "account name pattern; %d is replaced by the session index")
	fs.StringVar(&o.password, "password", "", "password of every account (required)")
	fs.StringVar(&o.resource, "resource", "load", "resource to bind")
	fs.Float64Var(&o.connectRate, "connect-rate", 0, "new sessions per second (0: as fast as --concurrency allows)")
	fs.IntVar(&o.concurrency, "concurrency", 32, "logins in progress at once")
	fs.DurationVar(&o.loginTimeout, "login-timeout", 30*time.Second, "time allowed for one login (connect to initial presence)")
	fs.BoolVar(&o.idle, "idle", false, "log the sessions in and hold them idle (memory measurement)")
	fs.DurationVar(&o.hold, "hold", 30*time.Second, "with --idle: how long to hold the sessions once all are up (SIGINT/SIGTERM ends it early)")
	fs.IntVar(&o.messages, "messages", 0, "number of chat messages to send between paired sessions")
	fs.Float64Var(&o.rate, "rate", 1000, "offered message rate, messages per second over all sessions")
	fs.DurationVar(&o.drain, "drain", 10*time.Second, "after the last send, how long to wait for the deliveries still missing")
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "cap on the whole run")
	fs.DurationVar(&o.progress, "progress", 5*time.Second, "interval of progress lines on stderr (0: none)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, o.check()
}

// check validates and completes the options.
func (o *options) check() error {
	switch {
	case o.idle && o.messages > 0:
		return errors.New("--idle and --messages are exclusive")
	case !o.idle && o.messages <= 0:
		return errors.New("choose a mode: --idle or --messages N")
	case o.sessions < 1:
		return errors.New("--sessions must be at least 1")
	case o.messages > 0 && o.sessions < 2:
		return errors.New("--messages needs at least 2 sessions")
	case o.messages > 50_000_000:
		return errors.New("--messages: at most 50000000")
	case o.first < 0:
		return errors.New("--first must not be negative")
	case o.password == "":
		return errors.New("--password is required")
	case o.concurrency < 1:
		return errors.New("--concurrency must be at least 1")
	case o.connectRate < 0 || o.rate <= 0:
		return errors.New("rates must be positive")
	case o.duration <= 0 || o.loginTimeout <= 0:
		return errors.New("--duration and --login-timeout must be positive")
	case strings.Count(o.user, "%") != 1 || !strings.Contains(o.user, "%d"):
		return fmt.Errorf("--user %q: needs exactly one %%d and no other %%", o.user)
	}
	// The pattern may carry the domain (load%d@localhost) or not (load%d).
	j, err := jid.Parse(fmt.Sprintf(o.user, o.first))
	if err != nil {
		return fmt.Errorf("--user %q: %v", o.user, err)
	}
	if j.Local() == "" {
		if strings.Contains(o.user, "@") {
			return fmt.Errorf("--user %q: no local part", o.user)
		}
		if o.domain == "" {
			o.domain = "localhost"
		}
		o.user += "@" + o.domain
	} else if o.domain == "" {
		o.domain = j.Domain()
	} else if !strings.EqualFold(o.domain, j.Domain()) {
		return fmt.Errorf("--domain %s differs from the domain of --user %s", o.domain, o.user)
	}
	if j.Resource() != "" {
		return fmt.Errorf("--user %q: no resource in the pattern; use --resource", o.user)
	}
	if o.addr == "" {
		o.addr = "127.0.0.1:5222"
		if o.directTLS {
			o.addr = "127.0.0.1:5223"
		}
	}
	a, err := net.ResolveTCPAddr("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("--addr: %v", err)
	}
	if !a.IP.IsLoopback() {
		return fmt.Errorf("--addr %s: this tool only talks to a server on loopback", o.addr)
	}
	o.resolved = a.String()
	return nil
}

// account returns the localpart of session i.
func (o *options) account(i int) string {
	j, err := jid.Parse(fmt.Sprintf(o.user, o.first+i))
	if err != nil {
		return fmt.Sprintf(o.user, o.first+i) // reported by the login
	}
	return j.Local()
}
