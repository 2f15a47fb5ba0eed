package rulebook

import (
	"fmt"
	"strings"
)

// MaxComponentLen is the longest pattern component in bytes (Restate's restricted values).
const MaxComponentLen = 36

// maxComponents is the depth of a pattern: scope, then two levels of limit key.
const maxComponents = 3

// PatternError is a pattern that does not parse; its text is restate-server 1.7.12's.
type PatternError struct{ msg string }

func (e *PatternError) Error() string { return e.msg }

// ParsePattern checks a rule pattern and returns its canonical spelling, the rule's identity
// in the book. A pattern is one to three components separated by "/": a scope, then the
// levels of a limit key, each either "*" or 1 to 36 bytes of [a-zA-Z0-9_.-]. The pattern and
// each component are trimmed of white space, and one trailing "/" is dropped, as Restate
// reads them ("scope1/*/" is "scope1/*", " a / b " is "a/b").
func ParsePattern(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", &PatternError{"pattern cannot be empty"}
	}
	parts := strings.Split(strings.TrimSuffix(s, "/"), "/")
	out := make([]string, 0, maxComponents)
	for _, p := range parts {
		// Components are checked in order, and a fourth is refused before it is looked at.
		if len(out) == maxComponents {
			return "", &PatternError{fmt.Sprintf("too many path components (max %d)", maxComponents)}
		}
		c, err := component(p)
		if err != nil {
			return "", err
		}
		out = append(out, c)
	}
	return strings.Join(out, "/"), nil
}

func component(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "*":
		return s, nil
	case s == "":
		return "", &PatternError{"invalid component: value cannot be empty"}
	case len(s) > MaxComponentLen:
		return "", &PatternError{fmt.Sprintf("invalid component: value too long: %d bytes (max %d)", len(s), MaxComponentLen)}
	}
	for i := 0; i < len(s); i++ {
		if !restricted(s[i]) {
			return "", &PatternError{"invalid component: value contains characters outside the allowed set [a-zA-Z0-9_.-]"}
		}
	}
	return s, nil
}

func restricted(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '.' || b == '-'
}
