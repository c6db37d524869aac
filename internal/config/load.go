package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Parse validates the configuration text data; name is used in error
// messages and to resolve relative paths (see the package documentation).
// All problems found are returned together (errors.Join of *Error).
func Parse(name string, data []byte) (*Config, error) {
	var raw map[string]any
	if err := toml.Unmarshal(data, &raw); err != nil {
		e := &Error{File: name, Msg: err.Error(), err: err}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			e.Line, _ = de.Position()
			e.Msg = strings.TrimPrefix(de.Error(), "toml: ")
		}
		return nil, e
	}
	l := &loader{file: name, pos: indexPositions(data)}
	if p := tooDeep(nil, raw); p != nil {
		l.errAt(p, "%s: tables and arrays are nested more than %d levels deep", p.dotted(), maxDepth)
		return nil, joinErrors(l.errs)
	}
	c := l.load(raw)
	if err := joinErrors(l.errs); err != nil {
		return nil, err
	}
	return c, nil
}

// loader accumulates errors while walking the decoded document.
type loader struct {
	file string
	pos  *positions
	errs []*Error
}

func (l *loader) errAt(p path, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: l.file, Line: l.pos.line(p), Msg: fmt.Sprintf(format, args...)})
}

// section reads one table of the static schema. Every accessor declares its
// key as known (present or not); done reports the keys nobody asked for.
type section struct {
	l     *loader
	p     path
	m     map[string]any
	known []string
}

// sectionOf wraps v (which must be a table) found at p.
func (l *loader) sectionOf(p path, v any) *section {
	s := &section{l: l, p: p}
	switch m := v.(type) {
	case map[string]any:
		s.m = m
	case nil:
	default:
		l.errAt(p, "%s must be a table, got %s", p.dotted(), tomlKind(v))
	}
	return s
}

func (s *section) errf(key string, format string, args ...any) {
	where := s.p.section() + " " + key
	if len(s.p) == 0 {
		where = quoteKey(key)
	}
	s.l.errAt(s.p.with(key), "%s: %s", where, fmt.Sprintf(format, args...))
}

func (s *section) get(key string) (any, bool) {
	s.known = append(s.known, key)
	v, ok := s.m[key]
	return v, ok
}

func (s *section) str(key string, dst *string) bool {
	v, ok := s.get(key)
	if !ok {
		return false
	}
	str, ok := v.(string)
	if !ok {
		s.errf(key, "expected string, got %s", tomlKind(v))
		return false
	}
	*dst = str
	return true
}

func (s *section) enum(key string, dst *string, allowed []string) {
	var v string
	if !s.str(key, &v) {
		return
	}
	if !slices.Contains(allowed, v) {
		s.errf(key, "invalid value %q (want %s)", v, orList(allowed))
		return
	}
	*dst = v
}

func (s *section) strList(key string, dst *[]string) bool {
	v, ok := s.get(key)
	if !ok {
		return false
	}
	arr, ok := v.([]any)
	if !ok {
		s.errf(key, "expected array of strings, got %s", tomlKind(v))
		return false
	}
	out := make([]string, 0, len(arr))
	good := true
	for i, e := range arr {
		str, ok := e.(string)
		if !ok {
			s.l.errAt(s.p.with(key, idx(i)), "%s %s[%d]: expected string, got %s", s.p.section(), key, i, tomlKind(e))
			good = false
			continue
		}
		out = append(out, str)
	}
	if good {
		*dst = out
	}
	return good
}

func (s *section) boolean(key string, dst *bool) {
	v, ok := s.get(key)
	if !ok {
		return
	}
	b, ok := v.(bool)
	if !ok {
		s.errf(key, "expected boolean, got %s", tomlKind(v))
		return
	}
	*dst = b
}

func (s *section) integer(key string, dst *int, minimum int) {
	v, ok := s.get(key)
	if !ok {
		return
	}
	n, ok := v.(int64)
	if !ok {
		s.errf(key, "expected integer, got %s", tomlKind(v))
		return
	}
	if n < int64(minimum) || n > math.MaxInt32 {
		s.errf(key, "%d is out of range (%d to %d)", n, minimum, math.MaxInt32)
		return
	}
	*dst = int(n)
}

func (s *section) duration(key string, dst *time.Duration, minimum time.Duration) {
	v, ok := s.get(key)
	if !ok {
		return
	}
	str, ok := v.(string)
	if !ok {
		s.errf(key, "expected a duration string such as \"30s\" or \"5m\", got %s", tomlKind(v))
		return
	}
	d, err := ParseDuration(str)
	if err != nil {
		s.errf(key, "%v", err)
		return
	}
	if d < minimum {
		s.errf(key, "%s is too short (minimum %s)", str, FormatDuration(minimum))
		return
	}
	*dst = d
}

