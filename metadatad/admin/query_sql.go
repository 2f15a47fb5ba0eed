package admin

import (
	"errors"
	"slices"
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
	// sql is the query to run: the input with the bare words in quotedWords quoted and
	// derived tables named as DataFusion names them (derivedAliases).
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
	tkPunct                   // an operator or punctuation: one to three characters
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

// twoCharOps are the two-character operators read as one token (and "->>").
var twoCharOps = map[string]bool{"!=": true, "<>": true, "==": true, "<=": true, ">=": true, "||": true, "<<": true, ">>": true, "->": true}

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
			switch {
			case strings.HasPrefix(q[i:], "->>"):
				n = 3
			case i+1 < len(q) && twoCharOps[q[i:i+2]]:
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
	var edits []sqlEdit
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
				edits = append(edits, sqlEdit{start: t.start, end: t.end, text: `"` + t.text + `"`})
			}
			out.idents[word] = true
		}
		out.tokens = append(out.tokens, t)
	}
	edits = append(edits, derivedAliases(out.tokens)...)
	slices.SortStableFunc(edits, func(a, b sqlEdit) int { return a.start - b.start })
	var rewritten strings.Builder
	copied := 0 // q[:copied] is in rewritten
	for _, e := range edits {
		rewritten.WriteString(q[copied:e.start])
		rewritten.WriteString(e.text)
		copied = e.end
	}
	rewritten.WriteString(q[copied:])
	out.sql = rewritten.String()
	return out, nil
}

// sqlEdit replaces q[start:end] with text (an insertion when start == end).
type sqlEdit struct {
	start, end int
	text       string
}

// derivedAliases names derived tables the way DataFusion sees them. A derived table without
// an alias of its own keeps, in DataFusion, the qualifier of its single source, so that the
// CLI's count query "SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000)
// WHERE inv.target_service_name IN (…)" can name inv outside the parentheses; to SQLite the
// derived table is anonymous and inv unknown there. So a parenthesised SELECT after FROM or
// JOIN that has no alias, reads from one table (or one such derived table) and whose
// source's qualifier X the query uses outside it ("X.col") gets " AS X" after its closing
// parenthesis. Inner derived tables come first, so a nested one passes its name outwards.
func derivedAliases(toks []token) []sqlEdit {
	closer, froms := parenIndex(toks)
	var opens []int
	for i, t := range toks {
		if t.is("(") && i > 0 && (toks[i-1].is("from") || toks[i-1].is("join")) &&
			i+1 < len(toks) && toks[i+1].is("select") && closer[i] > 0 {
			opens = append(opens, i)
		}
	}
	slices.SortFunc(opens, func(a, b int) int { return closer[a] - closer[b] })
	quals := qualifierSpans(toks)
	added := map[int]string{} // the alias given to the derived table opened at that index
	var edits []sqlEdit
	for _, open := range opens {
		end := closer[open]
		if _, aliased := aliasAt(toks, end+1); aliased {
			continue
		}
		name, ok := singleSourceName(toks, open+1, end, closer, froms, added)
		if !ok || !quals.outside(name, open, end) {
			continue
		}
		added[open] = name
		edits = append(edits, sqlEdit{start: toks[end].end, end: toks[end].end, text: " AS " + quoteIdent(name)})
	}
	return edits
}

// parenIndex maps, in one pass, the index of each "(" to that of its ")" (closer; absent
// when unbalanced) and to that of the first FROM directly inside it, not in a deeper pair
// of parentheses (froms): looking for each derived table's FROM in turn took a scan of
// every nested one.
func parenIndex(toks []token) (closer, froms map[int]int) {
	closer, froms = map[int]int{}, map[int]int{}
	var stack []int
	for i, t := range toks {
		switch {
		case t.is("("):
			stack = append(stack, i)
		case t.is(")") && len(stack) > 0:
			closer[stack[len(stack)-1]] = i
			stack = stack[:len(stack)-1]
		case t.is("from") && len(stack) > 0:
			if _, ok := froms[stack[len(stack)-1]]; !ok {
				froms[stack[len(stack)-1]] = i
			}
		}
	}
	return closer, froms
}

// aliasAt reads an alias of a FROM item at toks[i] ("AS a", or a bare a that is no keyword
// following a FROM item) and returns its name.
func aliasAt(toks []token, i int) (string, bool) {
	if i < len(toks) && toks[i].is("as") {
		i++
	} else if i < len(toks) && toks[i].kind == tkWord && clauseWord(toks[i]) {
		return "", false
	}
	if i < len(toks) && (toks[i].kind == tkWord || toks[i].kind == tkIdent) {
		return identName(toks[i]), true
	}
	return "", false
}

