// Package module is the public API every feature of the server is written
// against, first-party or plugin. It follows Caddy's lifecycle: a module
// registers itself from init() with Register; per virtual host the core
// calls Info().New(), strictly decodes the module's configuration into the
// returned value, then Provision(host), then Validate() if present. All
// hooks, disco features, stream features and timers a module registers
// through Host are removed automatically when the instance is unloaded;
// Cleanup() releases anything else the module opened itself.
//
// Modules never import internal/ packages nor each other: they talk through
// events and through small interfaces published with Host.Provide.
package module

import (
	"fmt"
	"regexp"
	"sort"
	"sync"
)

// Info describes a module.
type Info struct {
	// ID is a dotted name, e.g. "mod.roster". The part after the last dot
	// is the name used in configuration ([modules.roster]).
	ID string
	// New returns a new, empty instance. It must have no side effects.
	New func() Module
	// Requires lists the configuration names of modules that must be
	// loaded before this one on the same host (hard dependencies).
	Requires []string
}

// Name is the module's configuration name: the last element of its ID.
func (i Info) Name() string {
	for k := len(i.ID) - 1; k >= 0; k-- {
		if i.ID[k] == '.' {
			return i.ID[k+1:]
		}
	}
	return i.ID
}

// Module is implemented by every module.
type Module interface {
	Info() Info
}

// Provisioner is implemented by modules that wire themselves to a host (nearly all).
type Provisioner interface {
	Provision(h Host) error
}

// Validator is implemented by modules that check their configuration after decoding.
type Validator interface {
	Validate() error
}

// CleanerUpper is implemented by modules holding resources besides hooks.
type CleanerUpper interface {
	Cleanup() error
}

var (
	regMu    sync.RWMutex
	registry = map[string]Info{} // by name
	idRe     = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)
)

// Register adds a module to the registry. It panics on a malformed or
// duplicate ID: that is a programming error found at start-up.
func Register(m Module) {
	info := m.Info()
	if !idRe.MatchString(info.ID) || info.New == nil {
		panic(fmt.Sprintf("module: malformed module info %q", info.ID))
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[info.Name()]; dup {
		panic(fmt.Sprintf("module: duplicate module %q", info.ID))
	}
	registry[info.Name()] = info
}

// Lookup returns the registered module with configuration name name.
func Lookup(name string) (Info, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	i, ok := registry[name]
	return i, ok
}

// Registered returns the configuration names of all registered modules, sorted.
func Registered() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
