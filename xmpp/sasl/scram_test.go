package sasl

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/xdg-go/scram"
)

// vector is an RFC example exchange with fixed nonces.
type vector struct {
	name        string
	h           Hash
	salt        string // base64
	serverNonce string
	steps       [4]string // client-first, server-first, client-final, server-final
}

var vectors = []vector{
	{
		name: "RFC 5802", h: SHA1, salt: "QSXCR+Q6sek8bf92", serverNonce: "3rfcNHYJY1ZVvWVs7j",
		steps: [4]string{
			"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
			"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
			"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
			"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
		},
	},
	{
		name: "RFC 7677", h: SHA256, salt: "W22ZaJ0SNY7soEsUEjb6gQ==", serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
		steps: [4]string{
			"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
			"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
		},
	},
}

func TestRFCVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			b := newTestBackend(map[string]string{"user": "pencil"})
			b.salt, _ = base64.StdEncoding.DecodeString(v.salt)
			cfg := Config{Backend: b, nonce: fixedNonce(v.serverNonce)}
			srv, err := cfg.NewServer(v.h.Mechanism(false))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			out, done, err := srv.Step(ctx, []byte(v.steps[0]))
			if err != nil || done || string(out) != v.steps[1] {
				t.Fatalf("server-first = %q, %v, %v; want %q", out, done, err, v.steps[1])
			}
			out, done, err = srv.Step(ctx, []byte(v.steps[2]))
			if err != nil || !done || string(out) != v.steps[3] {
				t.Fatalf("server-final = %q, %v, %v; want %q", out, done, err, v.steps[3])
			}
			if srv.Username() != "user" || srv.Authzid() != "" {
				t.Fatalf("username %q authzid %q", srv.Username(), srv.Authzid())
			}
		})
	}
}

