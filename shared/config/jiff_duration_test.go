package config

import (
	"strings"
	"testing"
	"time"
)

// TestParseJiffDuration: durations as restate-server 1.7.12 reads them in its APIs (the
// ingress's ?delay= and the admin API's service options, observed side by side): what it
// accepts, and its reasons for what it refuses.
func TestParseJiffDuration(t *testing.T) {
	t.Parallel()
	const (
		friendly = `failed to parse input in the "friendly" duration format: `
		noStart  = friendly + "expected duration to start with a unit value (a decimal integer) after an optional sign, but no integer was found"
		noUnit   = friendly + "expected to find unit designator suffix (e.g., `years` or `secs`) after parsing integer"
		calendar = "please use units of days or smaller"
		order    = "but units must be written from largest to smallest (and they can't be repeated)"
	)
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string // a prefix; "" for accepted values
	}{
		{in: "1s", want: time.Second},
		{in: "+1s", want: time.Second},
		{in: "-0s"},
		{in: "0"},
		{in: "1s ", want: time.Second},
		{in: "1 hour", want: time.Hour},
		{in: "1  s", want: time.Second},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "1w", want: 7 * 24 * time.Hour},
		{in: "1d 12h", want: 36 * time.Hour},
		{in: "PT1H", want: time.Hour},
		{in: "PT1.5H", want: 90 * time.Minute},
		{in: "P1W", want: 7 * 24 * time.Hour},

		{in: "", wantErr: `an empty string is not a valid duration in either the ISO 8601 format or Jiff's "friendly" format`},
		{in: "abc", wantErr: noStart},
		{in: " 1s", wantErr: noStart},
		{in: "10", wantErr: noUnit},
		{in: "1x", wantErr: noUnit},
		{in: "1.5", wantErr: noUnit},
		{in: "1s 1", wantErr: noUnit},
		{in: "1s1", wantErr: noUnit},
		{in: "-0", wantErr: noUnit},
		{in: "1y", wantErr: calendar},
		{in: "1mo", wantErr: calendar},
		{in: "P1Y", wantErr: calendar},
		{in: "P1M", wantErr: calendar},
		{in: "-", wantErr: "found nothing after sign `-`"},
		{in: "-1s", wantErr: "negative signed durations cannot be converted to an unsigned duration"},
		{in: "-PT1H", wantErr: "negative signed durations cannot be converted to an unsigned duration"},
		{in: "P", wantErr: "no parsed duration components"},
		{in: "Px", wantErr: "no parsed duration components"},
		{in: "PT", wantErr: "found a time designator (`T` or `t`) in an ISO 8601 duration string, but did not find any time units"},
		{in: "PTx", wantErr: "found a time designator (`T` or `t`) in an ISO 8601 duration string, but did not find any time units"},
		{in: "P1DT", wantErr: "found a time designator (`T` or `t`) in an ISO 8601 duration string, but did not find any time units"},
		{in: "PT1", wantErr: "expected to find time unit designator suffix (`H`, `M` or `S`), but found end of input"},
		{in: "PT1H1", wantErr: "expected to find time unit designator suffix (`H`, `M` or `S`), but found end of input"},
		{in: "P1", wantErr: "expected to find date unit designator suffix (`Y`, `M`, `W` or `D`), but found end of input"},
		{in: "P1D1", wantErr: "expected to find date unit designator suffix (`Y`, `M`, `W` or `D`), but found end of input"},
		{in: "PT1S1H", wantErr: "found value with unit hour after unit second, " + order},
		{in: "PT1H1H", wantErr: "found value with unit hour after unit hour, " + order},
		{in: "1d 1d", wantErr: friendly + "found value with unit day after unit day, " + order},
		{in: "1s 1h", wantErr: friendly + "found value with unit hour after unit second, " + order},
		{in: "PT1Hx", wantErr: `parsed value 'PT1H', but unparsed input "x" remains (expected no unparsed input)`},
		{in: "P1Dx", wantErr: `parsed value 'P1D', but unparsed input "x" remains (expected no unparsed input)`},
	}
	for _, tt := range tests {
		d, err := ParseJiffDuration(tt.in)
		switch {
		case tt.wantErr == "" && (err != nil || d != tt.want):
			t.Errorf("ParseJiffDuration(%q) = %v, %v; want %v", tt.in, d, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
			t.Errorf("ParseJiffDuration(%q) = %v, %v; want an error %q…", tt.in, d, err, tt.wantErr)
		}
	}
}
