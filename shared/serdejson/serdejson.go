// Package serdejson writes JSON strings as Restate's serde_json writes them, for the answers
// that must match Restate's byte for byte.
package serdejson

import "unicode/utf8"

// AppendString appends s quoted as serde_json quotes it: only '"', '\\' and control
// characters are escaped (\b \t \n \f \r by name, the others as \u00xx); '<', '>', '&' and
// U+2028/U+2029, which Go's encoding/json escapes, stay as they are. A byte that is not
// UTF-8 becomes \ufffd, as encoding/json makes it (a Rust string is always UTF-8).
func AppendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch {
		case c == '"':
			b = append(b, '\\', '"')
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}
