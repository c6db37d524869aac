package plugin_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metronome-xmpp/metronome/internal/plugin"
)

// testRepo is a signed repository of probe versions served over HTTP.
type testRepo struct {
	dir, key, pub, url string
}

// newRepo publishes the probe plugin at each version (api_versions from
// apis, default [1]) and signs the repository.
func newRepo(t *testing.T, versions ...string) *testRepo {
	t.Helper()
	probeDir(t) // builds probeWasm
	base := t.TempDir()
	r := &testRepo{dir: filepath.Join(base, "repo"), key: filepath.Join(base, "repo.key")}
	var err error
	if r.pub, err = plugin.RepoInit(r.dir, r.key); err != nil {
		t.Fatal(err)
	}
	wasm := filepath.Join(base, "probe.wasm")
	if err := os.WriteFile(wasm, probeWasm, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		ver, api, _ := strings.Cut(v, "/")
		m := bytes.Replace(probeToml, []byte(`version = "1.0.0"`), []byte(`version = "`+ver+`"`), 1)
		if api != "" {
			m = bytes.Replace(m, []byte(`api_versions = [1]`), []byte(`api_versions = [`+api+`]`), 1)
		}
		mp := filepath.Join(base, ver+".toml")
		if err := os.WriteFile(mp, m, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := plugin.RepoAdd(r.dir, wasm, mp, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := plugin.RepoBuild(r.dir); err != nil {
		t.Fatal(err)
	}
	if _, err := plugin.RepoSign(r.dir, r.key); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(plugin.RepoHandler(r.dir))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/"
	return r
}

func newManager(t *testing.T, r *testRepo) (*plugin.Manager, *bytes.Buffer) {
	t.Helper()
	s := settings(t.TempDir())
	s.Repositories = []string{r.url}
	s.TrustedKeys = []string{r.pub}
	var out bytes.Buffer
	// The probe's compiled code is shared with the other tests.
	return &plugin.Manager{Settings: s, Out: &out, Hosts: []string{"localhost", "example.org"},
		CacheDir: filepath.Join(probeDir(t), "cache")}, &out
}

func TestManagerLifecycle(t *testing.T) {
	r := newRepo(t, "1.0.0", "1.1.0", "2.0.0/2")
	m, out := newManager(t, r)
	ctx := context.Background()

	found, err := m.Search(ctx, "whole host API")
	if err != nil || len(found) != 1 || found[0].Version != "1.1.0" {
		t.Fatalf("search: %v %+v", err, found)
	}
	// 2.0.0 needs an ABI this server lacks: refused by name, skipped otherwise.
	if err := m.Install(ctx, "probe@2.0.0", true); err == nil || !strings.Contains(err.Error(), "needs plugin API version [2]") {
		t.Fatalf("install of an incompatible version: %v", err)
	}
	if err := m.Install(ctx, "probe@1.0.0", true); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	for _, want := range []string{"selected probe 1.0.0", "verified probe 1.0.0", "checked probe in a sandbox", "enabled on every host"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("install output lacks %q:\n%s", want, out)
		}
	}
	items, err := m.List(ctx, true)
	if err != nil || len(items) != 1 || items[0].Update != "1.1.0" || len(items[0].EnabledOn) != 2 {
		t.Fatalf("list: %v %+v", err, items)
	}
	if err := m.Update(ctx, ""); err != nil {
		t.Fatal(err)
	}
	lock, _ := plugin.ReadLock(m.Settings.Directory)
	if e := lock.Find("probe"); e.Version != "1.1.0" || e.Previous == nil || e.Previous.Version != "1.0.0" {
		t.Fatalf("after update: %+v", e)
	}
	if err := m.Rollback("probe"); err != nil {
		t.Fatal(err)
	}
	lock, _ = plugin.ReadLock(m.Settings.Directory)
	if e := lock.Find("probe"); e.Version != "1.0.0" || e.Previous.Version != "1.1.0" {
		t.Fatalf("after rollback: %+v", e)
	}
	if err := m.SetEnabled("probe", "example.org", false); err != nil {
		t.Fatal(err)
	}
	if err := m.SetEnabled("probe", "elsewhere.net", true); err == nil {
		t.Fatal("enabled on an unknown host")
	}
	set, err := plugin.Activate(m.Settings)
	t.Cleanup(plugin.Deactivate)
	if err != nil || strings.Join(set.EnabledOn("localhost"), ",") != "probe" || len(set.EnabledOn("example.org")) != 0 {
		t.Fatalf("activate: %v %v %v", err, set.EnabledOn("localhost"), set.EnabledOn("example.org"))
	}
	// A reload the server refuses undoes the change.
	m.Reload = func() (bool, error) { return true, errors.New("refused for the test") }
	if err := m.Remove("probe"); err == nil || !strings.Contains(err.Error(), "was undone") {
		t.Fatalf("remove with a refused reload: %v", err)
	}
	if lock, _ := plugin.ReadLock(m.Settings.Directory); lock.Find("probe") == nil {
		t.Fatal("the refused removal was not undone")
	}
	m.Reload = nil
	if err := m.Remove("probe"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.Settings.Directory, "probe")); !os.IsNotExist(err) {
		t.Fatalf("files left after remove: %v", err)
	}
}

func TestManagerRefusals(t *testing.T) {
	ctx := context.Background()
	install := func(t *testing.T, r *testRepo, edit func(m *plugin.Manager)) error {
		m, _ := newManager(t, r)
		if edit != nil {
			edit(m)
		}
		err := m.Install(ctx, "probe", true)
		if err == nil {
			return nil
		}
		// Nothing was installed.
		if lock, lerr := plugin.ReadLock(m.Settings.Directory); lerr != nil || lock.Find("probe") != nil {
			t.Fatalf("a refused install left a lock entry (%v)", lerr)
		}
		return err
	}
	t.Run("tampered artifact", func(t *testing.T) {
		r := newRepo(t, "1.0.0")
		p := filepath.Join(r.dir, "plugins", "probe", "1.0.0", plugin.WasmFile)
		b, _ := os.ReadFile(p)
		b[len(b)-1] ^= 1
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := install(t, r, nil); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
			t.Fatalf("got %v", err)
		}
		// Re-indexed and the index re-signed, but not the module: its own
		// signature no longer matches.
		if _, err := plugin.RepoBuild(r.dir); err != nil {
			t.Fatal(err)
		}
		priv, err := plugin.ReadPrivateKey(r.key)
		if err != nil {
			t.Fatal(err)
		}
		idx, _ := os.ReadFile(filepath.Join(r.dir, plugin.IndexFile))
		if err := os.WriteFile(filepath.Join(r.dir, plugin.IndexFile+plugin.SigSuffix), plugin.Sign(priv, idx), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := install(t, r, nil); err == nil || !errors.Is(err, plugin.ErrBadSig) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unsigned index", func(t *testing.T) {
		r := newRepo(t, "1.0.0")
		if err := os.Remove(filepath.Join(r.dir, plugin.IndexFile+plugin.SigSuffix)); err != nil {
			t.Fatal(err)
		}
		if err := install(t, r, nil); err == nil || !errors.Is(err, plugin.ErrUnsigned) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		r := newRepo(t, "1.0.0")
		other, _, _ := plugin.GenerateKey()
		err := install(t, r, func(m *plugin.Manager) { m.Settings.TrustedKeys = []string{plugin.FormatPublicKey(other)} })
		if err == nil || !errors.Is(err, plugin.ErrUnknownKey) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no trusted key", func(t *testing.T) {
		r := newRepo(t, "1.0.0")
		err := install(t, r, func(m *plugin.Manager) { m.Settings.TrustedKeys = nil })
		if err == nil || !strings.Contains(err.Error(), "no trusted key") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("incompatible API version", func(t *testing.T) {
		r := newRepo(t, "1.0.0/2")
		if err := install(t, r, nil); err == nil || !strings.Contains(err.Error(), "supports plugin API version [1]") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("undeclared capability", func(t *testing.T) {
		r := newRepo(t, "1.0.0")
		err := install(t, r, func(m *plugin.Manager) {
			m.Options = func(string) ([]byte, error) { return []byte(`{"mode":"undeclared"}`), nil }
		})
		if err == nil || !strings.Contains(err.Error(), "does not declare") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("memory limit", func(t *testing.T) {
		r := newRepo(t, "1.0.0")
		err := install(t, r, func(m *plugin.Manager) { m.Settings.MemoryLimit = 1 << 20 })
		if err == nil || !strings.Contains(err.Error(), "over the 1 MiB limit") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("private key not served", func(t *testing.T) {
		r := newRepo(t, "1.0.0")
		if err := os.WriteFile(filepath.Join(r.dir, "copy.key"), []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(r.url + "copy.key")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("a .key file was served: %s", resp.Status)
		}
	})
}

func TestManifestAndLock(t *testing.T) {
	const good = "name = \"ok\"\nversion = \"1.0.0\"\ndescription = \"d\"\napi_versions = [1]\n[capabilities]\nevents = [\"x\"]\n"
	if _, err := plugin.ParseManifest([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"bad name", `name = "ok"`, `name = "Bad-Name"`, "name"},
		{"bad version", `version = "1.0.0"`, `version = "v1"`, "semantic version"},
		{"unknown key", `name = "ok"`, "name = \"ok\"\ncolour = \"red\"", "colour"},
		{"no events", `events = ["x"]`, `events = []`, "capabilities.events is empty"},
		{"bad option type", `events = ["x"]`, "events = [\"x\"]\n[config.x]\ntype = \"date\"", `type "date"`},
		{"bad default", `events = ["x"]`, "events = [\"x\"]\n[config.x]\ntype = \"integer\"\ndefault = \"1\"", "expected integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(good, tc.old, tc.new, 1)
			if _, err := plugin.ParseManifest([]byte(text)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q\n%s", err, tc.want, text)
			}
		})
	}
	var e plugin.LockEntry
	e.Enable("a.org")
	if !e.EnabledOn("a.org") || e.EnabledOn("b.org") {
		t.Fatalf("%+v", e)
	}
	e.Enable("")
	e.Disable("b.org")
	if !e.EnabledOn("a.org") || e.EnabledOn("b.org") {
		t.Fatalf("%+v", e)
	}
	e.Disable("")
	if e.EnabledOn("a.org") {
		t.Fatalf("%+v", e)
	}
}
