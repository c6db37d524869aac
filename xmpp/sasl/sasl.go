package sasl

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
)

// Mechanism names.
const (
	ScramSHA1       = "SCRAM-SHA-1"
	ScramSHA1Plus   = "SCRAM-SHA-1-PLUS"
	ScramSHA256     = "SCRAM-SHA-256"
	ScramSHA256Plus = "SCRAM-SHA-256-PLUS"
	ScramSHA512     = "SCRAM-SHA-512"
	ScramSHA512Plus = "SCRAM-SHA-512-PLUS"
	Plain           = "PLAIN"
)

// Channel-binding type names (XEP-0440, RFC 5056 registry).
const (
	CBTLSExporter       = "tls-exporter"
	CBTLSServerEndPoint = "tls-server-end-point"
)

// allMechanisms is every mechanism in preference order (the order of
// Config.Offered).
var allMechanisms = [...]string{
	ScramSHA512Plus, ScramSHA256Plus, ScramSHA1Plus,
	ScramSHA512, ScramSHA256, ScramSHA1,
	Plain,
}

// RFC 6120 §6.5 failure conditions.
const (
	Aborted              = "aborted"
	AccountDisabled      = "account-disabled"
	CredentialsExpired   = "credentials-expired"
	EncryptionRequired   = "encryption-required"
	IncorrectEncoding    = "incorrect-encoding"
	InvalidAuthzid       = "invalid-authzid"
	InvalidMechanism     = "invalid-mechanism"
	MalformedRequest     = "malformed-request"
	MechanismTooWeak     = "mechanism-too-weak"
	NotAuthorized        = "not-authorized"
	TemporaryAuthFailure = "temporary-auth-failure"
)

// Failure is a SASL failure: Condition is the RFC 6120 §6.5 condition
// element name to send in <failure/>. Text is a short English explanation
// that may be sent to the client as <text/>: it never reveals whether an
// account exists. Err, when set, is the internal cause (a Backend error, for
// instance); it is for logs and errors.Is, not for the client.
type Failure struct {
	Condition string
	Text      string
	Err       error
}

func (f *Failure) Error() string {
	s := "sasl: " + f.Condition
	if f.Text != "" {
		s += ": " + f.Text
	}
	if f.Err != nil {
		s += ": " + f.Err.Error()
	}
	return s
}

// Unwrap returns the internal cause.
func (f *Failure) Unwrap() error { return f.Err }

func fail(cond, text string) *Failure { return &Failure{Condition: cond, Text: text} }

// ErrCBType is the cause (Failure.Err) when the client asked for a
// channel-binding type this connection does not provide.
var ErrCBType = errors.New("sasl: unsupported channel-binding type")

// ErrNoUser is returned by a Backend for an unknown user.
var ErrNoUser = errors.New("sasl: no such user")

// ErrDisabled is the error (or the cause, via errors.Is) a Backend returns
// for a disabled (locked) account; it becomes the account-disabled condition.
var ErrDisabled = errors.New("sasl: account disabled")

// Backend looks up credentials. Usernames passed to it are already canonical
// (PrepUsername).
type Backend interface {
	// Credentials returns the SCRAM credentials of username for hash h.
	//
	// An unknown user (or one without credentials for h) returns ErrNoUser;
	// SCRAM then runs a fake exchange so the client cannot tell the user
	// does not exist. If the returned Credentials has Iter > 0 alongside
	// ErrNoUser, the fake exchange uses that iteration count (so that it
	// matches the count real accounts use).
	//
	// A disabled account returns an error wrapping ErrDisabled. If valid
	// Credentials are returned with it, the exchange runs to the end and the
	// client gets account-disabled only if its proof is right (not-authorized
	// otherwise); with zero Credentials the exchange fails at once with
	// account-disabled.
	//
	// Any other error fails the exchange with temporary-auth-failure (the
	// error is kept in Failure.Err).
	Credentials(ctx context.Context, username string, h Hash) (Credentials, error)

	// CheckPassword verifies a password for PLAIN. The password is passed as
	// the client sent it (valid UTF-8, not prepared); Derive applies
	// OpaqueString. It returns (false, nil) for a wrong password and
	// (false, nil) or ErrNoUser for an unknown user; errors wrapping
	// ErrDisabled and other errors are mapped as for Credentials.
	CheckPassword(ctx context.Context, username, password string) (bool, error)
}

// ChannelBinding holds the channel-binding data of the stream's TLS
// connection; a nil field means that type is not available, and the zero
// value means no TLS (or no channel binding). See TLSExporter and
// TLSServerEndPoint.
type ChannelBinding struct {
	Exporter []byte // tls-exporter (RFC 9266), TLS 1.3 only
	// ExportFunc, when Exporter is nil, computes the tls-exporter data
	// the first time an exchange needs it: most logins never use it.
	ExportFunc func() []byte
	EndPoint   []byte // tls-server-end-point (RFC 5929)
}

func (cb ChannelBinding) hasExporter() bool { return len(cb.Exporter) > 0 || cb.ExportFunc != nil }

func (cb ChannelBinding) available() bool { return cb.hasExporter() || len(cb.EndPoint) > 0 }

// data returns the channel-binding data for a type, or nil.
func (cb ChannelBinding) data(typ string) []byte {
	switch typ {
	case CBTLSExporter:
		if cb.Exporter == nil && cb.ExportFunc != nil {
			return cb.ExportFunc()
		}
		return cb.Exporter
	case CBTLSServerEndPoint:
		return cb.EndPoint
	}
	return nil
}

