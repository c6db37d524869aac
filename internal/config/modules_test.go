package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type pingOpts struct {
	Interval Duration `json:"interval"`
	Timeout  Duration `json:"timeout"`
}

type limitsOpts struct {
	Max     int  `json:"max"`
	Burst   int  `json:"burst"`
	MaxSize Size `json:"max_size"`
}

type Common struct {
	Enabled bool `json:"enabled"`
}

type richOpts struct {
	Common                        // promoted: enabled
	Allow     bool                `json:"allow"`
	Name      string              `json:"name"`
	Tags      []string            `json:"tags"`
	Limits    limitsOpts          `json:"limits"`
	PerHost   map[string]int      `json:"per_host"`
	Rules     []limitsOpts        `json:"rules"`
	Ptr       *limitsOpts         `json:"ptr"`
	Any       any                 `json:"any"`
	When      string              `json:"when"`
	Ignored   string              `json:"-"`
	Untagged  int                 // no tag: the Go name is the key
	internal  int                 // unexported: never decoded
	Durations map[string]Duration `json:"durations"`
}

var _ = richOpts{}.internal // the field exists to prove it is skipped

const modulesDoc = `[modules]
enabled = ["ping", "rich"]

[modules.ping]
interval = "5m"
timeout = "10s"

[modules.rich]
allow = false
name = "global"
tags = ["a", "b"]
limits = { max = 10, burst = 5, max_size = "1MiB" }
per_host = { a = 1, b = 2 }
when = 1979-05-27T07:32:00Z

[host."example.org".ping]
intervall = "1m"

[host."example.org".rich]
allow = true
tags = ["c"]
limits.burst = 7
per_host.c = 3
enabled = true
Untagged = 4

[host."example.net".rich.limits]
max = "ten"

[host."example.com".rich]
rules = [
  { max = 1 },
  { max = 2, maxx = 3 },
]

[modules.big]
f = 1.5
n = 300
`

func TestDecodeModuleMerge(t *testing.T) {
	c := mustParse(t, modulesDoc)
	var o richOpts
	if err := c.DecodeModule("example.org", "rich", &o); err != nil {
		t.Fatal(err)
	}
	want := richOpts{
		Common:   Common{Enabled: true},
		Allow:    true,
		Name:     "global",
		Tags:     []string{"c"}, // arrays replace
		Limits:   limitsOpts{Max: 10, Burst: 7, MaxSize: 1 << 20},
		PerHost:  map[string]int{"a": 1, "b": 2, "c": 3},
		When:     "1979-05-27T07:32:00Z",
		Untagged: 4,
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("merged =\n%+v\nwant\n%+v", o, want)
	}

	// Global options only.
	var g richOpts
	if err := c.DecodeModule("", "rich", &g); err != nil {
		t.Fatal(err)
	}
	if g.Allow || !reflect.DeepEqual(g.Tags, []string{"a", "b"}) || g.Limits.Burst != 5 || len(g.PerHost) != 2 {
		t.Errorf("global = %+v", g)
	}

	// A host without an overlay gets the global options; defaults set by
	// the caller survive where the file says nothing.
	p := pingOpts{Interval: Duration(time.Hour), Timeout: Duration(time.Minute)}
	if err := c.DecodeModule("", "ping", &p); err != nil {
		t.Fatal(err)
	}
	if p.Interval.D() != 5*time.Minute || p.Timeout.D() != 10*time.Second {
		t.Errorf("ping = %+v", p)
	}
	// A module with no options at all leaves dst alone.
	p2 := pingOpts{Interval: 7}
	if err := c.DecodeModule("example.org", "absent", &p2); err != nil || p2.Interval != 7 {
		t.Errorf("absent module: %v %+v", err, p2)
	}
	// The stored trees are not modified by merging.
	var g2 richOpts
	if err := c.DecodeModule("", "rich", &g2); err != nil || !reflect.DeepEqual(g, g2) {
		t.Errorf("global changed after merge: %v %+v", err, g2)
	}
}

