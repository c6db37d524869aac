package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/metronome-xmpp/metronome/internal/admin"
	"github.com/metronome-xmpp/metronome/internal/config"
	"github.com/metronome-xmpp/metronome/internal/plugin"
)

// pluginTimeout bounds one plugin command (downloads, checks, reload).
const pluginTimeout = 10 * time.Minute

// manager builds the plugin manager for the loaded configuration.
func (c *ctl) manager(cmd *cobra.Command) (*plugin.Manager, *config.Config, error) {
	cfg, err := c.load()
	if err != nil {
		return nil, nil, err
	}
	m := &plugin.Manager{Settings: cfg.Plugins, Out: cmd.OutOrStdout()}
	for _, h := range cfg.Hosts {
		m.Hosts = append(m.Hosts, h.Name)
	}
	errw := cmd.ErrOrStderr()
	m.Fetcher.Progress = func(label string, total int64) (io.Writer, func()) {
		bar := progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(errw),
			progressbar.OptionSetDescription("downloading "+label),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
		)
		return bar, func() { _ = bar.Finish(); fmt.Fprintln(errw) }
	}
	m.Reload = func() (bool, error) {
		err := c.call("reload", nil, nil)
		if errors.Is(err, admin.ErrNotRunning) {
			return false, nil
		}
		return true, err
	}
	m.Options = func(name string) ([]byte, error) { return moduleOptions(cfg, name) }
	return m, cfg, nil
}

// moduleOptions returns [modules.<name>] as JSON, nil when absent.
func moduleOptions(cfg *config.Config, name string) ([]byte, error) {
	var raw json.RawMessage
	if err := cfg.DecodeModule("", name, &raw); err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, nil
	}
	return raw, nil
}

func (c *ctl) pluginCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Find, install, update and remove WebAssembly plugins",
		Long: `Plugins are WebAssembly modules from the repositories in [plugins] repositories,
signed by a key in [plugins] trusted_keys. Installed plugins are recorded in
<plugins directory>/plugins.lock; a running server is reloaded after every
change (no session is dropped) and a change it refuses is undone.`,
	}
	run := func(fn func(ctx context.Context, cmd *cobra.Command, m *plugin.Manager, cfg *config.Config, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			m, cfg, err := c.manager(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), pluginTimeout)
			defer cancel()
			return fn(ctx, cmd, m, cfg, args)
		}
	}
	var host string
	var noEnable, offline bool
	install := &cobra.Command{Use: "install NAME[@VERSION]...", Short: "Install plugins (the newest compatible version unless one is given) and enable them",
		Args: cobra.MinimumNArgs(1),
		RunE: run(func(ctx context.Context, _ *cobra.Command, m *plugin.Manager, _ *config.Config, args []string) error {
			for _, spec := range args {
				if err := m.Install(ctx, spec, !noEnable); err != nil {
					return err
				}
			}
			return nil
		})}
	install.Flags().BoolVar(&noEnable, "no-enable", false, "install without enabling on any host")
	enable := &cobra.Command{Use: "enable NAME", Short: "Enable a plugin on every host, or on one with --host", Args: cobra.ExactArgs(1),
		RunE: run(func(_ context.Context, _ *cobra.Command, m *plugin.Manager, _ *config.Config, args []string) error {
			return m.SetEnabled(args[0], host, true)
		})}
	disable := &cobra.Command{Use: "disable NAME", Short: "Disable a plugin on every host, or on one with --host", Args: cobra.ExactArgs(1),
		RunE: run(func(_ context.Context, _ *cobra.Command, m *plugin.Manager, cfg *config.Config, args []string) error {
			if where := configEnables(cfg, args[0]); where != "" && host == "" {
				fmt.Fprintf(m.Out, "note: %s also enables %s; edit it to disable it there\n", where, args[0])
			}
			return m.SetEnabled(args[0], host, false)
		})}
	for _, c := range []*cobra.Command{enable, disable} {
		c.Flags().StringVar(&host, "host", "", "only this virtual host")
	}
	list := &cobra.Command{Use: "list", Short: "List installed plugins, where they are enabled and available updates", Args: cobra.NoArgs,
		RunE: run(func(ctx context.Context, cmd *cobra.Command, m *plugin.Manager, cfg *config.Config, _ []string) error {
			items, err := m.List(ctx, !offline)
			if len(items) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no plugin is installed")
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tENABLED ON\tUPDATE\tDESCRIPTION")
			for _, it := range items {
				on := strings.Join(it.EnabledOn, ",")
				if on == "" {
					on = "-"
				}
				up := it.Update
				if up == "" {
					up = "-"
					if offline || err != nil {
						up = "?"
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.Entry.Name, it.Entry.Version, on, up, it.Description)
			}
			if ferr := tw.Flush(); ferr != nil {
				return ferr
			}
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "updates unknown: %v\n", err)
			}
			return nil
		})}
	list.Flags().BoolVar(&offline, "offline", false, "do not contact the repositories")
	cmd.AddCommand(
		&cobra.Command{Use: "search [WORD]", Short: "Search the repositories by name and description", Args: cobra.MaximumNArgs(1),
			RunE: run(func(ctx context.Context, cmd *cobra.Command, m *plugin.Manager, _ *config.Config, args []string) error {
				word := ""
				if len(args) > 0 {
					word = args[0]
				}
				cs, err := m.Search(ctx, word)
				if err != nil {
					return err
				}
				if len(cs) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "no plugin found")
					return nil
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tVERSION\tDESCRIPTION")
				for _, c := range cs {
					v := c.Version
					if !c.Compatible() {
						v += " (incompatible)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, v, c.Description)
				}
				return tw.Flush()
			})},
		&cobra.Command{Use: "info NAME", Short: "Show a plugin's versions, capabilities and options", Args: cobra.ExactArgs(1),
			RunE: run(func(ctx context.Context, cmd *cobra.Command, m *plugin.Manager, _ *config.Config, args []string) error {
				vs, installed, err := m.Info(ctx, args[0])
				if err != nil && installed == nil {
					return err
				}
				printInfo(cmd.OutOrStdout(), args[0], vs, installed)
				return err
			})},
		install,
		&cobra.Command{Use: "update [NAME]", Short: "Update a plugin, or every plugin, to its newest compatible version", Args: cobra.MaximumNArgs(1),
			RunE: run(func(ctx context.Context, _ *cobra.Command, m *plugin.Manager, _ *config.Config, args []string) error {
				name := ""
				if len(args) > 0 {
					name = args[0]
				}
				return m.Update(ctx, name)
			})},
		&cobra.Command{Use: "rollback NAME", Short: "Go back to the version a plugin had before its last update", Args: cobra.ExactArgs(1),
			RunE: run(func(_ context.Context, _ *cobra.Command, m *plugin.Manager, _ *config.Config, args []string) error {
				return m.Rollback(args[0])
			})},
		&cobra.Command{Use: "remove NAME", Short: "Uninstall a plugin and delete its files", Args: cobra.ExactArgs(1),
			RunE: run(func(_ context.Context, _ *cobra.Command, m *plugin.Manager, cfg *config.Config, args []string) error {
				if where := configEnables(cfg, args[0]); where != "" {
					return fmt.Errorf("%s enables %s: remove it there first", where, args[0])
				}
				if o, err := moduleOptions(cfg, args[0]); err == nil && o != nil {
					return fmt.Errorf("%s has options for %s ([modules.%s]): remove them first", cfg.File, args[0], args[0])
				}
				return m.Remove(args[0])
			})},
		list, enable, disable,
	)
	return cmd
}

