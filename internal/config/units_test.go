package config

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	day := 24 * time.Hour
	good := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"0s", 0},
		{"250ms", 250 * time.Millisecond},
		{"30s", 30 * time.Second},
		{"5m", 5 * time.Minute},
		{"2h", 2 * time.Hour},
		{"30d", 30 * day},
		{"2w", 14 * day},
		{"1h30m", 90 * time.Minute},
		{"1d12h", 36 * time.Hour},
		{"1.5h", 90 * time.Minute},
		{"0.5s", 500 * time.Millisecond},
		{"1.5ms", 1500 * time.Microsecond},
	}
	for _, tt := range good {
		got, err := ParseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "5", "s", "-5s", "5 s", "5sec", "5S", "1y", ".5s", "5.s", "1h 30m", "100000000w", "99999999999999999999999s", "5µs", "5ns"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want error", in, got)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, d := range []time.Duration{0, time.Millisecond, 1500 * time.Millisecond, 90 * time.Second, time.Hour, 36 * time.Hour, 30 * 24 * time.Hour, 14 * 24 * time.Hour, 1500 * time.Microsecond} {
		s := FormatDuration(d)
		back, err := ParseDuration(s)
		if err != nil || back != d {
			t.Errorf("FormatDuration(%v) = %q → %v, %v", d, s, back, err)
		}
	}
	if s := FormatDuration(30 * 24 * time.Hour); s != "30d" {
		t.Errorf("30 days = %q", s)
	}
}

func TestParseSize(t *testing.T) {
	good := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1024", 1024},
		{"10B", 10},
		{"256KB", 256000},
		{"50MB", 50000000},
		{"2GB", 2000000000},
		{"1KiB", 1024},
		{"1MiB", 1 << 20},
		{"3GiB", 3 << 30},
		{"1.5MiB", 3 << 19},
		{"256kb", 256000},
		{"1mib", 1 << 20},
	}
	for _, tt := range good {
		got, err := ParseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "KB", "-1KB", "1 KB", "1TB", "1K", "1.KB", "99999999999GiB", "1e3"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %v, want error", in, got)
		}
	}
	if v, err := ParseSize("8GiB"); err != nil || v != 8<<30 {
		t.Errorf("8GiB = %v %v", v, err)
	}
	if _, err := ParseSize("8589934592GiB"); err == nil {
		t.Error("overflow accepted")
	}
	if v, err := ParseSize("9223372036854775807"); err != nil || v != math.MaxInt64 {
		t.Errorf("max = %v %v", v, err)
	}
}

func TestDurationSizeJSON(t *testing.T) {
	var v struct {
		D Duration `json:"d"`
		S Size     `json:"s"`
		N Size     `json:"n"`
	}
	if err := json.Unmarshal([]byte(`{"d":"1h30m","s":"1MiB","n":2048}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.D.D() != 90*time.Minute || v.S != 1<<20 || v.N != 2048 {
		t.Errorf("%+v", v)
	}
	b, _ := json.Marshal(v)
	if string(b) != `{"d":"90m","s":1048576,"n":2048}` {
		t.Errorf("marshal = %s", b)
	}
	for _, bad := range []string{`{"d":5}`, `{"d":"5"}`, `{"s":"5XB"}`, `{"s":-1}`, `{"s":true}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
