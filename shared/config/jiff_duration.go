package config

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ParseJiffDuration reads a duration with the strictness of restate-server's APIs (jiff's
// Span behind FriendlyDuration: the ingress's ?delay= and the admin API's service options),
// which ParseDuration relaxes for configuration files: an optional sign ('-' only for zero),
// then a duration with nothing before it; after an ISO 8601 duration nothing may follow, not
// even a blank, after a friendly one only blanks, and no dangling comma; friendly units are
// written from largest to smallest. A bare "0" is zero. Its errors are jiff's words where we
// know them, else ParseDuration's.
func ParseJiffDuration(v string) (time.Duration, error) {
	s, neg := v, false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		if s = s[1:]; s == "" {
			return 0, fmt.Errorf("found nothing after sign `%c`, which is not a valid duration in either the ISO 8601 format or Jiff's \"friendly\" format", v[0])
		}
	}
	if r, _ := utf8.DecodeRuneInString(s); s != "" && unicode.IsSpace(r) {
		return 0, errors.New(jiffNoStart)
	}
	core := strings.TrimRight(s, " \t\n\f\r")
	switch {
	case core == "":
	case core[0] == 'P' || core[0] == 'p':
		if rest := s[len(strings.TrimRightFunc(s, unicode.IsSpace)):]; rest != "" {
			return 0, fmt.Errorf("parsed value '%s', but unparsed input %q remains (expected no unparsed input)", strings.ToUpper(s[:len(s)-len(rest)]), rest)
		}
	case core == "0" && v != "0":
		return 0, errors.New(jiffNoUnit)
	case core[len(core)-1] == ',':
		return 0, errors.New(jiffFriendly + "found comma at the end of duration, but a comma indicates at least one more unit follows")
	case strings.TrimRightFunc(core, unicode.IsSpace) != core:
		// A blank jiff does not skip (a vertical tab, a Unicode space).
		return 0, fmt.Errorf("unparsed input %q remains (expected no unparsed input)", core[len(strings.TrimRightFunc(core, unicode.IsSpace)):])
	}
	d, err := parseDuration(core, true)
	if err != nil {
		var de *durationError
		if errors.As(err, &de) && de.jiff != "" {
			return 0, errors.New(de.jiff)
		}
		return 0, err
	}
	if neg && d != 0 {
		return 0, errors.New("negative signed durations cannot be converted to an unsigned duration")
	}
	return d, nil
}
