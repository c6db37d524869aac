package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// DefaultModules are the modules enabled on every host when [modules]
// enabled is not set. "register" is loaded but in-band account creation is
// off unless its options turn it on.
var DefaultModules = []string{
	"roster", "presence", "message", "offline", "carbons", "mam", "csi", "disco", "ping",
	"version", "time", "last", "private", "vcard", "blocking", "register", "adhoc",
}

// Storage kinds ([storage] default) and resource conflict policies ([c2s]
// resource_conflict) accepted by the schema.
const (
	StorageSQLite   = "sqlite"
	StoragePostgres = "postgres"
	StorageMemory   = "memory"

	ConflictTakeover = "takeover"
	ConflictReject   = "reject"
	ConflictRandom   = "random"
)

var (
	logLevels     = []string{"debug", "info", "warn", "error"}
	logFormats    = []string{"text", "json"}
	storageKinds  = []string{StorageSQLite, StoragePostgres, StorageMemory}
	conflictKinds = []string{ConflictTakeover, ConflictReject, ConflictRandom}
)

// Config is a loaded and validated configuration. Build it with Load, Parse
// or Default; the zero value is not useful.
type Config struct {
	// File is the name the configuration was loaded from ("" for Default).
	File string

	Server     Server
	Storage    Storage
	Listen     Listen
	TLS        TLSFiles // default certificate for hosts without their own
	C2S        C2S
	Modules    Modules
	HTTP       HTTP        // [http]: the HTTP server (http.go)
	Plugins    Plugins     // [plugins]: WebAssembly plugins (plugins.go)
	Hosts      []Host      // sorted by Name
	Components []Component // sorted by Name

	modOpts map[string]map[string]any // [modules.<name>] option trees
	pos     *positions                // key path → line
}

// Server is the [server] section.
type Server struct {
	Admins      []string          // JIDs, as written
	DataDir     string            // relative to the working directory; default "./data"
	LogLevel    string            // debug|info|warn|error; default "info"
	LogFormat   string            // text|json; default "text"
	LogLevels   map[string]string // per-module level overrides; never nil
	PIDFile     string            // default <data_dir>/metronome.pid
	AdminSocket string            // unix socket for metronomectl; default <data_dir>/admin.sock
	// SCRAMHashes are the hashes passwords are stored for (SCRAM-SHA-1,
	// -256, -512 and their -PLUS variants are offered accordingly); default
	// all three. Each costs one PBKDF2 derivation when a password is set.
	SCRAMHashes []string
}

// Storage is the [storage] section.
type Storage struct {
	Default  string // sqlite|postgres|memory; default "sqlite"
	SQLite   SQLite
	Postgres Postgres
}

// SQLite is [storage] sqlite = { ... }.
type SQLite struct {
	Path        string // default <data_dir>/metronome.db
	Synchronous string // full (default: acknowledged writes survive power loss) | normal
}

// Postgres is [storage] postgres = { ... }.
type Postgres struct {
	DSN string // required when a store uses postgres
}

// Listen is the [listen] section. An empty list disables that listener kind.
type Listen struct {
	C2S    []string // STARTTLS client listeners; default ["[::]:5222"]
	C2STLS []string // direct TLS client listeners (XEP-0368); default ["[::]:5223"]
}

// TLSFiles names a certificate and its private key (PEM files). Both are
// empty or both are set.
type TLSFiles struct {
	Cert string
	Key  string
}

// IsZero reports whether no files are configured.
func (t TLSFiles) IsZero() bool { return t.Cert == "" && t.Key == "" }

