package config

import (
	"os"
	"testing"
)

func FuzzParse(f *testing.F) {
	full, err := os.ReadFile("testdata/full.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	f.Add([]byte(modulesDoc))
	f.Add([]byte(""))
	f.Add([]byte("[server]\nlog_level = 'x'\nfoo = 1\n"))
	f.Add([]byte("[[modules.x.rules]]\na = 1\n[[modules.x.rules]]\nb = [1, {c = 2}]\n[modules.x.rules.sub]\nd = nan\n"))
	f.Add([]byte("[host.'A.example'.m]\nx.y.z = 1979-05-27\n[component.'c.example']\nm = {}\n"))
	f.Add([]byte("[c2s]\nmax_stanza_size = '9999999999999GiB'\nidle_timeout = '1.5w'\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			if c != nil {
				t.Fatal("config and error")
			}
			_ = err.Error()
			return
		}
		known := func(n string) bool { return len(n)%2 == 0 }
		_ = c.CheckModules(known)
		var rich richOpts
		var anyOpts map[string]any
		for _, h := range append([]Host{{}}, c.Hosts...) {
			for _, m := range c.EnabledModules(h.Name) {
				_ = c.DecodeModule(h.Name, m, &rich)
			}
			for m := range c.modOpts {
				_ = c.DecodeModule(h.Name, m, &rich)
				_ = c.DecodeModule(h.Name, m, &anyOpts)
				_ = c.ModuleError(h.Name, m, os.ErrInvalid)
			}
			for m := range h.opts {
				_ = c.DecodeModule(h.Name, m, &rich)
				_ = c.DecodeModule(h.Name, m, &pingOpts{})
			}
		}
		for _, cp := range c.Components {
			_ = c.DecodeComponent(cp.Name, &rich)
		}
	})
}
