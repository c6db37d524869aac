package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/metronome-xmpp/metronome/account"
	"github.com/metronome-xmpp/metronome/internal/admin"
	"github.com/metronome-xmpp/metronome/internal/app"
	"github.com/metronome-xmpp/metronome/internal/core"
	"github.com/metronome-xmpp/metronome/xmpp/jid"
	"github.com/metronome-xmpp/metronome/xmpp/sasl"
)

// offline builds the server in-process without listening, for user
// operations while the daemon is not running, so modules still see
// user/created and user/deleted.
func (c *ctl) offline(fn func(ctx context.Context, srv *core.Server) error) error {
	cfg, err := c.load()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Server.DataDir, 0o750); err != nil {
		return err
	}
	ctx := context.Background()
	driver, err := app.OpenStorage(ctx, cfg)
	if err != nil {
		return err
	}
	defer driver.Close()
	opts, err := app.Options(cfg)
	if err != nil {
		return err
	}
	opts.ListenC2S, opts.ListenC2STLS = nil, nil
	srv, err := core.New(opts, driver, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer srv.Shutdown(ctx)
	return fn(ctx, srv)
}

// userOp runs a user operation through the daemon if it runs, else in-process.
func (c *ctl) userOp(op string, a app.UserArgs) error {
	err := c.call(op, a, nil)
	if errors.Is(err, admin.ErrNotRunning) {
		return c.offline(func(ctx context.Context, srv *core.Server) error { return app.UserOp(ctx, srv, op, a) })
	}
	return err
}

func readPassword(cmd *cobra.Command, confirm bool) (string, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		if confirm {
			fmt.Fprint(cmd.ErrOrStderr(), "Retype password: ")
			p2, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(cmd.ErrOrStderr())
			if err != nil {
				return "", err
			}
			if string(p1) != string(p2) {
				return "", errors.New("the passwords do not match")
			}
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func (c *ctl) userCmd() *cobra.Command {
	user := &cobra.Command{Use: "user", Short: "Manage user accounts (works whether or not the server runs)"}
	var password string
	add := &cobra.Command{Use: "add JID", Short: "Create an account (prompts for the password)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw := password
			if !cmd.Flags().Changed("password") {
				var err error
				if pw, err = readPassword(cmd, true); err != nil {
					return err
				}
			}
			if pw == "" {
				return errors.New("empty password")
			}
			if err := c.userOp("user.add", app.UserArgs{JID: args[0], Password: pw}); err != nil {
				if errors.Is(err, account.ErrExists) || strings.Contains(err.Error(), account.ErrExists.Error()) {
					return fmt.Errorf("%s already exists", args[0])
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s\n", args[0])
			return nil
		}}
	add.Flags().StringVar(&password, "password", "", "the password (for scripts; otherwise prompted)")
	passwd := &cobra.Command{Use: "passwd JID", Short: "Change an account's password", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw := password
			if !cmd.Flags().Changed("password") {
				var err error
				if pw, err = readPassword(cmd, true); err != nil {
					return err
				}
			}
			if pw == "" {
				return errors.New("empty password")
			}
			if err := c.userOp("user.passwd", app.UserArgs{JID: args[0], Password: pw}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "password of %s changed\n", args[0])
			return nil
		}}
	passwd.Flags().StringVar(&password, "password", "", "the new password (for scripts; otherwise prompted)")
	del := &cobra.Command{Use: "del JID", Aliases: []string{"delete"}, Short: "Delete an account and its data", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.userOp("user.del", app.UserArgs{JID: args[0]}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
			return nil
		}}
	list := &cobra.Command{Use: "list [HOST]", Short: "List accounts", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withAccounts(args, func(ctx context.Context, host string, m *account.Manager) error {
				users, err := m.Users(ctx)
				if err != nil {
					return err
				}
				for _, u := range users {
					fmt.Fprintf(cmd.OutOrStdout(), "%s@%s\n", u, host)
				}
				return nil
			})
		}}
	imp := &cobra.Command{Use: "import FILE|-", Short: "Create accounts in bulk from 'jid password' lines", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return c.importUsers(cmd, args[0]) }}
	user.AddCommand(add, passwd, del, list, imp)
	return user
}

// withAccounts opens the account stores directly (SQLite allows the daemon
// to run at the same time) for read-only or bulk work.
func (c *ctl) withAccounts(hostArg []string, fn func(ctx context.Context, host string, m *account.Manager) error) error {
	cfg, err := c.load()
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := os.MkdirAll(cfg.Server.DataDir, 0o750); err != nil {
		return err
	}
	driver, err := app.OpenStorage(ctx, cfg)
	if err != nil {
		return err
	}
	defer driver.Close()
	var hosts []string
	for _, h := range cfg.Hosts {
		if len(hostArg) == 0 || hostArg[0] == h.Name {
			hosts = append(hosts, h.Name)
		}
	}
	if len(hosts) == 0 {
		return fmt.Errorf("%s is not a host in the configuration", hostArg[0])
	}
	for _, h := range hosts {
		var hashes []sasl.Hash
		for _, x := range cfg.Server.SCRAMHashes {
			hashes = append(hashes, sasl.Hash(x))
		}
		if err := fn(ctx, h, account.New(driver.KeyVal(h, "accounts"), account.Options{Hashes: hashes})); err != nil {
			return err
		}
	}
	return nil
}

func (c *ctl) importUsers(cmd *cobra.Command, src string) error {
	var r io.Reader = cmd.InOrStdin()
	if src != "-" {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	byHost := map[string]map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	line, bad := 0, 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		js, pw, ok := strings.Cut(text, " ")
		pw = strings.TrimSpace(pw)
		j, err := jid.Parse(js)
		if !ok || pw == "" || err != nil || j.Local() == "" || j.Resource() != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "line %d: expected 'user@host password'\n", line)
			bad++
			continue
		}
		if byHost[j.Domain()] == nil {
			byHost[j.Domain()] = map[string]string{}
		}
		byHost[j.Domain()][j.Local()] = pw
	}
	if err := sc.Err(); err != nil {
		return err
	}
	hosts := make([]string, 0, len(byHost))
	for h := range byHost {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	start := time.Now()
	total := 0
	for _, h := range hosts {
		err := c.withAccounts([]string{h}, func(ctx context.Context, host string, m *account.Manager) error {
			n, err := m.CreateMany(ctx, byHost[h])
			total += n
			if skipped := len(byHost[h]) - n; skipped > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d accounts already existed and were left unchanged\n", h, skipped)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	el := time.Since(start)
	fmt.Fprintf(cmd.OutOrStdout(), "imported %d accounts in %s (%.0f/s)", total, el.Round(time.Millisecond), float64(total)/el.Seconds())
	if bad > 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "; %d lines rejected", bad)
	}
	fmt.Fprintln(cmd.OutOrStdout())
	if bad > 0 {
		return &exitError{2, fmt.Errorf("%d malformed lines", bad)}
	}
	return nil
}
