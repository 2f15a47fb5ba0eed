package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidDuration is wrapped by every ParseDuration error.
var ErrInvalidDuration = errors.New("invalid duration")

// durationHint ends every parse error because the accepted forms are not obvious from a
// single bad value.
const durationHint = `want e.g. "500ms", "1d 12h", "5min" or "PT1M"`

const day = 24 * time.Hour

// Duration is a time.Duration that reads and writes Restate's duration syntax in TOML files
// and environment variables (see ParseDuration and FormatFriendly).
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// String returns Restate's compact form, e.g. "1d 12h".
func (d Duration) String() string { return FormatFriendly(time.Duration(d)) }

// MarshalText writes the compact form so that Dump output loads back unchanged.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText accepts every form ParseDuration accepts.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// friendlyUnits maps the unit names Restate accepts (jiff's "friendly" format, which is a
// superset of Go's and of humantime's spellings) to their length. Days are 24 hours and weeks
// 7 days, as in Restate; years and months have no fixed length and are rejected.
var friendlyUnits = map[string]time.Duration{
	"ns": time.Nanosecond, "nsec": time.Nanosecond, "nsecs": time.Nanosecond,
	"nanosecond": time.Nanosecond, "nanoseconds": time.Nanosecond,
	"us": time.Microsecond, "µs": time.Microsecond, "μs": time.Microsecond,
	"usec": time.Microsecond, "usecs": time.Microsecond, "µsec": time.Microsecond,
	"µsecs": time.Microsecond, "microsecond": time.Microsecond, "microseconds": time.Microsecond,
	"ms": time.Millisecond, "msec": time.Millisecond, "msecs": time.Millisecond,
	"millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"s": time.Second, "sec": time.Second, "secs": time.Second,
	"second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute,
	"minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": day, "day": day, "days": day,
	"w": 7 * day, "wk": 7 * day, "wks": 7 * day, "week": 7 * day, "weeks": 7 * day,
}

var calendarUnits = map[string]bool{
	"y": true, "yr": true, "yrs": true, "year": true, "years": true,
	"mo": true, "mos": true, "month": true, "months": true, "M": true,
}

// ParseDuration parses the duration forms Restate accepts in its configuration and APIs:
//
//   - Go style: "500ms", "1m30s", "1.5h"
//   - friendly: "1d", "1d 12h", "60sec", "5min", "2 hours", "1h, 30m"
//   - ISO 8601: "PT60S", "P1D", "PT1H30M", "P1DT12H", "PT0.5S"
//
// A bare "0" is zero. Negative durations and calendar units (years, months) are rejected.
func ParseDuration(s string) (time.Duration, error) {
	return parseDuration(s, false)
}

// parseDuration is ParseDuration; strict also refuses friendly units that are not written
// from largest to smallest, as jiff does (ParseJiffDuration).
func parseDuration(s string, strict bool) (time.Duration, error) {
	t := strings.TrimSpace(s)
	var (
		d   time.Duration
		err error
	)
	switch {
	case t == "":
		err = &durationError{"empty", `an empty string is not a valid duration in either the ISO 8601 format or Jiff's "friendly" format`}
	case t == "0":
		return 0, nil
	case t[0] == 'P' || t[0] == 'p':
		d, err = parseISODuration(t)
	default:
		d, err = parseFriendlyDuration(t, strict)
	}
	if err != nil {
		return 0, fmt.Errorf("%w %q: %w (%s)", ErrInvalidDuration, s, err, durationHint)
	}
	return d, nil
}

// durationError is why a duration does not parse: in our words, and in jiff's (the parser
// behind restate-server's APIs) where we know them.
type durationError struct{ ours, jiff string }

func (e *durationError) Error() string { return e.ours }

