package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// IndexFile is the repository index at the root of a repository; it is
// signed in IndexFile + SigSuffix.
const IndexFile = "index.json"

// IndexFormat is the version of the index layout.
const IndexFormat = 1

// Index lists every version of every plugin in a repository.
type Index struct {
	Format    int           `json:"format"`
	Generated time.Time     `json:"generated"`
	Plugins   []IndexPlugin `json:"plugins"` // sorted by name
}

// IndexPlugin is one plugin of an index.
type IndexPlugin struct {
	Name     string         `json:"name"`
	Versions []IndexVersion `json:"versions"` // newest first
}

// IndexVersion is one published version: what its manifest says, and where
// and how large its files are.
type IndexVersion struct {
	Version      string       `json:"version"`
	Description  string       `json:"description"`
	Author       string       `json:"author,omitempty"`
	License      string       `json:"license,omitempty"`
	Homepage     string       `json:"homepage,omitempty"`
	APIVersions  []int        `json:"api_versions"`
	Capabilities Capabilities `json:"capabilities"`
	// Config is the manifest's option schema.
	Config         map[string]ConfigOption `json:"config,omitempty"`
	Manifest       string                  `json:"manifest"` // path relative to the repository root
	ManifestSHA256 string                  `json:"manifest_sha256"`
	Wasm           string                  `json:"wasm"`
	WasmSHA256     string                  `json:"wasm_sha256"`
	Size           int64                   `json:"size"`
}

// Candidate is a version found in a repository.
type Candidate struct {
	Repo string // base URL
	Name string
	IndexVersion
}

// Compatible reports whether this server implements one of the candidate's ABI versions.
func (c Candidate) Compatible() bool { return compatible(c.APIVersions) }

// Catalog is the merged, verified indexes of the configured repositories.
type Catalog struct {
	entries []Candidate // by name, then newest first, then repository order
}

// maxFetch bounds any file fetched from a repository.
const maxFetch = 64 << 20

// Fetcher downloads repository files over HTTP(S) or from the file system.
type Fetcher struct {
	Client *http.Client // default: a client with a 60s timeout
	// Progress, if set, is called before a download of total bytes (-1
	// when unknown) and returns a writer that receives the bytes as they
	// arrive, and a function called when the download ends.
	Progress func(label string, total int64) (io.Writer, func())
}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return &http.Client{Timeout: 60 * time.Second}
}

// resolve joins a repository base and a relative path, refusing paths
// that escape the repository.
func resolve(base, rel string) (string, error) {
	if rel == "" || path.IsAbs(rel) || strings.Contains(rel, "\\") || path.Clean(rel) != rel || strings.HasPrefix(rel, "../") || rel == ".." {
		return "", fmt.Errorf("repository path %q is not a clean relative path", rel)
	}
	if filepath.IsAbs(base) {
		return filepath.Join(base, filepath.FromSlash(rel)), nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	if u.Scheme == "file" {
		return filepath.Join(u.Path, filepath.FromSlash(rel)), nil
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + rel
	return u.String(), nil
}

// Get fetches one file of a repository. A missing file is an error
// wrapping os.ErrNotExist.
func (f *Fetcher) Get(ctx context.Context, base, rel, label string) ([]byte, error) {
	loc, err := resolve(base, rel)
	if err != nil {
		return nil, err
	}
	var body io.Reader
	total := int64(-1)
	if strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://") {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
		if err != nil {
			return nil, err
		}
		resp, err := f.client().Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusNotFound:
			return nil, fmt.Errorf("%s: %w", loc, os.ErrNotExist)
		case resp.StatusCode != http.StatusOK:
			return nil, fmt.Errorf("%s: %s", loc, resp.Status)
		}
		body, total = resp.Body, resp.ContentLength
	} else {
		fh, err := os.Open(loc)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		if st, err := fh.Stat(); err == nil {
			total = st.Size()
		}
		body = fh
	}
	if total > maxFetch {
		return nil, fmt.Errorf("%s: %d bytes is over the %d-byte limit", loc, total, maxFetch)
	}
	if f.Progress != nil && label != "" {
		w, done := f.Progress(label, total)
		defer done()
		body = io.TeeReader(body, w)
	}
	b, err := io.ReadAll(io.LimitReader(body, maxFetch+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	if len(b) > maxFetch {
		return nil, fmt.Errorf("%s: over the %d-byte limit", loc, maxFetch)
	}
	return b, nil
}

// FetchIndex fetches and verifies the index of one repository: it must be
// signed by a trusted key.
func (f *Fetcher) FetchIndex(ctx context.Context, base string, kr *Keyring) (*Index, error) {
	data, err := f.Get(ctx, base, IndexFile, "")
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", base, err)
	}
	sig, err := f.Get(ctx, base, IndexFile+SigSuffix, "")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("repository %s: %w", base, err)
	}
	if _, err := kr.Verify(data, sig); err != nil {
		return nil, fmt.Errorf("repository %s: index refused: %w", base, err)
	}
	var idx Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("repository %s: malformed index: %w", base, err)
	}
	if idx.Format != IndexFormat {
		return nil, fmt.Errorf("repository %s: index format %d is not supported (want %d)", base, idx.Format, IndexFormat)
	}
	return &idx, nil
}