func (s *section) size(key string, dst *int64, minimum int64) {
	v, ok := s.get(key)
	if !ok {
		return
	}
	var n int64
	switch x := v.(type) {
	case string:
		var err error
		if n, err = ParseSize(x); err != nil {
			s.errf(key, "%v", err)
			return
		}
	case int64:
		n = x
	default:
		s.errf(key, "expected a size such as \"256KB\" or \"1MiB\", got %s", tomlKind(v))
		return
	}
	if n < minimum {
		s.errf(key, "%d bytes is too small (minimum %d)", n, minimum)
		return
	}
	*dst = n
}

// table returns the sub-table key, or nil when absent or not a table.
func (s *section) table(key string) *section {
	v, ok := s.get(key)
	if !ok {
		return nil
	}
	if _, ok := v.(map[string]any); !ok {
		s.errf(key, "expected table, got %s", tomlKind(v))
		return nil
	}
	return s.l.sectionOf(s.p.with(key), v)
}

// path resolves a file path relative to the config file's directory.
func (s *section) path(key string, dst *string) bool {
	var v string
	if !s.str(key, &v) {
		return false
	}
	if v != "" && !filepath.IsAbs(v) && s.l.file != "" {
		v = filepath.Join(filepath.Dir(s.l.file), v)
	}
	*dst = v
	return true
}

// done reports unknown keys, with a suggestion when one is near.
func (s *section) done() {
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		if !slices.Contains(s.known, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		s.l.errAt(s.p.with(k), "unknown key %q in %s%s", k, s.p.section(), hint(k, s.known, s.p.section()))
	}
}

// schemaHome maps each static key to the section it belongs in, to explain
// misplaced keys.
var schemaHome = map[string]string{
	"admins": "[server]", "data_dir": "[server]", "log_level": "[server]", "log_format": "[server]",
	"log_levels": "[server]", "pidfile": "[server]", "admin_socket": "[server]", "scram_hashes": "[server]",
	"default": "[storage]", "sqlite": "[storage]", "postgres": "[storage]",
	"c2s_tls":            "[listen]",
	"require_encryption": "[c2s]", "stream_open_timeout": "[c2s]", "auth_timeout": "[c2s]",
	"idle_timeout": "[c2s]", "ping_timeout": "[c2s]", "max_stanza_size": "[c2s]", "resource_conflict": "[c2s]",
	"max_sessions_per_user": "[c2s]", "auth_throttle": "[c2s]", "max_connections_per_ip": "[c2s]",
	"read_rate": "[c2s]", "read_burst": "[c2s]",
	"enabled": "[modules]",
	"cert":    "[tls]",

	"repositories": "[plugins]", "trusted_keys": "[plugins]", "memory_limit": "[plugins]",
	"call_timeout": "[plugins]", "max_failures": "[plugins]", "instances": "[plugins]",
}

func hint(key string, known []string, here string) string {
	if s := closest(key, known); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	if home, ok := schemaHome[key]; ok && home != here {
		return fmt.Sprintf(" (%s belongs in %s)", key, home)
	}
	return ""
}

