package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/metronome-xmpp/metronome/internal/plugin"
)

// defaultKey is where `repo init` and `repo sign` keep a repository's
// private key: beside the repository, never inside it.
func defaultKey(dir string) string {
	return filepath.Clean(strings.TrimRight(dir, string(filepath.Separator))) + ".key"
}

func (c *ctl) repoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "Build, sign and serve a plugin repository",
		Long: `A plugin repository is a static directory: index.json, one folder per plugin
version (plugin.toml and plugin.wasm), and an ed25519 signature beside the index
and every file. Any HTTP server, or a file:// path, can serve it.

  metronomectl repo init ./repo            # creates ./repo and the key ./repo.key
  metronomectl repo add ./repo ./my-plugin # builds from source (or add a .wasm)
  metronomectl repo build ./repo           # writes index.json
  metronomectl repo sign ./repo            # signs the index and every file
  metronomectl repo serve ./repo           # serves it for testing

Servers trust the key printed by init (also in ./repo/key.pub) with
[plugins] trusted_keys.`,
	}
	var key string
	keyFlag := func(c *cobra.Command) {
		c.Flags().StringVar(&key, "key", "", "private key file (default: <dir>.key, beside the repository)")
	}
	keyOf := func(dir string) string {
		if key != "" {
			return key
		}
		return defaultKey(dir)
	}
	initCmd := &cobra.Command{Use: "init DIR", Short: "Create a repository and its signing key", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k := keyOf(args[0])
			_, statErr := os.Stat(k)
			pub, err := plugin.RepoInit(args[0], k)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "created repository %s\n", args[0])
			if statErr == nil {
				fmt.Fprintf(out, "using the existing signing key %s\n", k)
			} else {
				fmt.Fprintf(out, "created signing key %s (keep it secret; it is not inside the repository)\n", k)
			}
			fmt.Fprintf(out, "public key (also in %s):\n  %s\n", filepath.Join(args[0], plugin.PublicKeyFile), pub)
			fmt.Fprintf(out, "servers trust it with:\n  [plugins]\n  trusted_keys = [%q]\n", pub)
			return nil
		}}
	keyFlag(initCmd)
	var manifest string
	var force bool
	addCmd := &cobra.Command{Use: "add DIR SOURCE...", Short: "Add plugin versions from source folders or built .wasm files", Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if manifest != "" && len(args) > 2 {
				return errors.New("--manifest applies to one .wasm file at a time")
			}
			for _, src := range args[1:] {
				st, err := os.Stat(src)
				if err == nil && st.IsDir() {
					fmt.Fprintf(cmd.OutOrStdout(), "building %s for wasip1...\n", src)
				}
				m, err := plugin.RepoAdd(args[0], src, manifest, force)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "added %s %s\n", m.Name, m.Version)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "next: metronomectl repo build "+args[0])
			return nil
		}}
	addCmd.Flags().StringVar(&manifest, "manifest", "", "manifest of a .wasm file (default: plugin.toml beside it)")
	addCmd.Flags().BoolVar(&force, "force", false, "replace a version already in the repository")
	buildCmd := &cobra.Command{Use: "build DIR", Short: "Write the repository index from its plugin folders", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			idx, err := plugin.RepoBuild(args[0])
			if err != nil {
				return err
			}
			n := 0
			for _, p := range idx.Plugins {
				n += len(p.Versions)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d plugins, %d versions (unsigned: run metronomectl repo sign %s)\n",
				filepath.Join(args[0], plugin.IndexFile), len(idx.Plugins), n, args[0])
			return nil
		}}
	signCmd := &cobra.Command{Use: "sign DIR", Short: "Sign the index and every plugin file", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := plugin.RepoSign(args[0], keyOf(args[0]))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed %d files with %s\n", n, keyOf(args[0]))
			return nil
		}}
	keyFlag(signCmd)
	var listen string
	serveCmd := &cobra.Command{Use: "serve DIR", Short: "Serve a repository over HTTP (for testing)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(filepath.Join(args[0], plugin.IndexFile)); err != nil {
				return fmt.Errorf("%w (run metronomectl repo build first)", err)
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: plugin.RepoHandler(args[0]), ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(cmd.OutOrStdout(), "serving %s at http://%s/\n", args[0], l.Addr())
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sigs)
			done := make(chan error, 1)
			go func() { done <- srv.Serve(l) }()
			select {
			case err := <-done:
				return err
			case <-sigs:
				return srv.Close()
			case <-cmd.Context().Done():
				return srv.Close()
			}
		}}
	serveCmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on")
	cmd.AddCommand(initCmd, addCmd, buildCmd, signCmd, serveCmd)
	return cmd
}
