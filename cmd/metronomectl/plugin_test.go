package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRepoAndPluginCommands drives `repo init|build|sign` on an empty
// repository and `plugin search|list` against it through file://. The
// example plugins' end-to-end test (examples/plugins) covers the rest.
func TestRepoAndPluginCommands(t *testing.T) {
	base := t.TempDir()
	repo := filepath.Join(base, "repo")
	out, err := run(t, "", "repo", "init", repo)
	if err != nil || !strings.Contains(out, "created signing key "+repo+".key") {
		t.Fatalf("repo init: %v\n%s", err, out)
	}
	pub := regexp.MustCompile(`ed25519:[A-Za-z0-9+/=]+`).FindString(out)
	if st, err := os.Stat(repo + ".key"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key: %v %v", st, err)
	}
	if out, err := run(t, "", "repo", "init", repo, "--key", filepath.Join(repo, "inside.key")); err == nil {
		t.Fatalf("a key inside the repository was accepted:\n%s", out)
	}
	if out, err := run(t, "", "repo", "sign", repo); err == nil || !strings.Contains(err.Error(), "repo build") {
		t.Fatalf("sign before build: %v\n%s", err, out)
	}
	if out, err := run(t, "", "repo", "build", repo); err != nil || !strings.Contains(out, "0 plugins, 0 versions") {
		t.Fatalf("repo build: %v\n%s", err, out)
	}
	if out, err := run(t, "", "repo", "sign", repo); err != nil || !strings.Contains(out, "signed 1 files") {
		t.Fatalf("repo sign: %v\n%s", err, out)
	}
	cfg := writeConfig(t, "[plugins]\nrepositories = [\"file://"+repo+"\"]\ntrusted_keys = [\""+pub+"\"]\n")
	if out, err := run(t, "", "--config", cfg, "plugin", "search"); err != nil || !strings.Contains(out, "no plugin found") {
		t.Fatalf("plugin search: %v\n%s", err, out)
	}
	if out, err := run(t, "", "--config", cfg, "plugin", "list"); err != nil || !strings.Contains(out, "no plugin is installed") {
		t.Fatalf("plugin list: %v\n%s", err, out)
	}
	if _, err := run(t, "", "--config", cfg, "plugin", "install", "nothing"); err == nil || !strings.Contains(err.Error(), "not in any configured repository") {
		t.Fatalf("install of an unknown plugin: %v", err)
	}
	// An untrusted key refuses the index.
	other := writeConfig(t, "[plugins]\nrepositories = [\"file://"+repo+"\"]\ntrusted_keys = [\"ed25519:"+strings.Repeat("A", 43)+"=\"]\n")
	if _, err := run(t, "", "--config", other, "plugin", "search"); err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Fatalf("search with an untrusted key: %v", err)
	}
}
