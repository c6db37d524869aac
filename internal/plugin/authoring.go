package plugin

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Repository authoring: the functions behind `metronomectl repo`. A
// repository is a directory:
//
//	index.json, index.json.sig          the signed index
//	key.pub                             the public key, for operators to trust
//	plugins/<name>/<version>/plugin.toml, plugin.toml.sig
//	plugins/<name>/<version>/plugin.wasm, plugin.wasm.sig
//
// The private key is kept outside it (by default beside it, <dir>.key).

// PublicKeyFile is the public key's file name in a repository.
const PublicKeyFile = "key.pub"

// RepoInit creates a repository in dir and a signing key pair: the
// private key at keyPath (mode 0600, never overwritten) and the public key
// in dir/key.pub. It returns the public key.
func RepoInit(dir, keyPath string) (string, error) {
	if rel, err := filepath.Rel(dir, keyPath); err == nil && !strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("the private key %s must not be inside the repository, which is served to everyone", keyPath)
	}
	if err := os.MkdirAll(filepath.Join(dir, "plugins"), 0o755); err != nil {
		return "", err
	}
	if priv, err := ReadPrivateKey(keyPath); err == nil {
		pub := FormatPublicKey(priv.Public().(ed25519.PublicKey))
		return pub, os.WriteFile(filepath.Join(dir, PublicKeyFile), []byte(pub+"\n"), 0o644)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	pub, priv, err := GenerateKey()
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(FormatPrivateKey(priv)); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	text := FormatPublicKey(pub)
	return text, os.WriteFile(filepath.Join(dir, PublicKeyFile), []byte(text+"\n"), 0o644)
}

// BuildSource builds the plugin main package in src for wasip1 into out
// with the Go toolchain.
func BuildSource(src, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return errors.New("building a plugin from source needs the go command in $PATH (or add a built .wasm)")
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-trimpath", "-o", abs, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("GOOS=wasip1 GOARCH=wasm go build in %s: %v\n%s", src, err, b)
	}
	return nil
}

// RepoAdd adds one plugin version to the repository in dir. src is a
// plugin source folder (plugin.toml and a main package, built with the Go
// toolchain) or a built .wasm file whose manifest is manifest (default:
// plugin.toml beside it). An existing version is refused unless force.
func RepoAdd(dir, src, manifest string, force bool) (*Manifest, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	var wasmPath string
	if st.IsDir() {
		if manifest == "" {
			manifest = filepath.Join(src, ManifestFile)
		}
		tmp, err := os.MkdirTemp("", "metronome-plugin-build-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		wasmPath = filepath.Join(tmp, WasmFile)
		if err := BuildSource(src, wasmPath); err != nil {
			return nil, err
		}
	} else {
		wasmPath = src
		if manifest == "" {
			manifest = filepath.Join(filepath.Dir(src), ManifestFile)
		}
	}
	mb, err := os.ReadFile(manifest)
	if err != nil {
		return nil, err
	}
	m, err := ParseManifest(mb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", manifest, err)
	}
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		return nil, err
	}
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, fmt.Errorf("%s is not a WebAssembly module", wasmPath)
	}
	root := filepath.Join(dir, "plugins")
	if _, err := os.Stat(filepath.Join(root, m.Name, m.Version)); err == nil && !force {
		return nil, fmt.Errorf("%s %s is already in the repository (publish a new version, or --force)", m.Name, m.Version)
	}
	if _, err := writeVersion(root, m, mb, wasm); err != nil {
		return nil, err
	}
	return m, nil
}

// RepoBuild writes the index of the repository in dir from its plugin
// folders. It removes the index signature, which no longer matches: sign
// again afterwards.
func RepoBuild(dir string) (*Index, error) {
	root := filepath.Join(dir, "plugins")
	names, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	idx := &Index{Format: IndexFormat, Generated: time.Now().UTC().Truncate(time.Second), Plugins: []IndexPlugin{}}
	for _, n := range names {
		if !n.IsDir() || strings.HasPrefix(n.Name(), ".") {
			continue
		}
		versions, err := os.ReadDir(filepath.Join(root, n.Name()))
		if err != nil {
			return nil, err
		}
		ip := IndexPlugin{Name: n.Name()}
		for _, v := range versions {
			if !v.IsDir() || strings.HasPrefix(v.Name(), ".") {
				continue
			}
			rel := path.Join("plugins", n.Name(), v.Name())
			mb, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel), ManifestFile))
			if err != nil {
				return nil, err
			}
			m, err := ParseManifest(mb)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", rel, err)
			}
			if m.Name != n.Name() || m.Version != v.Name() {
				return nil, fmt.Errorf("%s holds %s %s", rel, m.Name, m.Version)
			}
			wasm, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel), WasmFile))
			if err != nil {
				return nil, err
			}
			ip.Versions = append(ip.Versions, IndexVersion{
				Version: m.Version, Description: m.Description, Author: m.Author, License: m.License,
				Homepage: m.Homepage, APIVersions: m.APIVersions, Capabilities: m.Capabilities, Config: m.Config,
				Manifest: rel + "/" + ManifestFile, ManifestSHA256: sha256Hex(mb),
				Wasm: rel + "/" + WasmFile, WasmSHA256: sha256Hex(wasm), Size: int64(len(wasm)),
			})
		}
		if len(ip.Versions) == 0 {
			continue
		}
		sort.Slice(ip.Versions, func(i, j int) bool {
			return CompareVersions(ip.Versions[i].Version, ip.Versions[j].Version) > 0
		})
		idx.Plugins = append(idx.Plugins, ip)
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, IndexFile), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.Remove(filepath.Join(dir, IndexFile+SigSuffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return idx, nil
}

// RepoSign signs the index and every manifest and module listed in it
// with the private key at keyPath, and returns the number of files signed.
func RepoSign(dir, keyPath string) (int, error) {
	priv, err := ReadPrivateKey(keyPath)
	if err != nil {
		return 0, err
	}
	data, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		return 0, fmt.Errorf("%w (run `metronomectl repo build` first)", err)
	}
	var idx Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return 0, err
	}
	n := 0
	sign := func(rel string) error {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p+SigSuffix, Sign(priv, b), 0o644); err != nil {
			return err
		}
		n++
		return nil
	}
	for _, p := range idx.Plugins {
		for _, v := range p.Versions {
			for _, rel := range []string{v.Manifest, v.Wasm} {
				if _, err := resolve(dir, rel); err != nil {
					return n, err
				}
				if err := sign(rel); err != nil {
					return n, err
				}
			}
		}
	}
	return n, sign(IndexFile)
}

// RepoHandler serves the repository in dir over HTTP. Hidden files and
// anything that looks like a private key are not served.
func RepoHandler(dir string) http.Handler {
	fs := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, part := range strings.Split(r.URL.Path, "/") {
			if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".key") {
				http.NotFound(w, r)
				return
			}
		}
		fs.ServeHTTP(w, r)
	})
}
