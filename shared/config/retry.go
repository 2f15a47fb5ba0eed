package config

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// MaxAttempts is the max-attempts key of [default-retry-policy]: a number of attempts, or
// "unlimited". Restate refuses 0 (it is no shorthand for unlimited there), and so do we;
// the zero value of the type is what "unlimited" reads into.
type MaxAttempts uint64

// UnlimitedAttempts retries for ever.
const UnlimitedAttempts MaxAttempts = 0

const unlimited = "unlimited"

var errMaxAttempts = errors.New(`want a number of attempts (1 or more) or "unlimited"`)

// Unlimited reports whether the policy retries for ever.
func (m MaxAttempts) Unlimited() bool { return m == UnlimitedAttempts }

// Int returns the number of attempts as the schema counts them (0 for unlimited), at most
// the largest int.
func (m MaxAttempts) Int() int { return int(min(uint64(m), math.MaxInt)) }

func (m MaxAttempts) String() string {
	if m.Unlimited() {
		return unlimited
	}
	return strconv.FormatUint(uint64(m), 10)
}

// MarshalTOML writes a number, or the string "unlimited", as Restate's --dump-config does.
func (m MaxAttempts) MarshalTOML() ([]byte, error) {
	if m.Unlimited() {
		return []byte(strconv.Quote(unlimited)), nil
	}
	return []byte(m.String()), nil
}

// UnmarshalTOML reads a positive integer or the string "unlimited" (lower case, as Restate
// takes it); a number in a string is refused there too.
func (m *MaxAttempts) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 1 {
			return errMaxAttempts
		}
		*m = MaxAttempts(x)
		return nil
	case string:
		if x == unlimited {
			*m = UnlimitedAttempts
			return nil
		}
	}
	return errMaxAttempts
}

// UnmarshalText reads the environment's form: a positive integer up to 2^64-1 (a leading
// "+" or zeros allowed) or "unlimited", which may be in double quotes.
func (m *MaxAttempts) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
		if s == unlimited {
			*m = UnlimitedAttempts
			return nil
		}
		return errMaxAttempts // a quoted number is a string, as in the file
	}
	if s == unlimited {
		*m = UnlimitedAttempts
		return nil
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "+"), 10, 64)
	if err != nil || n == 0 {
		return errMaxAttempts
	}
	*m = MaxAttempts(n)
	return nil
}

// OnMaxAttempts is the on-max-attempts key: "pause" or "kill" (Validate checks which).
type OnMaxAttempts string

// UnmarshalTOML takes the file's string as it is.
func (o *OnMaxAttempts) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return errors.New("want pause or kill")
	}
	*o = OnMaxAttempts(s)
	return nil
}

// UnmarshalText reads the environment's form, which may be in double quotes
// (RESTATE_DEFAULT_RETRY_POLICY__ON_MAX_ATTEMPTS="kill" is kill, as in Restate).
func (o *OnMaxAttempts) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	*o = OnMaxAttempts(s)
	return nil
}
