package jid

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unsafe"
)

type parseCase struct {
	in   string
	want string // canonical form, if err is nil
	err  error
}

var (
	long1023 = strings.Repeat("a", 1023)
	long1024 = strings.Repeat("a", 1024)
	// 255 labels of "abc." minus the final dot: 1019 bytes; plus ".com" = 1023.
	longDomain1023 = strings.Repeat("abc.", 255) + "com"
)

var parseCases = []parseCase{
	// RFC 7622 §3.5.1, valid examples.
	{in: "juliet@example.com", want: "juliet@example.com"},
	{in: "juliet@example.com/foo", want: "juliet@example.com/foo"},
	{in: "juliet@example.com/foo bar", want: "juliet@example.com/foo bar"},
	{in: "juliet@example.com/foo@bar", want: "juliet@example.com/foo@bar"},
	{in: `foo\20bar@example.com`, want: `foo\20bar@example.com`},
	{in: "fussball@example.com", want: "fussball@example.com"},
	{in: "fußball@example.com", want: "fußball@example.com"},
	{in: "π@example.com", want: "π@example.com"},
	{in: "Σ@example.com/foo", want: "σ@example.com/foo"},
	{in: "σ@example.com/foo", want: "σ@example.com/foo"},
	{in: "ς@example.com/foo", want: "ς@example.com/foo"},
	{in: "king@example.com/♚", want: "king@example.com/♚"},
	{in: "example.com", want: "example.com"},
	{in: "example.com/foobar", want: "example.com/foobar"},
	{in: "a.example.com/b@example.net", want: "a.example.com/b@example.net"},

	// Case folding: local and domain, never the resource.
	{in: "Juliet@EXAMPLE.com/Balcony", want: "juliet@example.com/Balcony"},
	{in: "ROMEO@Example.Org", want: "romeo@example.org"},
	{in: "EXAMPLE.ORG", want: "example.org"},
	{in: "ĴULIET@ĒXAMPLE.com/BĂLCONY", want: "ĵuliet@ēxample.com/BĂLCONY"},
	{in: "BÜCHER.example", want: "bücher.example"},
	{in: "ℵ.com", want: "א.com"}, // U+2135 ALEF SYMBOL maps to U+05D0
	// Width mapping in local (PRECIS) and domain (UTS #46), not in resource.
	{in: "ｊｕｌｉｅｔ@ｅｘａｍｐｌｅ.com/ｒ", want: "juliet@example.com/ｒ"},
	// NFC.
	{in: "e\u0301@e\u0301xample.com/e\u0301", want: "é@éxample.com/é"},
	// OpaqueString maps non-ASCII spaces to U+0020.
	{in: "juliet@example.com/foo\u00a0bar\u3000baz", want: "juliet@example.com/foo bar baz"},
	// Trailing dot removal.
	{in: "example.com.", want: "example.com"},
	{in: "juliet@example.com.", want: "juliet@example.com"},
	{in: "juliet@Example.com./r", want: "juliet@example.com/r"},
	{in: "example.com./r.", want: "example.com/r."},
	{in: "example.com\u3002", want: "example.com"},
	// A-labels become U-labels.
	{in: "xn--bcher-kva.example", want: "bücher.example"},
	{in: "juliet@XN--BCHER-KVA.example/r", want: "juliet@bücher.example/r"},
	// IP addresses.
	{in: "192.0.2.1", want: "192.0.2.1"},
	{in: "juliet@192.0.2.1/r", want: "juliet@192.0.2.1/r"},
	{in: "[::1]", want: "[::1]"},
	{in: "juliet@[2001:DB8:0:0:0:0:0:1]/r", want: "juliet@[2001:db8::1]/r"},
	{in: "[::FFFF:192.0.2.1]", want: "[::ffff:192.0.2.1]"},
	{in: "[2001:db8::1].", want: "[2001:db8::1]"},
	// Splitting: first '/', then first '@' before it.
	{in: "a/b@c", want: "a/b@c"},
	{in: "a@b/c/d", want: "a@b/c/d"},
	{in: "a@b/@", want: "a@b/@"},
	{in: "localhost", want: "localhost"},
	{in: "a-b.c-d", want: "a-b.c-d"},
	{in: "x@y/ ", want: "x@y/ "},
	// Allowed punctuation in localparts.
	{in: "a!#$%()*+,-.;=?[]^_`{|}~@x", want: "a!#$%()*+,-.;=?[]^_`{|}~@x"},
	// Limits (1023 bytes per canonical part).
	{in: long1023 + "@example.com/" + long1023, want: long1023 + "@example.com/" + long1023},
	{in: longDomain1023, want: longDomain1023},
	{in: longDomain1023 + ".", want: longDomain1023},
	{in: strings.ToUpper(long1023) + "@x", want: long1023 + "@x"},

	// RFC 7622 §3.5.2, invalid examples.
	{in: `"juliet"@example.com`, err: ErrInvalidLocal},
	{in: "foo bar@example.com", err: ErrInvalidLocal},
	{in: "juliet@example.com/", err: ErrEmptyResource},
	{in: "@example.com/", err: ErrEmptyLocal},
	{in: "henryⅣ@example.com", err: ErrInvalidLocal},
	{in: "♚@example.com", err: ErrInvalidLocal},
	{in: "juliet@", err: ErrEmptyDomain},
	{in: "/foobar", err: ErrEmptyDomain},

	// Empty parts.
	{in: "", err: ErrEmpty},
	{in: "@example.org", err: ErrEmptyLocal},
	{in: "example.org/", err: ErrEmptyResource},
	{in: "@", err: ErrEmptyLocal},
	{in: "/", err: ErrEmptyDomain},
	{in: "@/", err: ErrEmptyLocal},
	{in: "juliet@/r", err: ErrEmptyDomain},
	{in: ".", err: ErrEmptyDomain},
	{in: "juliet@./r", err: ErrEmptyDomain},

	// Localpart.
	{in: "a&b@x", err: ErrInvalidLocal},
	{in: "a'b@x", err: ErrInvalidLocal},
	{in: "a:b@x", err: ErrInvalidLocal},
	{in: "a<b@x", err: ErrInvalidLocal},
	{in: "a>b@x", err: ErrInvalidLocal},
	{in: "a\tb@x", err: ErrInvalidLocal},
	{in: "a\x7fb@x", err: ErrInvalidLocal},
	{in: "a＠b@example.com", err: ErrInvalidLocal},     // fullwidth '@' maps to '@'
	{in: "a／b@example.com", err: ErrInvalidLocal},     // fullwidth '/' maps to '/'
	{in: "\u0661a@example.com", err: ErrInvalidLocal}, // Bidi rule
	{in: "\xff@example.com", err: ErrInvalidLocal},
	{in: "a\u00a0b@example.com", err: ErrInvalidLocal},
	{in: long1024 + "@x", err: ErrLocalTooLong},
	{in: strings.Repeat("é", 512) + "@x", err: ErrLocalTooLong},

	// Domainpart.
	{in: "a@b@c", err: ErrInvalidDomain},
	{in: "example..com", err: ErrInvalidDomain},
	{in: ".example.com", err: ErrInvalidDomain},
	{in: "example.com..", err: ErrInvalidDomain},
	{in: "example.com.\u3002", err: ErrInvalidDomain},
	{in: "example.com\u3002.", err: ErrInvalidDomain},
	{in: "exa_mple.com", err: ErrInvalidDomain},
	{in: "exa mple.com", err: ErrInvalidDomain},
	{in: "-example.com", err: ErrInvalidDomain},
	{in: "example-.com", err: ErrInvalidDomain},
	{in: "ex--ample.com", err: ErrInvalidDomain},
	{in: "xn--a.com", err: ErrInvalidDomain},
	{in: "xn--.com", err: ErrInvalidDomain},
	{in: "xn--abc-.com", err: ErrInvalidDomain},
	{in: "juliet@exam＠ple.com", err: ErrInvalidDomain},
	{in: "juliet@\xff", err: ErrInvalidDomain},
	{in: "a\u200db.com", err: ErrInvalidDomain}, // CONTEXTJ
	{in: "⒈.com", err: ErrInvalidDomain},
	{in: "aℵ.com", err: ErrInvalidDomain}, // maps to "aא", which fails the Bidi rule
	{in: "x@aℶ/r", err: ErrInvalidDomain},
	{in: "א.com", want: "א.com"},          // RTL label on its own is fine
	{in: "\u00ad", err: ErrInvalidDomain}, // maps to nothing
	{in: "[::1", err: ErrInvalidDomain},
	{in: "[]", err: ErrInvalidDomain},
	{in: "[", err: ErrInvalidDomain},
	{in: "[192.0.2.1]", err: ErrInvalidDomain},
	{in: "[fe80::1%eth0]", err: ErrInvalidDomain},
	{in: "[v1.abc]", err: ErrInvalidDomain},
	{in: "[::1]x", err: ErrInvalidDomain},
	{in: "::1", err: ErrInvalidDomain},
	{in: "x]", err: ErrInvalidDomain},
	{in: long1023 + "a.com", err: ErrDomainTooLong},
	{in: strings.Repeat("é", 512), err: ErrDomainTooLong},

	// Resourcepart.
	{in: "juliet@example.com/\x00", err: ErrInvalidResource},
	{in: "juliet@example.com/a\tb", err: ErrInvalidResource},
	{in: "juliet@example.com/a\x7f", err: ErrInvalidResource},
	{in: "juliet@example.com/\u200d", err: ErrInvalidResource},
	{in: "juliet@example.com/\xff", err: ErrInvalidResource},
	{in: "juliet@example.com/" + long1024, err: ErrResourceTooLong},
	{in: "juliet@example.com/" + strings.Repeat("é", 512), err: ErrResourceTooLong},
}

