package sasl

import (
	"context"
	"errors"
	"testing"
)

func TestPlain(t *testing.T) {
	b := newTestBackend(map[string]string{"juliet": "r0m€o"})
	cfg := Config{Backend: b, TLS: true}
	ctx := context.Background()
	run := func(msg string) (Server, error) {
		srv, err := cfg.NewServer("PLAIN")
		if err != nil {
			t.Fatal(err)
		}
		out, done, err := srv.Step(ctx, []byte(msg))
		if !done || len(out) != 0 {
			t.Fatalf("%q: done %v out %q", msg, done, out)
		}
		return srv, err
	}

	srv, err := run("\x00Juliet\x00r0m€o")
	if err != nil || srv.Username() != "juliet" || srv.Authzid() != "" {
		t.Fatalf("plain: %v %q %q", err, srv.Username(), srv.Authzid())
	}
	srv, err = run("juliet@example.com/balcony\x00juliet\x00r0m€o")
	if err != nil || srv.Username() != "juliet" || srv.Authzid() != "juliet@example.com/balcony" {
		t.Fatalf("plain with authzid: %v %q %q", err, srv.Username(), srv.Authzid())
	}

	_, err1 := run("\x00juliet\x00wrong")
	_, err2 := run("\x00nobody\x00wrong")
	f1 := wantFailure(t, err1, NotAuthorized)
	f2 := wantFailure(t, err2, NotAuthorized)
	if *f1 != *f2 {
		t.Fatalf("failures differ: %#v %#v", f1, f2)
	}
	for _, msg := range []string{
		"juliet\x00r0m€o",
		"\x00juliet\x00r0m€o\x00",
		"\x00\x00r0m€o",
		"\x00juliet\x00",
		"\x00jul\xffiet\x00r0m€o",
	} {
		_, err := run(msg)
		wantFailure(t, err, MalformedRequest)
	}
	_, err = run("\x00juli@et\x00r0m€o")
	wantFailure(t, err, NotAuthorized)

	// No initial response: empty challenge first.
	srv, _ = cfg.NewServer("PLAIN")
	if out, done, err := srv.Step(ctx, nil); err != nil || done || len(out) != 0 {
		t.Fatalf("empty initial response: %q %v %v", out, done, err)
	}
	if _, done, err := srv.Step(ctx, []byte("\x00juliet\x00r0m€o")); err != nil || !done {
		t.Fatalf("after empty challenge: %v %v", done, err)
	}
	_, _, err = srv.Step(ctx, []byte("\x00juliet\x00r0m€o"))
	wantFailure(t, err, MalformedRequest)

	b.locked["juliet"] = true
	_, err = run("\x00juliet\x00r0m€o")
	if f := wantFailure(t, err, AccountDisabled); !errors.Is(f, ErrDisabled) {
		t.Fatal("cause lost")
	}
	_, err = run("\x00juliet\x00wrong")
	wantFailure(t, err, NotAuthorized)

	b.err = errors.New("boom")
	_, err = run("\x00juliet\x00r0m€o")
	wantFailure(t, err, TemporaryAuthFailure)
}
