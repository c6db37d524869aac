package sasl_test

import (
	"context"
	"fmt"

	"github.com/metronome-xmpp/metronome/xmpp/sasl"
)

type oneUser struct{ creds sasl.Credentials }

func (o oneUser) Credentials(_ context.Context, user string, h sasl.Hash) (sasl.Credentials, error) {
	if user != "juliet" || h != sasl.SHA256 {
		return sasl.Credentials{}, sasl.ErrNoUser
	}
	return o.creds, nil
}

func (o oneUser) CheckPassword(context.Context, string, string) (bool, error) { return false, nil }

// The flow of one stream: advertise, then drive the chosen mechanism with
// the decoded payloads of <auth/> and <response/>.
func Example() {
	creds, _ := sasl.Derive(sasl.SHA256, "r0m3o", []byte("per-user-salt..."), 4096)
	cfg := sasl.Config{
		Backend: oneUser{creds},
		TLS:     true,
		CB:      sasl.ChannelBinding{EndPoint: []byte("hash of the server certificate")},
	}
	fmt.Println(cfg.Offered())
	fmt.Println(cfg.CBTypes())

	srv, err := cfg.NewServer("SCRAM-SHA-256")
	if err != nil {
		panic(err)
	}
	in, _ := sasl.DecodePayload("biwsbj1qdWxpZXQscj1jbGllbnRub25jZQ==") // n,,n=juliet,r=clientnonce
	out, done, err := srv.Step(context.Background(), in)
	fmt.Println(len(out) > 0, done, err)

	// A wrong client-final-message ends the exchange with a Failure.
	_, done, err = srv.Step(context.Background(), []byte("c=biws,r=wrong,p=AAAA"))
	if f, ok := err.(*sasl.Failure); ok {
		fmt.Println(done, f.Condition)
	}
	// Output:
	// [SCRAM-SHA-512-PLUS SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS SCRAM-SHA-512 SCRAM-SHA-256 SCRAM-SHA-1 PLAIN]
	// [tls-server-end-point]
	// true false <nil>
	// true not-authorized
}
