package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"golang.org/x/mod/semver"

	"github.com/metronome-xmpp/metronome/sdk/abi"
)

// ManifestFile is the manifest's file name, in a plugin's source folder,
// in a repository and in the plugin directory.
const ManifestFile = "plugin.toml"

// WasmFile is the name of the module beside its manifest.
const WasmFile = "plugin.wasm"

// SupportedAPIVersions are the ABI versions this server implements.
var SupportedAPIVersions = []int{abi.Version}

// Manifest is a plugin's plugin.toml.
type Manifest struct {
	Name        string `toml:"name" json:"name"`
	Version     string `toml:"version" json:"version"` // semver without "v": 1.2.3
	Description string `toml:"description" json:"description"`
	Author      string `toml:"author" json:"author,omitempty"`
	License     string `toml:"license" json:"license,omitempty"`
	Homepage    string `toml:"homepage" json:"homepage,omitempty"`
	// APIVersions lists the host ABI versions the plugin works with.
	APIVersions  []int                   `toml:"api_versions" json:"api_versions"`
	Capabilities Capabilities            `toml:"capabilities" json:"capabilities"`
	Config       map[string]ConfigOption `toml:"config" json:"config,omitempty"`
}

// Capabilities is what a plugin may do besides answering its own events.
type Capabilities struct {
	// Events the plugin may hook: exact names, or a prefix ending in '*'
	// ("iq/host/urn:example:*").
	Events []string `toml:"events" json:"events"`
	// Stores the plugin may open (its own, per host; the server prefixes them).
	Stores []string `toml:"stores" json:"stores,omitempty"`
	// HTTP lists the hosts ("api.example.org" or "api.example.org:8443")
	// the plugin may send HTTP requests to.
	HTTP []string `toml:"http" json:"http,omitempty"`
	// Send allows routing stanzas as the server (sdk.Send).
	Send bool `toml:"send" json:"send,omitempty"`
	// Rewrite allows replacing the stanza of an event (sdk.Event.Replace).
	Rewrite bool `toml:"rewrite" json:"rewrite,omitempty"`
}

// ConfigOption describes one option of [modules.<plugin>].
type ConfigOption struct {
	// Type is string, integer, number, boolean, array or table.
	Type        string `toml:"type" json:"type"`
	Default     any    `toml:"default" json:"default,omitempty"`
	Required    bool   `toml:"required" json:"required,omitempty"`
	Description string `toml:"description" json:"description,omitempty"`
}

var (
	nameRe  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
	storeRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
	optRe   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	types   = []string{"string", "integer", "number", "boolean", "array", "table"}
)

// ParseManifest decodes and validates a manifest. Unknown keys are errors.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		var sme *toml.StrictMissingError
		if errors.As(err, &sme) {
			return nil, fmt.Errorf("manifest: %s", strings.TrimSpace(sme.String()))
		}
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks the manifest's fields.
func (m *Manifest) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("manifest: "+format, args...)) }
	if !nameRe.MatchString(m.Name) {
		bad("name %q: want lowercase letters, digits and '_', starting with a letter, at most 40 characters", m.Name)
	}
	if !ValidVersion(m.Version) {
		bad("version %q is not a semantic version such as 1.2.3", m.Version)
	}
	if strings.TrimSpace(m.Description) == "" {
		bad("description is required")
	}
	if len(m.APIVersions) == 0 {
		bad("api_versions is required (this server implements %v)", SupportedAPIVersions)
	}
	if len(m.Capabilities.Events) == 0 {
		bad("capabilities.events is empty: a plugin must hook at least one event")
	}
	for _, e := range m.Capabilities.Events {
		if e == "" || e == "*" || strings.ContainsAny(e, " \t\n") || strings.Contains(strings.TrimSuffix(e, "*"), "*") {
			bad("capabilities.events: invalid event %q", e)
		}
	}
	for _, s := range m.Capabilities.Stores {
		if !storeRe.MatchString(s) {
			bad("capabilities.stores: invalid store name %q", s)
		}
	}
	for _, h := range m.Capabilities.HTTP {
		host := h
		if hh, _, err := net.SplitHostPort(h); err == nil {
			host = hh
		}
		if host == "" || strings.ContainsAny(host, "/*@ ") {
			bad("capabilities.http: invalid host %q (want a host name, optionally with :port)", h)
		}
	}
	for _, k := range sortedKeys(m.Config) {
		o := m.Config[k]
		if !optRe.MatchString(k) {
			bad("config.%s: invalid option name", k)
		}
		if !slices.Contains(types, o.Type) {
			bad("config.%s: type %q (want %s)", k, o.Type, strings.Join(types, ", "))
			continue
		}
		if o.Default != nil {
			if err := checkType(o.Type, o.Default); err != nil {
				bad("config.%s: default: %v", k, err)
			}
		}
	}
	return errors.Join(errs...)
}

