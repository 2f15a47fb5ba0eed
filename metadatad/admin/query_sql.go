package admin

import (
	"errors"
	"strings"
)

// sqlText is what the engine needs to know about a query before running it, found by a
// lexical scan (no parser): the identifiers it mentions, its first keyword, and whether it is
// more than one statement. Identifiers inside string literals and comments do not count, so
// "WHERE name = 'state'" does not load the state table.
type sqlText struct {
	idents     map[string]bool // lower-cased; quoted identifiers verbatim
	first      string          // first keyword, lower-cased
	statements int
	// sql is the query to run: the input with the bare words in quotedWords quoted.
	sql string
}

// quotedWords are column names that DataFusion accepts bare but SQLite reserves (the CLI
// writes "sj.index" and "ORDER BY index"). In a SELECT they can only be identifiers.
var quotedWords = map[string]bool{"index": true}

var errUnterminated = errors.New("unterminated string, identifier or comment")

func scanSQL(q string) (out sqlText, err error) {
	out = sqlText{idents: map[string]bool{}}
	var rewritten strings.Builder
	copied := 0 // q[:copied] is in rewritten
	defer func() {
		rewritten.WriteString(q[copied:])
		out.sql = rewritten.String()
	}()
	inStatement := false
	begin := func() {
		if !inStatement {
			inStatement = true
			out.statements++
		}
	}
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				return out, nil
			}
			i += end + 1
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return out, errUnterminated
			}
			i += end + 4
		case c == ';':
			inStatement = false
			i++
		case c == '\'' || c == '"' || c == '`' || c == '[':
			begin()
			closer := c
			if c == '[' {
				closer = ']'
			}
			j := i + 1
			var lit strings.Builder
			for {
				if j >= len(q) {
					return out, errUnterminated
				}
				if q[j] == closer {
					if closer != ']' && j+1 < len(q) && q[j+1] == closer { // doubled quote
						lit.WriteByte(closer)
						j += 2
						continue
					}
					break
				}
				lit.WriteByte(q[j])
				j++
			}
			if c != '\'' {
				out.idents[lit.String()] = true
			}
			i = j + 1
		case isIdentStart(c):
			begin()
			j := i + 1
			for j < len(q) && isIdentPart(q[j]) {
				j++
			}
			word := strings.ToLower(q[i:j])
			if out.first == "" {
				out.first = word
			}
			if quotedWords[word] {
				rewritten.WriteString(q[copied:i])
				rewritten.WriteString(`"` + q[i:j] + `"`)
				copied = j
			}
			out.idents[word] = true
			i = j
		default:
			begin()
			i++
		}
	}
	return out, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' }
