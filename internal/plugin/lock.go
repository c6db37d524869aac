package plugin

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// LockFile is the lockfile's name in the plugin directory.
const LockFile = "plugins.lock"

// Lock records what is installed, from where, with which checksums, and
// where each plugin is enabled. metronomectl writes it; the server reads it
// on start and on every reload.
type Lock struct {
	Plugins []LockEntry `toml:"plugin"` // sorted by name
}

// LockEntry is one installed plugin.
type LockEntry struct {
	Name           string    `toml:"name"`
	Version        string    `toml:"version"`
	Repository     string    `toml:"repository"`
	WasmSHA256     string    `toml:"wasm_sha256"`
	ManifestSHA256 string    `toml:"manifest_sha256"`
	SignedBy       string    `toml:"signed_by"`
	Installed      time.Time `toml:"installed"`
	// Enabled turns the plugin on for every host except DisabledHosts;
	// Hosts turns it on for those hosts whatever Enabled says.
	Enabled       bool     `toml:"enabled"`
	Hosts         []string `toml:"hosts"`
	DisabledHosts []string `toml:"disabled_hosts"`
	// Previous is the version replaced by the last update, kept on disk
	// for `metronomectl plugin rollback`.
	Previous *LockVersion `toml:"previous,omitempty"`
}

// LockVersion is a version kept for rollback.
type LockVersion struct {
	Version        string    `toml:"version"`
	Repository     string    `toml:"repository"`
	WasmSHA256     string    `toml:"wasm_sha256"`
	ManifestSHA256 string    `toml:"manifest_sha256"`
	SignedBy       string    `toml:"signed_by"`
	Installed      time.Time `toml:"installed"`
}

// EnabledOn reports whether the entry enables the plugin on host.
func (e *LockEntry) EnabledOn(host string) bool {
	if slices.Contains(e.Hosts, host) {
		return true
	}
	return e.Enabled && !slices.Contains(e.DisabledHosts, host)
}

// Enable turns the plugin on for host, or everywhere when host is "".
func (e *LockEntry) Enable(host string) {
	if host == "" {
		e.Enabled, e.Hosts, e.DisabledHosts = true, nil, nil
		return
	}
	e.DisabledHosts = slices.DeleteFunc(e.DisabledHosts, func(h string) bool { return h == host })
	if !e.Enabled && !slices.Contains(e.Hosts, host) {
		e.Hosts = append(e.Hosts, host)
		sort.Strings(e.Hosts)
	}
}

// Disable turns the plugin off for host, or everywhere when host is "".
func (e *LockEntry) Disable(host string) {
	if host == "" {
		e.Enabled, e.Hosts, e.DisabledHosts = false, nil, nil
		return
	}
	e.Hosts = slices.DeleteFunc(e.Hosts, func(h string) bool { return h == host })
	if e.Enabled && !slices.Contains(e.DisabledHosts, host) {
		e.DisabledHosts = append(e.DisabledHosts, host)
		sort.Strings(e.DisabledHosts)
	}
}

// ReadLock reads dir's lockfile; a missing file is an empty lock.
func ReadLock(dir string) (*Lock, error) {
	b, err := os.ReadFile(filepath.Join(dir, LockFile))
	if errors.Is(err, os.ErrNotExist) {
		return &Lock{}, nil
	}
	if err != nil {
		return nil, err
	}
	var l Lock
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, LockFile), err)
	}
	return &l, nil
}

// Write replaces dir's lockfile atomically.
func (l *Lock) Write(dir string) error {
	sort.Slice(l.Plugins, func(i, j int) bool { return l.Plugins[i].Name < l.Plugins[j].Name })
	b, err := toml.Marshal(l)
	if err != nil {
		return err
	}
	b = append([]byte("# Installed Metronome plugins. Written by `metronomectl plugin`; do not edit.\n\n"), b...)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, LockFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, LockFile))
}

// Find returns the entry of name, or nil.
func (l *Lock) Find(name string) *LockEntry {
	for i := range l.Plugins {
		if l.Plugins[i].Name == name {
			return &l.Plugins[i]
		}
	}
	return nil
}

// Remove deletes the entry of name.
func (l *Lock) Remove(name string) {
	l.Plugins = slices.DeleteFunc(l.Plugins, func(e LockEntry) bool { return e.Name == name })
}

// Clone returns a deep copy (to restore after a refused reload).
func (l *Lock) Clone() *Lock {
	c := &Lock{Plugins: make([]LockEntry, len(l.Plugins))}
	for i, e := range l.Plugins {
		e.Hosts = slices.Clone(e.Hosts)
		e.DisabledHosts = slices.Clone(e.DisabledHosts)
		if e.Previous != nil {
			p := *e.Previous
			e.Previous = &p
		}
		c.Plugins[i] = e
	}
	return c
}

// versionDir is where a version's files live: <dir>/<name>/<version>.
func versionDir(dir, name, version string) string { return filepath.Join(dir, name, version) }
