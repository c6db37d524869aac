// Command metronome-load is a load generator for a Metronome server (or any
// XMPP server) running on the same machine. It talks XMPP over loopback
// only, with its own small client: STARTTLS or direct TLS (XEP-0368),
// SCRAM-SHA-1 or SCRAM-SHA-256, resource binding and initial presence.
//
// --transport picks what the XML travels over: tcp (the default: an XMPP
// stream over TCP, --addr), websocket (RFC 7395 over ws:// or wss://,
// --url: <open/>/<close/> framing, one element per text message) or bosh
// (XEP-0124/XEP-0206 over http:// or https://, --url: session creation with
// hold=1 and wait=60, the stream restart after SASL, and between stanzas a
// single request held by the server, sent again whenever it is answered).
// SASL, binding, presence and the scenarios are the same on all three.
// HTTP is HTTP/1.1 with keep-alive; each BOSH session has its own client
// with at most two connections, as a browser page has. In the idle
// scenario over BOSH the connection a session left idle after its login
// is closed before the memory is read (as the server's keep-alive timeout
// would close it), so that each session has one connection, the one its
// held request is on.
//
// It does not create accounts: create them first with metronomectl, in bulk
// ('jid password' lines), then run the tool against the same user pattern:
//
//	seq 0 9999 | sed 's/.*/load&@localhost secret/' > users.txt
//	metronomectl --config metronome.toml user import users.txt
//	metronome-load idle --addr 127.0.0.1:5222 --user 'load%d@localhost' --password secret \
//	    --sessions 10000 --server-pid $(cat data/metronome.pid)
//
// Scenarios (the first argument):
//
//   - idle logs --sessions in at --connect-rate, reports the login rate and
//     the p50/p99 login latency (TCP connect to the answer that follows
//     initial presence), prints a line starting with "UP", holds the
//     sessions idle for --hold, and reports the server's resident memory
//     per session (VmRSS of --server-pid before the logins and after
//     --settle). It fails if a login fails or a session is dropped. With
//     --relogin every session logs in, out and in again, and the second
//     wave is measured: a real client keeps its salted password (SCRAM's
//     PBKDF2 is the costliest part of a login, on the client side), and
//     with --tls-resume its TLS session.
//   - chat logs --sessions in, then for each offered rate of --rates sends
//     rate × --step one-to-one chat messages, each from a random online
//     user to another random online user, open loop (a late sender shows
//     up as latency, not as a lower rate). For each rate it reports the
//     delivered rate, the end-to-end latency p50/p99/p999 (the body
//     carries the scheduled send time), losses, duplicates, and the CPU
//     seconds per 1,000 messages of the server (--server-pid) and of the
//     tool itself. --saturate keeps raising the rate by half after the
//     listed ones until a step has p99 above --p99-limit or any loss; the
//     saturation rate is the highest rate that had neither.
//   - muc puts the sessions in rooms of --room-size occupants on the MUC
//     service --service, then sends groupchat messages at the offered
//     rates, each from a random occupant to its room; every occupant,
//     the sender included, must receive each message once. Rates and
//     latencies are per delivery as well as per message.
//
// Results go to stdout as a table, and to --json FILE as JSON. Everything is
// bounded: logins by --login-timeout, each step by --step plus --drain, the
// whole run by --duration. Exit status: 0 success, 1 failure (failed logins,
// lost or duplicated messages, dropped sessions, cap reached), 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/metronome-xmpp/metronome/xmpp/jid"
)

