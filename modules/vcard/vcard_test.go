package vcard

import (
	"testing"
)

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
