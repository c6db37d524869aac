package jid

import "testing"

var sinkJID JID

func benchParse(b *testing.B, s string) {
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		j, err := Parse(s)
		if err != nil {
			b.Fatal(err)
		}
		sinkJID = j
	}
}

// Canonical ASCII full JID: the common case on the stanza hot path.
func BenchmarkParseASCII(b *testing.B) { benchParse(b, "romeo@example.org/orchard") }

// ASCII that needs lower-casing (one allocation for the result).
func BenchmarkParseASCIIUpper(b *testing.B) { benchParse(b, "Romeo@Example.ORG/orchard") }

// Canonical non-ASCII full JID: every part goes through PRECIS / IDNA.
func BenchmarkParseUnicode(b *testing.B) { benchParse(b, "ĵuliet@ēxample.com/bălcony") }

// Non-canonical non-ASCII: case mapping, width mapping, A-label decoding.
func BenchmarkParseUnicodeMapped(b *testing.B) {
	benchParse(b, "ĴULIET@XN--BCHER-KVA.example/ｂalcony")
}

// Unicode only in the resourcepart (e.g. a client's display-ish resource).
func BenchmarkParseUnicodeResource(b *testing.B) {
	benchParse(b, "romeo@example.org/Pixel 8 — Conversations")
}

func BenchmarkParseIPv6(b *testing.B) { benchParse(b, "romeo@[2001:db8::1]/orchard") }

func BenchmarkParseInvalid(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("foo bar@example.org"); err == nil {
			b.Fatal("no error")
		}
	}
}

func BenchmarkBareString(b *testing.B) {
	j := MustParse("romeo@example.org/orchard")
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n += len(j.Bare().String())
	}
	_ = n
}

// The same input as BenchmarkParseASCII without the ASCII fast paths, i.e.
// through PRECIS and IDNA: what the fast paths save.
func BenchmarkParseASCIINoFastPath(b *testing.B) {
	const s = "romeo@example.org/orchard"
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		j, err := parse(s, false)
		if err != nil {
			b.Fatal(err)
		}
		sinkJID = j
	}
}
