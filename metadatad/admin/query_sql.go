package admin

import (
	"errors"
	"strings"
)

// sqlText is what the engine needs to know about a query before running it, found by a
// lexical scan (no parser): the identifiers it mentions, its first keyword, whether it is
// more than one statement, and its tokens. Identifiers inside string literals and comments
// do not count, so "WHERE name = 'state'" does not load the state table.
type sqlText struct {
	idents     map[string]bool // lower-cased; quoted identifiers verbatim
	first      string          // first keyword, lower-cased
	statements int
	// sql is the query to run: the input with the bare words in quotedWords quoted.
	sql    string
	tokens []token
}

// quotedWords are column names that DataFusion accepts bare but SQLite reserves (the CLI
// writes "sj.index" and "ORDER BY index"). In a SELECT they can only be identifiers.
var quotedWords = map[string]bool{"index": true}

var errUnterminated = errors.New("unterminated string, identifier or comment")

type tokenKind uint8

const (
	tkWord   tokenKind = iota // a bare identifier or keyword
	tkIdent                   // a quoted identifier ("x", `x`, [x]); text is its content
	tkString                  // a string literal; text is its content
	tkNumber                  // a numeric literal
	tkPunct                   // an operator or punctuation: one or two characters
	tkEnd                     // ";"
)

type token struct {
	kind       tokenKind
	text       string
	start, end int // the token's bytes in the query
}

// is reports whether t is the bare word w (case-insensitive) or the punctuation w.
func (t token) is(w string) bool {
	return (t.kind == tkWord || t.kind == tkPunct) && strings.EqualFold(t.text, w)
}

// twoCharOps are the operators read as one token.
var twoCharOps = map[string]bool{"!=": true, "<>": true, "==": true, "<=": true, ">=": true, "||": true, "<<": true, ">>": true}

// tokenize splits q into tokens, skipping spaces and comments.
func tokenize(q string) ([]token, error) {
	var out []token
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
			out = append(out, token{kind: tkEnd, text: ";", start: i, end: i + 1})
			i++
		case c == '\'' || c == '"' || c == '`' || c == '[':
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
			kind := tkIdent
			if c == '\'' {
				kind = tkString
			}
			out = append(out, token{kind: kind, text: lit.String(), start: i, end: j + 1})
			i = j + 1
		case isIdentStart(c) || c >= '0' && c <= '9':
			kind := tkWord
			if c >= '0' && c <= '9' {
				kind = tkNumber
			}
			j := i + 1
			for j < len(q) && (isIdentPart(q[j]) || kind == tkNumber && q[j] == '.') {
				j++
			}
			out = append(out, token{kind: kind, text: q[i:j], start: i, end: j})
			i = j
		default:
			n := 1
			if i+1 < len(q) && twoCharOps[q[i:i+2]] {
				n = 2
			}
			out = append(out, token{kind: tkPunct, text: q[i : i+n], start: i, end: i + n})
			i += n
		}
	}
	return out, nil
}

func scanSQL(q string) (sqlText, error) {
	out := sqlText{idents: map[string]bool{}, sql: q}
	toks, err := tokenize(q)
	if err != nil {
		return out, err
	}
	var rewritten strings.Builder
	copied := 0 // q[:copied] is in rewritten
	inStatement := false
	for _, t := range toks {
		if t.kind == tkEnd {
			inStatement = false
			continue
		}
		if !inStatement {
			inStatement = true
			out.statements++
		}
		switch t.kind {
		case tkIdent:
			out.idents[t.text] = true
		case tkWord:
			word := strings.ToLower(t.text)
			if out.first == "" {
				out.first = word
			}
			if quotedWords[word] {
				rewritten.WriteString(q[copied:t.start])
				rewritten.WriteString(`"` + t.text + `"`)
				copied = t.end
			}
			out.idents[word] = true
		}
		out.tokens = append(out.tokens, t)
	}
	rewritten.WriteString(q[copied:])
	out.sql = rewritten.String()
	return out, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' }