// FetchCatalog fetches and verifies the indexes of repos, in order.
func (f *Fetcher) FetchCatalog(ctx context.Context, repos []string, kr *Keyring) (*Catalog, error) {
	if len(repos) == 0 {
		return nil, errors.New("no plugin repository is configured: add one to [plugins] repositories")
	}
	if kr.Len() == 0 {
		return nil, errors.New("no trusted key is configured: add the repository's public key to [plugins] trusted_keys")
	}
	c := &Catalog{}
	for _, r := range repos {
		idx, err := f.FetchIndex(ctx, r, kr)
		if err != nil {
			return nil, err
		}
		for _, p := range idx.Plugins {
			for _, v := range p.Versions {
				c.entries = append(c.entries, Candidate{Repo: r, Name: p.Name, IndexVersion: v})
			}
		}
	}
	sort.SliceStable(c.entries, func(i, j int) bool {
		a, b := c.entries[i], c.entries[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return CompareVersions(a.Version, b.Version) > 0
	})
	return c, nil
}

// Versions returns every published version of name, newest first.
func (c *Catalog) Versions(name string) []Candidate {
	var out []Candidate
	for _, e := range c.entries {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// Latest returns the newest version of every plugin (compatible ones
// preferred), sorted by name.
func (c *Catalog) Latest() []Candidate {
	var out []Candidate
	for i := 0; i < len(c.entries); {
		j := i
		for j < len(c.entries) && c.entries[j].Name == c.entries[i].Name {
			j++
		}
		best := c.entries[i]
		for _, e := range c.entries[i:j] {
			if e.Compatible() {
				best = e
				break
			}
		}
		out = append(out, best)
		i = j
	}
	return out
}

// Search returns the newest version of the plugins whose name or
// description contains word (case-insensitive); every plugin for "".
func (c *Catalog) Search(word string) []Candidate {
	word = strings.ToLower(word)
	var out []Candidate
	for _, e := range c.Latest() {
		if strings.Contains(e.Name, word) || strings.Contains(strings.ToLower(e.Description), word) {
			out = append(out, e)
		}
	}
	return out
}

// Pick chooses the version to install: version exactly when it is not
// empty (refused when incompatible), else the newest compatible one.
func (c *Catalog) Pick(name, version string) (Candidate, error) {
	vs := c.Versions(name)
	if len(vs) == 0 {
		return Candidate{}, fmt.Errorf("plugin %q is not in any configured repository", name)
	}
	for _, v := range vs {
		if version != "" && v.Version != version {
			continue
		}
		if !v.Compatible() {
			if version != "" {
				return Candidate{}, fmt.Errorf("%s@%s needs plugin API version %v; this server implements %v",
					name, version, v.APIVersions, SupportedAPIVersions)
			}
			continue
		}
		return v, nil
	}
	if version != "" {
		return Candidate{}, fmt.Errorf("%s@%s is not published (versions: %s)", name, version, versionList(vs))
	}
	return Candidate{}, fmt.Errorf("no version of %s supports plugin API version %v (versions: %s)",
		name, SupportedAPIVersions, versionList(vs))
}

func versionList(vs []Candidate) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.Version
	}
	return strings.Join(s, ", ")
}

// Artifact is a downloaded, verified plugin version.
type Artifact struct {
	Candidate
	Manifest      *Manifest
	ManifestBytes []byte
	Wasm          []byte
	SignedBy      string // the key that signed the module
}

// Download fetches a candidate's manifest and module and verifies both
// against the index (SHA-256) and their own signatures (trusted keys).
func (f *Fetcher) Download(ctx context.Context, c Candidate, kr *Keyring) (*Artifact, error) {
	var signer string
	get := func(rel, label, want string) ([]byte, error) {
		b, err := f.Get(ctx, c.Repo, rel, label)
		if err != nil {
			return nil, err
		}
		if got := sha256Hex(b); got != want {
			return nil, fmt.Errorf("%s: checksum mismatch (index says %s, file is %s): the file was altered", rel, want, got)
		}
		sig, err := f.Get(ctx, c.Repo, rel+SigSuffix, "")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		key, err := kr.Verify(b, sig)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		signer = key
		return b, nil
	}
	mb, err := get(c.Manifest, "", c.ManifestSHA256)
	if err != nil {
		return nil, err
	}
	m, err := ParseManifest(mb)
	if err != nil {
		return nil, err
	}
	if m.Name != c.Name || m.Version != c.Version {
		return nil, fmt.Errorf("manifest is %s@%s but the index lists %s@%s", m.Name, m.Version, c.Name, c.Version)
	}
	wb, err := get(c.Wasm, fmt.Sprintf("%s@%s", c.Name, c.Version), c.WasmSHA256)
	if err != nil {
		return nil, err
	}
	return &Artifact{Candidate: c, Manifest: m, ManifestBytes: mb, Wasm: wb, SignedBy: signer}, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
