package testbin

import (
	"strings"
	"testing"
)

// The client scripts of the interop tests (slixmpp, Node, the browser
// driver) report on stdout with lines such as "OK login jid=… mech=…".

// Index returns the index of the first line starting with prefix, or -1.
func Index(lines []string, prefix string) int {
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	return -1
}

// Line returns the first line starting with prefix, failing the test if
// there is none.
func Line(t testing.TB, lines []string, prefix string) string {
	t.Helper()
	if i := Index(lines, prefix); i >= 0 {
		return lines[i]
	}
	t.Fatalf("no line starting with %q in:\n%s", prefix, strings.Join(lines, "\n"))
	return ""
}

// Field returns the value of key=value in a result line, or "".
func Field(l, key string) string {
	for _, f := range strings.Fields(l) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}