// jiff's words for the mistakes of a "friendly" duration.
const (
	jiffFriendly   = `failed to parse input in the "friendly" duration format: `
	jiffNoStart    = jiffFriendly + "expected duration to start with a unit value (a decimal integer) after an optional sign, but no integer was found"
	jiffNoUnit     = jiffFriendly + "expected to find unit designator suffix (e.g., `years` or `secs`) after parsing integer"
	jiffCalendar   = "please use units of days or smaller"
	jiffOrder      = "found value with unit %s after unit %s, but units must be written from largest to smallest (and they can't be repeated)"
	jiffTimeNoUnit = "found a time designator (`T` or `t`) in an ISO 8601 duration string, but did not find any time units"
)

// jiffUnitNames name the units in jiff's messages.
var jiffUnitNames = map[time.Duration]string{
	7 * day: "week", day: "day", time.Hour: "hour", time.Minute: "minute", time.Second: "second",
	time.Millisecond: "millisecond", time.Microsecond: "microsecond", time.Nanosecond: "nanosecond",
}

// number is one decimal literal split at the point, kept as text so integer parts stay exact.
type number struct{ whole, frac string }

// times returns n*unit, rounding a fractional part to the nearest nanosecond.
func (n number) times(unit time.Duration) (time.Duration, error) {
	w, err := strconv.ParseUint(n.whole, 10, 63)
	if err != nil || w > uint64(math.MaxInt64/unit) {
		return 0, errors.New("too large")
	}
	d := time.Duration(w) * unit
	if n.frac != "" {
		f, err := strconv.ParseFloat("0."+n.frac, 64)
		if err != nil {
			return 0, fmt.Errorf("bad fraction %q", n.frac)
		}
		return addDuration(d, time.Duration(math.Round(f*float64(unit))))
	}
	return d, nil
}

func addDuration(a, b time.Duration) (time.Duration, error) {
	if a > math.MaxInt64-b {
		return 0, errors.New("too large")
	}
	return a + b, nil
}

// scanNumber reads digits with an optional fraction (after '.' or, for ISO 8601, ',').
func scanNumber(s string, i int, allowComma bool) (number, int) {
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n := number{whole: s[start:i]}
	if i < len(s) && (s[i] == '.' || (allowComma && s[i] == ',')) {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j > i+1 {
			n.frac = s[i+1 : j]
			i = j
		}
	}
	if n.whole == "" && n.frac != "" {
		n.whole = "0"
	}
	return n, i
}

func parseFriendlyDuration(s string, strict bool) (time.Duration, error) {
	var total, last time.Duration // last: the unit of the previous component
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
			i++
		}
		if i == len(s) {
			return total, nil
		}
		n, j := scanNumber(s, i, false)
		if n.whole == "" {
			e := &durationError{ours: fmt.Sprintf("expected a number at %q", s[i:])}
			if last == 0 {
				e.jiff = jiffNoStart
			}
			return 0, e
		}
		i = j
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		start := i
		for i < len(s) {
			r, size := utf8.DecodeRuneInString(s[i:])
			if !unicode.IsLetter(r) {
				break
			}
			i += size
		}
		name := s[start:i]
		if name == "" {
			return 0, &durationError{fmt.Sprintf("missing unit after %q", s[:start]), jiffNoUnit}
		}
		unit, ok := friendlyUnits[name]
		if !ok && name != "M" {
			unit, ok = friendlyUnits[strings.ToLower(name)]
		}
		if !ok {
			if calendarUnits[name] || calendarUnits[strings.ToLower(name)] {
				return 0, &durationError{fmt.Sprintf("unit %q has no fixed length", name), jiffCalendar}
			}
			return 0, &durationError{fmt.Sprintf("unknown unit %q", name), jiffNoUnit}
		}
		if strict && last != 0 && unit >= last {
			msg := fmt.Sprintf(jiffOrder, jiffUnitNames[unit], jiffUnitNames[last])
			return 0, &durationError{msg, jiffFriendly + msg}
		}
		last = unit
		v, err := n.times(unit)
		if err != nil {
			return 0, err
		}
		if total, err = addDuration(total, v); err != nil {
			return 0, err
		}
	}
}

