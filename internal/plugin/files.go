package plugin

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// writeVersion writes a version's manifest and module under dir,
// replacing any previous copy of that version.
func writeVersion(dir string, m *Manifest, manifest, wasm []byte) (string, error) {
	vdir := versionDir(dir, m.Name, m.Version)
	if err := os.MkdirAll(filepath.Dir(vdir), 0o750); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(vdir), "."+m.Version+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, ManifestFile), manifest, 0o640); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, WasmFile), wasm, 0o640); err != nil {
		return "", err
	}
	if err := os.RemoveAll(vdir); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, vdir); err != nil {
		return "", err
	}
	return vdir, nil
}

// InstallLocal installs a plugin from its files into dir without a
// repository, updating the lockfile (enabled everywhere when enable). It
// does not check signatures: it is for tests and for the installer once
// it has verified them.
func InstallLocal(dir string, manifest, wasm []byte, repo, signedBy string, enable bool) (*Manifest, error) {
	m, err := ParseManifest(manifest)
	if err != nil {
		return nil, err
	}
	lock, err := ReadLock(dir)
	if err != nil {
		return nil, err
	}
	if _, err := writeVersion(dir, m, manifest, wasm); err != nil {
		return nil, fmt.Errorf("plugin %s: %w", m.Name, err)
	}
	e := lock.Find(m.Name)
	if e == nil {
		lock.Plugins = append(lock.Plugins, LockEntry{Name: m.Name})
		e = &lock.Plugins[len(lock.Plugins)-1]
		if enable {
			e.Enable("")
		}
	} else if e.Version != m.Version {
		e.Previous = &LockVersion{Version: e.Version, Repository: e.Repository, WasmSHA256: e.WasmSHA256,
			ManifestSHA256: e.ManifestSHA256, SignedBy: e.SignedBy, Installed: e.Installed}
	}
	e.Version, e.Repository, e.SignedBy = m.Version, repo, signedBy
	e.WasmSHA256, e.ManifestSHA256 = sha256Hex(wasm), sha256Hex(manifest)
	e.Installed = time.Now().UTC().Truncate(time.Second)
	if err := lock.Write(dir); err != nil {
		return nil, err
	}
	return m, nil
}
