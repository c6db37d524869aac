package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/metronome-xmpp/metronome/internal/config"
	"github.com/metronome-xmpp/metronome/module"
)

// Manager carries out `metronomectl plugin` commands: it resolves versions
// in the configured repositories, downloads and verifies them, runs them
// once in a sandbox (Check), writes them to the plugin directory and the
// lockfile, and asks the running server to reload. A reload the server
// refuses undoes the change.
type Manager struct {
	Settings config.Plugins
	Fetcher  Fetcher
	// Out receives one line per step.
	Out io.Writer
	// Reload asks the running server to reload; running is false (and err
	// nil) when no server runs.
	Reload func() (running bool, err error)
	// Options returns the plugin's options from the configuration as a
	// JSON object (nil when there are none).
	Options func(name string) ([]byte, error)
	// Hosts are the configured virtual hosts.
	Hosts []string
	// CacheDir holds compiled code; default <directory>/cache, which the
	// server reuses.
	CacheDir string
}

func (m *Manager) say(format string, args ...any) {
	if m.Out != nil {
		fmt.Fprintf(m.Out, format+"\n", args...)
	}
}

func (m *Manager) dir() string { return m.Settings.Directory }

// catalog fetches the verified indexes.
func (m *Manager) catalog(ctx context.Context) (*Catalog, *Keyring, error) {
	kr, err := LoadKeyring(m.Settings.TrustedKeys)
	if err != nil {
		return nil, nil, err
	}
	c, err := m.Fetcher.FetchCatalog(ctx, m.Settings.Repositories, kr)
	if err != nil {
		return nil, nil, err
	}
	return c, kr, nil
}

// Search lists the newest version of the plugins matching word.
func (m *Manager) Search(ctx context.Context, word string) ([]Candidate, error) {
	c, _, err := m.catalog(ctx)
	if err != nil {
		return nil, err
	}
	return c.Search(word), nil
}

// Info returns every published version of name (newest first) and its
// lock entry if it is installed.
func (m *Manager) Info(ctx context.Context, name string) ([]Candidate, *LockEntry, error) {
	lock, err := ReadLock(m.dir())
	if err != nil {
		return nil, nil, err
	}
	c, _, err := m.catalog(ctx)
	if err != nil {
		return nil, lock.Find(name), err
	}
	vs := c.Versions(name)
	if len(vs) == 0 && lock.Find(name) == nil {
		return nil, nil, fmt.Errorf("plugin %q is not in any configured repository", name)
	}
	return vs, lock.Find(name), nil
}

// ParseSpec splits NAME[@VERSION].
func ParseSpec(spec string) (name, version string, err error) {
	name, version, _ = strings.Cut(spec, "@")
	if !nameRe.MatchString(name) {
		return "", "", fmt.Errorf("%q is not a plugin name (lowercase letters, digits and '_')", name)
	}
	if version != "" && !ValidVersion(version) {
		return "", "", fmt.Errorf("%q is not a semantic version such as 1.2.3", version)
	}
	return name, version, nil
}

// Install installs NAME[@VERSION]: the given version, or the newest
// compatible one. A new plugin is enabled on every host when enable is
// set; an installed one keeps its hosts and its current version becomes
// the rollback target.
func (m *Manager) Install(ctx context.Context, spec string, enable bool) error {
	name, version, err := ParseSpec(spec)
	if err != nil {
		return err
	}
	if _, builtin := module.Lookup(name); builtin && !IsPlugin(name) {
		return fmt.Errorf("plugin %q: a built-in module has this name", name)
	}
	lock, err := ReadLock(m.dir())
	if err != nil {
		return err
	}
	c, kr, err := m.catalog(ctx)
	if err != nil {
		return err
	}
	m.say("fetched the index of %d repositor%s (signatures verified)", len(m.Settings.Repositories), plural(len(m.Settings.Repositories), "y", "ies"))
	cand, err := c.Pick(name, version)
	if err != nil {
		return err
	}
	if e := lock.Find(name); e != nil && e.Version == cand.Version {
		m.say("%s %s is already installed", name, cand.Version)
		return nil
	}
	how := "newest compatible version"
	if version != "" {
		how = "requested version"
	}
	m.say("selected %s %s (%s, plugin API %v) from %s", name, cand.Version, how, cand.APIVersions, cand.Repo)
	return m.installCandidate(ctx, lock, cand, kr, enable)
}