type options struct {
	scenario     string // idle | chat | muc
	transport    string // tcp | websocket | bosh
	url          string // websocket, bosh: the endpoint
	addr         string
	directTLS    bool
	domain       string
	sessions     int
	first        int
	user         string // pattern with one %d
	password     string
	resource     string
	mechanism    string
	connectRate  float64
	concurrency  int
	loginTimeout time.Duration
	serverPID    int
	jsonPath     string

	// idle
	hold    time.Duration
	settle  time.Duration
	relogin bool

	tlsResume bool

	// chat and muc
	rates    []float64
	step     time.Duration
	saturate bool
	maxRate  float64
	p99Limit time.Duration
	drain    time.Duration
	seed     uint64

	// muc
	service  string
	roomSize int

	duration time.Duration
	progress time.Duration

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

const usage = `usage: metronome-load idle|chat|muc --password P [flags]

  idle   log sessions in, hold them, report login rate/latency and server memory per session
  chat   one-to-one messages between random online users at fixed offered rates
  muc    groupchat messages in rooms of --room-size occupants at fixed offered rates

flags:
`

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			io.WriteString(stderr, usage)
			return nil, flag.ErrHelp
		}
		return nil, errors.New("the first argument must be a scenario: idle, chat or muc (--help for flags)")
	}
	o.scenario, args = args[0], args[1:]
	switch o.scenario {
	case "idle", "chat", "muc":
	default:
		return nil, fmt.Errorf("unknown scenario %q: idle, chat or muc", o.scenario)
	}
	fs := flag.NewFlagSet("metronome-load "+o.scenario, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		io.WriteString(stderr, usage)
		fs.PrintDefaults()
	}
	var rates string
	fs.StringVar(&o.transport, "transport", transportTCP, "tcp (XMPP over TCP with TLS), websocket (RFC 7395, --url ws:// or wss://) or bosh (XEP-0206, --url http:// or https://)")
	fs.StringVar(&o.url, "url", "", "websocket, bosh: the endpoint, loopback only (default wss://127.0.0.1:5281/xmpp-websocket, https://127.0.0.1:5281/http-bind); certificates are not verified")
	fs.StringVar(&o.addr, "addr", "", "server address, loopback only (default 127.0.0.1:5222, or 127.0.0.1:5223 with --tls)")
	fs.BoolVar(&o.directTLS, "tls", false, "direct TLS (XEP-0368) instead of STARTTLS: --addr is then the c2s_tls listener")
	fs.StringVar(&o.domain, "domain", "", "XMPP domain (default: the domain of --user, else localhost)")
	fs.IntVar(&o.sessions, "sessions", 10, "number of sessions")
	fs.IntVar(&o.first, "first", 0, "index of the first account (to split the accounts among several runs)")
	fs.StringVar(&o.user, "user", "load%d@localhost", "account name pattern; %d is replaced by the session index")
	fs.StringVar(&o.password, "password", "", "password of every account (required)")
	fs.StringVar(&o.resource, "resource", "load", "resource to bind")
	fs.StringVar(&o.mechanism, "mechanism", "SCRAM-SHA-1", "SASL mechanism: SCRAM-SHA-1 or SCRAM-SHA-256")
	fs.Float64Var(&o.connectRate, "connect-rate", 0, "new sessions per second (0: as fast as --concurrency allows)")
	fs.IntVar(&o.concurrency, "concurrency", 32, "logins in progress at once")
	fs.DurationVar(&o.loginTimeout, "login-timeout", 30*time.Second, "time allowed for one login (connect to initial presence)")
	fs.IntVar(&o.serverPID, "server-pid", 0, "PID of the server, for its memory and CPU time (/proc); 0: not measured")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this file")
	fs.DurationVar(&o.hold, "hold", 30*time.Second, "idle: how long to hold the sessions once all are up (SIGINT/SIGTERM ends it early)")
	fs.BoolVar(&o.relogin, "relogin", false, "idle: log every session in, out, and in again; the second wave is measured (the tool then has each account's salted password, as a real client keeps it)")
	fs.BoolVar(&o.tlsResume, "tls-resume", false, "resume TLS sessions (tickets) on reconnection, as real clients do")
	fs.DurationVar(&o.settle, "settle", 10*time.Second, "idle: wait this long after the logins before reading the server's memory (within --hold)")
	fs.StringVar(&rates, "rates", "1000", "chat, muc: offered message rates, messages per second, comma-separated, one step each")
	fs.DurationVar(&o.step, "step", 10*time.Second, "chat, muc: duration of each rate step")
	fs.BoolVar(&o.saturate, "saturate", false, "chat, muc: after --rates, raise the rate by half per step until p99 > --p99-limit or a loss")
	fs.Float64Var(&o.maxRate, "max-rate", 200000, "chat, muc: highest rate --saturate tries")
	fs.DurationVar(&o.p99Limit, "p99-limit", 100*time.Millisecond, "chat, muc: the p99 latency a step may have to count as sustained")
	fs.DurationVar(&o.drain, "drain", 10*time.Second, "chat, muc: after a step's last send, how long to wait for the deliveries still missing")
	fs.Uint64Var(&o.seed, "seed", 1, "chat, muc: seed of the random choice of senders and recipients")
	fs.StringVar(&o.service, "service", "", "muc: MUC service domain (default conference.<domain>)")
	fs.IntVar(&o.roomSize, "room-size", 50, "muc: occupants per room (at most 64)")
	fs.DurationVar(&o.duration, "duration", 30*time.Minute, "cap on the whole run")
	fs.DurationVar(&o.progress, "progress", 5*time.Second, "interval of progress lines on stderr (0: none)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for f := range strings.SplitSeq(rates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("--rates %q: %q is not a positive number", rates, f)
		}
		o.rates = append(o.rates, r)
	}
	return o, o.check()
}

