package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestHTTPExampleIsDefault(t *testing.T) {
	c, err := Load("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	if d := Default(); !reflect.DeepEqual(c.HTTP, d.HTTP) {
		t.Errorf("[http] of the example differs from the defaults:\n%+v\n%+v", c.HTTP, d.HTTP)
	}
}

func TestHTTPSection(t *testing.T) {
	c := mustParse(t, `
[http]
listen = ["127.0.0.1:5280"]
listen_tls = ["[::]:5281"]
external_url = "https://xmpp.example.org/"
default_host = "Example.org"
trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
cors_origins = ["https://chat.example.org/", "*"]
read_header_timeout = "5s"
read_timeout = "0"
max_body_size = "2MB"
metrics_listen = "127.0.0.1:5290"
api_tokens = ["0123456789abcdef"]
api_tokens_file = "tokens.txt"
[host."example.org"]
`)
	h := c.HTTP
	if h.ExternalURL != "https://xmpp.example.org" || h.DefaultHost != "example.org" ||
		h.ReadHeaderTimeout != 5*time.Second || h.ReadTimeout != 0 || h.MaxBodySize != 2000000 ||
		h.CORSOrigins[0] != "https://chat.example.org" || h.APITokensFile != "tokens.txt" {
		t.Errorf("http = %+v", h)
	}
	if got := Prefixes(h.TrustedProxies); len(got) != 2 || got[0].Bits() != 32 || got[1].String() != "10.0.0.0/8" {
		t.Errorf("trusted proxies = %v", got)
	}
}

func TestHTTPErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"listen", "[http]\nlisten = ['nope']", `metronome.toml:2: [http] listen: invalid address "nope"`},
		{"external_url", "[http]\nexternal_url = 'ftp://x'", `metronome.toml:2: [http] external_url: "ftp://x" is not an absolute`},
		{"default_host", "[http]\ndefault_host = 'other.org'", `metronome.toml:2: [http] default_host: "other.org" is not a [host]`},
		{"proxy", "[http]\ntrusted_proxies = ['10.0.0.0/33']", `metronome.toml:2: [http] trusted_proxies: "10.0.0.0/33" is not an IP`},
		{"origin", "[http]\ncors_origins = ['chat.example.org']", `metronome.toml:2: [http] cors_origins: "chat.example.org" is not an origin`},
		{"slowloris", "[http]\nread_header_timeout = '0'", `metronome.toml:2: [http] read_header_timeout: 0 is too short`},
		{"path", "[http]\nmetrics_path = '/api/metrics'", `metronome.toml:2: [http] metrics_path: "/api/metrics" must be a path`},
		{"token", "[http]\napi_tokens = ['short']", `metronome.toml:2: [http] api_tokens: tokens must be at least 16`},
		{"unknown", "[http]\nlisten_tl = []", `metronome.toml:2: unknown key "listen_tl" in [http] (did you mean "listen_tls"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(name, []byte(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want %q", err, tc.want)
			}
		})
	}
}
