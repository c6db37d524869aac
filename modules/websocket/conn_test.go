package websocket

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"testing"
)

func TestSecure(t *testing.T) {
	for _, tc := range []struct {
		remote string
		tls    bool
		want   bool
	}{
		{"192.0.2.1:1234", false, false},
		{"192.0.2.1:1234", true, true},
		{"127.0.0.1:1234", false, true},
		{"[::1]:1234", false, true},
	} {
		r := httptest.NewRequest("GET", "/xmpp-websocket", nil)
		r.RemoteAddr = tc.remote
		r.TLS = nil
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		// Outside the HTTP server's handler there is no recorded peer:
		// use RemoteAddr as the peer.
		r = r.WithContext(context.Background())
		if got := secureFrom(r, tc.remote); got != tc.want {
			t.Errorf("%s tls=%v: secure %v, want %v", tc.remote, tc.tls, got, tc.want)
		}
	}
	r := httptest.NewRequest("GET", "/xmpp-websocket", nil)
	r.TLS, r.RemoteAddr = nil, "198.51.100.7:0" // resolved from a trusted proxy's headers
	if !secureFrom(r, "10.0.0.1:5555") {
		t.Error("request through a trusted proxy is not secure")
	}
}