// closest returns the candidate within a small edit distance of s, or "".
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	if len(s) <= 4 {
		bestD = 2
	}
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), c); d < bestD && c != s {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func orList(xs []string) string {
	if len(xs) == 1 {
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

// tomlKind names the TOML type of a decoded value.
func tomlKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	case time.Time:
		return "datetime"
	case toml.LocalDate:
		return "date"
	case toml.LocalTime:
		return "time"
	case toml.LocalDateTime:
		return "datetime"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%T", v)
}

// load walks the decoded document.
func (l *loader) load(raw map[string]any) *Config {
	c := Default()
	c.File = l.file
	c.pos = l.pos
	c.Server.PIDFile, c.Server.AdminSocket, c.Storage.SQLite.Path = "", "", ""
	c.Plugins.Directory = ""

	top := l.sectionOf(nil, raw)
	if s := top.table("server"); s != nil {
		l.server(s, &c.Server)
	}
	if s := top.table("storage"); s != nil {
		l.storage(s, &c.Storage)
	}
	if s := top.table("listen"); s != nil {
		l.listen(s, &c.Listen)
	}
	if s := top.table("tls"); s != nil {
		l.tlsFiles(s, &c.TLS)
	}
	if s := top.table("c2s"); s != nil {
		l.c2s(s, &c.C2S)
	}
	if s := top.table("modules"); s != nil {
		l.modules(s, c)
	}
	if s := top.table("plugins"); s != nil {
		l.plugins(s, &c.Plugins)
	}
	if s := top.table("host"); s != nil {
		c.Hosts = l.hosts(s)
	}
	if s := top.table("component"); s != nil {
		c.Components = l.components(s, c.Hosts)
	}
	if s := top.table("http"); s != nil {
		l.http(s, &c.HTTP, c.Hosts) // after [host]: default_host names one
	}
	// Unknown top-level entries are reported as sections.
	for _, k := range sortedKeys(raw) {
		if !slices.Contains(top.known, k) {
			h := ""
			if s := closest(k, top.known); s != "" {
				h = fmt.Sprintf(" (did you mean [%s]?)", s)
			} else if home, ok := schemaHome[k]; ok {
				h = fmt.Sprintf(" (%s belongs in %s)", k, home)
			}
			if _, isTable := raw[k].(map[string]any); isTable {
				l.errAt(path{k}, "unknown section [%s]%s", quoteKey(k), h)
			} else {
				l.errAt(path{k}, "unknown key %q at top level%s", k, h)
			}
		}
	}
	if len(c.Hosts) == 0 {
		c.Hosts = []Host{{Name: "localhost", raw: "localhost"}}
	}
	if c.Storage.Default == StoragePostgres && c.Storage.Postgres.DSN == "" {
		l.errAt(path{"storage", "default"}, "[storage] default = \"postgres\" requires postgres = { dsn = \"...\" }")
	}
	c.applyDerivedDefaults()
	return c
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (l *loader) server(s *section, srv *Server) {
	if s.strList("admins", &srv.Admins) {
		for i, a := range srv.Admins {
			if err := checkBareJID(a); err != nil {
				l.errAt(s.p.with("admins", idx(i)), "[server] admins: %q: %v", a, err)
			}
		}
	}
	var dir string
	if s.str("data_dir", &dir) {
		if dir == "" {
			s.errf("data_dir", "must not be empty")
		} else {
			srv.DataDir = dir
		}
	}
	s.enum("log_level", &srv.LogLevel, logLevels)
	s.enum("log_format", &srv.LogFormat, logFormats)
	if lv := s.table("log_levels"); lv != nil {
		for _, k := range sortedKeys(lv.m) {
			var v string
			if lv.enum(k, &v, logLevels); v != "" {
				srv.LogLevels[k] = v
			}
		}
	}
	s.path("pidfile", &srv.PIDFile)
	s.path("admin_socket", &srv.AdminSocket)
	if s.strList("scram_hashes", &srv.SCRAMHashes) {
		seen := map[string]bool{}
		for i, h := range srv.SCRAMHashes {
			switch {
			case h != "SHA-1" && h != "SHA-256" && h != "SHA-512":
				l.errAt(s.p.with("scram_hashes", idx(i)), "[server] scram_hashes: %q: want SHA-1, SHA-256 or SHA-512", h)
			case seen[h]:
				l.errAt(s.p.with("scram_hashes", idx(i)), "[server] scram_hashes: %q is listed twice", h)
			}
			seen[h] = true
		}
		if len(srv.SCRAMHashes) == 0 {
			l.errAt(s.p.with("scram_hashes"), "[server] scram_hashes: at least one hash is needed")
		}
	}
	s.done()
}

func (l *loader) storage(s *section, st *Storage) {
	s.enum("default", &st.Default, storageKinds)
	if t := s.table("sqlite"); t != nil {
		t.path("path", &st.SQLite.Path)
		t.enum("synchronous", &st.SQLite.Synchronous, []string{"full", "normal"})
		t.done()
	}
	if t := s.table("postgres"); t != nil {
		t.str("dsn", &st.Postgres.DSN)
		t.done()
	}
	s.done()
}

func (l *loader) listen(s *section, ls *Listen) {
	seen := map[string]bool{}
	for _, key := range []string{"c2s", "c2s_tls"} {
		dst := &ls.C2S
		if key == "c2s_tls" {
			dst = &ls.C2STLS
		}
		if !s.strList(key, dst) {
			continue
		}
		for i, a := range *dst {
			p := s.p.with(key, idx(i))
			if err := checkListenAddr(a); err != nil {
				l.errAt(p, "[listen] %s: %v", key, err)
			} else if seen[a] && !strings.HasSuffix(a, ":0") {
				l.errAt(p, "[listen] %s: address %q is listed twice", key, a)
			}
			seen[a] = true
		}
	}
	s.done()
}

func checkListenAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("invalid address %q: want host:port, e.g. \"[::]:5222\" or \"0.0.0.0:5222\"", a)
	}
	if host != "" && strings.ContainsAny(host, " /") {
		return fmt.Errorf("invalid address %q: bad host %q", a, host)
	}
	// Port 0 asks the system for a free port (tests, and the load tool).
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("invalid address %q: port must be a number from 0 to 65535", a)
	}
	return nil
}

