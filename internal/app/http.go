package app

import (
	"sort"

	"github.com/metronome-xmpp/metronome/internal/admin"
	"github.com/metronome-xmpp/metronome/internal/config"
	"github.com/metronome-xmpp/metronome/internal/core"
	"github.com/metronome-xmpp/metronome/internal/httpd"
)

// HTTPConfig translates the [http] section into the HTTP server's configuration.
func HTTPConfig(cfg *config.Config) httpd.Config {
	h := cfg.HTTP
	return httpd.Config{
		Listen:            h.Listen,
		ListenTLS:         h.ListenTLS,
		ExternalURL:       h.ExternalURL,
		DefaultHost:       h.DefaultHost,
		TrustedProxies:    config.Prefixes(h.TrustedProxies),
		CORSOrigins:       h.CORSOrigins,
		ReadHeaderTimeout: h.ReadHeaderTimeout,
		ReadTimeout:       h.ReadTimeout,
		WriteTimeout:      h.WriteTimeout,
		IdleTimeout:       h.IdleTimeout,
		MaxHeaderBytes:    int(h.MaxHeaderSize),
		MaxBodySize:       h.MaxBodySize,
		MetricsPath:       h.MetricsPath,
		MetricsListen:     h.MetricsListen,
		StatusPath:        h.StatusPath,
		LocalNetworks:     config.Prefixes(h.LocalNetworks),
		APITokens:         h.APITokens,
		APITokensFile:     h.APITokensFile,
		DataDir:           cfg.Server.DataDir,
	}
}

// AttachHTTP connects the modules of opts to the HTTP server: the "http"
// module is loaded first on every virtual host and handed hs, so that
// module.HTTP works and the admin operations see the hosts.
func AttachHTTP(opts *core.Options, hs *httpd.Server) {
	for i := range opts.Hosts {
		opts.Hosts[i].Modules = httpd.WithModule(opts.Hosts[i].Modules)
	}
	opts.DecodeModule = hs.WrapDecoder(opts.DecodeModule)
}

// NewOps returns the administrative operations on a running server, for
// the admin socket and the HTTP admin API.
func NewOps(srv *core.Server, hs *httpd.Server) *admin.Ops {
	return &admin.Ops{
		Core:    srv,
		Version: core.Version,
		Host:    hs.Host,
		Modules: func(host string) []string {
			for _, h := range srv.Options().Hosts {
				if h.Name == host {
					mods := append([]string(nil), h.Modules...)
					sort.Strings(mods)
					return mods
				}
			}
			return nil
		},
	}
}
