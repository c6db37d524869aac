package app

import (
	"context"
	"fmt"

	"github.com/metronome-xmpp/metronome/internal/core"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
)

// UserArgs are the arguments of the user.* admin operations.
type UserArgs struct {
	JID      string `json:"jid"`
	Password string `json:"password,omitempty"`
}

// UserOp runs user.add, user.del or user.passwd on a server (the daemon's,
// or one built in-process by metronomectl when the daemon is not running),
// so that modules see user/created and user/deleted either way.
func UserOp(ctx context.Context, srv *core.Server, op string, a UserArgs) error {
	j, err := jid.Parse(a.JID)
	if err != nil {
		return fmt.Errorf("%q is not a valid JID: %w", a.JID, err)
	}
	if j.Local() == "" || j.Resource() != "" {
		return fmt.Errorf("%q is not a user JID (expected user@host)", a.JID)
	}
	switch op {
	case "user.add":
		return srv.CreateUser(ctx, j, a.Password)
	case "user.del":
		return srv.DeleteUser(ctx, j)
	case "user.passwd":
		acc, ok := srv.Accounts(j.Domain())
		if !ok {
			return fmt.Errorf("%s is not a host of this server", j.Domain())
		}
		return acc.SetPassword(ctx, j.Local(), a.Password)
	}
	return fmt.Errorf("unknown user operation %q", op)
}