// C2S is the [c2s] section.
type C2S struct {
	RequireEncryption  bool          // default true
	StreamOpenTimeout  time.Duration // default 10s
	AuthTimeout        time.Duration // default 30s
	IdleTimeout        time.Duration // default 5m: no traffic at all → ping, then close
	PingTimeout        time.Duration // default 1m: how long a pinged idle client has to answer
	MaxStanzaSize      int64         // bytes; default 256KB (256000)
	ResourceConflict   string        // takeover|reject|random; default "takeover"
	MaxSessionsPerUser int           // default 10; 0 means unlimited
	// MaxConnectionsPerIP bounds the open client connections from one
	// address (loopback excepted); default 100, 0 means unlimited.
	MaxConnectionsPerIP int
	// ReadRate is the sustained bytes per second read from one client
	// (default 64KB); ReadBurst the bytes it may send at once above it
	// (default 1MB). A client over its rate is read more slowly, not
	// disconnected. 0 disables the limit.
	ReadRate, ReadBurst int64
	AuthThrottle        AuthThrottle
	// SMResumeTimeout is how long a session whose connection failed is
	// kept for the client to resume it (XEP-0198); default 5m, 0 turns
	// resumption off. SMMaxUnacked is how many stanzas a client may
	// leave unacknowledged (default 1000). SMAckTimeout is how long a
	// client that has gone silent has to answer an ack request before its
	// connection is taken for dead (default 1m; 0 = no limit).
	SMResumeTimeout time.Duration
	SMMaxUnacked    int
	SMAckTimeout    time.Duration
}

// AuthThrottle limits failed authentication attempts per window. A zero
// limit disables that limit.
type AuthThrottle struct {
	PerIP      int           // default 10
	PerAccount int           // default 5
	Window     time.Duration // default 1m
}

// Modules is the [modules] section. Module options live in [modules.<name>]
// and are read with Config.DecodeModule.
type Modules struct {
	Enabled []string // enabled on every host, deduplicated; default DefaultModules
}

// Host is one [host."<name>"] section.
type Host struct {
	Name    string   // lowercased DNS name
	TLS     TLSFiles // zero: use Config.TLS
	Modules HostModules

	raw  string                    // name as written, for positions
	opts map[string]map[string]any // [host."<name>".<module>] overlays
}

// HostModules is a host's modules = { enable = [...], disable = [...] }.
type HostModules struct {
	Enable  []string
	Disable []string
}

// Component is one [component."<name>"] section, kept for later use (MUC,
// external components). Its options are read with Config.DecodeComponent.
type Component struct {
	Name   string // lowercased DNS name
	Module string // module = "muc"; when absent, the name of its single options table
	// Modules (modules = [...]) are more modules loaded on the component's
	// host after Module, extending it (they hook its events).
	Modules []string

	raw  string
	opts map[string]any // the options table named like Module (nil if absent)
}

// Error is one configuration problem, positioned in the file.
type Error struct {
	File string
	Line int // 1-based; 0 when unknown
	Msg  string
	err  error
}

func (e *Error) Error() string {
	file := e.File
	if file == "" {
		file = "config"
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", file, e.Line, e.Msg)
	}
	return file + ": " + e.Msg
}

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.err }

// joinErrors sorts errs by line and joins them; nil when empty.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	if len(errs) == 1 {
		return errs[0]
	}
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}

// Default returns the configuration used without a file: defaults
// everywhere, one host "localhost", DefaultModules enabled.
func Default() *Config {
	c := &Config{
		Server: Server{
			DataDir:     "./data",
			LogLevel:    "info",
			LogFormat:   "text",
			LogLevels:   map[string]string{},
			SCRAMHashes: []string{"SHA-1", "SHA-256", "SHA-512"},
		},
		Storage: Storage{Default: StorageSQLite, SQLite: SQLite{Synchronous: "full"}},
		Listen: Listen{
			C2S:    []string{"[::]:5222"},
			C2STLS: []string{"[::]:5223"},
		},
		C2S: C2S{
			RequireEncryption:   true,
			StreamOpenTimeout:   10 * time.Second,
			AuthTimeout:         30 * time.Second,
			IdleTimeout:         5 * time.Minute,
			PingTimeout:         time.Minute,
			MaxStanzaSize:       256000,
			ResourceConflict:    ConflictTakeover,
			MaxSessionsPerUser:  10,
			MaxConnectionsPerIP: 100,
			ReadRate:            64000,
			ReadBurst:           1000000,
			AuthThrottle:        AuthThrottle{PerIP: 10, PerAccount: 5, Window: time.Minute},
			SMResumeTimeout:     5 * time.Minute,
			SMMaxUnacked:        1000,
			SMAckTimeout:        time.Minute,
		},
		Modules: Modules{Enabled: slices.Clone(DefaultModules)},
		HTTP:    defaultHTTP(),
		Plugins: defaultPlugins(),
		Hosts:   []Host{{Name: "localhost", raw: "localhost"}},
		modOpts: map[string]map[string]any{},
		pos:     &positions{lines: map[string]int{}},
	}
	c.applyDerivedDefaults()
	return c
}