func TestDecodeModuleErrors(t *testing.T) {
	c := mustParse(t, modulesDoc)
	tests := []struct {
		host, module string
		dst          any
		want         []string
	}{
		{"example.org", "ping", &pingOpts{}, []string{
			`metronome.toml:17: module "ping" on host "example.org": unknown option "intervall" (did you mean "interval"?)`,
		}},
		{"example.net", "rich", &richOpts{}, []string{
			`metronome.toml:28: module "rich" on host "example.net": option "limits.max": expected integer, got string`,
		}},
		{"example.com", "rich", &richOpts{}, []string{
			`metronome.toml:33: module "rich" on host "example.com": unknown option "rules[1].maxx" (did you mean "max"?)`,
		}},
		// A struct that knows fewer options: every unknown one, at its line.
		{"", "rich", &struct {
			Name string `json:"name"`
		}{}, []string{
			`metronome.toml:9: module "rich": unknown option "allow"`,
			`metronome.toml:11: module "rich": unknown option "tags"`,
			`metronome.toml:12: module "rich": unknown option "limits"`,
			`metronome.toml:14: module "rich": unknown option "when"`,
		}},
		// Type mismatches on each kind.
		{"", "rich", &struct {
			Allow  string          `json:"allow"`
			Name   int             `json:"name"`
			Tags   map[string]bool `json:"tags"`
			Limits []int           `json:"limits"`
			PerH   map[string]bool `json:"per_host"`
			When   Duration        `json:"when"`
		}{}, []string{
			`metronome.toml:9: module "rich": option "allow": expected string, got boolean`,
			`metronome.toml:10: module "rich": option "name": expected integer, got string`,
			`metronome.toml:11: module "rich": option "tags": expected table, got array`,
			`metronome.toml:12: module "rich": option "limits": expected array, got table`,
			`metronome.toml:13: module "rich": option "per_host.a": expected boolean, got integer`,
			`metronome.toml:14: module "rich": option "when": invalid duration "1979-05-27T07:32:00Z"`,
		}},
		{"", "ping", &struct {
			Interval uint8 `json:"interval"`
		}{}, []string{`metronome.toml:5: module "ping": option "interval": expected non-negative integer, got string`}},
		{"", "big", &struct {
			N uint8 `json:"n"`
			F int   `json:"f"`
		}{}, []string{
			`metronome.toml:37: module "big": option "f": expected integer, got float`,
			`metronome.toml:38: module "big": option "n": 300 is out of range for uint8`,
		}},
		{"nowhere.example", "ping", &pingOpts{}, []string{`module "ping": unknown host "nowhere.example"`}},
		{"", "ping", pingOpts{}, []string{`non-nil pointer`}},
	}
	for _, tt := range tests {
		err := c.DecodeModule(tt.host, tt.module, tt.dst)
		if err == nil {
			t.Errorf("DecodeModule(%q, %q, %T): no error", tt.host, tt.module, tt.dst)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("DecodeModule(%q, %q): error\n%v\ndoes not contain\n%v", tt.host, tt.module, err, w)
			}
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("not an *Error: %#v", err)
		}
	}
}

func TestDecodeModuleNaN(t *testing.T) {
	c := mustParse(t, "[modules.x]\n\nratio = nan\n")
	var o struct {
		Ratio float64 `json:"ratio"`
	}
	err := c.DecodeModule("", "x", &o)
	if err == nil || !strings.Contains(err.Error(), `metronome.toml:3: module "x": option "ratio": NaN and infinity are not supported`) {
		t.Errorf("err = %v", err)
	}
}

func TestDecodeComponent(t *testing.T) {
	c := mustParse(t, `
[component."conference.example.org"]
module = "muc"
muc = { restrict_room_creation = "local", max_history = 20 }

[component."gateway.example.org"]
external = { secret_file = "/etc/metronome/gateway.secret" }

[component."typo.example.org"]
module = "muc"
[component."typo.example.org".muc]
max_histroy = 1
`)
	type mucOpts struct {
		RestrictRoomCreation string `json:"restrict_room_creation"`
		MaxHistory           int    `json:"max_history"`
	}
	var m mucOpts
	if err := c.DecodeComponent("Conference.example.org", &m); err != nil {
		t.Fatal(err)
	}
	if m != (mucOpts{"local", 20}) {
		t.Errorf("muc = %+v", m)
	}
	gw, ok := c.Component("gateway.example.org")
	if !ok || gw.Module != "external" {
		t.Errorf("gateway = %+v", gw)
	}
	err := c.DecodeComponent("typo.example.org", &m)
	if err == nil || !strings.Contains(err.Error(), `metronome.toml:12: component "typo.example.org" (module "muc"): unknown option "max_histroy" (did you mean "max_history"?)`) {
		t.Errorf("err = %v", err)
	}
	if err := c.DecodeComponent("nope.example.org", &m); err == nil {
		t.Error("unknown component: no error")
	}
}

func TestCheckModules(t *testing.T) {
	c := mustParse(t, `[modules]
enabled = ["roster", "rostr"]
[modules.pnig]
interval = "5m"
[host."example.org"]
modules = { enable = ["carbns"], disable = ["roster"] }
[host."example.org".registr]
allow = true
`)
	known := func(n string) bool { return n == "roster" || n == "ping" || n == "register" || n == "carbons" }
	err := c.CheckModules(known)
	if err == nil {
		t.Fatal("no error")
	}
	want := `metronome.toml:2: [modules] enabled: unknown module "rostr"
metronome.toml:3: unknown module "pnig" in [modules.pnig]
metronome.toml:6: [host."example.org"] modules.enable: unknown module "carbns"
metronome.toml:7: unknown module "registr" in [host."example.org".registr]`
	if err.Error() != want {
		t.Errorf("got\n%v\nwant\n%v", err, want)
	}
	if err := Default().CheckModules(func(string) bool { return true }); err != nil {
		t.Errorf("default: %v", err)
	}
}

func TestModuleError(t *testing.T) {
	c := mustParse(t, modulesDoc)
	if c.ModuleError("example.org", "ping", nil) != nil {
		t.Error("nil error wrapped")
	}
	base := errors.New("interval must be positive")
	err := c.ModuleError("example.org", "ping", base)
	if !errors.Is(err, base) || err.Error() != `metronome.toml:16: module "ping" on host "example.org": interval must be positive` {
		t.Errorf("err = %v", err)
	}
	err = c.ModuleError("example.net", "ping", base)
	if err.Error() != `metronome.toml:4: module "ping" on host "example.net": interval must be positive` {
		t.Errorf("err = %v", err)
	}
	// No option table: the line where the module is enabled.
	c = mustParse(t, "[modules]\nenabled = [\n  \"roster\",\n  \"ping\",\n]\n")
	err = c.ModuleError("localhost", "ping", base)
	if err.Error() != `metronome.toml:4: module "ping" on host "localhost": interval must be positive` {
		t.Errorf("err = %v", err)
	}
}