var sentinels = []error{ErrEmpty, ErrEmptyLocal, ErrEmptyDomain, ErrEmptyResource,
	ErrLocalTooLong, ErrDomainTooLong, ErrResourceTooLong,
	ErrInvalidLocal, ErrInvalidDomain, ErrInvalidResource}

func short(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		for _, fast := range []bool{true, false} {
			j, err := parse(tc.in, fast)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Errorf("parse(%q, fast=%v) = %q, %v; want error %v", short(tc.in), fast, short(j.String()), err, tc.err)
				}
				for _, s := range sentinels {
					if s != tc.err && errors.Is(err, s) {
						t.Errorf("parse(%q): error %v also matches %v", short(tc.in), err, s)
					}
				}
				if !j.IsZero() {
					t.Errorf("parse(%q) returned non-zero JID %q with error", short(tc.in), short(j.String()))
				}
				continue
			}
			if err != nil {
				t.Errorf("parse(%q, fast=%v): unexpected error %v", short(tc.in), fast, err)
				continue
			}
			if j.String() != tc.want {
				t.Errorf("parse(%q, fast=%v) = %q, want %q", short(tc.in), fast, short(j.String()), short(tc.want))
			}
			checkInvariants(t, j)
		}
	}
}

// checkInvariants verifies the internal offsets and re-parsing of j.
func checkInvariants(t *testing.T, j JID) {
	t.Helper()
	s := j.String()
	want := j.Domain()
	if j.Local() != "" {
		want = j.Local() + "@" + want
	}
	if j.Resource() != "" {
		want += "/" + j.Resource()
	}
	if want != s {
		t.Errorf("parts of %q reassemble to %q", s, want)
	}
	j2, err := Parse(s)
	if err != nil || j2 != j {
		t.Errorf("Parse(%q) = %#v, %v; want %#v", s, j2, err, j)
	}
	j3, err := New(j.Local(), j.Domain(), j.Resource())
	if err != nil || j3 != j {
		t.Errorf("New(%q, %q, %q) = %#v, %v; want %#v", j.Local(), j.Domain(), j.Resource(), j3, err, j)
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"juliet"@example.com`, `jid: invalid localpart in "\"juliet\"@example.com": character U+0022 '"' at byte 0 is not allowed in a localpart`},
		{"a@b@c", `jid: invalid domainpart in "a@b@c": character U+0040 '@' at byte 3 is not allowed in a domainpart`},
		{"henryⅣ@example.com", `jid: invalid localpart in "henryⅣ@example.com": character U+2163 'Ⅳ' at byte 5 is not allowed here by PRECIS UsernameCaseMapped`},
		{"x@y/\u200d", `character U+200D '\u200d' at byte 4 is not allowed here by PRECIS OpaqueString`},
		{"١a@x", `"١a" does not satisfy the Bidi Rule (RFC 5893)`},
		{"a@xn--a.com", `domainpart "xn--a.com" is not a valid IDNA domain name (idna: `},
		{"a..b", `domainpart "a..b" has an empty label`},
		{"x@y/ab\x01", `jid: invalid resourcepart in "x@y/ab\x01": character U+0001 '\x01' at byte 6 is not allowed in a resourcepart`},
		{"x@y/a\xffb", `invalid UTF-8 at byte 5`},
		{"@example.org", `jid: empty localpart in "@example.org": nothing before '@'`},
		{"example.org/", `jid: empty resourcepart in "example.org/": nothing after '/'`},
		{"juliet@", `jid: empty domainpart in "juliet@": nothing at byte 7`},
		{"[fe80::1%eth0]", `IP literal at byte 0 has a zone identifier`},
		{long1024 + "@x", `localpart is 1024 bytes, the maximum is 1023`},
		{long1024 + "@x", `aaaa"...: localpart`},
		{"", "jid: empty address"},
	}
	for _, tc := range tests {
		_, err := Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) error = %v; want it to contain %q", short(tc.in), err, tc.want)
		}
	}
}