func (m *Manager) installCandidate(ctx context.Context, lock *Lock, cand Candidate, kr *Keyring, enable bool) error {
	art, err := m.Fetcher.Download(ctx, cand, kr)
	if err != nil {
		return fmt.Errorf("%s %s refused: %w", cand.Name, cand.Version, err)
	}
	sigKey := art.SignedBy
	m.say("verified %s %s: SHA-256 %s…, signed by %s", cand.Name, cand.Version, cand.WasmSHA256[:16], sigKey)
	if err := m.check(ctx, art.Manifest, art.Wasm); err != nil {
		return fmt.Errorf("%s %s refused: %w", cand.Name, cand.Version, err)
	}
	prev := lock.Clone()
	vdir, err := writeVersion(m.dir(), art.Manifest, art.ManifestBytes, art.Wasm)
	if err != nil {
		return err
	}
	m.say("installed %s %s in %s", cand.Name, cand.Version, vdir)
	e := lock.Find(cand.Name)
	var dropped string
	if e == nil {
		lock.Plugins = append(lock.Plugins, LockEntry{Name: cand.Name})
		e = &lock.Plugins[len(lock.Plugins)-1]
		if enable {
			e.Enable("")
		}
	} else {
		if e.Previous != nil && e.Previous.Version != cand.Version {
			dropped = e.Previous.Version
		}
		e.Previous = &LockVersion{Version: e.Version, Repository: e.Repository, WasmSHA256: e.WasmSHA256,
			ManifestSHA256: e.ManifestSHA256, SignedBy: e.SignedBy, Installed: e.Installed}
	}
	e.Version, e.Repository, e.SignedBy = cand.Version, cand.Repo, sigKey
	e.WasmSHA256, e.ManifestSHA256 = cand.WasmSHA256, cand.ManifestSHA256
	e.Installed = time.Now().UTC().Truncate(time.Second)
	if err := m.commit(lock, prev); err != nil {
		if prev.Find(cand.Name) == nil || prev.Find(cand.Name).Version != cand.Version {
			os.RemoveAll(vdir)
		}
		return err
	}
	if e.Previous != nil {
		m.say("kept %s %s for `metronomectl plugin rollback %s`", cand.Name, e.Previous.Version, cand.Name)
	}
	if dropped != "" {
		os.RemoveAll(versionDir(m.dir(), cand.Name, dropped))
	}
	m.sayEnabled(e)
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// check runs the plugin in a sandbox with its configured options.
func (m *Manager) check(ctx context.Context, man *Manifest, wasm []byte) error {
	dir := m.CacheDir
	if dir == "" {
		dir = filepath.Join(m.dir(), "cache")
	}
	e, err := NewEngine(dir)
	if err != nil {
		return err
	}
	var opts []byte = []byte("{}")
	if m.Options != nil {
		o, err := m.Options(man.Name)
		if err != nil {
			return err
		}
		if o != nil {
			opts = o
		}
	}
	host := "localhost"
	if len(m.Hosts) > 0 {
		host = m.Hosts[0]
	}
	rep, err := Check(ctx, e, m.Settings, man, wasm, host, opts)
	if err != nil {
		return err
	}
	caps := []string{}
	if len(man.Capabilities.Stores) > 0 {
		caps = append(caps, "stores "+strings.Join(man.Capabilities.Stores, ", "))
	}
	if len(man.Capabilities.HTTP) > 0 {
		caps = append(caps, "HTTP to "+strings.Join(man.Capabilities.HTTP, ", "))
	}
	if man.Capabilities.Send {
		caps = append(caps, "sends stanzas")
	}
	if man.Capabilities.Rewrite {
		caps = append(caps, "rewrites stanzas")
	}
	m.say("checked %s in a sandbox: started in %v within %d MiB; hooks %s", man.Name,
		rep.Started.Round(time.Millisecond), rep.MemoryCap>>20, orNone(rep.Hooks))
	if len(caps) > 0 {
		m.say("capabilities: %s", strings.Join(caps, "; "))
	}
	return nil
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

// commit writes lock and reloads the server; a refused reload restores prev.
func (m *Manager) commit(lock, prev *Lock) error {
	if err := lock.Write(m.dir()); err != nil {
		return err
	}
	m.say("updated %s", filepath.Join(m.dir(), LockFile))
	if m.Reload == nil {
		return nil
	}
	running, err := m.Reload()
	if err != nil {
		if werr := prev.Write(m.dir()); werr != nil {
			return errors.Join(err, werr)
		}
		if running {
			_, _ = m.Reload() // back to the previous plugin set
		}
		return fmt.Errorf("the server refused the change, which was undone: %w", err)
	}
	if running {
		m.say("reloaded the server: the change is active, no session was dropped")
	} else {
		m.say("the server is not running: the change applies when it starts")
	}
	return nil
}

func (m *Manager) sayEnabled(e *LockEntry) {
	switch {
	case e.Enabled && len(e.DisabledHosts) == 0:
		m.say("%s is enabled on every host", e.Name)
	case e.Enabled:
		m.say("%s is enabled on every host except %s", e.Name, strings.Join(e.DisabledHosts, ", "))
	case len(e.Hosts) > 0:
		m.say("%s is enabled on %s", e.Name, strings.Join(e.Hosts, ", "))
	default:
		m.say("%s is not enabled on any host (metronomectl plugin enable %s)", e.Name, e.Name)
	}
}

// Update installs the newest compatible version of name, or of every
// installed plugin when name is "".
func (m *Manager) Update(ctx context.Context, name string) error {
	lock, err := ReadLock(m.dir())
	if err != nil {
		return err
	}
	var names []string
	if name != "" {
		if lock.Find(name) == nil {
			return fmt.Errorf("plugin %q is not installed", name)
		}
		names = []string{name}
	} else {
		for _, e := range lock.Plugins {
			names = append(names, e.Name)
		}
	}
	if len(names) == 0 {
		m.say("no plugin is installed")
		return nil
	}
	c, kr, err := m.catalog(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		lock, err := ReadLock(m.dir())
		if err != nil {
			return err
		}
		cur := lock.Find(n)
		cand, err := c.Pick(n, "")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if CompareVersions(cand.Version, cur.Version) <= 0 {
			m.say("%s %s is up to date", n, cur.Version)
			continue
		}
		m.say("updating %s %s → %s", n, cur.Version, cand.Version)
		if err := m.installCandidate(ctx, lock, cand, kr, false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Rollback swaps a plugin's current version with the one its last update
// replaced.
func (m *Manager) Rollback(name string) error {
	lock, err := ReadLock(m.dir())
	if err != nil {
		return err
	}
	e := lock.Find(name)
	if e == nil {
		return fmt.Errorf("plugin %q is not installed", name)
	}
	if e.Previous == nil {
		return fmt.Errorf("plugin %q has no previous version to roll back to", name)
	}
	p := *e.Previous
	if _, err := loadInstalled(m.dir(), LockEntry{Name: name, Version: p.Version, ManifestSHA256: p.ManifestSHA256}); err != nil {
		return err
	}
	prev := lock.Clone()
	cur := LockVersion{Version: e.Version, Repository: e.Repository, WasmSHA256: e.WasmSHA256,
		ManifestSHA256: e.ManifestSHA256, SignedBy: e.SignedBy, Installed: e.Installed}
	e.Version, e.Repository, e.WasmSHA256, e.ManifestSHA256, e.SignedBy, e.Installed =
		p.Version, p.Repository, p.WasmSHA256, p.ManifestSHA256, p.SignedBy, p.Installed
	e.Previous = &cur
	m.say("rolling %s back from %s to %s", name, cur.Version, p.Version)
	if err := m.commit(lock, prev); err != nil {
		return err
	}
	m.say("%s %s is kept for another rollback", name, cur.Version)
	return nil
}

// Remove uninstalls a plugin and deletes its files.
func (m *Manager) Remove(name string) error {
	lock, err := ReadLock(m.dir())
	if err != nil {
		return err
	}
	if lock.Find(name) == nil {
		return fmt.Errorf("plugin %q is not installed", name)
	}
	prev := lock.Clone()
	lock.Remove(name)
	if err := m.commit(lock, prev); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(m.dir(), name)); err != nil {
		return err
	}
	m.say("removed %s and its files", name)
	return nil
}

// SetEnabled enables or disables a plugin on host ("" for every host).
func (m *Manager) SetEnabled(name, host string, on bool) error {
	if host != "" && len(m.Hosts) > 0 {
		known := false
		for _, h := range m.Hosts {
			known = known || h == host
		}
		if !known {
			return fmt.Errorf("%q is not a configured host (hosts: %s)", host, strings.Join(m.Hosts, ", "))
		}
	}
	lock, err := ReadLock(m.dir())
	if err != nil {
		return err
	}
	e := lock.Find(name)
	if e == nil {
		return fmt.Errorf("plugin %q is not installed", name)
	}
	prev := lock.Clone()
	if on {
		e.Enable(host)
	} else {
		e.Disable(host)
	}
	if err := m.commit(lock, prev); err != nil {
		return err
	}
	m.sayEnabled(e)
	return nil
}

// ListItem is one row of `metronomectl plugin list`.
type ListItem struct {
	Entry       LockEntry
	Description string
	EnabledOn   []string // configured hosts it is enabled on
	Update      string   // newer compatible version, if known
}

// List returns the installed plugins; with catalog it also reports
// available updates (an unreachable repository is reported as an error
// along with the list).
func (m *Manager) List(ctx context.Context, withUpdates bool) ([]ListItem, error) {
	lock, err := ReadLock(m.dir())
	if err != nil {
		return nil, err
	}
	var cat *Catalog
	var cerr error
	if withUpdates && len(lock.Plugins) > 0 {
		cat, _, cerr = m.catalog(ctx)
	}
	var out []ListItem
	for _, e := range lock.Plugins {
		it := ListItem{Entry: e}
		if p, err := loadInstalled(m.dir(), e); err == nil {
			it.Description = p.Manifest.Description
		} else {
			it.Description = "broken: " + err.Error()
		}
		for _, h := range m.Hosts {
			if e.EnabledOn(h) {
				it.EnabledOn = append(it.EnabledOn, h)
			}
		}
		if cat != nil {
			if c, err := cat.Pick(e.Name, ""); err == nil && CompareVersions(c.Version, e.Version) > 0 {
				it.Update = c.Version
			}
		}
		out = append(out, it)
	}
	return out, cerr
}
