package c2s

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// chunkConn returns its data a few bytes at a time, as a socket may.
type chunkConn struct {
	net.Conn
	data  []byte
	chunk int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.data[:min(c.chunk, len(c.data))])
	c.data = c.data[n:]
	return n, nil
}

// FuzzRecordConn checks recordConn's framing of peer bytes: whatever the
// bytes and however they arrive, it returns all of them, in order, and no
// read returns bytes past the end of a TLS record.
func FuzzRecordConn(f *testing.F) {
	f.Add([]byte("\x16\x03\x01\x00\x05hello\x17\x03\x03\x00\x02hi"), uint8(3), uint8(7))
	f.Add([]byte("\x17\x03\x03\x00\x00\x17\x03\x03\x00\x01x"), uint8(64), uint8(64))
	f.Add([]byte("\x17\x03"), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk, bufLen uint8) {
		// The record ends, computed independently.
		ends := map[int]bool{}
		for i := 0; i+5 <= len(data); {
			i += 5 + (int(data[i+3])<<8 | int(data[i+4]))
			ends[i] = true
		}
		r := &recordConn{Conn: &chunkConn{data: bytes.Clone(data), chunk: int(chunk) + 1}}
		buf := make([]byte, int(bufLen)+1)
		var got []byte
		for {
			n, err := r.Read(buf)
			for i := 1; i < n; i++ { // a record end strictly inside this read
				if ends[len(got)+i] {
					t.Fatalf("a read of %d bytes at %d crosses the record end at %d", n, len(got), len(got)+i)
				}
			}
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("read %x, want %x", got, data)
		}
	})
}
