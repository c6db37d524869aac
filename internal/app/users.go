package app

import (
	"context"
	"fmt"

	"github.com/metronome-xmpp/metronome/internal/admin"
	"github.com/metronome-xmpp/metronome/internal/core"
)

// UserArgs are the arguments of the user.* admin operations.
type UserArgs = admin.UserArgs

// UserOp runs user.add, user.del or user.passwd on a server (the daemon's,
// or one built in-process by metronomectl when the daemon is not running),
// so that modules see user/created and user/deleted either way. It runs
// the same operations as the admin socket and the HTTP admin API.
func UserOp(ctx context.Context, srv *core.Server, op string, a UserArgs) error {
	ops := &admin.Ops{Core: srv, Version: core.Version}
	switch op {
	case "user.add":
		return ops.CreateUser(ctx, a)
	case "user.del":
		return ops.DeleteUser(ctx, a)
	case "user.passwd":
		return ops.SetPassword(ctx, a)
	}
	return fmt.Errorf("unknown user operation %q", op)
}
