package vcard

import (
	"encoding/json"
	"testing"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Size
		ok   bool
	}{
		{"65536", 65536, true},
		{"64KB", 64 << 10, true},
		{"64kb", 64 << 10, true},
		{"64 KiB", 64 << 10, true},
		{"1MB", 1 << 20, true},
		{"2m", 2 << 20, true},
		{"512B", 512, true},
		{"0", 0, true},
		{"", 0, false},
		{"KB", 0, false},
		{"-1KB", 0, false},
		{"1.5MB", 0, false},
		{"10GB", 0, false},
	} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestSizeJSON(t *testing.T) {
	t.Parallel()
	var v struct {
		S Size `json:"s"`
	}
	for in, want := range map[string]Size{`{"s": 1024}`: 1024, `{"s": "2KB"}`: 2048} {
		if err := json.Unmarshal([]byte(in), &v); err != nil || v.S != want {
			t.Errorf("Unmarshal(%s) = %d, %v; want %d", in, v.S, err, want)
		}
	}
	for _, in := range []string{`{"s": true}`, `{"s": "big"}`} {
		if err := json.Unmarshal([]byte(in), &v); err == nil {
			t.Errorf("Unmarshal(%s) accepted", in)
		}
	}
}

func TestDefaultsAndValidate(t *testing.T) {
	t.Parallel()
	v := VCard{}.Info().New().(*VCard)
	if v.MaxSize != DefaultMaxSize {
		t.Errorf("default max_size = %d, want %d", v.MaxSize, DefaultMaxSize)
	}
	if err := v.Validate(); err != nil {
		t.Errorf("Validate default: %v", err)
	}
	v.MaxSize = 0
	if v.Validate() == nil {
		t.Error("Validate accepted max_size = 0")
	}
}
