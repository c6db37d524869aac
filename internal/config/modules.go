package config

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// optSource is one place module options come from, strongest first.
type optSource struct {
	prefix path           // e.g. host."example.org".ping
	tree   map[string]any // nil when absent
}

// decodeTarget describes one DecodeModule/DecodeComponent call.
type decodeTarget struct {
	c       *Config
	what    string // `module "ping" on host "example.org"`
	sources []optSource
	// fallback is the line used when no option position applies.
	fallback int
}

func (t *decodeTarget) line(p path) int {
	for _, s := range t.sources {
		if s.tree == nil {
			continue
		}
		if l := t.c.pos.exact(s.prefix.with(p...)); l > 0 {
			return l
		}
	}
	// Walk up: the innermost table that has a position.
	for n := len(p) - 1; n >= 0; n-- {
		for _, s := range t.sources {
			if s.tree == nil {
				continue
			}
			if l := t.c.pos.exact(s.prefix.with(p[:n]...)); l > 0 {
				return l
			}
		}
	}
	return t.fallback
}

func (t *decodeTarget) errAt(p path, format string, args ...any) *Error {
	return &Error{File: t.c.File, Line: t.line(p), Msg: t.what + ": " + fmt.Sprintf(format, args...)}
}

// DecodeModule strictly decodes the options of module name on host into dst,
// a pointer to the module's options struct (fields tagged `json:"..."`;
// Duration and Size decode "5m" and "50MB"). The global [modules.<name>]
// table is overlaid key by key by [host."<host>".<name>]: tables merge
// recursively, any other value (arrays included) replaces. host "" decodes
// the global options only. Fields not present in the file keep the values
// dst already holds, so set defaults first.
//
// Unknown options and type mismatches are reported with the line of the
// option, naming module and host, e.g.
//
//	metronome.toml:31: module "ping" on host "example.org": unknown option "intervall"
func (c *Config) DecodeModule(host, name string, dst any) error {
	t := &decodeTarget{c: c, what: fmt.Sprintf("module %q", name)}
	if host != "" {
		h := c.host(host)
		if h == nil {
			return &Error{File: c.File, Msg: fmt.Sprintf("module %q: unknown host %q", name, host)}
		}
		t.what = fmt.Sprintf("module %q on host %q", name, h.Name)
		t.sources = append(t.sources, optSource{path{"host", h.raw, name}, h.opts[name]})
	}
	t.sources = append(t.sources, optSource{path{"modules", name}, c.modOpts[name]})
	t.fallback = c.moduleLine(host, name)
	var merged map[string]any
	for i := len(t.sources) - 1; i >= 0; i-- {
		merged = mergeTrees(merged, t.sources[i].tree)
	}
	return t.decode(merged, dst)
}

// DecodeComponent strictly decodes the options table of component name
// (the table named like its module) into dst, like DecodeModule.
func (c *Config) DecodeComponent(name string, dst any) error {
	cp := c.component(name)
	if cp == nil {
		return &Error{File: c.File, Msg: fmt.Sprintf("unknown component %q", name)}
	}
	t := &decodeTarget{
		c:        c,
		what:     fmt.Sprintf("component %q (module %q)", cp.Name, cp.Module),
		sources:  []optSource{{path{"component", cp.raw, cp.Module}, cp.opts}},
		fallback: c.pos.exact(path{"component", cp.raw}),
	}
	return t.decode(cp.opts, dst)
}

// ModuleError positions err, found while provisioning or validating module
// name on host, at the module's options in the file (the host overlay, else
// the global table, else where the module is enabled). It returns nil when
// err is nil.
func (c *Config) ModuleError(host, name string, err error) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf("module %q", name)
	if h := c.host(host); h != nil {
		what = fmt.Sprintf("module %q on host %q", name, h.Name)
	}
	return &Error{File: c.File, Line: c.moduleLine(host, name), Msg: what + ": " + err.Error(), err: err}
}

// moduleLine is the line best describing module name on host.
func (c *Config) moduleLine(host, name string) int {
	h := c.host(host)
	if h != nil {
		if l := c.pos.exact(path{"host", h.raw, name}); l > 0 {
			return l
		}
	}
	if l := c.pos.exact(path{"modules", name}); l > 0 {
		return l
	}
	if h != nil {
		for i, m := range h.Modules.Enable {
			if m == name {
				return c.pos.line(path{"host", h.raw, "modules", "enable", idx(i)})
			}
		}
	}
	for i, m := range c.Modules.Enabled {
		if m == name {
			if l := c.pos.exact(path{"modules", "enabled", idx(i)}); l > 0 {
				return l
			}
			return c.pos.line(path{"modules", "enabled"})
		}
	}
	if h != nil {
		return c.pos.exact(path{"host", h.raw})
	}
	return 0
}

