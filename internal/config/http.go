package config

// The [http] section: the HTTP server (internal/httpd) that serves module
// routes (HTTP upload, host-meta, later BOSH and WebSocket), the metrics,
// the status page and the admin API. Kept in its own file so that it stays
// apart from the core schema.

import (
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// HTTP is the [http] section. Listeners are off by default.
type HTTP struct {
	Listen    []string // plain HTTP listeners, for a reverse proxy in front; default none
	ListenTLS []string // HTTPS listeners (HTTP/1.1 and HTTP/2, hosts' certificates by SNI); default none
	// ExternalURL is the public base URL of the HTTP routes, as clients
	// reach them (e.g. through a proxy); default "": https://<host>:<port of
	// the first listen_tls> (else http:// and the first listen).
	ExternalURL string
	// DefaultHost answers requests whose Host header names no virtual host
	// (an IP address, the proxy's name); default "": only routes a single
	// host registered are served that way.
	DefaultHost string
	// TrustedProxies are addresses or CIDR prefixes whose X-Forwarded-For
	// and Forwarded headers are believed; default none.
	TrustedProxies []string
	// CORSOrigins are the web origins allowed to call the HTTP routes from
	// a browser ("*" = any); default none.
	CORSOrigins []string

	ReadHeaderTimeout time.Duration // default 10s; against slowloris
	ReadTimeout       time.Duration // reading one request body; default 1m; 0 = none
	WriteTimeout      time.Duration // writing one response; default 2m; 0 = none
	IdleTimeout       time.Duration // keep-alive connections without requests; default 2m
	MaxHeaderSize     int64         // default 64KiB
	MaxBodySize       int64         // default 1MiB; routes such as uploads set their own

	MetricsPath   string   // Prometheus metrics on the listeners above; default "/metrics"; "" = off
	MetricsListen string   // a dedicated plain listener for the metrics; default "" (none)
	StatusPath    string   // the status page; default "/status"; "" = off
	LocalNetworks []string // who may read metrics and status without a token; default loopback

	APITokens     []string // bearer tokens of the admin API (/api/); default none: API off
	APITokensFile string   // a file of more tokens, one per line, re-read on reload
}

// defaultHTTP returns the defaults of [http].
func defaultHTTP() HTTP {
	return HTTP{
		Listen:            []string{},
		ListenTLS:         []string{},
		TrustedProxies:    []string{},
		CORSOrigins:       []string{},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderSize:     64 << 10,
		MaxBodySize:       1 << 20,
		MetricsPath:       "/metrics",
		StatusPath:        "/status",
		LocalNetworks:     []string{"127.0.0.0/8", "::1/128"},
		APITokens:         []string{},
	}
}

// ParsePrefix reads an address ("192.0.2.1", "::1") or a CIDR prefix
// ("10.0.0.0/8") as a prefix.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (l *loader) http(s *section, h *HTTP, hosts []Host) {
	seen := map[string]bool{}
	for _, key := range []string{"listen", "listen_tls"} {
		dst := &h.Listen
		if key == "listen_tls" {
			dst = &h.ListenTLS
		}
		if !s.strList(key, dst) {
			continue
		}
		for i, a := range *dst {
			p := s.p.with(key, idx(i))
			if err := checkListenAddr(a); err != nil {
				l.errAt(p, "[http] %s: %v", key, err)
			} else if seen[a] && !strings.HasSuffix(a, ":0") {
				l.errAt(p, "[http] %s: address %q is listed twice", key, a)
			}
			seen[a] = true
		}
	}
	if s.str("external_url", &h.ExternalURL) && h.ExternalURL != "" {
		u, err := url.Parse(h.ExternalURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			s.errf("external_url", "%q is not an absolute https:// (or http://) URL", h.ExternalURL)
		}
		h.ExternalURL = strings.TrimSuffix(h.ExternalURL, "/")
	}
	if s.str("default_host", &h.DefaultHost) && h.DefaultHost != "" {
		name := strings.TrimSuffix(strings.ToLower(h.DefaultHost), ".")
		if !slices.ContainsFunc(hosts, func(x Host) bool { return x.Name == name }) {
			s.errf("default_host", "%q is not a [host] of this configuration", h.DefaultHost)
		}
		h.DefaultHost = name
	}
	l.prefixes(s, "trusted_proxies", &h.TrustedProxies)
	l.prefixes(s, "local_networks", &h.LocalNetworks)
	if s.strList("cors_origins", &h.CORSOrigins) {
		for i, o := range h.CORSOrigins {
			if o == "*" {
				continue
			}
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
				l.errAt(s.p.with("cors_origins", idx(i)), "[http] cors_origins: %q is not an origin such as \"https://chat.example.org\" or \"*\"", o)
			}
			h.CORSOrigins[i] = strings.TrimSuffix(o, "/")
		}
	}
	s.duration("read_header_timeout", &h.ReadHeaderTimeout, time.Second)
	s.duration("read_timeout", &h.ReadTimeout, 0)
	s.duration("write_timeout", &h.WriteTimeout, 0)
	s.duration("idle_timeout", &h.IdleTimeout, time.Second)
	s.size("max_header_size", &h.MaxHeaderSize, 4096)
	s.size("max_body_size", &h.MaxBodySize, 1024)
	for _, key := range []string{"metrics_path", "status_path"} {
		dst := &h.MetricsPath
		if key == "status_path" {
			dst = &h.StatusPath
		}
		if s.str(key, dst) && *dst != "" {
			if !strings.HasPrefix(*dst, "/") || strings.HasPrefix(*dst, "/api/") || *dst == "/" || strings.ContainsAny(*dst, " {}") {
				s.errf(key, "%q must be a path such as \"/metrics\" (not / nor under /api/)", *dst)
			}
		}
	}
	if h.MetricsPath != "" && h.MetricsPath == h.StatusPath {
		s.errf("status_path", "%q is also metrics_path", h.StatusPath)
	}
	if s.str("metrics_listen", &h.MetricsListen) && h.MetricsListen != "" {
		if err := checkListenAddr(h.MetricsListen); err != nil {
			s.errf("metrics_listen", "%v", err)
		}
	}
	if s.strList("api_tokens", &h.APITokens) {
		for i, t := range h.APITokens {
			if len(t) < 16 {
				l.errAt(s.p.with("api_tokens", idx(i)), "[http] api_tokens: tokens must be at least 16 characters long")
			}
		}
	}
	s.path("api_tokens_file", &h.APITokensFile)
	s.done()
}

// prefixes reads a list of addresses or CIDR prefixes.
func (l *loader) prefixes(s *section, key string, dst *[]string) {
	if !s.strList(key, dst) {
		return
	}
	for i, v := range *dst {
		if _, err := ParsePrefix(v); err != nil {
			l.errAt(s.p.with(key, idx(i)), "[http] %s: %q is not an IP address or CIDR prefix", key, v)
		}
	}
}

// Prefixes parses a validated list of addresses and prefixes.
func Prefixes(list []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(list))
	for _, v := range list {
		if p, err := ParsePrefix(v); err == nil {
			out = append(out, p)
		}
	}
	return out
}