// TestXEP0474Example replays the example of XEP-0474 v0.5.0 §5.3:
// SCRAM-SHA-1-PLUS over tls-exporter with the "h" attribute.
func TestXEP0474Example(t *testing.T) {
	mechs := []string{"SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"}
	cbs := []string{"tls-exporter", "tls-server-end-point"}
	if got, want := DowngradeHash(SHA1, mechs, cbs), "G6k/rBLDqgOhRRaCuuatSDFkJ08="; got != want {
		t.Fatalf("DowngradeHash = %s, want %s", got, want)
	}
	b := newTestBackend(map[string]string{"user": "pencil"})
	b.salt, _ = base64.StdEncoding.DecodeString("QSXCR+Q6sek8bf92")
	cfg := Config{
		Backend:    b,
		TLS:        true,
		CB:         ChannelBinding{Exporter: []byte("THIS IS FAKE CB DATA"), EndPoint: []byte("some end point hash")},
		Mechanisms: mechs,
		Downgrade:  true,
		nonce:      fixedNonce("a09117a6-ac50-4f2f-93f1-93799c2bddf6"),
	}
	if got := cfg.Offered(); !slices.Equal(got, []string{"SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"}) {
		t.Fatalf("Offered = %v", got)
	}
	if got := cfg.CBTypes(); !slices.Equal(got, cbs) {
		t.Fatalf("CBTypes = %v", got)
	}
	dec := func(s string) []byte {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	srv, err := cfg.NewServer("SCRAM-SHA-1-PLUS")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, _, err := srv.Step(ctx, dec("cD10bHMtZXhwb3J0ZXIsLG49dXNlcixyPTEyQzRDRDVDLUUzOEUtNEE5OC04RjZELTE1QzM4RjUxQ0NDNg=="))
	if err != nil {
		t.Fatal(err)
	}
	want := "r=12C4CD5C-E38E-4A98-8F6D-15C38F51CCC6a09117a6-ac50-4f2f-93f1-93799c2bddf6,s=QSXCR+Q6sek8bf92,i=4096,h=G6k/rBLDqgOhRRaCuuatSDFkJ08="
	if string(out) != want {
		t.Fatalf("server-first = %q, want %q", out, want)
	}
	out, done, err := srv.Step(ctx, dec("Yz1jRDEwYkhNdFpYaHdiM0owWlhJc0xGUklTVk1nU1ZNZ1JrRkxSU0JEUWlCRVFWUkIscj0xMkM0Q0Q1Qy1FMzhFLTRBOTgtOEY2RC0xNUMzOEY1MUNDQzZhMDkxMTdhNi1hYzUwLTRmMmYtOTNmMS05Mzc5OWMyYmRkZjYseD0xOUM2NTMyRi0xQ0Y0LTRBMjctQTE4RC1EQzlDRUE0MUJCQjMscD1NL1NJRGpUK2RmY3hVaDg5alpFeXBSdkZ4QjQ9"))
	if err != nil || !done {
		t.Fatalf("final: %v %v", done, err)
	}
	if want := dec("dj1NUXJNUHZ2N3l2NHg0Q3E0VzRJaDI1RXFTMmM9"); !bytes.Equal(out, want) {
		t.Fatalf("server-final = %q, want %q", out, want)
	}
}

func TestOffered(t *testing.T) {
	all := []string{"SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}
	tests := []struct {
		cfg        Config
		mechs, cbs []string
	}{
		{Config{}, all[3:6], nil},
		{Config{TLS: true}, all[3:], nil},
		{Config{TLS: true, CB: ChannelBinding{Exporter: []byte{1}}}, all, []string{"tls-exporter"}},
		{Config{TLS: true, CB: ChannelBinding{EndPoint: []byte{1}}}, all, []string{"tls-server-end-point"}},
		{Config{TLS: true, CB: ChannelBinding{Exporter: []byte{1}, EndPoint: []byte{1}}}, all, []string{"tls-exporter", "tls-server-end-point"}},
		{Config{TLS: true, CB: ChannelBinding{Exporter: []byte{1}}, Mechanisms: []string{"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "X-BOGUS"}},
			[]string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}, []string{"tls-exporter"}},
	}
	for i, tt := range tests {
		if got := tt.cfg.Offered(); !slices.Equal(got, tt.mechs) {
			t.Errorf("%d: Offered = %v, want %v", i, got, tt.mechs)
		}
		if got := tt.cfg.CBTypes(); !slices.Equal(got, tt.cbs) {
			t.Errorf("%d: CBTypes = %v, want %v", i, got, tt.cbs)
		}
	}
}

func TestNewServerErrors(t *testing.T) {
	b := newTestBackend(nil)
	for _, tt := range []struct {
		cfg  Config
		mech string
		cond string
	}{
		{Config{Backend: b}, "DIGEST-MD5", InvalidMechanism},
		{Config{Backend: b}, "scram-sha-1", InvalidMechanism},
		{Config{Backend: b}, "SCRAM-SHA-1-PLUS", InvalidMechanism},
		{Config{Backend: b, TLS: true, Mechanisms: []string{"SCRAM-SHA-256"}}, "SCRAM-SHA-1", InvalidMechanism},
		{Config{Backend: b}, "PLAIN", EncryptionRequired},
		{Config{Backend: b, TLS: true, Mechanisms: []string{"SCRAM-SHA-256"}}, "PLAIN", InvalidMechanism},
		{Config{TLS: true}, "PLAIN", TemporaryAuthFailure},
	} {
		_, err := tt.cfg.NewServer(tt.mech)
		wantFailure(t, err, tt.cond)
	}
}

// xdgHash maps a Hash to the xdg-go/scram hash generator.
func xdgHash(h Hash) scram.HashGeneratorFcn {
	switch h {
	case SHA1:
		return scram.SHA1
	case SHA256:
		return scram.SHA256
	}
	return scram.SHA512
}

// runXDG drives srv with an xdg-go/scram client conversation. mitm, when
// set, may rewrite each server message before the client sees it.
func runXDG(t *testing.T, srv Server, conv *scram.ClientConversation, mitm func(string) string) (serverErr error) {
	t.Helper()
	ctx := context.Background()
	msg, err := conv.Step("")
	if err != nil {
		t.Fatalf("client first: %v", err)
	}
	for i := 0; ; i++ {
		out, done, err := srv.Step(ctx, []byte(msg))
		if err != nil {
			return err
		}
		s := string(out)
		if mitm != nil {
			s = mitm(s)
		}
		msg, err = conv.Step(s)
		if err != nil {
			t.Fatalf("client step %d on %q: %v", i, s, err)
		}
		if done {
			if !conv.Valid() {
				t.Fatal("client did not validate the server")
			}
			return nil
		}
	}
}

func TestExchangeXDG(t *testing.T) {
	b := newTestBackend(map[string]string{"juliet": "r0m€o,pass=word"})
	exporter := []byte("exporter data 0123456789abcdef!!")
	endpoint := []byte("end point hash")
	for _, h := range Hashes {
		for _, cbType := range []string{"", CBTLSExporter, CBTLSServerEndPoint} {
			for _, downgrade := range []bool{false, true} {
				name := fmt.Sprintf("%s/cb=%s/downgrade=%v", h, cbType, downgrade)
				t.Run(name, func(t *testing.T) {
					cfg := Config{Backend: b, TLS: true, CB: ChannelBinding{Exporter: exporter, EndPoint: endpoint}, Downgrade: downgrade}
					client, err := xdgHash(h).NewClient("Juliet", "r0m€o,pass=word", "")
					if err != nil {
						t.Fatal(err)
					}
					var conv *scram.ClientConversation
					mech := h.Mechanism(cbType != "")
					switch cbType {
					case "":
						conv = client.NewConversation()
					case CBTLSExporter:
						conv = client.NewConversationWithChannelBinding(scram.ChannelBinding{Type: scram.ChannelBindingTLSExporter, Data: exporter})
					case CBTLSServerEndPoint:
						conv = client.NewConversationWithChannelBinding(scram.ChannelBinding{Type: scram.ChannelBindingTLSServerEndpoint, Data: endpoint})
					}
					srv, err := cfg.NewServer(mech)
					if err != nil {
						t.Fatal(err)
					}
					var serverFirst string
					err = runXDG(t, srv, conv, func(s string) string {
						if serverFirst == "" {
							serverFirst = s
						}
						return s
					})
					if err != nil {
						t.Fatal(err)
					}
					if srv.Username() != "juliet" {
						t.Fatalf("Username = %q", srv.Username())
					}
					hAttr := strings.Contains(serverFirst, ",h=")
					if hAttr != downgrade {
						t.Fatalf("server-first %q: h attribute present = %v", serverFirst, hAttr)
					}
					if downgrade && !strings.HasSuffix(serverFirst, ",h="+DowngradeHash(h, cfg.Offered(), cfg.CBTypes())) {
						t.Fatalf("server-first %q: wrong h", serverFirst)
					}
				})
			}
		}
	}
}

func TestWrongPasswordAndUnknownUser(t *testing.T) {
	b := newTestBackend(map[string]string{"romeo": "secret"})
	cfg := Config{Backend: b, Downgrade: true}
	attempt := func(user, pass string) (string, *Failure) {
		client, _ := scram.SHA256.NewClient(user, pass, "")
		srv, _ := cfg.NewServer("SCRAM-SHA-256")
		conv := client.NewConversation()
		msg, _ := conv.Step("")
		out, _, err := srv.Step(context.Background(), []byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		msg, err = conv.Step(string(out))
		if err != nil {
			t.Fatal(err)
		}
		_, done, err := srv.Step(context.Background(), []byte(msg))
		if !done {
			t.Fatal("not done after failure")
		}
		if srv.Username() != "" {
			t.Fatalf("Username %q after failure", srv.Username())
		}
		return string(out), wantFailure(t, err, NotAuthorized)
	}
	// shape returns the attribute names and value lengths, with the nonce
	// (random) removed.
	shape := func(s string) string {
		var parts []string
		for _, a := range strings.Split(s, ",") {
			if strings.HasPrefix(a, "r=") {
				parts = append(parts, "r")
				continue
			}
			parts = append(parts, fmt.Sprintf("%c:%d", a[0], len(a)))
		}
		return strings.Join(parts, ",")
	}
	s1, f1 := attempt("romeo", "wrong")
	s2, f2 := attempt("nobody", "wrong")
	s3, _ := attempt("nobody", "other")
	s4, _ := attempt("nobody2", "wrong")
	if *f1 != *f2 {
		t.Fatalf("failures differ: %#v vs %#v", f1, f2)
	}
	if shape(s1) != shape(s2) {
		t.Fatalf("server-first shapes differ: %q vs %q", s1, s2)
	}
	salt := func(s string) string { return strings.Split(s, ",")[1] }
	if salt(s2) != salt(s3) {
		t.Fatalf("fake salt not deterministic: %q vs %q", s2, s3)
	}
	if salt(s2) == salt(s4) {
		t.Fatal("fake salt identical for two users")
	}
	// Iteration hint from the backend.
	b.noUserIt = 10000
	s5, _ := attempt("nobody", "wrong")
	if !strings.Contains(s5, ",i=10000") {
		t.Fatalf("fake exchange ignores the iteration hint: %q", s5)
	}
}

func TestChannelBindingChecks(t *testing.T) {
	b := newTestBackend(map[string]string{"user": "pencil"})
	exporter := []byte("the real exporter data")
	cfg := Config{Backend: b, TLS: true, CB: ChannelBinding{Exporter: exporter}}
	client, _ := scram.SHA256.NewClient("user", "pencil", "")

	t.Run("tampered", func(t *testing.T) {
		srv, _ := cfg.NewServer("SCRAM-SHA-256-PLUS")
		conv := client.NewConversationWithChannelBinding(scram.ChannelBinding{Type: scram.ChannelBindingTLSExporter, Data: []byte("the MITM exporter data")})
		f := wantFailure(t, runXDG(t, srv, conv, nil), NotAuthorized)
		if f.Text != "channel binding mismatch" {
			t.Fatalf("text %q", f.Text)
		}
	})
	t.Run("unavailable type", func(t *testing.T) {
		srv, _ := cfg.NewServer("SCRAM-SHA-256-PLUS")
		conv := client.NewConversationWithChannelBinding(scram.ChannelBinding{Type: scram.ChannelBindingTLSServerEndpoint, Data: []byte("x")})
		wantFailure(t, runXDG(t, srv, conv, nil), NotAuthorized)
	})
	t.Run("y flag with PLUS offered", func(t *testing.T) {
		srv, _ := cfg.NewServer("SCRAM-SHA-256")
		conv := client.NewConversationAdvertisingChannelBinding()
		wantFailure(t, runXDG(t, srv, conv, nil), NotAuthorized)
	})
	t.Run("y flag without PLUS offered", func(t *testing.T) {
		for _, c := range []Config{
			{Backend: b, TLS: true},
			{Backend: b, TLS: true, CB: cfg.CB, Mechanisms: []string{"SCRAM-SHA-256"}},
		} {
			srv, _ := c.NewServer("SCRAM-SHA-256")
			if err := runXDG(t, srv, client.NewConversationAdvertisingChannelBinding(), nil); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("n flag with PLUS mechanism", func(t *testing.T) {
		srv, _ := cfg.NewServer("SCRAM-SHA-256-PLUS")
		wantFailure(t, runXDG(t, srv, client.NewConversation(), nil), MalformedRequest)
	})
	t.Run("p flag with non-PLUS mechanism", func(t *testing.T) {
		srv, _ := cfg.NewServer("SCRAM-SHA-256")
		conv := client.NewConversationWithChannelBinding(scram.ChannelBinding{Type: scram.ChannelBindingTLSExporter, Data: exporter})
		wantFailure(t, runXDG(t, srv, conv, nil), MalformedRequest)
	})
	t.Run("c= without cb data", func(t *testing.T) {
		// A client that says p=tls-exporter but sends only the gs2 header in c=.
		srv, _ := cfg.NewServer("SCRAM-SHA-256-PLUS")
		ctx := context.Background()
		out, _, err := srv.Step(ctx, []byte("p=tls-exporter,,n=user,r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		nonce := strings.TrimPrefix(strings.Split(string(out), ",")[0], "r=")
		c := base64.StdEncoding.EncodeToString([]byte("p=tls-exporter,,"))
		_, _, err = srv.Step(ctx, []byte("c="+c+",r="+nonce+",p="+base64.StdEncoding.EncodeToString(make([]byte, 32))))
		wantFailure(t, err, NotAuthorized)
	})
	t.Run("downgrade hash tampered by MITM", func(t *testing.T) {
		c := cfg
		c.Downgrade = true
		srv, _ := c.NewServer("SCRAM-SHA-256-PLUS")
		conv := client.NewConversationWithChannelBinding(scram.ChannelBinding{Type: scram.ChannelBindingTLSExporter, Data: exporter})
		err := runXDG(t, srv, conv, func(s string) string {
			if i := strings.Index(s, ",h="); i >= 0 {
				return s[:i] + ",h=" + DowngradeHash(SHA256, []string{"SCRAM-SHA-1"}, nil)
			}
			return s
		})
		wantFailure(t, err, NotAuthorized)
	})
}

func TestAuthzidAndEmptyInitialResponse(t *testing.T) {
	b := newTestBackend(map[string]string{"user": "pencil"})
	cfg := Config{Backend: b}
	client, _ := scram.SHA1.NewClient("user", "pencil", "admin,x=y@example.org")
	srv, _ := cfg.NewServer("SCRAM-SHA-1")
	out, done, err := srv.Step(context.Background(), nil)
	if err != nil || done || len(out) != 0 {
		t.Fatalf("empty initial response: %q %v %v", out, done, err)
	}
	if err := runXDG(t, srv, client.NewConversation(), nil); err != nil {
		t.Fatal(err)
	}
	if srv.Authzid() != "admin,x=y@example.org" {
		t.Fatalf("Authzid = %q", srv.Authzid())
	}
	_, done, err = srv.Step(context.Background(), []byte("n,,n=user,r=x"))
	if !done {
		t.Fatal("Step after done: not done")
	}
	wantFailure(t, err, MalformedRequest)

	// Two empty messages in a row are malformed.
	srv, _ = cfg.NewServer("SCRAM-SHA-1")
	srv.Step(context.Background(), nil)
	_, _, err = srv.Step(context.Background(), nil)
	wantFailure(t, err, MalformedRequest)
}

func TestLockedAndBackendErrors(t *testing.T) {
	b := newTestBackend(map[string]string{"user": "pencil"})
	b.locked["user"] = true
	cfg := Config{Backend: b}
	client, _ := scram.SHA256.NewClient("user", "pencil", "")
	srv, _ := cfg.NewServer("SCRAM-SHA-256")
	f := wantFailure(t, runXDG(t, srv, client.NewConversation(), nil), AccountDisabled)
	if !errors.Is(f, errLockedTest) || !errors.Is(f, ErrDisabled) {
		t.Fatalf("cause lost: %v", f)
	}
	// Wrong password on a locked account: not-authorized, nothing revealed.
	bad, _ := scram.SHA256.NewClient("user", "wrong", "")
	srv, _ = cfg.NewServer("SCRAM-SHA-256")
	wantFailure(t, runXDG(t, srv, bad.NewConversation(), nil), NotAuthorized)
	// A backend that gives no credentials for locked accounts fails at once.
	b.noCreds = true
	srv, _ = cfg.NewServer("SCRAM-SHA-256")
	_, _, err := srv.Step(context.Background(), []byte("n,,n=user,r=abc"))
	wantFailure(t, err, AccountDisabled)

	boom := errors.New("database on fire")
	b.err = boom
	srv, _ = cfg.NewServer("SCRAM-SHA-256")
	_, _, err = srv.Step(context.Background(), []byte("n,,n=user,r=abc"))
	if f := wantFailure(t, err, TemporaryAuthFailure); !errors.Is(f, boom) || strings.Contains(f.Text, "fire") {
		t.Fatalf("backend error: %v", f)
	}
}

func TestSCRAMMalformed(t *testing.T) {
	b := newTestBackend(map[string]string{"user": "pencil"})
	cfg := Config{Backend: b, nonce: fixedNonce("SRV")}
	firsts := map[string]string{
		"":                           MalformedRequest, // second empty message
		"n":                          MalformedRequest,
		"x,,n=user,r=abc":            MalformedRequest,
		"p=,,n=user,r=abc":           MalformedRequest,
		"n,b=x,n=user,r=abc":         MalformedRequest,
		"n,a=,n=user,r=abc":          MalformedRequest,
		"n,a=x=41,n=user,r=abc":      MalformedRequest,
		"n,,m=ext,n=user,r=abc":      MalformedRequest,
		"n,,n=,r=abc":                MalformedRequest,
		"n,,n=us=2er,r=abc":          MalformedRequest,
		"n,,n=user":                  MalformedRequest,
		"n,,n=user,r=":               MalformedRequest,
		"n,,n=user,r=a b":            MalformedRequest,
		"n,,n=user,r=abc,":           MalformedRequest,
		"n,,n=user,r=abc,1=x":        MalformedRequest,
		"n,,n=user,r=abc,x=":         MalformedRequest,
		"n,,n=user,r=abc,m=x":        MalformedRequest,
		"n,,n=user,r=abc\x00":        MalformedRequest,
		"n,,n=us\xffer,r=abc":        MalformedRequest,
		"n,,n=user@host,r=abc":       NotAuthorized,
		"n,,r=abc,n=user":            MalformedRequest,
		"n,,n=user,r=abc,x=1" + "\t": "",
		"n,,n=user,r=abc,x=ext":      "",
		"n,,n=us=2Cer,r=abc":         "",
		"n,,n=USER,r=abc":            "",
	}
	for msg, cond := range firsts {
		srv, _ := cfg.NewServer("SCRAM-SHA-256")
		if msg == "" {
			srv.Step(context.Background(), nil)
		}
		_, _, err := srv.Step(context.Background(), []byte(msg))
		if cond == "" {
			if err != nil {
				t.Errorf("%q: %v", msg, err)
			}
			continue
		}
		var f *Failure
		if !errors.As(err, &f) || f.Condition != cond {
			t.Errorf("%q: got %v, want %s", msg, err, cond)
		}
	}
	biws := "c=biws,r=abcSRV,"
	p := "p=" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	finals := map[string]string{
		"":                          MalformedRequest,
		"c=biws":                    MalformedRequest,
		"c=biws,r=abcSRV":           MalformedRequest,
		"c=biw,r=abcSRV," + p:       IncorrectEncoding,
		"r=abcSRV,c=biws," + p:      MalformedRequest,
		biws + "p=AAAA":             MalformedRequest,
		biws + "p=AA!A":             IncorrectEncoding,
		biws + "x=1":                MalformedRequest,
		biws + p + ",x=1":           MalformedRequest,
		biws + "m=1," + p:           MalformedRequest,
		biws + "=1," + p:            MalformedRequest,
		"c=biws,r=abcSRX," + p:      NotAuthorized,
		"c=eSws,r=abcSRV," + p:      NotAuthorized, // "y,," instead of "n,,"
		biws + "x=ext," + p:         NotAuthorized, // well-formed, wrong proof
		biws + p:                    NotAuthorized,
		"c=biws,r=abcSRV,,x=1," + p: MalformedRequest,
	}
	for msg, cond := range finals {
		srv, _ := cfg.NewServer("SCRAM-SHA-256")
		if _, _, err := srv.Step(context.Background(), []byte("n,,n=user,r=abc")); err != nil {
			t.Fatal(err)
		}
		_, done, err := srv.Step(context.Background(), []byte(msg))
		var f *Failure
		if !done || !errors.As(err, &f) || f.Condition != cond {
			t.Errorf("%q: got %v, want %s", msg, err, cond)
		}
	}
}

func TestDeriveErrors(t *testing.T) {
	salt := []byte("salt")
	for _, tt := range []struct {
		h    Hash
		pw   string
		salt []byte
		iter int
	}{
		{"MD5", "pw", salt, 1},
		{SHA256, "", salt, 1},
		{SHA256, "pw", nil, 1},
		{SHA256, "pw", salt, 0},
		{SHA256, "pw\x00", salt, 1},
		{SHA256, "bad\xff", salt, 1},
	} {
		if _, err := Derive(tt.h, tt.pw, tt.salt, tt.iter); err == nil {
			t.Errorf("Derive(%q, %q, %q, %d): no error", tt.h, tt.pw, tt.salt, tt.iter)
		}
	}
	// OpaqueString maps non-ASCII spaces to U+0020 and applies NFC.
	a, _ := Derive(SHA256, "a\u00a0b\u0065\u0301", salt, 1)
	b, _ := Derive(SHA256, "a b\u00e9", salt, 1)
	if !bytes.Equal(a.StoredKey, b.StoredKey) {
		t.Fatal("password not prepared")
	}
}

func TestPrepUsername(t *testing.T) {
	for in, want := range map[string]string{
		"User":            "user",
		"ÅSA":             "åsa",
		"juliet":          "juliet",
		"":                "",
		"a b":             "",
		"a@b":             "",
		"a/b":             "",
		"\xff":            "",
		"\u2163":          "", // ROMAN NUMERAL FOUR: disallowed by IdentifierClass
		"x,=y":            "x,=y",
		"ＡＢ":              "ab", // fullwidth mapped to ASCII
		"caf\u0065\u0301": "café",
	} {
		got, err := PrepUsername(in)
		if want == "" {
			if err == nil {
				t.Errorf("PrepUsername(%q) = %q, want error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("PrepUsername(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestPayload(t *testing.T) {
	if b, err := DecodePayload("="); err != nil || len(b) != 0 {
		t.Fatal("= not empty")
	}
	if b, err := DecodePayload("Zm9v"); err != nil || string(b) != "foo" {
		t.Fatal("decode")
	}
	_, err := DecodePayload("Zm9v!")
	wantFailure(t, err, IncorrectEncoding)
	_, err = DecodePayload("Zm9")
	wantFailure(t, err, IncorrectEncoding)
	if EncodePayload(nil) != "=" || EncodePayload([]byte("foo")) != "Zm9v" {
		t.Fatal("encode")
	}
}