func (l *loader) tlsFiles(s *section, t *TLSFiles) {
	s.path("cert", &t.Cert)
	s.path("key", &t.Key)
	switch {
	case t.Cert != "" && t.Key == "":
		l.errAt(s.p, "%s: cert is set but key is not", s.p.section())
	case t.Cert == "" && t.Key != "":
		l.errAt(s.p, "%s: key is set but cert is not", s.p.section())
	}
	s.done()
}

func (l *loader) c2s(s *section, c *C2S) {
	s.boolean("require_encryption", &c.RequireEncryption)
	s.duration("stream_open_timeout", &c.StreamOpenTimeout, time.Second)
	s.duration("auth_timeout", &c.AuthTimeout, time.Second)
	s.duration("idle_timeout", &c.IdleTimeout, time.Second)
	s.duration("ping_timeout", &c.PingTimeout, time.Second)
	// RFC 6120 §13.12: servers must accept stanzas of at least 10000 bytes.
	s.size("max_stanza_size", &c.MaxStanzaSize, 10000)
	s.enum("resource_conflict", &c.ResourceConflict, conflictKinds)
	s.integer("max_sessions_per_user", &c.MaxSessionsPerUser, 0)
	s.integer("max_connections_per_ip", &c.MaxConnectionsPerIP, 0)
	s.size("read_rate", &c.ReadRate, 0)
	s.size("read_burst", &c.ReadBurst, 0)
	s.duration("sm_resume_timeout", &c.SMResumeTimeout, 0)
	s.integer("sm_max_unacked", &c.SMMaxUnacked, 1)
	s.duration("sm_ack_timeout", &c.SMAckTimeout, 0)
	if t := s.table("auth_throttle"); t != nil {
		t.integer("per_ip", &c.AuthThrottle.PerIP, 0)
		t.integer("per_account", &c.AuthThrottle.PerAccount, 0)
		t.duration("window", &c.AuthThrottle.Window, time.Second)
		t.done()
	}
	s.done()
}

func (l *loader) modules(s *section, c *Config) {
	var enabled []string
	if s.strList("enabled", &enabled) {
		c.Modules.Enabled = l.moduleList(s.p.with("enabled"), enabled)
	}
	for _, k := range sortedKeys(s.m) {
		if k == "enabled" {
			continue
		}
		if m, ok := s.m[k].(map[string]any); ok {
			s.known = append(s.known, k)
			c.modOpts[k] = m
		}
	}
	s.done()
}