// singleSourceName reads the SELECT in toks[from:end] and returns the qualifier of its
// only source: the alias, else the table's name, or the name of a derived table (its own
// alias or the one added to it). A join, a list of sources or a schema-qualified table
// has no single qualifier.
func singleSourceName(toks []token, from, end int, closer, froms map[int]int, added map[int]string) (string, bool) {
	i, ok := froms[from-1]
	if !ok || i >= end || i+1 >= end {
		return "", false
	}
	i++
	var name string
	switch t := toks[i]; {
	case t.is("("):
		close := closer[i]
		if close == 0 || close >= end {
			return "", false
		}
		if name, ok = aliasAt(toks[:end], close+1); !ok {
			if name, ok = added[i]; !ok {
				return "", false
			}
		}
		i = close + 1
	case t.kind == tkWord || t.kind == tkIdent:
		if i+1 < end && toks[i+1].is(".") {
			return "", false
		}
		name = identName(t)
		i++
	default:
		return "", false
	}
	if alias, ok := aliasAt(toks[:end], i); ok {
		name = alias
		if toks[i].is("as") {
			i++
		}
		i++
	}
	if i < end && (toks[i].is(",") || joinWord(toks[i])) {
		return "", false // a second source
	}
	return name, name != ""
}

// qualifierSpan is where a qualifier ("name.") first and last occurs in the tokens.
type qualifierSpan struct{ first, last int }

type qualifierSet map[string]qualifierSpan

// qualifierSpans finds every qualifier in one pass, so that each derived table's check is
// quick: a query with thousands of derived tables must not take a scan of it for each.
func qualifierSpans(toks []token) qualifierSet {
	out := qualifierSet{}
	for i := 0; i+1 < len(toks); i++ {
		name := identName(toks[i])
		if name == "" || !toks[i+1].is(".") {
			continue
		}
		if s, ok := out[name]; ok {
			s.last = i
			out[name] = s
		} else {
			out[name] = qualifierSpan{first: i, last: i}
		}
	}
	return out
}

// outside reports whether "name." occurs outside toks[open:end+1].
func (q qualifierSet) outside(name string, open, end int) bool {
	s, ok := q[name]
	return ok && (s.first < open || s.last > end)
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' }

// booleanItems tells, for each item of the query's select list, whether its value is a
// boolean: SQLite has no boolean type and answers 1 or 0 where DataFusion answers true or
// false, and only a column read straight from a BOOLEAN table column keeps that in its
// declared type. An item is a boolean when, outside parentheses and CASE … END, it has an
// operator whose result is one: a comparison, IS [NOT] [NULL], ISNULL, NOTNULL, NOT, AND,
// OR, IN, LIKE, GLOB, REGEXP, MATCH, BETWEEN or EXISTS. These bind looser than every other
// operator, so such an item is one of them at its top ("dp.id IS NOT NULL AS
// pinned_deployment_exists", "1 = 1"); so are the literals TRUE and FALSE and such an item
// in parentheses. Functions and CASE are not looked into, nor are columns of a sub-select.
// The answer is nil when the items cannot be matched to result columns (a star).
func booleanItems(toks []token) []bool {
	sel := findTop(toks, 0, "select")
	if sel < 0 {
		return nil
	}
	start := sel + 1
	if start < len(toks) && (toks[start].is("distinct") || toks[start].is("all")) {
		start++
	}
	end := walkTop(toks, start, func(t token) bool {
		return !slices.ContainsFunc([]string{"from", "where", "group", "having", "order", "limit", "union", "intersect", "except", "window"}, t.is)
	})
	var out []bool
	for _, item := range splitTop(toks[start:end], ",") {
		if n := len(item); n == 0 || item[n-1].is("*") {
			return nil
		}
		if as := walkTop(item, 0, func(t token) bool { return !t.is("as") }); as < len(item) {
			item = item[:as]
		}
		out = append(out, booleanExpr(item))
	}
	return out
}

// booleanOps are the words of booleanItems' operators; the symbols are booleanSymbols.
var (
	booleanOps     = []string{"is", "isnull", "notnull", "not", "and", "or", "in", "like", "glob", "regexp", "match", "between", "exists"}
	booleanSymbols = []string{"=", "==", "!=", "<>", "<", ">", "<=", ">="}
)

func booleanExpr(e []token) bool {
	for len(e) >= 2 && e[0].is("(") && walkTop(e, 1, func(token) bool { return true }) == len(e)-1 {
		e = e[1 : len(e)-1] // the whole item in parentheses
		if len(e) > 0 && (e[0].is("select") || e[0].is("with") || e[0].is("values")) {
			return false // a scalar sub-select
		}
	}
	if (len(e) == 1 || len(e) == 2 && (e[1].kind == tkWord || e[1].kind == tkIdent)) && (e[0].is("true") || e[0].is("false")) {
		return true // a literal, with or without a bare alias
	}
	cases := 0
	return walkTop(e, 0, func(t token) bool {
		switch {
		case t.is("case"):
			cases++
		case t.is("end") && cases > 0:
			cases--
		case cases > 0:
		case t.kind == tkWord && slices.ContainsFunc(booleanOps, t.is),
			t.kind == tkPunct && slices.ContainsFunc(booleanSymbols, t.is):
			return false
		}
		return true
	}) < len(e)
}
