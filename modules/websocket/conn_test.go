package websocket

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestSplitElements(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		rest string
	}{
		{`<a/>`, []string{`<a/>`}, ""},
		{` <a x="1>2"><b/>t</a>` + "\n" + `<c y='/>'/>`, []string{`<a x="1>2"><b/>t</a>`, `<c y='/>'/>`}, ""},
		{`<stream:features xmlns:stream="s"><x/></stream:features><open xmlns="f"/>`,
			[]string{`<stream:features xmlns:stream="s"><x/></stream:features>`, `<open xmlns="f"/>`}, ""},
		{`<a/><b><c/>`, []string{`<a/>`}, `<b><c/>`},
		{`<a/><b x="`, []string{`<a/>`}, `<b x="`},
		{`<?xml version='1.0'?><a/>`, []string{`<a/>`}, ""},
	} {
		var got []string
		rest, err := splitElements([]byte(tc.in), func(b []byte) error { got = append(got, string(b)); return nil })
		if err != nil || !reflect.DeepEqual(got, tc.want) || string(rest) != tc.rest {
			t.Errorf("%q: got %q rest %q err %v; want %q rest %q", tc.in, got, rest, err, tc.want, tc.rest)
		}
	}
}

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
