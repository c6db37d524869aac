package module

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// durationUnits are the units ParseDuration accepts, in nanoseconds.
var durationUnits = map[string]uint64{
	"ms": uint64(time.Millisecond),
	"s":  uint64(time.Second),
	"m":  uint64(time.Minute),
	"h":  uint64(time.Hour),
	"d":  uint64(24 * time.Hour),
	"w":  uint64(7 * 24 * time.Hour),
}

// ParseDuration parses a duration such as "30s", "5m", "1h30m", "30d", "2w"
// or "1.5h". It is a sequence of decimal numbers, each with an optional
// fraction and a mandatory unit: ms, s, m, h, d (24 h) or w (7 d). A bare "0"
// is accepted. Negative durations are not.
func ParseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, errors.New("empty duration")
	}
	orig := s
	var total uint64
	for s != "" {
		intPart, frac, fracScale, rest, ok := scanNumber(s)
		if !ok {
			return 0, fmt.Errorf("invalid duration %q: expected a number followed by a unit (ms, s, m, h, d, w)", orig)
		}
		i := 0
		for i < len(rest) && (rest[i] >= 'a' && rest[i] <= 'z' || rest[i] >= 'A' && rest[i] <= 'Z') {
			i++
		}
		unitName := rest[:i]
		unit, known := durationUnits[unitName]
		if !known {
			if unitName == "" && rest == "" {
				return 0, fmt.Errorf("invalid duration %q: missing unit (ms, s, m, h, d, w)", orig)
			}
			if unitName == "" {
				return 0, fmt.Errorf("invalid duration %q: unexpected %q after a number (want a unit: ms, s, m, h, d, w; no spaces)", orig, rest[:1])
			}
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q (want ms, s, m, h, d, w)", orig, unitName)
		}
		v, ok := scaled(intPart, frac, fracScale, unit)
		if !ok || v > math.MaxInt64-total {
			return 0, fmt.Errorf("invalid duration %q: too large", orig)
		}
		total += v
		s = rest[i:]
	}
	return time.Duration(total), nil
}

// scanNumber reads digits[.digits] at the start of s. frac holds the
// fractional digits as an integer and fracScale is 10^len(fraction digits);
// fraction digits beyond 18 are dropped.
func scanNumber(s string) (intPart, frac, fracScale uint64, rest string, ok bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if intPart > (math.MaxUint64-9)/10 {
			return 0, 0, 0, "", false
		}
		intPart = intPart*10 + uint64(s[i]-'0')
		i++
	}
	digits := i
	fracScale = 1
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if fracScale < 1e18 {
				frac = frac*10 + uint64(s[i]-'0')
				fracScale *= 10
			}
			i++
		}
		if i == start {
			return 0, 0, 0, "", false
		}
	}
	if digits == 0 {
		return 0, 0, 0, "", false
	}
	return intPart, frac, fracScale, s[i:], true
}

// scaled returns (intPart + frac/fracScale) * unit rounded down, and false on
// overflow of int64.
func scaled(intPart, frac, fracScale, unit uint64) (uint64, bool) {
	if intPart != 0 && intPart > math.MaxInt64/unit {
		return 0, false
	}
	v := intPart * unit
	if frac != 0 {
		// frac < fracScale <= 1e18 and unit < 2^63: compute in float for the
		// fractional part only; precision loss is below one unit of the
		// result's last digit for any realistic configuration value.
		f := uint64(float64(frac) / float64(fracScale) * float64(unit))
		if f > math.MaxInt64-v {
			return 0, false
		}
		v += f
	}
	return v, true
}

// sizeUnits are the units ParseSize accepts (lowercased), in bytes.
var sizeUnits = map[string]uint64{
	"":    1,
	"b":   1,
	"kb":  1000,
	"mb":  1000 * 1000,
	"gb":  1000 * 1000 * 1000,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
}

// ParseSize parses a size in bytes such as "256KB", "50MB", "1MiB", "1.5GB"
// or "1024". Units are case-insensitive: B, KB, MB, GB are powers of 1000;
// KiB, MiB, GiB powers of 1024; no unit means bytes. Fractions are rounded
// down to whole bytes.
func ParseSize(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty size")
	}
	intPart, frac, fracScale, rest, ok := scanNumber(s)
	if !ok {
		return 0, fmt.Errorf("invalid size %q: expected a number followed by a unit (B, KB, MB, GB, KiB, MiB, GiB)", s)
	}
	unit, known := sizeUnits[strings.ToLower(rest)]
	if !known {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (want B, KB, MB, GB, KiB, MiB, GiB)", s, rest)
	}
	v, ok := scaled(intPart, frac, fracScale, unit)
	if !ok {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return int64(v), nil
}

// FormatDuration formats d in the syntax ParseDuration reads, using the
// largest unit that divides it exactly ("30d", "90s", "1500ms").
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	if d < 0 {
		return d.String() // not representable; only for display
	}
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64) + "ms"
}

// Duration is a time.Duration that module option structs can use: it
// decodes from a string in ParseDuration's syntax ("5m", "30d").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String implements fmt.Stringer using FormatDuration.
func (d Duration) String() string { return FormatDuration(time.Duration(d)) }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// UnmarshalJSON implements json.Unmarshaler; only strings are accepted.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("expected a duration string such as \"30s\" or \"5m\", got %s", jsonKind(b))
	}
	return d.UnmarshalText([]byte(s))
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// Size is a byte count that module option structs can use: it decodes from
// a string in ParseSize's syntax ("50MB", "1MiB") or from an integer (bytes).
type Size int64

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = Size(v)
	return nil
}

// UnmarshalJSON implements json.Unmarshaler: a size string or an integer.
func (s *Size) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		return s.UnmarshalText([]byte(str))
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil || n < 0 {
		return fmt.Errorf("expected a size such as \"50MB\" or a number of bytes, got %s", jsonKind(b))
	}
	*s = Size(n)
	return nil
}

// MarshalJSON implements json.Marshaler (a number of bytes).
func (s Size) MarshalJSON() ([]byte, error) { return []byte(strconv.FormatInt(int64(s), 10)), nil }

// jsonKind names the TOML kind of a JSON-encoded value, for messages.
func jsonKind(b []byte) string {
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "table"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number " + string(b)
	}
}
