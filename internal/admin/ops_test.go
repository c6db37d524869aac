package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/metronome-xmpp/metronome/internal/admin"
	"github.com/metronome-xmpp/metronome/internal/xmpptest"
)

// TestOpsOverTheSocket runs the shared operations through the unix socket,
// as metronomectl does.
func TestOpsOverTheSocket(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t, xmpptest.HTTP(""))
	ops := &admin.Ops{Core: srv.Core, Version: "test", Host: srv.HTTP.Host}
	sock := filepath.Join(t.TempDir(), "admin.sock")
	l, err := admin.Listen(sock, func(ctx context.Context, op string, args json.RawMessage) (any, error) {
		if v, handled, err := ops.Call(ctx, op, args); handled {
			return v, err
		}
		return nil, errors.New("unknown")
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	call := func(op string, args, out any) error { return admin.Call(ctx, sock, op, args, out) }

	if err := call("user.add", admin.UserArgs{JID: "romeo@localhost", Password: "pw"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := call("user.add", admin.UserArgs{JID: "romeo@localhost", Password: "pw"}, nil); err == nil {
		t.Error("duplicate account created")
	}
	var users []string
	if err := call("user.list", map[string]string{"host": "localhost"}, &users); err != nil || len(users) != 1 || users[0] != "romeo@localhost" {
		t.Fatalf("user.list = %v, %v", users, err)
	}
	c := srv.Login(t, "romeo@localhost/orchard", "pw")
	var sessions []admin.SessionInfo
	if err := call("session.list", nil, &sessions); err != nil || len(sessions) != 1 || sessions[0].JID != "romeo@localhost/orchard" {
		t.Fatalf("session.list = %+v, %v", sessions, err)
	}
	var sent map[string]int
	if err := call("message.announce", admin.Announcement{Body: "hello all"}, &sent); err != nil || sent["sent"] != 1 {
		t.Fatalf("announce = %v, %v", sent, err)
	}
	c.Expect(t, `<message from="localhost"><body>hello all</body></message>`)
	var st admin.Stats
	if err := call("stats", nil, &st); err != nil || st.Version != "test" || len(st.Hosts) != 1 || st.Hosts[0].Sessions != 1 {
		t.Fatalf("stats = %+v, %v", st, err)
	}
	if err := call("session.kick", admin.KickArgs{JID: "romeo@localhost"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := call("user.del", admin.UserArgs{JID: "romeo@localhost"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := call("user.passwd", admin.UserArgs{JID: "romeo@localhost", Password: "x"}, nil); err == nil {
		t.Error("password of a deleted account changed")
	}
}

// TestOpsWithoutRunningServer checks that account operations work on a
// server without the HTTP module (metronomectl's offline mode) and that
// session operations say why they cannot.
func TestOpsWithoutRunningServer(t *testing.T) {
	t.Parallel()
	srv := xmpptest.NewServer(t)
	ops := &admin.Ops{Core: srv.Core}
	ctx := context.Background()
	if err := ops.CreateUser(ctx, admin.UserArgs{JID: "juliet@localhost", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ops.ListSessions("localhost"); !errors.Is(err, admin.ErrUnavailable) {
		t.Errorf("ListSessions = %v", err)
	}
	if err := ops.CreateUser(ctx, admin.UserArgs{JID: "juliet@localhost/res", Password: "pw"}); !errors.Is(err, admin.ErrInvalid) {
		t.Errorf("full JID: %v", err)
	}
}
