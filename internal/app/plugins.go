package app

// WebAssembly plugins (docs/design/002_plugins.md): kept apart from the
// rest of the wiring so that app.go only calls these two functions.

import (
	"slices"

	"github.com/metronome-xmpp/metronome/internal/config"
	"github.com/metronome-xmpp/metronome/internal/core"
	"github.com/metronome-xmpp/metronome/internal/plugin"
)

// activatePlugins reads the plugin lockfile of cfg and registers a module
// for every installed plugin, before the configuration's module names are
// checked. It returns the module check that knows about them.
func activatePlugins(cfg *config.Config) (func(name string) bool, error) {
	if _, err := plugin.Activate(cfg.Plugins); err != nil {
		return nil, err
	}
	return plugin.KnownModule, nil
}

// addPluginModules enables on each host the plugins the lockfile enables
// there (`metronomectl plugin enable`), after the configured modules.
func addPluginModules(o *core.Options) {
	set := plugin.Active()
	for i := range o.Hosts {
		for _, name := range set.EnabledOn(o.Hosts[i].Name) {
			if !slices.Contains(o.Hosts[i].Modules, name) {
				o.Hosts[i].Modules = append(o.Hosts[i].Modules, name)
			}
		}
	}
}
