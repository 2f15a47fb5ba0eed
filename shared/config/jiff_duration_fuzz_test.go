package config

import (
	"testing"
	"time"
)

// FuzzParseJiffDuration: the ingress's ?delay= and the admin API's service options reach
// ParseJiffDuration from the network. Any text is either refused with a reason or read as a
// duration that is not negative (Restate takes a sign only in front of zero), and reading
// never panics.
func FuzzParseJiffDuration(f *testing.F) {
	for _, s := range []string{"1s", "+1s", "-0s", "0", "1 hour", "1.5s", "1d 12h", "PT1H", "PT1.5H", "P1W",
		"", "-1s", " 1s", "1d 1d", "1s 1h", "1,", "P1Y", "99999999999999999999h", "1.999999999999999999s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseJiffDuration(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("%q refused without a reason", s)
			}
			return
		}
		if d < 0 || d > time.Duration(1<<63-1) {
			t.Fatalf("%q read as %v", s, d)
		}
	})
}
