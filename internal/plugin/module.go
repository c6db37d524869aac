package plugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metronome-xmpp/metronome/internal/config"
	"github.com/metronome-xmpp/metronome/module"
)

// Installed is one plugin of the lockfile, with its manifest read from disk.
type Installed struct {
	Entry    LockEntry
	Manifest *Manifest
	Dir      string // <directory>/<name>/<version>
}

// WasmPath is the module's file.
func (p *Installed) WasmPath() string { return filepath.Join(p.Dir, WasmFile) }

// Set is the plugins installed when the configuration was last loaded:
// the lockfile, the manifests and the runtime settings of [plugins].
type Set struct {
	Settings config.Plugins
	plugins  map[string]*Installed
	engine   *Engine
}

var (
	active atomic.Pointer[Set]

	regMu      sync.Mutex
	registered = map[string]bool{} // module names registered for plugins
	engines    = map[string]*Engine{}
)

// Activate reads the lockfile and manifests of cfg.Directory, registers a
// module for every installed plugin (so that it can be enabled like any
// module and configured in [modules.<name>]) and makes the set the one new
// module instances use. It compiles nothing: modules are compiled when a
// host first provisions them. Call it on start and before every reload.
func Activate(cfg config.Plugins) (*Set, error) {
	lock, err := ReadLock(cfg.Directory)
	if err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	s := &Set{Settings: cfg, plugins: map[string]*Installed{}}
	for _, e := range lock.Plugins {
		p, err := loadInstalled(cfg.Directory, e)
		if err != nil {
			return nil, err
		}
		s.plugins[e.Name] = p
	}
	regMu.Lock()
	defer regMu.Unlock()
	for name := range s.plugins {
		if registered[name] {
			continue
		}
		if _, taken := module.Lookup(name); taken {
			return nil, fmt.Errorf("plugin %q: a built-in module has this name; remove the plugin (metronomectl plugin remove %s)", name, name)
		}
		module.Register(&adapter{name: name})
		registered[name] = true
	}
	if len(s.plugins) > 0 {
		dir := filepath.Join(cfg.Directory, "cache")
		e := engines[dir]
		if e == nil {
			if e, err = NewEngine(dir); err != nil {
				return nil, err
			}
			engines[dir] = e
		}
		s.engine = e
	}
	active.Store(s)
	return s, nil
}

// Deactivate forgets the active set (tests).
func Deactivate() { active.Store(nil) }

// Active returns the set of the last Activate, or nil.
func Active() *Set { return active.Load() }

// loadInstalled reads and checks an installed plugin's manifest.
func loadInstalled(dir string, e LockEntry) (*Installed, error) {
	vdir := versionDir(dir, e.Name, e.Version)
	mb, err := os.ReadFile(filepath.Join(vdir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("plugin %s@%s: %w (reinstall it: metronomectl plugin install %s@%s)", e.Name, e.Version, err, e.Name, e.Version)
	}
	if got := sha256Hex(mb); got != e.ManifestSHA256 {
		return nil, fmt.Errorf("plugin %s@%s: %s was modified after installation (checksum %s, lockfile says %s)",
			e.Name, e.Version, filepath.Join(vdir, ManifestFile), got, e.ManifestSHA256)
	}
	m, err := ParseManifest(mb)
	if err != nil {
		return nil, fmt.Errorf("plugin %s@%s: %w", e.Name, e.Version, err)
	}
	return &Installed{Entry: e, Manifest: m, Dir: vdir}, nil
}

// IsPlugin reports whether name is a module registered for a plugin (in
// any set), as opposed to a built-in module.
func IsPlugin(name string) bool {
	regMu.Lock()
	defer regMu.Unlock()
	return registered[name]
}

// Has reports whether the set has plugin name installed.
func (s *Set) Has(name string) bool {
	if s == nil {
		return false
	}
	_, ok := s.plugins[name]
	return ok
}

// Plugin returns an installed plugin.
func (s *Set) Plugin(name string) (*Installed, bool) {
	if s == nil {
		return nil, false
	}
	p, ok := s.plugins[name]
	return p, ok
}

// Names returns the installed plugins, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	return sortedKeys(s.plugins)
}

