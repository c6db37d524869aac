package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"
)

// Fake-exchange parameters for unknown users.
const (
	// FakeIter is the iteration count of fake exchanges when the Backend
	// gives no hint (see Backend.Credentials).
	FakeIter = 4096
	// fakeSaltLen is the length of fake salts; real salts should have the
	// same length (package account uses 16 bytes).
	fakeSaltLen = 16
	// nonceLen is the number of random bytes in a server nonce.
	nonceLen = 18
)

// processSecret keys fake salts when Config.Secret is empty.
var processSecret = func() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}()

const (
	scramFirst = iota // waiting for client-first-message
	scramFinal        // waiting for client-final-message
	scramDone         // finished (success or failure)
)

type scramServer struct {
	cfg   Config
	h     Hash
	plus  bool
	state int
	empty bool // the first Step had no data and got an empty challenge

	gs2Header   string
	cbData      []byte // expected channel-binding data (flag 'p')
	clientBare  string
	serverFirst string
	nonce       string // full nonce (client + server)

	creds    Credentials
	fake     bool  // unknown user: always fail
	disabled error // account disabled; fail after a valid proof

	username, authzid string
}

func newScram(c Config, h Hash, plus bool) *scramServer {
	return &scramServer{cfg: c, h: h, plus: plus}
}

func (s *scramServer) Username() string { return s.username }
func (s *scramServer) Authzid() string  { return s.authzid }

func (s *scramServer) Step(ctx context.Context, in []byte) (out []byte, done bool, err error) {
	switch s.state {
	case scramFirst:
		if len(in) == 0 && !s.empty {
			s.empty = true
			return nil, false, nil
		}
		out, err = s.first(ctx, string(in))
		if err != nil {
			s.state = scramDone
			return nil, true, err
		}
		s.state = scramFinal
		return out, false, nil
	case scramFinal:
		s.state = scramDone
		out, err = s.final(string(in))
		if err != nil {
			s.username, s.authzid = "", ""
			return nil, true, err
		}
		return out, true, nil
	}
	return nil, true, malformed("exchange already finished")
}

// first handles the client-first-message and returns the
// server-first-message.
func (s *scramServer) first(ctx context.Context, msg string) ([]byte, error) {
	cf, f := parseClientFirst(msg)
	if f != nil {
		return nil, f
	}
	// Channel-binding flag rules (RFC 5802 §6, §7).
	switch cf.flag {
	case 'p':
		if !s.plus {
			return nil, malformed("channel binding requested with a non-PLUS mechanism")
		}
		s.cbData = s.cfg.CB.data(cf.cbName)
		if len(s.cbData) == 0 {
			f := fail(NotAuthorized, "unsupported channel-binding type")
			f.Err = ErrCBType
			return nil, f
		}
	case 'y':
		if s.plus {
			return nil, malformed("PLUS mechanism without channel binding")
		}
		if s.cfg.plusOffered() && !s.cfg.PlusRefused {
			// The client supports channel binding but did not see a -PLUS
			// mechanism: they were stripped from the offer.
			return nil, fail(NotAuthorized, "channel binding is supported: possible downgrade attack")
		}
	default: // 'n'
		if s.plus {
			return nil, malformed("PLUS mechanism without channel binding")
		}
	}
	user, err := PrepUsername(cf.username)
	if err != nil {
		return nil, fail(NotAuthorized, "invalid username")
	}
	s.gs2Header, s.clientBare = cf.gs2Header, cf.bare
	s.authzid = cf.authzid

	creds, err := s.cfg.Backend.Credentials(ctx, user, s.h)
	switch {
	case err == nil:
		if !creds.valid(s.h) {
			return nil, &Failure{Condition: TemporaryAuthFailure, Text: "internal error", Err: errors.New("sasl: backend returned invalid credentials")}
		}
	case errors.Is(err, ErrNoUser):
		creds = s.fakeCredentials(user, creds.Iter)
		s.fake = true
	case errors.Is(err, ErrDisabled):
		if !creds.valid(s.h) {
			return nil, &Failure{Condition: AccountDisabled, Text: "account disabled", Err: err}
		}
		s.disabled = err
	default:
		return nil, &Failure{Condition: TemporaryAuthFailure, Text: "internal error", Err: err}
	}
	s.creds = creds
	s.username = user

	var snonce string
	if s.cfg.nonce != nil {
		snonce = s.cfg.nonce()
	} else {
		var b [nonceLen]byte
		rand.Read(b[:])
		snonce = base64.StdEncoding.EncodeToString(b[:])
	}
	s.nonce = cf.nonce + snonce

	saltLen := base64.StdEncoding.EncodedLen(len(creds.Salt))
	buf := make([]byte, 0, 2+len(s.nonce)+3+saltLen+3+10+64)
	buf = append(buf, "r="...)
	buf = append(buf, s.nonce...)
	buf = append(buf, ",s="...)
	buf = base64.StdEncoding.AppendEncode(buf, creds.Salt)
	buf = append(buf, ",i="...)
	buf = strconv.AppendInt(buf, int64(creds.Iter), 10)
	if s.cfg.Downgrade {
		buf = append(buf, ",h="...)
		buf = append(buf, DowngradeHash(s.h, s.cfg.Offered(), s.cfg.CBTypes())...)
	}
	s.serverFirst = string(buf)
	return buf, nil
}

