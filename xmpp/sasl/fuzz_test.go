package sasl

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzBackend is a cheap Backend for fuzzing: fixed credentials for every
// user except "nobody".
type fuzzBackend struct{ creds map[Hash]Credentials }

func newFuzzBackend(tb testing.TB) *fuzzBackend {
	fb := &fuzzBackend{creds: map[Hash]Credentials{}}
	for _, h := range Hashes {
		c, err := Derive(h, "pencil", []byte("salt"), 1)
		if err != nil {
			tb.Fatal(err)
		}
		fb.creds[h] = c
	}
	return fb
}

func (fb *fuzzBackend) Credentials(_ context.Context, user string, h Hash) (Credentials, error) {
	if user == "nobody" {
		return Credentials{}, ErrNoUser
	}
	return fb.creds[h], nil
}

func (fb *fuzzBackend) CheckPassword(_ context.Context, user, password string) (bool, error) {
	return user != "nobody" && password == "pencil", nil
}

func checkFailure(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("error %v is not a *Failure", err)
	}
	switch f.Condition {
	case MalformedRequest, NotAuthorized, IncorrectEncoding:
	default:
		t.Fatalf("unexpected condition %q", f.Condition)
	}
}

func FuzzSCRAMClientFirst(f *testing.F) {
	for _, s := range []string{
		"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
		"y,,n=user,r=abc",
		"p=tls-exporter,a=admin=2C,n=us=3Der,r=abc,x=ext",
		"n,,m=x,n=user,r=abc",
		"p=tls-server-end-point,,n=nobody,r=abc",
	} {
		f.Add(s)
	}
	be := newFuzzBackend(f)
	f.Fuzz(func(t *testing.T, msg string) {
		cf, fail := parseClientFirst(msg)
		if fail == nil {
			if cf.gs2Header+cf.bare != msg || !strings.HasSuffix(cf.gs2Header, ",") {
				t.Fatalf("header %q + bare %q != %q", cf.gs2Header, cf.bare, msg)
			}
			if !printable(cf.nonce) || !utf8.ValidString(cf.username) || cf.username == "" {
				t.Fatalf("bad fields %+v", cf)
			}
		}
		for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1-PLUS"} {
			cfg := Config{Backend: be, TLS: true, CB: ChannelBinding{Exporter: []byte("cb")}, Downgrade: true}
			srv, err := cfg.NewServer(mech)
			if err != nil {
				t.Fatal(err)
			}
			out, done, err := srv.Step(context.Background(), []byte(msg))
			checkFailure(t, err)
			if err == nil && msg != "" && (done || !strings.HasPrefix(string(out), "r=")) {
				t.Fatalf("server-first %q done %v", out, done)
			}
		}
	})
}

func FuzzSCRAMClientFinal(f *testing.F) {
	for _, s := range []string{
		"c=biws,r=abcSRV,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		"c=biws,r=abcSRV,x=1,p=AAAA",
		"c=biws,r=abcSRV,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"c=cD10bHMtZXhwb3J0ZXIsLGNi,r=abcSRV,p=",
	} {
		f.Add(s)
	}
	be := newFuzzBackend(f)
	f.Fuzz(func(t *testing.T, msg string) {
		cf, fail := parseClientFinal(msg)
		if fail == nil {
			if !strings.HasPrefix(msg, cf.withoutProof+",p=") {
				t.Fatalf("without-proof %q not a prefix of %q", cf.withoutProof, msg)
			}
		}
		cfg := Config{Backend: be, nonce: fixedNonce("SRV")}
		srv, _ := cfg.NewServer("SCRAM-SHA-1")
		if _, _, err := srv.Step(context.Background(), []byte("n,,n=user,r=abc")); err != nil {
			t.Fatal(err)
		}
		_, done, err := srv.Step(context.Background(), []byte(msg))
		if !done {
			t.Fatal("not done after final")
		}
		checkFailure(t, err)
	})
}

func FuzzPLAIN(f *testing.F) {
	for _, s := range []string{"\x00user\x00pencil", "authz\x00user\x00pencil", "\x00nobody\x00x", "a\x00b"} {
		f.Add([]byte(s))
	}
	be := newFuzzBackend(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		cfg := Config{Backend: be, TLS: true}
		srv, _ := cfg.NewServer("PLAIN")
		_, done, err := srv.Step(context.Background(), msg)
		if len(msg) > 0 && !done {
			t.Fatal("not done")
		}
		checkFailure(t, err)
		if err == nil && len(msg) > 0 && srv.Username() == "" {
			t.Fatal("success without username")
		}
	})
}

func FuzzDecodeName(f *testing.F) {
	for _, s := range []string{"user", "a=2Cb=3D", "=", "=2", "=2c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := decodeName(s)
		if !ok {
			return
		}
		if strings.ContainsRune(s, ',') {
			return // the caller splits on ','
		}
		if got := encodeName(d); got != s {
			t.Fatalf("encodeName(decodeName(%q)) = %q", s, got)
		}
	})
}