// ValidVersion reports whether v is a semantic version without a "v" prefix.
func ValidVersion(v string) bool {
	return v != "" && v[0] != 'v' && semver.IsValid("v"+v)
}

// CompareVersions compares two semantic versions like strings.Compare.
func CompareVersions(a, b string) int { return semver.Compare("v"+a, "v"+b) }

// Compatible reports whether the plugin supports an ABI version this server implements.
func (m *Manifest) Compatible() bool { return compatible(m.APIVersions) }

func compatible(vs []int) bool {
	for _, v := range vs {
		if slices.Contains(SupportedAPIVersions, v) {
			return true
		}
	}
	return false
}

// AllowsEvent reports whether the manifest lets the plugin hook name.
func (c *Capabilities) AllowsEvent(name string) bool {
	for _, e := range c.Events {
		if p, ok := strings.CutSuffix(e, "*"); ok {
			if strings.HasPrefix(name, p) {
				return true
			}
		} else if e == name {
			return true
		}
	}
	return false
}

// AllowsHTTP reports whether the manifest lets the plugin reach host
// (the URL's host, with its port if it has one).
func (c *Capabilities) AllowsHTTP(hostport, hostname string) bool {
	for _, h := range c.HTTP {
		if strings.EqualFold(h, hostport) || strings.EqualFold(h, hostname) {
			return true
		}
	}
	return false
}

// checkType checks a TOML-decoded (or JSON-decoded) value against an option type.
func checkType(typ string, v any) error {
	ok := false
	switch typ {
	case "string":
		_, ok = v.(string)
	case "integer":
		switch x := v.(type) {
		case int64, int:
			ok = true
		case float64: // from JSON
			ok = x == math.Trunc(x)
		}
	case "number":
		switch v.(type) {
		case int64, int, float64:
			ok = true
		}
	case "boolean":
		_, ok = v.(bool)
	case "array":
		_, ok = v.([]any)
	case "table":
		_, ok = v.(map[string]any)
	}
	if !ok {
		return fmt.Errorf("expected %s, got %s", typ, kindOf(v))
	}
	return nil
}

func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64, int:
		return "integer"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%T", v)
}

// ApplyConfig checks options (a JSON object, or empty for none) against the
// manifest's schema, fills in defaults and returns the JSON object the
// plugin's init receives. Unknown options, wrong types and missing required
// options are errors naming the option.
func (m *Manifest) ApplyConfig(raw []byte) ([]byte, error) {
	opts := map[string]any{}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &opts); err != nil {
			return nil, fmt.Errorf("options must be a table: %w", err)
		}
	}
	var errs []error
	for _, k := range sortedKeys(opts) {
		o, ok := m.Config[k]
		if !ok {
			known := sortedKeys(m.Config)
			hint := ""
			if len(known) > 0 {
				hint = fmt.Sprintf(" (known: %s)", strings.Join(known, ", "))
			}
			errs = append(errs, fmt.Errorf("unknown option %q%s", k, hint))
			continue
		}
		if err := checkType(o.Type, opts[k]); err != nil {
			errs = append(errs, fmt.Errorf("option %q: %v", k, err))
		}
	}
	for _, k := range sortedKeys(m.Config) {
		o := m.Config[k]
		if _, ok := opts[k]; ok {
			continue
		}
		if o.Required {
			errs = append(errs, fmt.Errorf("option %q is required", k))
		} else if o.Default != nil {
			opts[k] = o.Default
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return json.Marshal(opts)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