// fakeCredentials returns deterministic credentials for an unknown user:
// the salt is an HMAC of the username, so repeated attempts see the same
// salt, as they would for a real account.
func (s *scramServer) fakeCredentials(user string, iter int) Credentials {
	if iter <= 0 {
		iter = FakeIter
	}
	key := s.cfg.Secret
	if len(key) == 0 {
		key = processSecret
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("scram-fake-salt\x00"))
	m.Write([]byte(s.h))
	m.Write([]byte{0})
	m.Write([]byte(user))
	sum := m.Sum(nil)
	n := s.h.Size()
	keys := make([]byte, 2*n)
	rand.Read(keys)
	return Credentials{Salt: sum[:fakeSaltLen], Iter: iter, StoredKey: keys[:n], ServerKey: keys[n:]}
}

// final handles the client-final-message and returns the
// server-final-message.
func (s *scramServer) final(msg string) ([]byte, error) {
	cf, f := parseClientFinal(msg)
	if f != nil {
		return nil, f
	}
	if cf.nonce != s.nonce {
		return nil, fail(NotAuthorized, "nonce mismatch")
	}
	// c= must be the gs2 header followed by the channel-binding data.
	if len(cf.cbind) != len(s.gs2Header)+len(s.cbData) ||
		subtle.ConstantTimeCompare(cf.cbind[:len(s.gs2Header)], []byte(s.gs2Header)) != 1 ||
		subtle.ConstantTimeCompare(cf.cbind[len(s.gs2Header):], s.cbData) != 1 {
		return nil, fail(NotAuthorized, "channel binding mismatch")
	}
	n := s.h.Size()
	if len(cf.proof) != n {
		return nil, malformed("invalid proof length")
	}

	// AuthMessage = client-first-message-bare + "," +
	// server-first-message + "," + client-final-message-without-proof.
	authMsg := make([]byte, 0, len(s.clientBare)+len(s.serverFirst)+len(cf.withoutProof)+2)
	authMsg = append(authMsg, s.clientBare...)
	authMsg = append(authMsg, ',')
	authMsg = append(authMsg, s.serverFirst...)
	authMsg = append(authMsg, ',')
	authMsg = append(authMsg, cf.withoutProof...)

	newHash := s.h.New()
	mac := hmac.New(newHash, s.creds.StoredKey)
	mac.Write(authMsg)
	var sig [64]byte
	clientSig := mac.Sum(sig[:0])
	// ClientKey = ClientProof XOR ClientSignature; check H(ClientKey) == StoredKey.
	subtle.XORBytes(clientSig, clientSig, cf.proof)
	hh := newHash()
	hh.Write(clientSig)
	var sum [64]byte
	ok := hmac.Equal(hh.Sum(sum[:0]), s.creds.StoredKey)
	if !ok || s.fake {
		return nil, fail(NotAuthorized, "invalid credentials")
	}
	if s.disabled != nil {
		return nil, &Failure{Condition: AccountDisabled, Text: "account disabled", Err: s.disabled}
	}

	mac = hmac.New(newHash, s.creds.ServerKey)
	mac.Write(authMsg)
	serverSig := mac.Sum(sig[:0])
	out := make([]byte, 0, 2+base64.StdEncoding.EncodedLen(n))
	out = append(out, "v="...)
	out = base64.StdEncoding.AppendEncode(out, serverSig)
	return out, nil
}
