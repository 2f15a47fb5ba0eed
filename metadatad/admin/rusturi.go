package admin

import (
	"strings"

	"gorestate.dev/shared/config"
)

// restate-server deserializes a deployment's uri into Rust's http::Uri and its
// additional_headers into http's header types. A value they do not parse makes the body
// match no variant of Restate's untagged request enums: a 422, where a uri that parses but
// is not one Restate can use (relative) is a 400 naming the field. parsesAsRustURI follows
// http 1.x's parser (Uri::from_shared): a path alone, an authority alone, or a scheme with
// "://", a non-empty authority and a path and query.
func parsesAsRustURI(s string) bool {
	const maxLen = 1<<16 - 2 // http's MAX_LEN
	switch {
	case s == "" || len(s) > maxLen:
		return false
	case s[0] == '/':
		return rustPathAndQuery(s)
	}
	rest, hasScheme := s, false
	switch n := rustSchemeLen(s); {
	case n < 0:
		return false
	case n > 0:
		rest, hasScheme = s[n:], true
	}
	end, ok := rustAuthorityEnd(rest)
	switch {
	case !ok:
		return false
	case !hasScheme:
		return end == len(rest) // an authority alone
	case end == 0:
		return false // an absolute uri needs an authority
	}
	return rustPathAndQuery(rest[end:])
}

// rustSchemeLen is the length of s's scheme with its "://", 0 without one, -1 for a scheme
// that is too long.
func rustSchemeLen(s string) int {
	if len(s) >= 7 && strings.EqualFold(s[:7], "http://") {
		return 7
	}
	if len(s) >= 8 && strings.EqualFold(s[:8], "https://") {
		return 8
	}
	if len(s) <= 3 {
		return 0
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ':':
			if !strings.HasPrefix(s[i:], "://") {
				return 0
			}
			if i > 64 {
				return -1
			}
			return i + 3
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '+', c == '-', c == '.':
		default:
			return 0
		}
	}
	return 0
}

// rustAuthorityChar reports the bytes http's URI_CHARS table admits in an authority.
func rustAuthorityChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$&'()*+,-./:;=?@[]_~", c) >= 0
}

// rustAuthorityEnd is http's Authority::parse: where the authority at the start of s ends
// (at the first '/', '?' or '#'), and whether it is valid.
func rustAuthorityEnd(s string) (int, bool) {
	colons, startBracket, endBracket, percent, at := 0, false, false, false, -1
	end := len(s)
scan:
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/' || c == '?' || c == '#':
			end = i
			break scan
		case c == ':':
			if colons >= 8 {
				return 0, false
			}
			colons++
		case c == '[':
			if percent || startBracket {
				return 0, false
			}
			startBracket = true
		case c == ']':
			if !startBracket || endBracket {
				return 0, false
			}
			endBracket, colons, percent = true, 0, false
		case c == '@':
			at, colons, percent = i, 0, false
		case c == '%':
			percent = true
		case !rustAuthorityChar(c):
			return 0, false
		}
	}
	if startBracket != endBracket || colons > 1 || (end > 0 && at == end-1) || percent {
		return 0, false
	}
	return end, true
}

// rustPathAndQuery is http's PathAndQuery::from_shared: the bytes a path and a query may
// hold unencoded (UTF-8 included); a fragment is not checked.
func rustPathAndQuery(s string) bool {
	query := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '#':
			return true
		case !query && c == '?':
			query = true
		case c >= 0x80:
		case query:
			if !(c == 0x21 || 0x24 <= c && c <= 0x3b || c == 0x3d || 0x3f <= c && c <= 0x7e) {
				return false
			}
		default:
			if !(c == 0x21 || 0x24 <= c && c <= 0x3b || c == 0x3d || 0x40 <= c && c <= 0x5f || 0x61 <= c && c <= 0x7a ||
				c == 0x7c || c == 0x7e || c == '"' || c == '{' || c == '}') {
				return false
			}
		}
	}
	return true
}

// headersParse reports whether http's header types take every name and value of h.
func headersParse(h map[string]string) bool {
	for k, v := range h {
		if !config.ValidHeaderName(k) || (v != "" && !validHeaderValue(v)) {
			return false
		}
	}
	return true
}