// Config describes the SASL offer of one stream.
type Config struct {
	Backend Backend
	// TLS reports whether the stream is encrypted; PLAIN is offered only
	// then.
	TLS bool
	// CB is the channel-binding data of the stream's TLS connection; -PLUS
	// mechanisms are offered only when at least one type is available.
	CB ChannelBinding
	// Mechanisms lists the mechanisms policy allows; empty allows all.
	Mechanisms []string
	// Downgrade adds the XEP-0474 downgrade protection hash ("h" attribute)
	// to SCRAM server-first-messages.
	Downgrade bool
	// Secret keys the fake salts given to unknown users. Set it to a stable
	// secret (e.g. from the server's data directory) so fake salts survive
	// restarts like real ones do; when empty a random per-process key is
	// used.
	Secret []byte
	// PlusRefused is set by the stream when, earlier on this same stream,
	// the client tried a -PLUS mechanism with a channel-binding type the
	// server does not support (e.g. tls-unique on TLS 1.3). Such a client
	// has seen the -PLUS offer, so its later gs2 flag 'y' is no sign of a
	// stripped offer (RFC 5802 §6) and is accepted.
	PlusRefused bool

	// nonce generates server nonces; nil means random. For tests.
	nonce func() string
}

// allowed reports whether policy allows mech.
func (c *Config) allowed(mech string) bool {
	return len(c.Mechanisms) == 0 || slices.Contains(c.Mechanisms, mech)
}

// Offered returns the mechanisms to advertise, strongest first:
// SCRAM-SHA-512-PLUS, SCRAM-SHA-256-PLUS, SCRAM-SHA-1-PLUS (only when a
// channel-binding type is available), SCRAM-SHA-512, SCRAM-SHA-256,
// SCRAM-SHA-1 and PLAIN (only over TLS), filtered by Mechanisms.
func (c Config) Offered() []string {
	out := make([]string, 0, len(allMechanisms))
	for _, m := range allMechanisms {
		if c.offers(m) {
			out = append(out, m)
		}
	}
	return out
}

// offers reports whether mech is advertised.
func (c *Config) offers(mech string) bool {
	if !slices.Contains(allMechanisms[:], mech) || !c.allowed(mech) {
		return false
	}
	if mech == Plain {
		return c.TLS
	}
	if strings.HasSuffix(mech, "-PLUS") {
		return c.CB.available()
	}
	return true
}

// plusOffered reports whether any -PLUS mechanism is advertised.
func (c *Config) plusOffered() bool {
	return c.offers(ScramSHA512Plus) || c.offers(ScramSHA256Plus) || c.offers(ScramSHA1Plus)
}

// CBTypes returns the channel-binding types to advertise with XEP-0440:
// "tls-exporter" when CB.Exporter or CB.ExportFunc is set and "tls-server-end-point" when
// CB.EndPoint is set. When it is empty, do not send the
// <sasl-channel-binding/> element (the XEP-0474 hash assumes so).
func (c Config) CBTypes() []string {
	var out []string
	if c.CB.hasExporter() {
		out = append(out, CBTLSExporter)
	}
	if len(c.CB.EndPoint) > 0 {
		out = append(out, CBTLSServerEndPoint)
	}
	return out
}

// Server is one server-side SASL exchange.
type Server interface {
	// Step consumes the client's (base64-decoded) data and returns the data
	// to send: a challenge when done is false, or the additional data for
	// <success/> when done is true (may be empty). An empty in on the first
	// Step means the client sent no initial response: Step returns an empty
	// challenge. On error (always a *Failure) the exchange is over.
	Step(ctx context.Context, in []byte) (out []byte, done bool, err error)
	// Username returns the canonical username (localpart); valid when done.
	Username() string
	// Authzid returns the authorization identity the client asked for, or
	// "" for none; valid when done. Checking it (invalid-authzid unless it
	// is the user's own bare JID, for instance) is up to the caller.
	Authzid() string
}

// NewServer starts an exchange for mech. A mechanism that is unknown or not
// offered gives *Failure{Condition: "invalid-mechanism"}; PLAIN without TLS
// gives encryption-required.
func (c Config) NewServer(mech string) (Server, error) {
	if !c.offers(mech) {
		if mech == Plain && c.allowed(mech) && !c.TLS {
			return nil, fail(EncryptionRequired, "PLAIN requires TLS")
		}
		return nil, fail(InvalidMechanism, "mechanism not offered")
	}
	if c.Backend == nil {
		return nil, fail(TemporaryAuthFailure, "no authentication backend")
	}
	if mech == Plain {
		return &plainServer{cfg: c}, nil
	}
	h, plus := mechHash(mech)
	return newScram(c, h, plus), nil
}

// mechHash parses a SCRAM mechanism name.
func mechHash(mech string) (Hash, bool) {
	plus := strings.HasSuffix(mech, "-PLUS")
	mech = strings.TrimSuffix(mech, "-PLUS")
	return Hash(strings.TrimPrefix(mech, "SCRAM-")), plus
}

// DecodePayload decodes the base64 text of an <auth/>, <response/> (RFC 6120
// §6.4.2): "=" is an empty response; invalid base64 gives
// *Failure{Condition: "incorrect-encoding"}. An empty string (no data) also
// decodes to an empty slice.
func DecodePayload(s string) ([]byte, error) {
	if s == "=" || s == "" {
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, &Failure{Condition: IncorrectEncoding, Text: "invalid base64", Err: err}
	}
	return b, nil
}

// EncodePayload encodes data for a <challenge/> or <success/>: zero-length
// data is "=" (RFC 6120 §6.4). A <success/> without additional data (PLAIN,
// where Step returns nil) is sent as an empty element instead.
func EncodePayload(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}
