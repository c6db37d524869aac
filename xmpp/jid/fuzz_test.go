package jid

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
)

// refParse is an independent, deliberately naive reading of RFC 7622 built
// directly on x/text/secure/precis, x/net/idna and net/netip, without any of
// the package's fast paths or pre-checks. It returns the canonical string.
// stable applies f and requires its result to be a fixed point of f.
func stable(f func(string) (string, error), s string) (string, error) {
	out, err := f(s)
	if err != nil {
		return "", err
	}
	again, err := f(out)
	if err != nil {
		return "", err
	}
	if again != out {
		return "", errors.New("unstable")
	}
	return out, nil
}

func refParse(s string) (string, bool) {
	if s == "" || !utf8.ValidString(s) {
		return "", false
	}
	rest, res, hasRes := strings.Cut(s, "/")
	local, domain, hasLocal := "", rest, false
	if i := strings.Index(rest, "@"); i >= 0 {
		local, domain, hasLocal = rest[:i], rest[i+1:], true
	}
	var out strings.Builder
	if hasLocal {
		if local == "" {
			return "", false
		}
		l, err := stable(precis.UsernameCaseMapped.String, local)
		if err != nil || l == "" || len(l) > 1023 || strings.ContainsAny(l, `"&'/:<>@`) {
			return "", false
		}
		out.WriteString(l + "@")
	}

	stripped := strings.HasSuffix(domain, ".")
	domain = strings.TrimSuffix(domain, ".")
	var d string
	switch {
	case domain == "":
		return "", false
	case domain[0] == '[':
		if !strings.HasSuffix(domain, "]") {
			return "", false
		}
		a, err := netip.ParseAddr(domain[1 : len(domain)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		d = "[" + a.String() + "]"
	default:
		var err error
		d, err = stable(idna.Lookup.ToUnicode, domain)
		if err != nil {
			return "", false
		}
		if !stripped {
			d = strings.TrimSuffix(d, ".")
		}
		for _, label := range strings.Split(d, ".") {
			if label == "" {
				return "", false
			}
		}
		if strings.ContainsAny(d, "@/[]") {
			return "", false
		}
	}
	if len(d) > 1023 {
		return "", false
	}
	out.WriteString(d)

	if hasRes {
		r, err := stable(precis.OpaqueString.String, res)
		if err != nil || r == "" || len(r) > 1023 {
			return "", false
		}
		out.WriteString("/" + r)
	}
	return out.String(), true
}

func sentinelOf(err error) error {
	var found error
	for _, s := range sentinels {
		if errors.Is(err, s) {
			if found != nil {
				return errors.New("several sentinels")
			}
			found = s
		}
	}
	return found
}

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	for _, s := range []string{
		"romeo@example.org/orchard", "ĵuliet@ēxample.com/bălcony", "İ@example.com",
		"xn--ls8h.la", "a@xn--ls8h.la/💩", "ǅ@example.com", "ﬃ@example.com", "a@B.c./D",
		"a@[::]/x", "@@", "//", "a@b/c@d/e", "\u0130\u0307@x", "x@y/\u2028", "ΐ@x",
		"\u05d0\u05d1@\u05d0.com/\u05d2", "\u0627\u0661@\u0645\u062b\u0627\u0644.\u0625\u062e\u062a\u0628\u0627\u0631",
		"a\u200cb@x", "\u0915\u094d\u200d\u0937@x", "l\u00b7l@x", "\u30fb\u30a2@x", "\u0375\u03b1@x",
		"\u05d3\u05f4\u05d0@x", "\u1100\u1161@x", "\u00c5@\u212b.com", "\u01c4@x", "\u1e9e@\u1e9e.de",
		"\uff21\uff22@\uff23\uff24\uff0e\uff45/\uff46", "a@b\u3002c\uff0ed\uff61", "x@y/\u0020\u3000",
		"xn--4ca.xn--0ca", "x@XN--NXASMQ6B.com", "a@xn--ab-.com", "a@1.2.3.04", "a@[::ffff:0:0]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := Parse(s)

		// The fast paths must agree with the PRECIS/IDNA-only path.
		slow, serr := parse(s, false)
		if (err == nil) != (serr == nil) || j != slow {
			t.Fatalf("Parse(%q) = %q, %v; slow path = %q, %v", s, j, err, slow, serr)
		}
		if err != nil && sentinelOf(err) != sentinelOf(serr) {
			t.Fatalf("Parse(%q): fast error %v, slow error %v", s, err, serr)
		}

		// And both must agree with the naive reference.
		ref, ok := refParse(s)
		if ok != (err == nil) || (ok && ref != j.String()) {
			t.Fatalf("Parse(%q) = %q, %v; reference = %q, %v", s, j, err, ref, ok)
		}

		if err != nil {
			if !j.IsZero() {
				t.Fatalf("Parse(%q) returned %q with error %v", s, j, err)
			}
			if k := sentinelOf(err); k == nil || k.Error() == "several sentinels" {
				t.Fatalf("Parse(%q) error %v does not wrap exactly one sentinel", s, err)
			}
			return
		}

		// Idempotence and consistency of the parts.
		if j.IsZero() || j.Domain() == "" {
			t.Fatalf("Parse(%q) = zero/empty-domain JID without error", s)
		}
		for _, p := range []string{j.Local(), j.Domain(), j.Resource()} {
			if len(p) > maxPartLen {
				t.Fatalf("Parse(%q): part of %d bytes", s, len(p))
			}
		}
		j2, err := Parse(j.String())
		if err != nil || j2 != j {
			t.Fatalf("Parse(%q) = %q, but Parse(%q) = %q, %v", s, j, j, j2, err)
		}
		j3, err := New(j.Local(), j.Domain(), j.Resource())
		if err != nil || j3 != j {
			t.Fatalf("Parse(%q) = %#v, but New of its parts = %#v, %v", s, j, j3, err)
		}
		if b := j.Bare(); b.Resource() != "" || b.Local() != j.Local() || b.Domain() != j.Domain() || MustParse(b.String()) != b {
			t.Fatalf("Bare(%q) = %#v", j, b)
		}
		if d := j.DomainJID(); !d.IsDomain() || MustParse(d.String()) != d {
			t.Fatalf("DomainJID(%q) = %#v", j, d)
		}
	})
}
