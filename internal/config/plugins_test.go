package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPluginsSection(t *testing.T) {
	c, err := Parse(filepath.Join("etc", "metronome.toml"), []byte(`
[server]
data_dir = "/var/lib/metronome"
[plugins]
repositories = ["https://plugins.example.org/v1/", "file:///srv/repo", "/srv/other"]
trusted_keys = ["ed25519:AAAA", "keys/repo.pub"]
memory_limit = "32MiB"
call_timeout = "250ms"
max_failures = 3
instances = 2
`))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Plugins
	if p.Directory != filepath.Join("/var/lib/metronome", "plugins") {
		t.Errorf("directory = %q", p.Directory)
	}
	if len(p.Repositories) != 3 || p.TrustedKeys[0] != "ed25519:AAAA" || p.TrustedKeys[1] != filepath.Join("etc", "keys", "repo.pub") {
		t.Errorf("repositories/keys: %+v", p)
	}
	if p.MemoryLimit != 32<<20 || p.CallTimeout != 250*time.Millisecond || p.MaxFailures != 3 || p.Instances != 2 {
		t.Errorf("limits: %+v", p)
	}
	if d := Default().Plugins; d.MemoryLimit != 64<<20 || d.CallTimeout != 500*time.Millisecond || d.MaxFailures != 5 || d.Instances != 4 {
		t.Errorf("defaults: %+v", d)
	}
	for _, tc := range []struct{ text, want string }{
		{"[plugins]\nrepositories = [\"ftp://x\"]", "want an https://"},
		{"[plugins]\nmemory_limit = \"1KB\"", "too small"},
		{"[plugins]\nmax_failures = 0", "out of range"},
		{"[plugins]\nrepositorie = [\"https://x\"]", `unknown key "repositorie" in [plugins] (did you mean "repositories"?)`},
		{"[server]\ntrusted_keys = []", "trusted_keys belongs in [plugins]"},
	} {
		_, err := Parse("m.toml", []byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.text, err, tc.want)
		}
	}
}
