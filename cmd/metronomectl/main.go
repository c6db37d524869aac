// Command metronomectl controls a metronome daemon and administers its
// data: start/stop/restart/reload/status through the pidfile and the local
// admin socket, user management (also when the daemon is not running),
// configuration checks, version information, WebAssembly plugins (plugin.go)
// and plugin repositories (repo.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/metronome-xmpp/metronome/internal/admin"
	"github.com/metronome-xmpp/metronome/internal/app"
	"github.com/metronome-xmpp/metronome/internal/config"
	"github.com/metronome-xmpp/metronome/internal/core"
	_ "github.com/metronome-xmpp/metronome/modules/standard"
)

// exitError carries a specific exit status (status: 3 = not running, as LSB).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	root := newRoot()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "metronomectl:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

type ctl struct {
	configPath string
	cfg        *config.Config
}

func (c *ctl) load() (*config.Config, error) {
	if c.cfg != nil {
		return c.cfg, nil
	}
	cfg, err := app.LoadConfig(c.configPath)
	if err != nil {
		return nil, err
	}
	c.cfg = cfg
	return cfg, nil
}

// socket returns the admin socket path. When the configuration does not
// load (say, while it is being edited), the path is still read from its
// [server] section so that the running daemon stays reachable.
func (c *ctl) socket() (string, error) {
	cfg, err := c.load()
	if err == nil {
		return cfg.Server.AdminSocket, nil
	}
	if p, lerr := app.AdminSocketLenient(c.configPath); lerr == nil {
		return p, nil
	}
	return "", err
}

func (c *ctl) call(op string, args, out any) error {
	path, err := c.socket()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return admin.Call(ctx, path, op, args, out)
}

func newRoot() *cobra.Command {
	c := &ctl{}
	root := &cobra.Command{
		Use:           "metronomectl",
		Short:         "Control the Metronome XMPP server",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&c.configPath, "config", "", "configuration file (default: ./metronome.toml, /etc/metronome/metronome.toml, built-in defaults)")
	root.AddCommand(
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run: func(cmd *cobra.Command, _ []string) {
				fmt.Fprintln(cmd.OutOrStdout(), "metronomectl", core.Version)
				var st app.Status
				if err := c.call("status", nil, &st); err == nil {
					fmt.Fprintln(cmd.OutOrStdout(), "metronome (running)", st.Version)
				}
			},
		},
		c.startCmd(), c.stopCmd(), c.restartCmd(), c.reloadCmd(), c.statusCmd(),
		c.userCmd(), c.checkCmd(), c.hooksCmd(),
		c.pluginCmd(), c.repoCmd(), // plugin.go, repo.go
	)
	return root
}