// check validates and completes the options.
func (o *options) check() error {
	switch {
	case o.sessions < 1:
		return errors.New("--sessions must be at least 1")
	case o.scenario == "chat" && o.sessions < 2:
		return errors.New("chat needs at least 2 sessions")
	case o.scenario == "muc" && (o.roomSize < 2 || o.roomSize > 64):
		return errors.New("--room-size must be between 2 and 64")
	case o.scenario == "muc" && o.sessions < o.roomSize:
		return fmt.Errorf("muc needs at least --room-size (%d) sessions", o.roomSize)
	case o.first < 0:
		return errors.New("--first must not be negative")
	case o.password == "":
		return errors.New("--password is required")
	case o.mechanism != "SCRAM-SHA-1" && o.mechanism != "SCRAM-SHA-256":
		return errors.New("--mechanism: SCRAM-SHA-1 or SCRAM-SHA-256")
	case o.concurrency < 1:
		return errors.New("--concurrency must be at least 1")
	case o.connectRate < 0 || o.maxRate <= 0:
		return errors.New("rates must be positive")
	case o.duration <= 0 || o.loginTimeout <= 0 || o.step <= 0 || o.drain < 0:
		return errors.New("--duration, --login-timeout and --step must be positive")
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
	if o.service == "" {
		o.service = "conference." + o.domain
	}
	switch o.transport {
	case transportTCP:
		if o.url != "" {
			return errors.New("--url is for --transport websocket or bosh; use --addr")
		}
	case transportWebSocket, transportBOSH:
		if o.directTLS || o.addr != "" {
			return fmt.Errorf("--transport %s: use --url, not --addr or --tls", o.transport)
		}
		return o.checkURL()
	default:
		return fmt.Errorf("--transport %q: tcp, websocket or bosh", o.transport)
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

// checkURL validates --url (or sets its default) for the websocket and
// bosh transports: the scheme must suit the transport, the host must be a
// loopback address.
func (o *options) checkURL() error {
	if o.url == "" {
		o.url = "wss://127.0.0.1:5281/xmpp-websocket"
		if o.transport == transportBOSH {
			o.url = "https://127.0.0.1:5281/http-bind"
		}
	}
	u, err := url.Parse(o.url)
	if err != nil {
		return fmt.Errorf("--url: %v", err)
	}
	schemes := map[string]string{"ws": "80", "wss": "443"}
	if o.transport == transportBOSH {
		schemes = map[string]string{"http": "80", "https": "443"}
	}
	port, ok := schemes[u.Scheme]
	if !ok || u.Host == "" {
		return fmt.Errorf("--url %q: not a %s URL", o.url, map[string]string{transportWebSocket: "ws:// or wss://", transportBOSH: "http:// or https://"}[o.transport])
	}
	if u.Port() != "" {
		port = u.Port()
	}
	a, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return fmt.Errorf("--url: %v", err)
	}
	if !a.IP.IsLoopback() {
		return fmt.Errorf("--url %s: this tool only talks to a server on loopback", o.url)
	}
	o.resolved = o.url
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
