package config

import (
	"slices"
	"strings"
	"testing"
)

// TestComponentModules reads modules = [...] of a component (extensions
// loaded on the component's host after its module).
func TestComponentModules(t *testing.T) {
	c, err := Parse("metronome.toml", []byte(`
[component."conference.example.org"]
module = "muc"
modules = ["muc_log", "muc_limits"]
muc = { max_history = 5 }
`))
	if err != nil {
		t.Fatal(err)
	}
	cp, ok := c.Component("conference.example.org")
	if !ok || cp.Module != "muc" || !slices.Equal(cp.Modules, []string{"muc_log", "muc_limits"}) {
		t.Fatalf("component = %+v", cp)
	}
	_, err = Parse("metronome.toml", []byte("[component.'c.example.org']\nmodule = 'muc'\nmodules = 'muc_log'\n"))
	if err == nil || !strings.Contains(err.Error(), "metronome.toml:3") {
		t.Fatalf("modules as a string: %v", err)
	}
}
