package config

import (
	"time"

	"github.com/metronome-xmpp/metronome/module"
)

// Duration and Size are the module API's option types for "5m" and "50MB"
// values; modules use module.Duration and module.Size directly.
type (
	Duration = module.Duration
	Size     = module.Size
)

// ParseDuration parses "30s", "5m", "1h30m", "30d", "2w" (see module.ParseDuration).
func ParseDuration(s string) (time.Duration, error) { return module.ParseDuration(s) }

// ParseSize parses "256KB", "50MB", "1MiB" (see module.ParseSize).
func ParseSize(s string) (int64, error) { return module.ParseSize(s) }

// FormatDuration formats d the way ParseDuration reads it.
func FormatDuration(d time.Duration) string { return module.FormatDuration(d) }