// parseISODuration parses P[nW][nD][T[nH][nM][nS]]; designators must appear in this order.
func parseISODuration(s string) (time.Duration, error) {
	u := strings.ToUpper(s)
	var total time.Duration
	inTime, seen, afterT := false, false, false
	rank := 0              // position in the designator order W D | H M S, to reject "PT1S1H"
	var last time.Duration // the unit of rank
	for i := 1; i < len(u); {
		if u[i] == 'T' {
			if inTime {
				return 0, errors.New("second 'T'")
			}
			inTime, afterT = true, false
			i++
			continue
		}
		n, j := scanNumber(u, i, true)
		if n.whole == "" {
			e := &durationError{ours: fmt.Sprintf("expected a number at %q", s[i:])}
			switch {
			case inTime && !afterT:
				e.jiff = jiffTimeNoUnit
			case !seen:
				e.jiff = "no parsed duration components"
			default:
				e.jiff = fmt.Sprintf("parsed value '%s', but unparsed input %q remains (expected no unparsed input)", u[:i], s[i:])
			}
			return 0, e
		}
		if j == len(u) {
			e := &durationError{fmt.Sprintf("missing designator after %q", s[i:]), "expected to find date unit designator suffix (`Y`, `M`, `W` or `D`), but found end of input"}
			if inTime {
				e.jiff = "expected to find time unit designator suffix (`H`, `M` or `S`), but found end of input"
			}
			return 0, e
		}
		var unit time.Duration
		var r int
		switch d := u[j]; {
		case !inTime && d == 'W':
			unit, r = 7*day, 1
		case !inTime && d == 'D':
			unit, r = day, 2
		case inTime && d == 'H':
			unit, r = time.Hour, 3
		case inTime && d == 'M':
			unit, r = time.Minute, 4
		case inTime && d == 'S':
			unit, r = time.Second, 5
		case !inTime && (d == 'Y' || d == 'M'):
			return 0, &durationError{fmt.Sprintf("designator %q has no fixed length", s[j:j+1]), jiffCalendar}
		default:
			return 0, fmt.Errorf("unexpected designator %q", s[j:j+1])
		}
		if r <= rank {
			return 0, &durationError{fmt.Sprintf("designator %q out of order", s[j:j+1]), fmt.Sprintf(jiffOrder, jiffUnitNames[unit], jiffUnitNames[last])}
		}
		rank, last = r, unit
		v, err := n.times(unit)
		if err != nil {
			return 0, err
		}
		if total, err = addDuration(total, v); err != nil {
			return 0, err
		}
		seen, afterT = true, true
		i = j + 1
	}
	switch {
	case inTime && !afterT:
		return 0, &durationError{"no components", jiffTimeNoUnit}
	case !seen:
		return 0, &durationError{"no components", "no parsed duration components"}
	}
	return total, nil
}

// friendlyParts are the units FormatFriendly writes, largest first. Days are the largest
// unit because weeks, months and years read ambiguously in API output.
var friendlyParts = []struct {
	unit time.Duration
	name string
}{
	{day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"},
	{time.Millisecond, "ms"}, {time.Microsecond, "µs"}, {time.Nanosecond, "ns"},
}

// FormatFriendly writes d in Restate's compact friendly form, as its admin API does: "1d",
// "10m", "500ms", "1d 12h 4m 2s"; zero is "0s". ParseDuration reads every output back to
// the same value (negative durations are written with a leading '-' but not read back).
func FormatFriendly(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	u := uint64(d)
	if d < 0 {
		b.WriteByte('-')
		u = uint64(-(d + 1)) + 1 // -d overflows for math.MinInt64
	}
	first := true
	for _, p := range friendlyParts {
		q := u / uint64(p.unit)
		if q == 0 {
			continue
		}
		u -= q * uint64(p.unit)
		if !first {
			b.WriteByte(' ')
		}
		first = false
		b.WriteString(strconv.FormatUint(q, 10))
		b.WriteString(p.name)
	}
	return b.String()
}