// EnabledOn returns the plugins the lockfile enables on host, sorted.
func (s *Set) EnabledOn(host string) []string {
	var out []string
	for _, n := range s.Names() {
		if s.plugins[n].Entry.EnabledOn(host) {
			out = append(out, n)
		}
	}
	return out
}

// KnownModule is the check for config.CheckModules: built-in modules, and
// plugins of the active set (a removed plugin's module stays registered
// but is no longer known).
func KnownModule(name string) bool {
	if IsPlugin(name) {
		return Active().Has(name)
	}
	_, ok := module.Lookup(name)
	return ok
}

// limits returns the pool limits of the settings.
func (s *Set) limits() Limits {
	st := s.Settings
	l := Limits{CallTimeout: st.CallTimeout, MaxFailures: st.MaxFailures, Instances: st.Instances,
		InitTimeout: max(5*time.Second, 10*st.CallTimeout)}
	if l.CallTimeout <= 0 {
		l.CallTimeout = 500 * time.Millisecond
	}
	if l.MaxFailures <= 0 {
		l.MaxFailures = 5
	}
	if l.Instances <= 0 {
		l.Instances = 4
	}
	return l
}

// adapter is the module a plugin is loaded as: one instance per host and
// generation, running the plugin in a pool of WebAssembly instances.
type adapter struct {
	name string
	set  *Set       // the active set when the instance was created
	p    *Installed // nil when the plugin is not installed
	raw  []byte     // options as JSON
	pool *pool
	c    *Compiled
}

func (a *adapter) Info() module.Info {
	name := a.name
	return module.Info{ID: "plugin." + name, New: func() module.Module {
		s := Active()
		p, _ := s.Plugin(name)
		return &adapter{name: name, set: s, p: p}
	}}
}

// UnmarshalJSON receives the plugin's options from the configuration and
// checks them against the manifest's schema.
func (a *adapter) UnmarshalJSON(b []byte) error {
	a.raw = append([]byte(nil), b...)
	if a.p == nil { // the configuration's type check decodes into a blank value
		return nil
	}
	_, err := a.p.Manifest.ApplyConfig(b)
	return err
}

// Provision compiles the plugin (or reuses it), starts its first instance
// and applies what its init registered. Nothing is left behind on error.
func (a *adapter) Provision(h module.Host) error {
	if a.p == nil {
		return fmt.Errorf("plugin %q is not installed (metronomectl plugin install %s)", a.name, a.name)
	}
	cfg, err := a.p.Manifest.ApplyConfig(a.raw)
	if err != nil {
		return err
	}
	ctx := context.Background()
	wasm, err := os.ReadFile(a.p.WasmPath())
	if err != nil {
		return fmt.Errorf("plugin %s: %w", a.name, err)
	}
	if got := sha256Hex(wasm); got != a.p.Entry.WasmSHA256 {
		return fmt.Errorf("plugin %s: %s was modified after installation (checksum %s, lockfile says %s)",
			a.name, a.p.WasmPath(), got, a.p.Entry.WasmSHA256)
	}
	c, err := a.set.engine.Compile(ctx, wasm, a.p.Entry.WasmSHA256, a.set.Settings.MemoryLimit)
	if err != nil {
		return err
	}
	pl := newPool(c, a.p.Manifest, h, cfg, a.set.limits())
	regs, err := pl.start(ctx)
	if err != nil {
		pl.close()
		c.Release()
		return err
	}
	a.c, a.pool = c, pl
	apply(h, pl, regs)
	h.Logger().Debug("plugin loaded", "version", a.p.Entry.Version, "hooks", len(regs.hooks))
	return nil
}

// apply registers what init asked for on the host.
func apply(h module.Host, pl *pool, regs registrations) {
	for _, r := range regs.hooks {
		h.Hook(r.name, r.prio, pl.handler(r.handler))
	}
	for _, f := range regs.features {
		h.AddFeature(f)
	}
	for _, f := range regs.accountFeatures {
		h.AddAccountFeature(f)
	}
	for _, id := range regs.identities {
		h.AddIdentity(id.Category, id.Type, id.Name)
	}
}

// Cleanup stops the pool and releases the compiled module.
func (a *adapter) Cleanup() error {
	if a.pool != nil {
		a.pool.close()
		a.pool.drain(a.pool.limits.CallTimeout + time.Second)
		a.c.Release()
		a.pool, a.c = nil, nil
	}
	return nil
}
