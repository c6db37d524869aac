package config

// The [plugins] section: WebAssembly plugins installed with `metronomectl
// plugin` (docs/design/002_plugins.md). Kept in its own file so that the
// plugin runtime's settings stay apart from the core schema.

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Plugins is the [plugins] section.
type Plugins struct {
	// Directory holds installed plugins, their lockfile and the compiled
	// code cache; default <data_dir>/plugins.
	Directory string
	// Repositories are base URLs of plugin repositories (https://, http://,
	// file:// or an absolute directory), searched in order.
	Repositories []string
	// TrustedKeys are ed25519 public keys whose signatures are accepted:
	// "ed25519:<base64>" inline, or the path of a file holding that line
	// (relative to the configuration file).
	TrustedKeys []string
	// MemoryLimit caps the linear memory of one plugin instance, in bytes;
	// default 64MiB.
	MemoryLimit int64
	// CallTimeout bounds one call into a plugin (one event); default 500ms.
	CallTimeout time.Duration
	// MaxFailures is how many traps or timeouts disable a plugin until the
	// next reload; default 5.
	MaxFailures int
	// Instances is the most instances of one plugin run at once per host
	// (events beyond that wait for a free one); default 4.
	Instances int
}

// defaultPlugins returns the defaults of [plugins]; Directory is derived
// from data_dir by applyDerivedDefaults.
func defaultPlugins() Plugins {
	return Plugins{
		Repositories: []string{},
		TrustedKeys:  []string{},
		MemoryLimit:  64 << 20,
		CallTimeout:  500 * time.Millisecond,
		MaxFailures:  5,
		Instances:    4,
	}
}

func (l *loader) plugins(s *section, p *Plugins) {
	s.path("directory", &p.Directory)
	if s.strList("repositories", &p.Repositories) {
		for i, r := range p.Repositories {
			if err := checkRepository(r); err != nil {
				l.errAt(s.p.with("repositories", idx(i)), "[plugins] repositories: %q: %v", r, err)
			}
		}
	}
	if s.strList("trusted_keys", &p.TrustedKeys) {
		for i, k := range p.TrustedKeys {
			switch {
			case k == "":
				l.errAt(s.p.with("trusted_keys", idx(i)), "[plugins] trusted_keys: empty entry")
			case strings.HasPrefix(k, "ed25519:"):
			case !filepath.IsAbs(k) && l.file != "":
				p.TrustedKeys[i] = filepath.Join(filepath.Dir(l.file), k)
			}
		}
	}
	// 64KiB is one WebAssembly page; anything smaller cannot hold a module.
	s.size("memory_limit", &p.MemoryLimit, 64<<10)
	s.duration("call_timeout", &p.CallTimeout, time.Millisecond)
	s.integer("max_failures", &p.MaxFailures, 1)
	s.integer("instances", &p.Instances, 1)
	s.done()
}

// checkRepository accepts http(s) and file URLs and absolute paths.
func checkRepository(r string) error {
	if filepath.IsAbs(r) {
		return nil
	}
	u, err := url.Parse(r)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("missing host")
		}
	case "file":
	default:
		return fmt.Errorf("want an https://, http:// or file:// URL or an absolute directory")
	}
	return nil
}