// applyDerivedDefaults fills the paths that default to files in data_dir.
func (c *Config) applyDerivedDefaults() {
	if c.Server.PIDFile == "" {
		c.Server.PIDFile = filepath.Join(c.Server.DataDir, "metronome.pid")
	}
	if c.Server.AdminSocket == "" {
		c.Server.AdminSocket = filepath.Join(c.Server.DataDir, "admin.sock")
	}
	if c.Storage.SQLite.Path == "" {
		c.Storage.SQLite.Path = filepath.Join(c.Server.DataDir, "metronome.db")
	}
	if c.Plugins.Directory == "" {
		c.Plugins.Directory = filepath.Join(c.Server.DataDir, "plugins")
	}
}

// CertDir is where self-signed certificates are generated for hosts without
// configured files: <data_dir>/certs.
func (c *Config) CertDir() string { return filepath.Join(c.Server.DataDir, "certs") }

// Load reads and validates the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// searchPaths are tried in order by Find.
var searchPaths = []string{"metronome.toml", "/etc/metronome/metronome.toml"}

// Find locates the configuration file: explicit when not empty (it must
// exist), else ./metronome.toml, else /etc/metronome/metronome.toml. It
// returns "" and no error when none exists; use Default then.
func Find(explicit string) (string, error) {
	if explicit != "" {
		fi, err := os.Stat(explicit)
		if err != nil {
			return "", err
		}
		if fi.IsDir() {
			return "", fmt.Errorf("config file %s is a directory", explicit)
		}
		return explicit, nil
	}
	for _, p := range searchPaths {
		fi, err := os.Stat(p)
		switch {
		case err == nil && !fi.IsDir():
			return p, nil
		case err == nil:
			return "", fmt.Errorf("config file %s is a directory", p)
		case !errors.Is(err, fs.ErrNotExist):
			return "", err
		}
	}
	return "", nil
}

// Host returns the host named name (case-insensitive).
func (c *Config) Host(name string) (Host, bool) {
	if h := c.host(name); h != nil {
		return *h, true
	}
	return Host{}, false
}

func (c *Config) host(name string) *Host {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	i := sort.Search(len(c.Hosts), func(i int) bool { return c.Hosts[i].Name >= name })
	if i < len(c.Hosts) && c.Hosts[i].Name == name {
		return &c.Hosts[i]
	}
	return nil
}

// Component returns the component named name (case-insensitive).
func (c *Config) Component(name string) (Component, bool) {
	if cp := c.component(name); cp != nil {
		return *cp, true
	}
	return Component{}, false
}

func (c *Config) component(name string) *Component {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	for i := range c.Components {
		if c.Components[i].Name == name {
			return &c.Components[i]
		}
	}
	return nil
}

// EnabledModules returns the modules enabled on host: [modules] enabled in
// order, then the host's enable list in order, minus the host's disable
// list, without duplicates. For an unknown host it returns the global list.
func (c *Config) EnabledModules(host string) []string {
	var h *Host
	if host != "" {
		h = c.host(host)
	}
	disabled := map[string]bool{}
	var extra []string
	if h != nil {
		for _, m := range h.Modules.Disable {
			disabled[m] = true
		}
		extra = h.Modules.Enable
	}
	out := []string{}
	seen := map[string]bool{}
	for _, list := range [][]string{c.Modules.Enabled, extra} {
		for _, m := range list {
			if !seen[m] && !disabled[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	return out
}
