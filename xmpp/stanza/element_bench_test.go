package stanza

import "testing"

func benchMessage() *Element {
	m := New(NSClient, "message", "to", "romeo@montague.example", "from", "juliet@capulet.example/balcony", "type", "chat", "id", "msg-42")
	m.AddChild(New(NSClient, "body")).AddText(`Are you coming tonight? We're meeting at 8 & I'll bring the <wine>. Ça va? 😀`)
	m.AddChild(New("http://jabber.org/protocol/chatstates", "active"))
	m.AddChild(New("urn:xmpp:receipts", "request"))
	m.AddChild(New("urn:xmpp:sid:0", "origin-id", "id", "2f1d6a3c-5c3a-4b1e-9f0d-3b2a1c0d9e8f"))
	return m
}

// BenchmarkAppend serializes a message stanza into a reused buffer.
func BenchmarkAppend(b *testing.B) {
	m := benchMessage()
	buf := m.Append(nil, NSClient)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = m.Append(buf[:0], NSClient)
	}
}

func TestAppendAllocs(t *testing.T) {
	m := benchMessage()
	buf := m.Append(nil, NSClient)
	if n := testing.AllocsPerRun(100, func() { buf = m.Append(buf[:0], NSClient) }); n != 0 {
		t.Errorf("Append: %v allocations, want 0", n)
	}
}