func TestAccessors(t *testing.T) {
	tests := []struct {
		in                    string
		local, domain, res    string
		bare, full, dom, zero bool
	}{
		{"romeo@example.org/orchard", "romeo", "example.org", "orchard", false, true, false, false},
		{"romeo@example.org", "romeo", "example.org", "", true, false, false, false},
		{"example.org", "", "example.org", "", true, false, true, false},
		{"example.org/res/x@y", "", "example.org", "res/x@y", false, true, false, false},
		{"", "", "", "", false, false, false, true},
	}
	for _, tc := range tests {
		var j JID
		if tc.in != "" {
			j = MustParse(tc.in)
		}
		if j.Local() != tc.local || j.Domain() != tc.domain || j.Resource() != tc.res {
			t.Errorf("%q: parts = %q %q %q; want %q %q %q", tc.in, j.Local(), j.Domain(), j.Resource(), tc.local, tc.domain, tc.res)
		}
		if j.IsBare() != tc.bare || j.IsFull() != tc.full || j.IsDomain() != tc.dom || j.IsZero() != tc.zero {
			t.Errorf("%q: bare/full/domain/zero = %v %v %v %v; want %v %v %v %v", tc.in,
				j.IsBare(), j.IsFull(), j.IsDomain(), j.IsZero(), tc.bare, tc.full, tc.dom, tc.zero)
		}
		if j.String() != tc.in {
			t.Errorf("String() = %q, want %q", j, tc.in)
		}
	}
}

