package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const name = "metronome.toml"

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse(name, []byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestFullExampleLoads(t *testing.T) {
	c, err := Load("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(c.Hosts), 2; got != want {
		t.Fatalf("hosts = %d, want %d", got, want)
	}
	if c.Hosts[0].Name != "example.net" || c.Hosts[1].Name != "example.org" {
		t.Errorf("hosts not sorted: %q, %q", c.Hosts[0].Name, c.Hosts[1].Name)
	}
	h, ok := c.Host("EXAMPLE.org")
	if !ok {
		t.Fatal("Host(EXAMPLE.org) not found")
	}
	if want := filepath.Join("testdata", "certs", "example.org.crt"); h.TLS.Cert != want {
		t.Errorf("host cert = %q, want %q (relative to the config file)", h.TLS.Cert, want)
	}
	if got := c.Server.LogLevels["roster"]; got != "debug" {
		t.Errorf("log_levels.roster = %q", got)
	}
	if len(c.Components) != 1 || c.Components[0].Module != "muc" {
		t.Errorf("components = %+v", c.Components)
	}
	// Everything else in the example is the default.
	d := Default()
	if !reflect.DeepEqual(c.C2S, d.C2S) || !reflect.DeepEqual(c.Listen, d.Listen) ||
		!reflect.DeepEqual(c.Storage, d.Storage) || !reflect.DeepEqual(c.Modules, d.Modules) {
		t.Errorf("example differs from defaults:\n%+v\n%+v", c, d)
	}
	if c.Server.PIDFile != d.Server.PIDFile || c.Server.AdminSocket != d.Server.AdminSocket || c.Server.DataDir != d.Server.DataDir {
		t.Errorf("server paths differ from defaults: %+v vs %+v", c.Server, d.Server)
	}
}

func TestDefault(t *testing.T) {
	d := Default()
	if len(d.Hosts) != 1 || d.Hosts[0].Name != "localhost" {
		t.Fatalf("hosts = %+v", d.Hosts)
	}
	if !reflect.DeepEqual(d.EnabledModules("localhost"), DefaultModules) {
		t.Errorf("enabled = %v", d.EnabledModules("localhost"))
	}
	if d.Server.PIDFile != filepath.Join("data", "metronome.pid") ||
		d.Server.AdminSocket != filepath.Join("data", "admin.sock") ||
		d.Storage.SQLite.Path != filepath.Join("data", "metronome.db") ||
		d.CertDir() != filepath.Join("data", "certs") {
		t.Errorf("derived paths: %+v %+v", d.Server, d.Storage)
	}
	want := C2S{
		RequireEncryption: true, StreamOpenTimeout: 10 * time.Second, AuthTimeout: 30 * time.Second,
		IdleTimeout: 5 * time.Minute, PingTimeout: time.Minute, MaxStanzaSize: 256000, MaxConnectionsPerIP: 100, ReadRate: 64000, ReadBurst: 1000000, ResourceConflict: "takeover",
		MaxSessionsPerUser: 10, AuthThrottle: AuthThrottle{PerIP: 10, PerAccount: 5, Window: time.Minute},
		SMResumeTimeout: 5 * time.Minute, SMMaxUnacked: 1000, SMAckTimeout: time.Minute,
	}
	if d.C2S != want {
		t.Errorf("c2s = %+v", d.C2S)
	}
	// An empty file is the default configuration.
	e := mustParse(t, "")
	e.File, e.pos = "", d.pos
	if !reflect.DeepEqual(e, d) {
		t.Errorf("empty file:\n%+v\nwant\n%+v", e, d)
	}
	// Default must not share DefaultModules' backing array.
	d.Modules.Enabled[0] = "changed"
	if DefaultModules[0] == "changed" {
		t.Error("Default aliases DefaultModules")
	}
}

func TestValues(t *testing.T) {
	c := mustParse(t, `
[server]
admins = ["a@example.org", "example.net"]
data_dir = "/var/lib/metronome"
log_level = "debug"
log_format = "json"
pidfile = "run/m.pid"
admin_socket = "/run/metronome/admin.sock"
[storage]
default = "postgres"
postgres.dsn = "postgres://db/m"
[listen]
c2s = []
c2s_tls = ["127.0.0.1:5223", ":15223"]
[c2s]
require_encryption = false
idle_timeout = "1h30m"
max_stanza_size = 1048576
resource_conflict = "random"
max_sessions_per_user = 0
auth_throttle.window = "2m"
[modules]
enabled = ["roster", "ping", "roster"]
`)
	if c.Server.DataDir != "/var/lib/metronome" || c.Server.LogLevel != "debug" || c.Server.LogFormat != "json" {
		t.Errorf("server = %+v", c.Server)
	}
	if c.Server.PIDFile != "run/m.pid" || c.Server.AdminSocket != "/run/metronome/admin.sock" {
		t.Errorf("explicit paths = %q %q", c.Server.PIDFile, c.Server.AdminSocket)
	}
	if c.Storage.SQLite.Path != "/var/lib/metronome/metronome.db" {
		t.Errorf("sqlite default = %q", c.Storage.SQLite.Path)
	}
	if c.Storage.Default != "postgres" || c.Storage.Postgres.DSN != "postgres://db/m" {
		t.Errorf("storage = %+v", c.Storage)
	}
	if len(c.Listen.C2S) != 0 || c.Listen.C2S == nil || !reflect.DeepEqual(c.Listen.C2STLS, []string{"127.0.0.1:5223", ":15223"}) {
		t.Errorf("listen = %#v", c.Listen)
	}
	if c.C2S.RequireEncryption || c.C2S.IdleTimeout != 90*time.Minute || c.C2S.MaxStanzaSize != 1<<20 ||
		c.C2S.ResourceConflict != "random" || c.C2S.MaxSessionsPerUser != 0 ||
		c.C2S.AuthThrottle != (AuthThrottle{PerIP: 10, PerAccount: 5, Window: 2 * time.Minute}) {
		t.Errorf("c2s = %+v", c.C2S)
	}
	if !reflect.DeepEqual(c.Modules.Enabled, []string{"roster", "ping"}) {
		t.Errorf("enabled = %v", c.Modules.Enabled)
	}
	if len(c.Hosts) != 1 || c.Hosts[0].Name != "localhost" {
		t.Errorf("hosts = %+v", c.Hosts)
	}
}

func TestRelativePathsFollowConfigDir(t *testing.T) {
	c, err := Parse("/etc/metronome/metronome.toml", []byte(`
[server]
data_dir = "data"
pidfile = "m.pid"
[tls]
cert = "c.pem"
key = "/abs/k.pem"
[storage]
sqlite.path = "db/m.db"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.DataDir != "data" || c.Server.PIDFile != "/etc/metronome/m.pid" ||
		c.TLS.Cert != "/etc/metronome/c.pem" || c.TLS.Key != "/abs/k.pem" ||
		c.Storage.SQLite.Path != "/etc/metronome/db/m.db" || c.Server.AdminSocket != "data/admin.sock" {
		t.Errorf("paths: %+v %+v %+v", c.Server, c.TLS, c.Storage)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string // each must appear in the error text
	}{
		{"syntax", "[server\n", []string{"metronome.toml:1: "}},
		{"duplicate key", "[server]\nlog_level = 'info'\nlog_level = 'debug'\n", []string{"metronome.toml:3: "}},
		{"unknown top-level key", "foo = 1\n", []string{`metronome.toml:1: unknown key "foo" at top level`}},
		{"unknown section", "\n[srever]\n", []string{`metronome.toml:2: unknown section [srever] (did you mean [server]?)`}},
		{"unknown key server", "[server]\n\nfoo = 1\n", []string{`metronome.toml:3: unknown key "foo" in [server]`}},
		{"unknown key storage", "[storage]\nfoo = 1\n", []string{`metronome.toml:2: unknown key "foo" in [storage]`}},
		{"unknown key storage.sqlite", "[storage]\nsqlite = { path = 'x', mode = 1 }\n", []string{`metronome.toml:2: unknown key "mode" in [storage.sqlite]`}},
		{"unknown key storage.postgres", "[storage.postgres]\ndsn = 'x'\nuser = 'y'\n", []string{`metronome.toml:3: unknown key "user" in [storage.postgres]`}},
		{"unknown key listen", "[listen]\ns2s = ['[::]:5269']\n", []string{`metronome.toml:2: unknown key "s2s" in [listen]`}},
		{"unknown key tls", "[tls]\ncert = 'a'\nkey = 'b'\nchain = 'c'\n", []string{`metronome.toml:4: unknown key "chain" in [tls]`}},
		{"unknown key c2s", "[c2s]\nidle = '5m'\n", []string{`metronome.toml:2: unknown key "idle" in [c2s]`}},
		{"unknown key auth_throttle", "[c2s]\nauth_throttle = { per_ip = 1, per_user = 2 }\n", []string{`metronome.toml:2: unknown key "per_user" in [c2s.auth_throttle]`}},
		{"unknown key modules", "[modules]\nenable = ['x']\n", []string{`metronome.toml:2: unknown key "enable" in [modules] (did you mean "enabled"?)`}},
		{"unknown key host", "[host.'example.org']\nenable = 1\n", []string{`metronome.toml:2: unknown key "enable" in [host."example.org"]`}},
		{"unknown key host.modules", "[host.'example.org']\nmodules = { enabled = ['x'] }\n", []string{`metronome.toml:2: unknown key "enabled" in [host."example.org".modules] (did you mean "enable"?)`}},
		{"unknown key host.tls", "[host.'example.org'.tls]\ncert = 'a'\nkey = 'b'\nca = 'c'\n", []string{`metronome.toml:4: unknown key "ca" in [host."example.org".tls]`}},
		{"unknown key component", "[component.'muc.example.org']\nmodule = 'muc'\nname = 'x'\n", []string{`metronome.toml:3: unknown key "name" in [component."muc.example.org"]`}},
		{"misplaced data_dir", "[listen]\ndata_dir = './data'\n", []string{`metronome.toml:2: unknown key "data_dir" in [listen] (data_dir belongs in [server])`}},
		{"misplaced top-level", "log_level = 'info'\n", []string{`metronome.toml:1: unknown key "log_level" at top level (log_level belongs in [server])`}},
		{"section not a table", "server = 1\n", []string{`metronome.toml:1: server: expected table, got integer`}},
		{"wrong type string", "[server]\nlog_level = 1\n", []string{`metronome.toml:2: [server] log_level: expected string, got integer`}},
		{"wrong type bool", "[c2s]\nrequire_encryption = 'yes'\n", []string{`metronome.toml:2: [c2s] require_encryption: expected boolean, got string`}},
		{"wrong type int", "[c2s]\nmax_sessions_per_user = '10'\n", []string{`metronome.toml:2: [c2s] max_sessions_per_user: expected integer, got string`}},
		{"negative int", "[c2s]\nmax_sessions_per_user = -1\n", []string{`metronome.toml:2: [c2s] max_sessions_per_user: -1 is out of range`}},
		{"wrong type list", "[listen]\nc2s = '[::]:5222'\n", []string{`metronome.toml:2: [listen] c2s: expected array of strings, got string`}},
		{"wrong type list element", "[listen]\nc2s = [\n  '[::]:5222',\n  5222,\n]\n", []string{`metronome.toml:4: [listen] c2s[1]: expected string, got integer`}},
		{"wrong type table", "[c2s]\nauth_throttle = 5\n", []string{`metronome.toml:2: [c2s] auth_throttle: expected table, got integer`}},
		{"duration as integer", "[c2s]\nidle_timeout = 300\n", []string{`metronome.toml:2: [c2s] idle_timeout: expected a duration string`}},
		{"bad duration", "[c2s]\nauth_timeout = '30 seconds'\n", []string{`metronome.toml:2: [c2s] auth_timeout: invalid duration "30 seconds"`}},
		{"bad duration unit", "[c2s]\nauth_timeout = '30y'\n", []string{`metronome.toml:2: [c2s] auth_timeout: invalid duration "30y": unknown unit "y"`}},
		{"short duration", "[c2s]\nauth_timeout = '10ms'\n", []string{`metronome.toml:2: [c2s] auth_timeout: 10ms is too short (minimum 1s)`}},
		{"bad nested duration", "[c2s]\nauth_throttle = { window = 'soon' }\n", []string{`metronome.toml:2: [c2s.auth_throttle] window: invalid duration "soon"`}},
		{"bad size", "[c2s]\nmax_stanza_size = '256 kilobytes'\n", []string{`metronome.toml:2: [c2s] max_stanza_size: invalid size "256 kilobytes"`}},
		{"small size", "[c2s]\nmax_stanza_size = '1KB'\n", []string{`metronome.toml:2: [c2s] max_stanza_size: 1000 bytes is too small (minimum 10000)`}},
		{"bad log level", "[server]\nlog_level = 'verbose'\n", []string{`metronome.toml:2: [server] log_level: invalid value "verbose" (want debug, info, warn or error)`}},
		{"bad module log level", "[server]\nlog_levels = { roster = 'loud' }\n", []string{`metronome.toml:2: [server.log_levels] roster: invalid value "loud"`}},
		{"bad log format", "[server]\nlog_format = 'xml'\n", []string{`metronome.toml:2: [server] log_format: invalid value "xml" (want text or json)`}},
		{"bad storage", "[storage]\ndefault = 'mysql'\n", []string{`metronome.toml:2: [storage] default: invalid value "mysql" (want sqlite, postgres or memory)`}},
		{"postgres without dsn", "[storage]\ndefault = 'postgres'\n", []string{`metronome.toml:2: [storage] default = "postgres" requires postgres = { dsn = "..." }`}},
		{"bad resource_conflict", "[c2s]\nresource_conflict = 'kick'\n", []string{`metronome.toml:2: [c2s] resource_conflict: invalid value "kick" (want takeover, reject or random)`}},
		{"bad listen address", "[listen]\nc2s_tls = ['5223']\n", []string{`metronome.toml:2: [listen] c2s_tls: invalid address "5223"`}},
		{"bad listen port", "[listen]\nc2s = ['[::]:xmpp']\n", []string{`metronome.toml:2: [listen] c2s: invalid address "[::]:xmpp": port must be a number`}},
		{"duplicate listen address", "[listen]\nc2s = ['[::]:5222']\nc2s_tls = ['[::]:5222']\n", []string{`metronome.toml:3: [listen] c2s_tls: address "[::]:5222" is listed twice`}},
		{"bad admin", "[server]\nadmins = ['ok@example.org', 'admin@']\n", []string{`metronome.toml:2: [server] admins: "admin@": missing domain`}},
		{"admin with resource", "[server]\nadmins = ['admin@example.org/phone']\n", []string{`must be bare`}},
		{"empty data_dir", "[server]\ndata_dir = ''\n", []string{`metronome.toml:2: [server] data_dir: must not be empty`}},
		{"tls cert without key", "\n[tls]\ncert = 'a.pem'\n", []string{`metronome.toml:2: [tls]: cert is set but key is not`}},
		{"host tls empty", "[host.'example.org']\ntls = {}\n", []string{`metronome.toml:2: [host."example.org".tls]: cert and key are required`}},
		{"duplicate host", "[host.'Example.org']\n[host.'example.ORG']\n", []string{`duplicate host`}},
		{"bad host name", "[host.'exa mple.org']\n", []string{`metronome.toml:1: [host."exa mple.org"]: "exa mple.org": invalid character ' '`}},
		{"single-label host", "[host.intranet]\n", []string{`metronome.toml:1: [host.intranet]: "intranet" is not a fully qualified domain name`}},
		{"ip host", "[host.'10.0.0.1']\n", []string{`looks like an IP address`}},
		{"non-ascii host", "[host.'bücher.example']\n", []string{`xn--`}},
		{"host option not a table", "[host.'example.org']\nping = 5\n", []string{`metronome.toml:2: unknown key "ping" in [host."example.org"] (module options are tables: [host."example.org".ping])`}},
		{"enable and disable", "[host.'example.org']\nmodules.enable = ['ping']\nmodules.disable = ['ping']\n", []string{`module "ping" is both enabled and disabled`}},
		{"bad module name", "[modules]\nenabled = ['roster', 'mod ping']\n", []string{`metronome.toml:2: modules.enabled: invalid module name "mod ping"`}},
		{"module option not a table", "[modules]\nping = 5\n", []string{`metronome.toml:2: unknown key "ping" in [modules]`}},
		{"component without module", "[component.'muc.example.org']\n", []string{`metronome.toml:1: [component."muc.example.org"]: missing module`}},
		{"component table mismatch", "[component.'muc.example.org']\nmodule = 'muc'\nmucc = { a = 1 }\n", []string{`metronome.toml:3: [component."muc.example.org"]: options table "mucc" does not match module "muc"`}},
		{"component duplicates host", "[host.'example.org']\n[component.'EXAMPLE.org']\nmodule = 'muc'\n", []string{`metronome.toml:2: [component."EXAMPLE.org"]: duplicate name (same as [host."example.org"])`}},
		{"nested too deep", "[modules.x]\na = " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "\n", []string{
			"metronome.toml:2: modules.x.a[0][0]", "nested more than 32 levels deep",
		}},
		{"several errors in line order", "[server]\nlog_level = 'x'\n[c2s]\nfoo = 1\n[listen]\nbar = 2\n", []string{
			"metronome.toml:2: [server] log_level", "\nmetronome.toml:4: unknown key \"foo\" in [c2s]\nmetronome.toml:6: unknown key \"bar\" in [listen]",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(name, []byte(tt.text))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			if c != nil {
				t.Errorf("config returned with error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%v", err, w)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != name {
				t.Errorf("not a *Error with the file name: %#v", err)
			}
		})
	}
}

func TestHosts(t *testing.T) {
	c := mustParse(t, `
[host."Example.ORG"]
[host."b.example"]
[host."localhost"]
[host."a.example."]
`)
	var names []string
	for _, h := range c.Hosts {
		names = append(names, h.Name)
	}
	if want := []string{"a.example", "b.example", "example.org", "localhost"}; !reflect.DeepEqual(names, want) {
		t.Errorf("hosts = %v, want %v", names, want)
	}
	if _, ok := c.Host("example.org"); !ok {
		t.Error("example.org not found")
	}
	if _, ok := c.Host("c.example"); ok {
		t.Error("c.example found")
	}
}

func TestEnabledModules(t *testing.T) {
	c := mustParse(t, `
[modules]
enabled = ["roster", "ping", "disco"]
[host."a.example"]
modules = { enable = ["register", "roster", "carbons"], disable = ["ping"] }
[host."b.example"]
modules.disable = ["roster", "disco", "ping", "unknown"]
[host."c.example"]
`)
	tests := []struct {
		host string
		want []string
	}{
		{"a.example", []string{"roster", "disco", "register", "carbons"}},
		{"A.EXAMPLE", []string{"roster", "disco", "register", "carbons"}},
		{"b.example", []string{}},
		{"c.example", []string{"roster", "ping", "disco"}},
		{"nowhere.example", []string{"roster", "ping", "disco"}},
		{"", []string{"roster", "ping", "disco"}},
	}
	for _, tt := range tests {
		if got := c.EnabledModules(tt.host); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("EnabledModules(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.toml")
	b := filepath.Join(dir, "b.toml")
	if err := os.WriteFile(b, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := searchPaths
	defer func() { searchPaths = old }()

	searchPaths = []string{a, b}
	if p, err := Find(""); err != nil || p != b {
		t.Errorf("Find() = %q, %v; want %q", p, err, b)
	}
	if p, err := Find(b); err != nil || p != b {
		t.Errorf("Find(b) = %q, %v", p, err)
	}
	if _, err := Find(a); err == nil {
		t.Error("Find(missing explicit) succeeded")
	}
	if _, err := Find(dir); err == nil {
		t.Error("Find(directory) succeeded")
	}
	searchPaths = []string{a}
	if p, err := Find(""); err != nil || p != "" {
		t.Errorf("Find() with nothing = %q, %v", p, err)
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v", err)
	}
}
