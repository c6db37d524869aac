package jid

import (
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// sweepTemplates place a code point in each part and in a few contexts.
var sweepTemplates = []string{
	"%@example.com", "a%b@example.com", "%\u0301@example.com", "%A@example.com",
	"%", "a%b.com", "juliet@%.com", "xn--%.com", "a%", "%.",
	"juliet@example.com/%", "juliet@example.com/a%b", "x@y/%\u0301",
}

// TestReferenceSweep compares Parse with the naive reference and checks
// idempotence for code points in every part. By default it samples code
// points; JID_SWEEP=full tries all of them (slow: a few minutes).
func TestReferenceSweep(t *testing.T) {
	stride := rune(251)
	if os.Getenv("JID_SWEEP") == "full" {
		stride = 1
	} else if testing.Short() {
		stride = 997
	}
	check := func(s string) {
		j, err := Parse(s)
		if slow, serr := parse(s, false); slow != j || (serr == nil) != (err == nil) {
			t.Errorf("Parse(%q) = %q, %v; slow path = %q, %v", s, j, err, slow, serr)
		}
		ref, ok := refParse(s)
		if ok != (err == nil) || (ok && ref != j.String()) {
			t.Errorf("Parse(%q) = %q, %v; reference = %q, %v", s, j, err, ref, ok)
			return
		}
		if err == nil {
			if j2, err := Parse(j.String()); err != nil || j2 != j {
				t.Errorf("Parse(%q) = %q, reparse = %q, %v", s, j, j2, err)
			}
		}
	}
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if r >= 0x300 && r%stride != 0 {
			continue
		}
		if !utf8.ValidRune(r) {
			continue
		}
		for _, tmpl := range sweepTemplates {
			check(strings.ReplaceAll(tmpl, "%", string(r)))
		}
	}
}
