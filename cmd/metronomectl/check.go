package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/metronome-xmpp/metronome/internal/app"
	"github.com/metronome-xmpp/metronome/module"
)

func (c *ctl) checkCmd() *cobra.Command {
	var noDNS bool
	cmd := &cobra.Command{Use: "check", Short: "Check the configuration, certificates and DNS records", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			problems := 0
			cfg, err := app.LoadConfig(c.configPath)
			if err != nil {
				fmt.Fprintf(out, "config: ERROR\n%s\n", indent(err.Error()))
				return &exitError{1, fmt.Errorf("the configuration has errors")}
			}
			if cfg.File == "" {
				fmt.Fprintln(out, "config: no file found; built-in defaults (host localhost) are in use")
			} else {
				fmt.Fprintf(out, "config: %s is valid\n", cfg.File)
			}
			if _, err := app.Options(cfg); err != nil {
				fmt.Fprintf(out, "config: ERROR: %v\n", err)
				problems++
			}
			// Decode and validate every module's options as the daemon will.
			for _, h := range cfg.Hosts {
				for _, name := range cfg.EnabledModules(h.Name) {
					info, _ := module.Lookup(name)
					m := info.New()
					err := cfg.DecodeModule(h.Name, name, m)
					if v, ok := m.(module.Validator); ok && err == nil {
						if err = v.Validate(); err != nil {
							err = cfg.ModuleError(h.Name, name, err)
						}
					}
					if err != nil {
						fmt.Fprintf(out, "config: ERROR: %v\n", err)
						problems++
					}
				}
			}
			for _, h := range cfg.Hosts {
				tf := h.TLS
				if tf.IsZero() {
					tf = cfg.TLS
				}
				problems += checkCert(out, h.Name, tf.Cert, tf.Key, cfg.CertDir())
				if !noDNS {
					problems += checkDNS(out, h.Name)
				}
			}
			if problems > 0 {
				return &exitError{1, fmt.Errorf("%d problem(s) found", problems)}
			}
			fmt.Fprintln(out, "everything looks fine")
			return nil
		}}
	cmd.Flags().BoolVar(&noDNS, "no-dns", false, "skip the DNS SRV checks")
	return cmd
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

type writer interface{ Write([]byte) (int, error) }

func checkCert(out writer, host, certFile, keyFile, certDir string) int {
	selfSigned := certFile == ""
	if selfSigned {
		certFile = filepath.Join(certDir, host+".crt")
		keyFile = filepath.Join(certDir, host+".key")
		if _, err := os.Stat(certFile); err != nil {
			fmt.Fprintf(out, "host %s: certificate: none configured; a self-signed one will be generated at first start (clients will warn)\n", host)
			return 0
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		fmt.Fprintf(out, "host %s: certificate: ERROR: cannot load %s with %s: %v\n", host, certFile, keyFile, err)
		return 1
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		fmt.Fprintf(out, "host %s: certificate: ERROR: %v\n", host, err)
		return 1
	}
	problems := 0
	if err := leaf.VerifyHostname(host); err != nil {
		fmt.Fprintf(out, "host %s: certificate: ERROR: %s does not cover %s (names: %s)\n", host, certFile, host, strings.Join(leaf.DNSNames, ", "))
		problems++
	}
	left := time.Until(leaf.NotAfter)
	switch {
	case left < 0:
		fmt.Fprintf(out, "host %s: certificate: ERROR: expired on %s\n", host, leaf.NotAfter.Format(time.DateOnly))
		problems++
	case left < 14*24*time.Hour:
		fmt.Fprintf(out, "host %s: certificate: WARNING: expires in %d days (%s)\n", host, int(left.Hours()/24), leaf.NotAfter.Format(time.DateOnly))
	default:
		kind := "issued by " + leaf.Issuer.CommonName
		if selfSigned || leaf.Issuer.String() == leaf.Subject.String() {
			kind = "self-signed (clients will warn)"
		}
		fmt.Fprintf(out, "host %s: certificate: ok, %s, valid until %s\n", host, kind, leaf.NotAfter.Format(time.DateOnly))
	}
	return problems
}

func checkDNS(out writer, host string) int {
	if host == "localhost" || !strings.Contains(host, ".") {
		fmt.Fprintf(out, "host %s: DNS: skipped (not a public name)\n", host)
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var r net.Resolver
	for _, svc := range []string{"xmpp-client", "xmpps-client", "xmpp-server"} {
		_, srvs, err := r.LookupSRV(ctx, svc, "tcp", host)
		if err != nil || len(srvs) == 0 {
			if svc == "xmpps-client" {
				fmt.Fprintf(out, "host %s: DNS: no _%s._tcp record (optional, XEP-0368 direct TLS)\n", host, svc)
				continue
			}
			fmt.Fprintf(out, "host %s: DNS: WARNING: no _%s._tcp.%s SRV record; clients will fall back to %s itself\n", host, svc, host, host)
			continue
		}
		var targets []string
		for _, s := range srvs {
			targets = append(targets, fmt.Sprintf("%s:%d", strings.TrimSuffix(s.Target, "."), s.Port))
		}
		fmt.Fprintf(out, "host %s: DNS: _%s._tcp → %s\n", host, svc, strings.Join(targets, ", "))
	}
	return 0
}
