package config

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestParseDurationAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
	}{
		// Go style.
		{"500ms", 500 * time.Millisecond},
		{"1m30s", 90 * time.Second},
		{"1.5h", 90 * time.Minute},
		{"2h45m30.5s", 2*time.Hour + 45*time.Minute + 30500*time.Millisecond},
		{"1µs", time.Microsecond},
		{"1us", time.Microsecond},
		{"10ns", 10},
		{"0s", 0},
		{"0", 0},
		// Friendly.
		{"1d", 24 * time.Hour},
		{"1d 12h", 36 * time.Hour},
		{"60sec", time.Minute},
		{"60ms", 60 * time.Millisecond},
		{"5min", 5 * time.Minute},
		{"2 hours", 2 * time.Hour},
		{"1 day", 24 * time.Hour},
		{"1 hour, 30 minutes", 90 * time.Minute},
		{"1w", 7 * 24 * time.Hour},
		{"3 weeks 2 days", 23 * 24 * time.Hour},
		{"  1sec  ", time.Second},
		{"1H", time.Hour},
		{"1d 12h 4m 2s", 36*time.Hour + 4*time.Minute + 2*time.Second},
		// ISO 8601.
		{"PT60S", time.Minute},
		{"P1D", 24 * time.Hour},
		{"PT1H30M", 90 * time.Minute},
		{"P1DT12H", 36 * time.Hour},
		{"PT0.5S", 500 * time.Millisecond},
		{"PT0,25S", 250 * time.Millisecond},
		{"P2W", 14 * 24 * time.Hour},
		{"pt1m", time.Minute},
		{"PT0S", 0},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if err != nil {
			t.Errorf("ParseDuration(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseDurationRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"", "   ", "abc", "10", "1x", "-1s", "1d -1h", "1 month", "2 years", "1M", "1y",
		"P", "PT", "P1Y", "P1M", "PT1S1H", "P1DT", "PTS", "P1H", "PT1D", "1.5.5s",
		"99999999999999999999s", "300000d", "PT1H1H",
	} {
		if d, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want error", in, d)
		} else if !errors.Is(err, ErrInvalidDuration) {
			t.Errorf("ParseDuration(%q) error %v does not wrap ErrInvalidDuration", in, err)
		}
	}
}

func TestFormatFriendly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{24 * time.Hour, "1d"},
		{time.Minute, "1m"},
		{10 * time.Minute, "10m"},
		{500 * time.Millisecond, "500ms"},
		{36*time.Hour + 4*time.Minute + 2*time.Second, "1d 12h 4m 2s"},
		{time.Second + 1500*time.Nanosecond, "1s 1µs 500ns"},
		{7 * 24 * time.Hour, "7d"},
		{-time.Second, "-1s"},
	}
	for _, tt := range tests {
		if got := FormatFriendly(tt.in); got != tt.want {
			t.Errorf("FormatFriendly(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatFriendlyRoundTrip(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{
		0, 1, time.Microsecond, 999 * time.Millisecond, time.Hour + time.Nanosecond,
		36*time.Hour + 4*time.Minute + 2*time.Second, 400 * 24 * time.Hour, math.MaxInt64,
	} {
		s := FormatFriendly(d)
		got, err := ParseDuration(s)
		if err != nil || got != d {
			t.Errorf("ParseDuration(FormatFriendly(%d) = %q) = %v, %v", d, s, got, err)
		}
	}
	if s := FormatFriendly(math.MinInt64); s[0] != '-' {
		t.Errorf("FormatFriendly(MinInt64) = %q, want a leading '-'", s)
	}
}

func TestDurationText(t *testing.T) {
	t.Parallel()
	var d Duration
	if err := d.UnmarshalText([]byte("PT1H30M")); err != nil {
		t.Fatal(err)
	}
	b, _ := d.MarshalText()
	if string(b) != "1h 30m" || d.Duration() != 90*time.Minute {
		t.Errorf("got %q / %v, want 1h 30m", b, d.Duration())
	}
	if err := d.UnmarshalText([]byte("soon")); !errors.Is(err, ErrInvalidDuration) {
		t.Errorf("UnmarshalText(soon) = %v, want ErrInvalidDuration", err)
	}
}
