package config

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// The [default-retry-policy] forms restate-server 1.7.12 takes, from a file
// (--config-file) and from the environment, and what its --dump-config writes for each
// (recorded side by side on loopback). max-attempts = "unlimited" did not load here: we
// wanted an integer and read 0 as unlimited, which Restate refuses.
func TestRetryPolicyFormsAsRestate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file, env string
		dump      string // the key's line in the dump
		want      func(RetryPolicy) bool
	}{
		{file: `max-attempts = "unlimited"`, dump: `max-attempts = "unlimited"`,
			want: func(p RetryPolicy) bool { return p.MaxAttempts.Unlimited() }},
		{file: `max-attempts = 1`, dump: `max-attempts = 1`},
		{file: `max-attempts = 4294967296`, dump: `max-attempts = 4294967296`},
		{file: `max-attempts = 9223372036854775807`, dump: `max-attempts = 9223372036854775807`},
		{env: `unlimited`, dump: `max-attempts = "unlimited"`},
		{env: `"unlimited"`, dump: `max-attempts = "unlimited"`},
		{env: `5`, dump: `max-attempts = 5`},
		{env: ` 5`, dump: `max-attempts = 5`},
		{env: `+5`, dump: `max-attempts = 5`},
		{env: `05`, dump: `max-attempts = 5`},
		{env: `"kill"`, dump: `on-max-attempts = "kill"`},
		{env: `18446744073709551615`, dump: `max-attempts = 18446744073709551615`,
			want: func(p RetryPolicy) bool { return p.MaxAttempts.Int() == math.MaxInt }},
		{file: `initial-interval = "PT1S"`, dump: `initial-interval = "1s"`},
		{file: `initial-interval = "1 min"`, dump: `initial-interval = "1m"`},
		{file: `initial-interval = "1.5s"`, dump: `initial-interval = "1s 500ms"`},
		{file: `max-interval = "1d 2h"`, dump: `max-interval = "1d 2h"`},
		{file: `exponentiation-factor = 1`, dump: `exponentiation-factor = 1.0`},
		{file: `exponentiation-factor = 0.5`, dump: `exponentiation-factor = 0.5`},
		{file: `exponentiation-factor = 0`, dump: `exponentiation-factor = 0.0`},
		{file: `exponentiation-factor = -1.0`, dump: `exponentiation-factor = -1.0`},
		{file: `on-max-attempts = "kill"`, dump: `on-max-attempts = "kill"`},
	} {
		name := tc.file
		var environ []string
		path := ""
		if tc.env != "" {
			name = "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS=" + tc.env
			if strings.HasPrefix(tc.dump, "on-max-attempts") {
				name = "RESTATE_DEFAULT_RETRY_POLICY__ON_MAX_ATTEMPTS=" + tc.env
			}
			environ = []string{name}
		} else {
			path = writeFile(t, "[default-retry-policy]\n"+tc.file+"\n")
		}
		c, err := Load(path, environ)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if tc.want != nil && !tc.want(c.DefaultRetryPolicy) {
			t.Errorf("%s: read as %+v", name, c.DefaultRetryPolicy)
		}
		var buf bytes.Buffer
		if err := c.Dump(&buf); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "\n  "+tc.dump+"\n") {
			t.Errorf("%s: the dump lacks %s:\n%s", name, tc.dump, buf.String())
		}
		if tc.file == "" {
			continue
		}
		again, err := Load(writeFile(t, buf.String()), nil)
		if err != nil || again.DefaultRetryPolicy != c.DefaultRetryPolicy {
			t.Errorf("%s: the dump loads back as %+v, %v", name, again.DefaultRetryPolicy, err)
		}
	}
}

// What restate-server 1.7.12 refuses to start with: no max-attempts of 0 (nor a negative
// one, a float, a number in a string or another spelling of "unlimited"), no zero
// intervals, no on-max-attempts other than pause and kill in lower case.
func TestRetryPolicyValuesRestateRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ file, env, key string }{
		{file: `max-attempts = 0`, key: "max-attempts"},
		{file: `max-attempts = -1`, key: "max-attempts"},
		{file: `max-attempts = "Unlimited"`, key: "max-attempts"},
		{file: `max-attempts = "5"`, key: "max-attempts"},
		{file: `max-attempts = 5.0`, key: "max-attempts"},
		{file: `max-attempts = " unlimited"`, key: "max-attempts"},
		{env: "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS=0", key: "max-attempts"},
		{env: "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS=-1", key: "max-attempts"},
		{env: "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS=UNLIMITED", key: "max-attempts"},
		{env: "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS=5.0", key: "max-attempts"},
		{env: `RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS="5"`, key: "max-attempts"},
		{env: "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS=", key: "max-attempts"},
		{env: "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS=18446744073709551616", key: "max-attempts"},
		{file: `initial-interval = "0"`, key: "initial-interval"},
		{file: `initial-interval = "0s"`, key: "initial-interval"},
		{file: `initial-interval = "-1s"`, key: "initial-interval"},
		{file: `max-interval = "0ms"`, key: "max-interval"},
		{env: "RESTATE_DEFAULT_RETRY_POLICY__INITIAL_INTERVAL=0", key: "initial-interval"},
		{file: `exponentiation-factor = "2"`, key: "exponentiation-factor"},
		{file: `on-max-attempts = "Kill"`, key: "on-max-attempts"},
		{file: `on-max-attempts = ""`, key: "on-max-attempts"},
		{file: `on-max-attempts = "\"kill\""`, key: "on-max-attempts"},
		{file: `on-max-attempts = 1`, key: "on-max-attempts"},
		{env: "RESTATE_DEFAULT_RETRY_POLICY__ON_MAX_ATTEMPTS=Kill", key: "on-max-attempts"},
	} {
		path, name := "", tc.env
		var environ []string
		if tc.file != "" {
			path, name = writeFile(t, "[default-retry-policy]\n"+tc.file+"\n"), tc.file
		} else {
			environ = []string{tc.env}
		}
		_, err := Load(path, environ)
		if !errors.Is(err, ErrInvalidValue) || !strings.Contains(err.Error(), " for default-retry-policy."+tc.key+" (") {
			t.Errorf("%s: err = %v, want an invalid value of default-retry-policy.%s", name, err, tc.key)
		}
	}
}

// "unlimited" reaches the schema as 0 attempts (retry for ever), a count past the largest
// int as the largest int.
func TestMaxAttemptsInServiceDefaults(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, writeFile(t, "[default-retry-policy]\nmax-attempts = \"unlimited\"\ninitial-interval = \"1s\"\n"))
	if p := c.ServiceDefaults().RetryPolicy; p.MaxAttempts != 0 || p.InitialInterval != time.Second {
		t.Errorf("retry policy %+v, want unlimited attempts", p)
	}
	c = mustLoad(t, "", "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS=3")
	if p := c.ServiceDefaults().RetryPolicy; p.MaxAttempts != 3 {
		t.Errorf("retry policy %+v, want 3 attempts", p)
	}
}
