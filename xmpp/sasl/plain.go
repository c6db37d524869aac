package sasl

import (
	"bytes"
	"context"
	"errors"
	"unicode/utf8"
)

// plainServer implements PLAIN (RFC 4616):
//
//	message = [authzid] UTF8NUL authcid UTF8NUL passwd
type plainServer struct {
	cfg               Config
	state             int // scramFirst, scramDone
	empty             bool
	username, authzid string
}

func (p *plainServer) Username() string { return p.username }
func (p *plainServer) Authzid() string  { return p.authzid }

func (p *plainServer) Step(ctx context.Context, in []byte) ([]byte, bool, error) {
	if p.state == scramDone {
		return nil, true, malformed("exchange already finished")
	}
	if len(in) == 0 && !p.empty {
		p.empty = true
		return nil, false, nil
	}
	p.state = scramDone
	authzid, authcid, passwd, f := parsePlain(in)
	if f != nil {
		return nil, true, f
	}
	user, err := PrepUsername(authcid)
	if err != nil {
		return nil, true, fail(NotAuthorized, "invalid credentials")
	}
	ok, err := p.cfg.Backend.CheckPassword(ctx, user, passwd)
	switch {
	case err == nil:
	case errors.Is(err, ErrNoUser):
		ok = false
	case errors.Is(err, ErrDisabled):
		return nil, true, &Failure{Condition: AccountDisabled, Text: "account disabled", Err: err}
	default:
		return nil, true, &Failure{Condition: TemporaryAuthFailure, Text: "internal error", Err: err}
	}
	if !ok {
		return nil, true, fail(NotAuthorized, "invalid credentials")
	}
	p.username, p.authzid = user, authzid
	return nil, true, nil
}

// parsePlain splits a PLAIN message. authcid and passwd must be non-empty;
// all parts must be valid UTF-8.
func parsePlain(in []byte) (authzid, authcid, passwd string, f *Failure) {
	if len(in) > maxMessage {
		return "", "", "", malformed("message too long")
	}
	a, rest, ok := bytes.Cut(in, []byte{0})
	if !ok {
		return "", "", "", malformed("missing NUL separator")
	}
	c, pw, ok := bytes.Cut(rest, []byte{0})
	if !ok || bytes.IndexByte(pw, 0) >= 0 {
		return "", "", "", malformed("PLAIN needs exactly two NUL separators")
	}
	if len(c) == 0 || len(pw) == 0 {
		return "", "", "", malformed("empty authcid or password")
	}
	if !utf8.Valid(in) {
		return "", "", "", malformed("invalid UTF-8")
	}
	return string(a), string(c), string(pw), nil
}