// CheckModules reports every module name in the file that known rejects:
// option tables ([modules.<name>], [host."h".<name>]), [modules] enabled and
// host enable/disable lists. Component modules are not checked.
func (c *Config) CheckModules(known func(name string) bool) error {
	var errs []*Error
	report := func(p path, format string, args ...any) {
		errs = append(errs, &Error{File: c.File, Line: c.pos.line(p), Msg: fmt.Sprintf(format, args...)})
	}
	for i, m := range c.Modules.Enabled {
		if !known(m) {
			report(path{"modules", "enabled", idx(i)}, "[modules] enabled: unknown module %q", m)
		}
	}
	for _, m := range sortedKeys(c.modOpts) {
		if !known(m) {
			report(path{"modules", m}, "unknown module %q in %s", m, path{"modules", m}.section())
		}
	}
	for _, h := range c.Hosts {
		hp := path{"host", h.raw}
		for _, l := range []struct {
			key   string
			names []string
		}{{"enable", h.Modules.Enable}, {"disable", h.Modules.Disable}} {
			for i, m := range l.names {
				if !known(m) {
					report(hp.with("modules", l.key, idx(i)), "%s modules.%s: unknown module %q", hp.section(), l.key, m)
				}
			}
		}
		for _, m := range sortedKeys(h.opts) {
			if !known(m) {
				report(hp.with(m), "unknown module %q in %s", m, hp.with(m).section())
			}
		}
	}
	return joinErrors(errs)
}

// mergeTrees overlays over onto base without modifying either: tables merge
// recursively, other values replace.
func mergeTrees(base, over map[string]any) map[string]any {
	if base == nil && over == nil {
		return nil
	}
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		bm, ok1 := out[k].(map[string]any)
		om, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = mergeTrees(bm, om)
		} else {
			out[k] = v
		}
	}
	return out
}

// decode converts tree to JSON and decodes it strictly into dst. A
// reflective pre-pass over dst's type finds unknown options and type
// mismatches with their paths, so that each is reported at its own line.
func (t *decodeTarget) decode(tree map[string]any, dst any) error {
	rv := reflect.ValueOf(dst)
	if !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() {
		return &Error{File: t.c.File, Line: t.fallback, Msg: t.what + ": DecodeModule needs a non-nil pointer"}
	}
	if len(tree) == 0 {
		return nil
	}
	var errs []*Error
	j := toJSONTree(nil, tree, func(p path, msg string) { errs = append(errs, t.errAt(p, "option %q: %s", p.dotted(), msg)) })
	if len(errs) > 0 {
		return joinErrors(errs)
	}
	ck := &checker{t: t}
	ck.check(nil, j, rv.Type().Elem())
	if len(ck.errs) > 0 {
		return joinErrors(ck.errs)
	}
	b, err := json.Marshal(j)
	if err != nil {
		return &Error{File: t.c.File, Line: t.fallback, Msg: t.what + ": " + err.Error(), err: err}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		// The pre-pass should have caught this; position it as well as we can.
		var te *json.UnmarshalTypeError
		var p path
		if errors.As(err, &te) && te.Field != "" {
			p = strings.Split(te.Field, ".")
		} else if _, name, ok := strings.Cut(err.Error(), "unknown field "); ok {
			if u, err := strconv.Unquote(name); err == nil {
				p = findKey(nil, j, u)
			}
		}
		msg := strings.TrimPrefix(err.Error(), "json: ")
		return &Error{File: t.c.File, Line: t.line(p), Msg: t.what + ": " + msg, err: err}
	}
	return nil
}

// findKey returns the path of the first key named name in tree, in sorted
// order, or nil.
func findKey(p path, v any, name string) path {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x[name]; ok {
			return p.with(name)
		}
		for _, k := range sortedKeys(x) {
			if r := findKey(p.with(k), x[k], name); r != nil {
				return r
			}
		}
	case []any:
		for i, e := range x {
			if r := findKey(p.with(idx(i)), e, name); r != nil {
				return r
			}
		}
	}
	return nil
}