func TestDerived(t *testing.T) {
	j := MustParse("Romeo@Example.org/Orchard")
	if got := j.Bare(); got != MustParse("romeo@example.org") || !got.IsBare() {
		t.Errorf("Bare() = %#v", got)
	}
	if got := j.DomainJID(); got != MustParse("example.org") || !got.IsDomain() {
		t.Errorf("DomainJID() = %#v", got)
	}
	if got := MustParse("example.org/x").Bare(); got != MustParse("example.org") {
		t.Errorf("Bare() of domain/resource = %#v", got)
	}
	if got := (JID{}).Bare(); !got.IsZero() {
		t.Errorf("zero.Bare() = %#v", got)
	}
	if got := (JID{}).DomainJID(); !got.IsZero() {
		t.Errorf("zero.DomainJID() = %#v", got)
	}

	w, err := j.WithResource("Balcony\u00a0x")
	if err != nil || w != MustParse("romeo@example.org/Balcony x") {
		t.Errorf("WithResource = %#v, %v", w, err)
	}
	w, err = j.Bare().WithResource("r")
	if err != nil || w != MustParse("romeo@example.org/r") {
		t.Errorf("Bare().WithResource = %#v, %v", w, err)
	}
	w, err = j.DomainJID().WithResource("a/b")
	if err != nil || w != MustParse("example.org/a/b") || w.Local() != "" || w.Resource() != "a/b" {
		t.Errorf("DomainJID().WithResource = %#v, %v", w, err)
	}
	if w, err := j.WithResource(""); err != nil || w != j.Bare() {
		t.Errorf("WithResource(\"\") = %#v, %v", w, err)
	}
	if _, err := j.WithResource("\x00"); !errors.Is(err, ErrInvalidResource) {
		t.Errorf("WithResource(NUL) error = %v", err)
	}
	if _, err := j.WithResource(long1024); !errors.Is(err, ErrResourceTooLong) {
		t.Errorf("WithResource(long) error = %v", err)
	}
	if _, err := (JID{}).WithResource("r"); !errors.Is(err, ErrEmptyDomain) {
		t.Errorf("zero.WithResource error = %v", err)
	}

	a, b := MustParse("JULIET@example.com/x"), MustParse("juliet@EXAMPLE.com./x")
	if a != b || !a.Equal(b) || a.Compare(b) != 0 {
		t.Errorf("%#v and %#v should be equal", a, b)
	}
	if a.Equal(a.Bare()) || a.Compare(a.Bare()) <= 0 {
		t.Error("full JID equal to or sorting before its bare JID")
	}
	m := map[JID]int{a: 1}
	if m[b] != 1 {
		t.Error("map lookup with equal JID failed")
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		local, domain, res, want string
		err                      error
	}{
		{"Romeo", "Example.org.", "Orchard", "romeo@example.org/Orchard", nil},
		{"", "example.org", "", "example.org", nil},
		{"", "EXAMPLE.org", "", "example.org", nil},
		{"", "example.org", "a/b@c", "example.org/a/b@c", nil},
		{"ĵuliet", "xn--bcher-kva.example", "", "ĵuliet@bücher.example", nil},
		{"", "[::0001]", "", "[::1]", nil},
		{"a", "", "r", "", ErrEmptyDomain},
		{"a@b", "example.org", "", "", ErrInvalidLocal},
		{"a/b", "example.org", "", "", ErrInvalidLocal},
		{"a", "example.org/x", "", "", ErrInvalidDomain},
		{"a", "b@example.org", "", "", ErrInvalidDomain},
		{"a", ".", "", "", ErrEmptyDomain},
		{"a", "example.org", "\x00", "", ErrInvalidResource},
		{long1024, "example.org", "", "", ErrLocalTooLong},
	}
	for _, tc := range tests {
		j, err := New(tc.local, tc.domain, tc.res)
		if tc.err != nil {
			if !errors.Is(err, tc.err) || !j.IsZero() {
				t.Errorf("New(%q, %q, %q) = %#v, %v; want %v", short(tc.local), tc.domain, tc.res, j, err, tc.err)
			}
			continue
		}
		if err != nil || j.String() != tc.want {
			t.Errorf("New(%q, %q, %q) = %q, %v; want %q", tc.local, tc.domain, tc.res, j, err, tc.want)
			continue
		}
		if p := MustParse(tc.want); p != j {
			t.Errorf("New(...) = %#v, Parse(%q) = %#v", j, tc.want, p)
		}
	}
	_, err := New("a b", "example.org", "")
	if err == nil || !strings.Contains(err.Error(), `in localpart "a b": character U+0020 ' ' at byte 1`) {
		t.Errorf("New error message = %v", err)
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		r := recover()
		err, ok := r.(error)
		if !ok || !errors.Is(err, ErrEmptyLocal) {
			t.Errorf("recovered %v", r)
		}
	}()
	MustParse("@example.org")
	t.Error("MustParse did not panic")
}