// moduleList validates and deduplicates a list of module names.
func (l *loader) moduleList(p path, names []string) []string {
	out := []string{}
	for i, n := range names {
		if n == "" || strings.ContainsAny(n, " \t\r\n.\"/") {
			l.errAt(p.with(idx(i)), "%s: invalid module name %q", p.dotted(), n)
			continue
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func (l *loader) hosts(s *section) []Host {
	var hosts []Host
	byName := map[string]string{}
	for _, raw := range sortedKeys(s.m) {
		s.known = append(s.known, raw)
		p := s.p.with(raw)
		name, err := normalizeDomain(raw)
		if err != nil {
			l.errAt(p, "%s: %v", p.section(), err)
			continue
		}
		if prev, dup := byName[name]; dup {
			l.errAt(p, "%s: duplicate host (same as %s)", p.section(), s.p.with(prev).section())
			continue
		}
		byName[name] = raw
		hs := l.sectionOf(p, s.m[raw])
		h := Host{Name: name, raw: raw, opts: map[string]map[string]any{}}
		if t := hs.table("tls"); t != nil {
			l.tlsFiles(t, &h.TLS)
			if h.TLS.Cert == "" && h.TLS.Key == "" {
				l.errAt(t.p, "%s: cert and key are required", t.p.section())
			}
		}
		if t := hs.table("modules"); t != nil {
			var en, dis []string
			if t.strList("enable", &en) {
				h.Modules.Enable = l.moduleList(t.p.with("enable"), en)
			}
			if t.strList("disable", &dis) {
				h.Modules.Disable = l.moduleList(t.p.with("disable"), dis)
			}
			for _, m := range h.Modules.Enable {
				if slices.Contains(h.Modules.Disable, m) {
					l.errAt(t.p.with("disable"), "%s: module %q is both enabled and disabled", t.p.section(), m)
				}
			}
			t.done()
		}
		for _, k := range sortedKeys(hs.m) {
			if k == "tls" || k == "modules" {
				continue
			}
			if m, ok := hs.m[k].(map[string]any); ok {
				hs.known = append(hs.known, k)
				h.opts[k] = m
			} else {
				l.errAt(p.with(k), "unknown key %q in %s (module options are tables: %s)",
					k, p.section(), p.with(k).section())
				hs.known = append(hs.known, k)
			}
		}
		hs.done()
		hosts = append(hosts, h)
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name })
	return hosts
}

func (l *loader) components(s *section, hosts []Host) []Component {
	var comps []Component
	byName := map[string]string{}
	for _, h := range hosts {
		byName[h.Name] = path{"host", h.raw}.section()
	}
	for _, raw := range sortedKeys(s.m) {
		s.known = append(s.known, raw)
		p := s.p.with(raw)
		name, err := normalizeDomain(raw)
		if err != nil {
			l.errAt(p, "%s: %v", p.section(), err)
			continue
		}
		if prev, dup := byName[name]; dup {
			l.errAt(p, "%s: duplicate name (same as %s)", p.section(), prev)
			continue
		}
		byName[name] = p.section()
		cs := l.sectionOf(p, s.m[raw])
		cp := Component{Name: name, raw: raw}
		_, hasModule := cs.m["module"]
		if cs.str("module", &cp.Module) && cp.Module == "" {
			cs.errf("module", "must not be empty")
		}
		cs.strList("modules", &cp.Modules)
		var tables []string
		for _, k := range sortedKeys(cs.m) {
			if _, ok := cs.m[k].(map[string]any); ok && k != "module" {
				tables = append(tables, k)
			}
		}
		switch {
		case !hasModule && len(tables) == 1:
			cp.Module = tables[0]
		case !hasModule:
			l.errAt(p, "%s: missing module = \"...\"", p.section())
		}
		for _, k := range tables {
			cs.known = append(cs.known, k)
			if cp.Module != "" && k != cp.Module {
				l.errAt(p.with(k), "%s: options table %q does not match module %q", p.section(), k, cp.Module)
				continue
			}
			cp.opts = cs.m[k].(map[string]any)
		}
		cs.done()
		comps = append(comps, cp)
	}
	sort.Slice(comps, func(i, j int) bool { return comps[i].Name < comps[j].Name })
	return comps
}

// normalizeDomain lowercases a host name and checks it is a DNS name
// (RFC 1123 labels, at least two labels unless it is "localhost").
func normalizeDomain(raw string) (string, error) {
	name := strings.TrimSuffix(strings.ToLower(raw), ".")
	if name == "" {
		return "", errors.New("empty host name")
	}
	if len(name) > 253 {
		return "", errors.New("host name longer than 253 characters")
	}
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			return "", errors.New("host name is not ASCII: write internationalized names in their xn-- (punycode) form")
		}
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 && name != "localhost" {
		return "", fmt.Errorf("%q is not a fully qualified domain name", raw)
	}
	for _, lab := range labels {
		if lab == "" || len(lab) > 63 {
			return "", fmt.Errorf("%q has an empty or too long label", raw)
		}
		if lab[0] == '-' || lab[len(lab)-1] == '-' {
			return "", fmt.Errorf("%q: labels must not start or end with '-'", raw)
		}
		for i := 0; i < len(lab); i++ {
			c := lab[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", fmt.Errorf("%q: invalid character %q in host name", raw, c)
			}
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return "", fmt.Errorf("%q looks like an IP address; virtual hosts are domain names", raw)
	}
	return name, nil
}

// checkBareJID does light validation of a bare JID: optional localpart, a
// domain, no resource, no whitespace. Full validation is xmpp/jid's job.
func checkBareJID(s string) error {
	switch {
	case s == "":
		return errors.New("empty JID")
	case strings.ContainsAny(s, " \t\r\n"):
		return errors.New("JID contains whitespace")
	case strings.Contains(s, "/"):
		return errors.New("admin JIDs must be bare (no /resource)")
	}
	domain := s
	if i := strings.IndexByte(s, '@'); i >= 0 {
		if i == 0 {
			return errors.New("empty localpart before '@'")
		}
		domain = s[i+1:]
	}
	if domain == "" {
		return errors.New("missing domain")
	}
	if strings.Contains(domain, "@") {
		return errors.New("more than one '@'")
	}
	return nil
}