// toJSONTree converts decoded TOML values to values encoding/json can
// marshal: dates and times become strings; NaN and infinities are refused.
func toJSONTree(p path, v any, fail func(path, string)) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for _, k := range sortedKeys(x) {
			out[k] = toJSONTree(p.with(k), x[k], fail)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toJSONTree(p.with(idx(i)), e, fail)
		}
		return out
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			fail(p, "NaN and infinity are not supported")
			return nil
		}
		return x
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case string, int64, bool, nil:
		return x
	case fmt.Stringer: // toml.LocalDate, LocalTime, LocalDateTime
		return x.String()
	}
	return fmt.Sprint(v)
}

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checker walks a JSON-ready tree against a Go type the way encoding/json
// would decode it, collecting positioned errors.
type checker struct {
	t    *decodeTarget
	errs []*Error
}

func (ck *checker) fail(p path, format string, args ...any) {
	ck.errs = append(ck.errs, ck.t.errAt(p, format, args...))
}

func (ck *checker) check(p path, v any, t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return
	}
	pt := reflect.PointerTo(t)
	if t.Kind() == reflect.Interface || pt.Implements(jsonUnmarshalerType) || pt.Implements(textUnmarshalerType) {
		ck.trial(p, v, t)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			ck.mismatch(p, "table", v)
			return
		}
		fields, names := structFields(t)
		for _, k := range sortedKeys(m) {
			ft, ok := fields[k]
			if !ok {
				h := ""
				if s := closest(k, names); s != "" {
					h = fmt.Sprintf(" (did you mean %q?)", s)
				}
				ck.fail(p.with(k), "unknown option %q%s", p.with(k).dotted(), h)
				continue
			}
			ck.check(p.with(k), m[k], ft)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			ck.mismatch(p, "table", v)
			return
		}
		if t.Key().Kind() != reflect.String {
			ck.trial(p, v, t)
			return
		}
		for _, k := range sortedKeys(m) {
			ck.check(p.with(k), m[k], t.Elem())
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			ck.trial(p, v, t)
			return
		}
		a, ok := v.([]any)
		if !ok {
			ck.mismatch(p, "array", v)
			return
		}
		for i, e := range a {
			ck.check(p.with(idx(i)), e, t.Elem())
		}
	default:
		ck.trial(p, v, t)
	}
}

// trial decodes v alone into a fresh value of type t.
func (ck *checker) trial(p path, v any, t reflect.Type) {
	b, err := json.Marshal(v)
	if err != nil {
		ck.fail(p, "option %q: %v", p.dotted(), err)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err = dec.Decode(reflect.New(t).Interface())
	if err == nil {
		return
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		got, want := jsonTreeKind(v), goKind(te.Type)
		if got == "integer" && strings.HasSuffix(want, "integer") {
			ck.fail(p, "option %q: %v is out of range for %s", p.dotted(), v, te.Type)
			return
		}
		ck.fail(p, "option %q: expected %s, got %s", p.dotted(), want, got)
		return
	}
	ck.fail(p, "option %q: %s", p.dotted(), strings.TrimPrefix(err.Error(), "json: "))
}

func (ck *checker) mismatch(p path, want string, v any) {
	ck.fail(p, "option %q: expected %s, got %s", p.dotted(), want, jsonTreeKind(v))
}

func jsonTreeKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	}
	return fmt.Sprintf("%T", v)
}

// goKind names a Go type in TOML terms.
func goKind(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "table"
	}
	return t.String()
}

// structFields maps JSON names to field types the way encoding/json does
// (tags, untagged embedded structs promoted, shallower fields win), and
// returns the names in declaration order for suggestions.
func structFields(t reflect.Type) (map[string]reflect.Type, []string) {
	fields := map[string]reflect.Type{}
	var names []string
	level := []reflect.Type{t}
	visited := map[reflect.Type]bool{}
	for len(level) > 0 {
		var next []reflect.Type
		depthNames := map[string]reflect.Type{}
		var depthOrder []string
		for _, st := range level {
			if visited[st] {
				continue
			}
			visited[st] = true
			for i := 0; i < st.NumField(); i++ {
				f := st.Field(i)
				tag := f.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, _, _ := strings.Cut(tag, ",")
				if f.Anonymous && name == "" {
					ft := f.Type
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if ft.Kind() == reflect.Struct {
						next = append(next, ft)
						continue
					}
				}
				if !f.IsExported() {
					continue
				}
				if name == "" {
					name = f.Name
				}
				if _, ok := depthNames[name]; !ok {
					depthNames[name] = f.Type
					depthOrder = append(depthOrder, name)
				}
			}
		}
		for _, n := range depthOrder {
			if _, ok := fields[n]; !ok {
				fields[n] = depthNames[n]
				names = append(names, n)
			}
		}
		level = next
	}
	sort.Strings(names)
	return fields, names
}
