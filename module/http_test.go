package module

import (
	"net/http/httptest"
	"testing"
)

func TestCheckOrigins(t *testing.T) {
	if err := CheckOrigins("allowed_origins", []string{"*", "https://chat.example.org", "http://localhost:8080"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"chat.example.org", "https://chat.example.org/app", "https://", "%zz"} {
		if err := CheckOrigins("allowed_origins", []string{"*", bad}); err == nil {
			t.Errorf("%q accepted", bad)
		} else if want := `allowed_origins[1]: `; err.Error()[:len(want)] != want {
			t.Errorf("%q: %v, want the key and index first", bad, err)
		}
	}
}

func TestOriginAllowed(t *testing.T) {
	origins := []string{"https://chat.example.org"}
	for _, c := range []struct {
		origin, host string
		list         []string
		want         bool
	}{
		{"", "example.org", origins, true}, // a native client
		{"https://chat.example.org", "example.org", origins, true},
		{"HTTPS://Chat.Example.org", "example.org", origins, true},
		{"https://evil.example", "example.org", origins, false},
		{"https://evil.example", "example.org", []string{"*"}, true},
		{"https://example.org:5281", "example.org:5281", nil, true}, // the endpoint's own host
		{"null", "example.org", origins, false},
	} {
		r := httptest.NewRequest("GET", "https://"+c.host+"/xmpp-websocket", nil)
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if got := OriginAllowed(r, c.list); got != c.want {
			t.Errorf("Origin %q to %s with %q: %v, want %v", c.origin, c.host, c.list, got, c.want)
		}
	}
}