// configEnables names the configuration list that enables module name, or "".
func configEnables(cfg *config.Config, name string) string {
	if slices.Contains(cfg.Modules.Enabled, name) {
		return cfg.File + " ([modules] enabled)"
	}
	for _, h := range cfg.Hosts {
		if slices.Contains(h.Modules.Enable, name) {
			return fmt.Sprintf("%s ([host.%q] modules.enable)", cfg.File, h.Name)
		}
	}
	return ""
}

func printInfo(w io.Writer, name string, vs []plugin.Candidate, installed *plugin.LockEntry) {
	fmt.Fprintf(w, "%s\n", name)
	if installed != nil {
		fmt.Fprintf(w, "  installed:    %s (from %s)\n", installed.Version, installed.Repository)
		if installed.Previous != nil {
			fmt.Fprintf(w, "  rollback to:  %s\n", installed.Previous.Version)
		}
	}
	if len(vs) == 0 {
		return
	}
	v := vs[0]
	fmt.Fprintf(w, "  description:  %s\n", v.Description)
	if v.Author != "" {
		fmt.Fprintf(w, "  author:       %s\n", v.Author)
	}
	if v.License != "" {
		fmt.Fprintf(w, "  licence:      %s\n", v.License)
	}
	if v.Homepage != "" {
		fmt.Fprintf(w, "  homepage:     %s\n", v.Homepage)
	}
	var list []string
	for _, c := range vs {
		s := c.Version
		if !c.Compatible() {
			s += fmt.Sprintf(" (needs plugin API %v)", c.APIVersions)
		}
		list = append(list, s)
	}
	fmt.Fprintf(w, "  versions:     %s\n", strings.Join(list, ", "))
	caps := v.Capabilities
	fmt.Fprintf(w, "  hooks:        %s\n", strings.Join(caps.Events, ", "))
	if len(caps.Stores) > 0 {
		fmt.Fprintf(w, "  stores:       %s\n", strings.Join(caps.Stores, ", "))
	}
	if len(caps.HTTP) > 0 {
		fmt.Fprintf(w, "  HTTP to:      %s\n", strings.Join(caps.HTTP, ", "))
	}
	if caps.Send || caps.Rewrite {
		var s []string
		if caps.Send {
			s = append(s, "sends stanzas")
		}
		if caps.Rewrite {
			s = append(s, "rewrites stanzas")
		}
		fmt.Fprintf(w, "  stanzas:      %s\n", strings.Join(s, ", "))
	}
	if len(v.Config) == 0 {
		return
	}
	fmt.Fprintf(w, "  options ([modules.%s]):\n", name)
	keys := make([]string, 0, len(v.Config))
	for k := range v.Config {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		o := v.Config[k]
		def := ""
		if o.Default != nil {
			b, _ := json.Marshal(o.Default)
			def = ", default " + string(b)
		}
		if o.Required {
			def = ", required"
		}
		fmt.Fprintf(w, "    %-12s %s%s: %s\n", k, o.Type, def, o.Description)
	}
}
