package config

import (
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// A path addresses a value in the decoded TOML tree: table keys, and array
// indexes encoded by idx.
type path []string

// idxMark prefixes array indexes in a path. Keys cannot collide with it in
// practice (it would take a key literally spelled "\u0000…").
const idxMark = "\x00"

func idx(i int) string { return idxMark + strconv.Itoa(i) }

func (p path) with(elems ...string) path {
	out := make(path, 0, len(p)+len(elems))
	return append(append(out, p...), elems...)
}

func (p path) key() string {
	var b strings.Builder
	for i, e := range p {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Quote(e))
	}
	return b.String()
}

// dotted renders p relative to nothing, TOML-style: a.b."c d"[2].e
func (p path) dotted() string {
	var b strings.Builder
	for _, e := range p {
		if strings.HasPrefix(e, idxMark) {
			b.WriteString("[" + e[len(idxMark):] + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(quoteKey(e))
	}
	return b.String()
}

// section renders p as a TOML table header: [a.b."c d"]
func (p path) section() string {
	if len(p) == 0 {
		return "top level"
	}
	return "[" + p.dotted() + "]"
}

// quoteKey quotes a TOML key unless it is a valid bare key.
func quoteKey(k string) string {
	if k == "" {
		return `""`
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return strconv.Quote(k)
		}
	}
	return k
}

// maxDepth bounds the nesting of tables and arrays in a configuration
// (keys and array indexes counted together). Real configurations need a
// handful of levels; the bound keeps pathological input cheap.
const maxDepth = 32

// tooDeep returns the path of the first value, in key order, nested deeper
// than maxDepth (truncated to maxDepth elements), or nil.
func tooDeep(p path, v any) path {
	if len(p) > maxDepth {
		return p[:maxDepth]
	}
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			if r := tooDeep(append(p, k), x[k]); r != nil {
				return r
			}
		}
	case []any:
		for i, e := range x {
			if r := tooDeep(append(p, idx(i)), e); r != nil {
				return r
			}
		}
	}
	return nil
}

// positions maps every key path of a document to the line where it is first
// written (for tables: their [header] when they have one).
type positions struct {
	lines map[string]int
}

// line returns the line of p, or of its closest ancestor with a known line,
// or 0.
func (ps *positions) line(p path) int {
	if ps == nil {
		return 0
	}
	for n := len(p); n > 0; n-- {
		if l, ok := ps.lines[p[:n].key()]; ok {
			return l
		}
	}
	return 0
}

// exact returns the line of p itself, or 0.
func (ps *positions) exact(p path) int {
	if ps == nil {
		return 0
	}
	return ps.lines[p.key()]
}

// indexPositions walks the expression AST of a document that go-toml has
// already decoded successfully, recording line numbers. It is best effort:
// if the parser disagrees with the decoder, missing lines simply read as 0.
func indexPositions(data []byte) (ps *positions) {
	ps = &positions{lines: map[string]int{}}
	defer func() {
		// Node accessors panic on malformed trees; positions only decorate
		// error messages, so never let them take the process down.
		if recover() != nil {
			ps = &positions{lines: map[string]int{}}
		}
	}()

	var lineStarts []int
	lineStarts = append(lineStarts, 0)
	for i, c := range data {
		if c == '\n' {
			lineStarts = append(lineStarts, i+1)
		}
	}
	lineOf := func(n *unstable.Node) int {
		off := int(n.Raw.Offset)
		return sort.Search(len(lineStarts), func(i int) bool { return lineStarts[i] > off })
	}

	arrays := map[string]int{} // array-of-tables path → element count
	set := func(p path, line int, override bool) {
		k := p.key()
		if _, ok := ps.lines[k]; !ok || override {
			ps.lines[k] = line
		}
	}

	// keyPath appends the (possibly dotted) key of n to base, recording each
	// part. For table headers, parts that name an array of tables step into
	// its last element.
	keyPath := func(base path, n *unstable.Node, header bool) (path, int) {
		p := base.with()
		line := 0
		it := n.Key()
		for it.Next() {
			k := it.Node()
			line = lineOf(k)
			p = append(p, string(k.Data))
			if len(p) > maxDepth {
				continue
			}
			set(p, line, false)
			if header && !it.IsLast() {
				if c, ok := arrays[p.key()]; ok && c > 0 {
					p = append(p, idx(c-1))
				}
			}
		}
		return p, line
	}

	var value func(p path, v *unstable.Node, line int)
	keyValue := func(base path, kv *unstable.Node) {
		p, line := keyPath(base, kv, false)
		value(p, kv.Value(), line)
	}
	value = func(p path, v *unstable.Node, line int) {
		if len(p) >= maxDepth {
			return
		}
		switch v.Kind {
		case unstable.InlineTable:
			it := v.Children()
			for it.Next() {
				if c := it.Node(); c.Kind == unstable.KeyValue {
					keyValue(p, c)
				}
			}
		case unstable.Array:
			it := v.Children()
			i := 0
			for it.Next() {
				c := it.Node()
				if c.Kind == unstable.Comment {
					continue
				}
				l := line
				if c.Raw.Length > 0 {
					l = lineOf(c)
				}
				ep := p.with(idx(i))
				set(ep, l, false)
				value(ep, c, l)
				i++
			}
		}
	}

	var p unstable.Parser
	p.Reset(data)
	var current path
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.KeyValue:
			if len(current) <= maxDepth {
				keyValue(current, e)
			}
		case unstable.Table:
			tp, line := keyPath(nil, e, true)
			if len(tp) <= maxDepth {
				set(tp, line, true)
			}
			current = tp
		case unstable.ArrayTable:
			tp, line := keyPath(nil, e, true)
			if len(tp) > maxDepth {
				current = tp
				continue
			}
			k := tp.key()
			n := arrays[k]
			arrays[k] = n + 1
			tp = append(tp, idx(n))
			set(tp, line, true)
			current = tp
		}
	}
	return ps
}
