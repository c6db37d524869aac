package xmpptest

import (
	"fmt"
	"strings"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
)

// Any is the attribute value (or text) in a pattern that matches anything.
const Any = "{any}"

// Match reports how got differs from the pattern want: same name and
// namespace, every attribute of want present in got with the same value
// (or Any), want's text (trimmed) equal to got's when want has text, and
// every child of want matching a distinct child of got, in order. Extra
// attributes and children in got are allowed. vars substitutes ${name} in
// want's attribute values and text.
func Match(want, got *stanza.Element, vars map[string]string) error {
	return match(want, got, vars, want.Name)
}

func subst(s string, vars map[string]string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	for k, v := range vars {
		s = strings.ReplaceAll(s, "${"+k+"}", v)
	}
	return s
}

func match(want, got *stanza.Element, vars map[string]string, path string) error {
	if got == nil {
		return fmt.Errorf("%s: missing", path)
	}
	if want.Name != got.Name || want.Space != got.Space {
		return fmt.Errorf("%s: got <%s xmlns=%q>, want <%s xmlns=%q>", path, got.Name, got.Space, want.Name, want.Space)
	}
	for _, a := range want.Attrs {
		if a.Space != "" {
			continue
		}
		wv := subst(a.Value, vars)
		if !got.HasAttr(a.Name) {
			return fmt.Errorf("%s: attribute %s missing (want %q)", path, a.Name, wv)
		}
		if wv != Any && got.Attr(a.Name) != wv {
			return fmt.Errorf("%s: attribute %s=%q, want %q", path, a.Name, got.Attr(a.Name), wv)
		}
	}
	if wt := strings.TrimSpace(subst(want.Text(), vars)); wt != "" && wt != Any {
		if gt := strings.TrimSpace(got.Text()); gt != wt {
			return fmt.Errorf("%s: text %q, want %q", path, gt, wt)
		}
	}
	var gotKids []*stanza.Element
	for c := range got.Elements {
		gotKids = append(gotKids, c)
	}
	i := 0
	for w := range want.Elements {
		var lastErr error
		found := false
		for i < len(gotKids) {
			g := gotKids[i]
			i++
			if err := match(w, g, vars, path+"/"+w.Name); err == nil {
				found = true
				break
			} else if g.Name == w.Name && g.Space == w.Space {
				lastErr = err
			}
		}
		if !found {
			if lastErr != nil {
				return lastErr
			}
			return fmt.Errorf("%s: no child <%s xmlns=%q>", path, w.Name, w.Space)
		}
	}
	return nil
}