func TestText(t *testing.T) {
	j := MustParse("juliet@example.com/balcony")
	b, err := j.MarshalText()
	if err != nil || string(b) != "juliet@example.com/balcony" {
		t.Errorf("MarshalText = %q, %v", b, err)
	}
	b, _ = j.AppendText([]byte("to="))
	if string(b) != "to=juliet@example.com/balcony" {
		t.Errorf("AppendText = %q", b)
	}
	var k JID
	if err := k.UnmarshalText([]byte("Juliet@Example.com/balcony")); err != nil || k != j {
		t.Errorf("UnmarshalText = %#v, %v", k, err)
	}
	if err := k.UnmarshalText(nil); err != nil || !k.IsZero() {
		t.Errorf("UnmarshalText(empty) = %#v, %v", k, err)
	}
	k = j
	if err := k.UnmarshalText([]byte("@x")); !errors.Is(err, ErrEmptyLocal) || k != j {
		t.Errorf("UnmarshalText(bad) = %#v, %v; want unchanged and ErrEmptyLocal", k, err)
	}

	type msg struct {
		To   JID `json:"to"`
		From JID `json:"from"`
	}
	out, err := json.Marshal(msg{To: j})
	if err != nil || string(out) != `{"to":"juliet@example.com/balcony","from":""}` {
		t.Fatalf("json.Marshal = %s, %v", out, err)
	}
	var m msg
	if err := json.Unmarshal(out, &m); err != nil || m.To != j || !m.From.IsZero() {
		t.Errorf("json.Unmarshal = %#v, %v", m, err)
	}
	if err := json.Unmarshal([]byte(`{"to":"a@b@c"}`), &m); !errors.Is(err, ErrInvalidDomain) {
		t.Errorf("json.Unmarshal(bad) error = %v", err)
	}
}

func TestZeroValue(t *testing.T) {
	var j JID
	if j.String() != "" || j.Local() != "" || j.Domain() != "" || j.Resource() != "" {
		t.Error("zero JID has non-empty parts")
	}
	if !j.IsZero() || j.IsBare() || j.IsFull() || j.IsDomain() {
		t.Error("zero JID predicates wrong")
	}
	if j != (JID{}) || !j.Equal(JID{}) {
		t.Error("zero JID not equal to itself")
	}
	b, err := j.MarshalText()
	if err != nil || len(b) != 0 {
		t.Errorf("zero MarshalText = %q, %v", b, err)
	}
}

func TestNoAllocs(t *testing.T) {
	const in = "romeo@example.org/orchard"
	var j JID
	if n := testing.AllocsPerRun(100, func() { j, _ = Parse(in) }); n != 0 {
		t.Errorf("Parse(canonical ASCII) allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { j, _ = Parse("[2001:db8::1]") }); n != 0 {
		t.Errorf("Parse(canonical IPv6 literal) allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { j, _ = Parse("Romeo@Example.org/orchard") }); n != 1 {
		t.Errorf("Parse(upper-case ASCII) allocates %v times, want 1", n)
	}
	j = MustParse(in)
	var s string
	if n := testing.AllocsPerRun(100, func() {
		s = j.String() + j.Bare().String() + j.DomainJID().String()
		_ = j.Local() + j.Domain() + j.Resource()
	}); n > 2 { // the concatenations themselves
		t.Errorf("accessors allocate %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { s = j.Bare().DomainJID().String() }); n != 0 {
		t.Errorf("String/Bare/DomainJID allocate %v times", n)
	}
	_ = s
}

func TestConcurrent(t *testing.T) {
	inputs := []string{"ĵuliet@ēxample.com/bălcony", "Σ@xn--bcher-kva.example/♚", "romeo@EXAMPLE.org/x", "henryⅣ@example.com"}
	done := make(chan bool)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 200; i++ {
				for _, in := range inputs {
					Parse(in)
				}
			}
			done <- true
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
}

func TestSize(t *testing.T) {
	if n := unsafe.Sizeof(JID{}); n > 24 {
		t.Errorf("JID is %d bytes, want <= 24", n)
	}
}
