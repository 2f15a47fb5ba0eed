package admin

import (
	"slices"
	"strconv"
	"strings"

	"gorestate.dev/shared/rowscan"
)

// Push-down: before loading a worker table, the engine works out from the query's tokens
// which of the table's rows the query can need (a rowscan.Scan), so that workers read
// those through their indexes instead of sending every retained invocation. Only shapes it
// fully understands are pushed down; anything else loads the whole table, as before. What
// is pushed must never change the answer: SQLite still runs the whole query over the rows
// it gets, so a pushed filter only has to be implied by the query, and a pushed limit must
// leave every row the query's own ORDER BY … LIMIT could pick.
//
// Understood shapes (keywords case-insensitive, `x` a worker table, `r` any table):
//
//	SELECT … FROM x [[AS] a] [[LEFT [OUTER] | INNER] JOIN r [[AS] b] ON …]
//	    [WHERE c AND c …] [GROUP BY …] [HAVING …] [ORDER BY …] [LIMIT n [OFFSET m]]
//	SELECT … FROM (SELECT * FROM x [[AS] a] [LIMIT n]) [[AS] b] [WHERE c AND c …]
//
// where a pushed condition c is `col = 'v'` (or ==, !=, <>), `col IN ('v', …)` or
// `col NOT IN ('v', …)` on one of the table's text columns in pushableColumns (qualified
// or not; in the second shape without b the qualifier is a, as DataFusion has it); other
// conditions stay with SQLite. An OR, BETWEEN or CASE at the top of the WHERE clause stops
// every push of it. A limit is pushed only when every condition was, nothing aggregates or
// groups, and the join keeps every row of x: `ORDER BY created_at DESC [, id [ASC]] LIMIT n`
// as the newest n (with ties) of the invocation tables, and LIMIT n without ORDER BY as any
// n rows. In the second shape the inner LIMIT n picks n arbitrary rows; the pushed filter
// makes them rows that pass the outer WHERE, which is one of the answers the query allows
// (the CLI counts unfinished invocations with it).

// pushableColumns are the text columns a worker can filter on before building the table:
// their values come from the store alone (sys_invocation's status, which the invoker may
// amend, is checked again by the worker after that).
var pushableColumns = map[string][]string{
	"sys_invocation": {"id", "status", "target", "target_service_name", "target_service_key",
		"target_handler_name", "target_service_ty", "idempotency_key", "invoked_by", "invoked_by_id"},
	"sys_invocation_status": {"id", "status", "target", "target_service_name", "target_service_key",
		"target_handler_name", "target_service_ty", "idempotency_key", "invoked_by", "invoked_by_id"},
	"sys_journal":              {"id"},
	"sys_journal_events":       {"id", "event_type"},
	"state":                    {"service_name", "service_key", "key"},
	"sys_inbox":                {"service_name", "service_key", "id"},
	"sys_keyed_service_status": {"service_name", "service_key", "invocation_id"},
	"sys_promise":              {"service_name", "service_key", "key"},
}

// pushdown returns the Scan of each worker table whose rows the query restricts; a table
// it does not name gets every row.
func pushdown(toks []token) map[string]rowscan.Scan {
	if n := len(toks); n > 0 && toks[n-1].kind == tkEnd {
		toks = toks[:n-1]
	}
	if len(toks) < 4 || !toks[0].is("select") {
		return nil
	}
	for _, t := range toks {
		if t.is("union") || t.is("intersect") || t.is("except") || t.is("window") || t.kind == tkEnd {
			return nil
		}
	}
	from := findTop(toks, 1, "from")
	if from < 0 || from+1 >= len(toks) {
		return nil
	}
	if toks[from+1].is("(") {
		return pushdownSubquery(toks, from)
	}
	if countWord(toks, "select") != 1 {
		return nil // sub-selects: not understood
	}
	q := &pushQuery{}
	i := q.source(toks, from+1)
	if i < 0 || q.table != "" && countName(toks, q.table) != 1 {
		return nil // a table named twice (a self-join) is loaded once for both uses
	}
	// [[LEFT [OUTER] | INNER] JOIN r [[AS] b] ON …]
	keepsRows := true
	switch {
	case i < len(toks) && toks[i].is("left"):
		i++
		if i < len(toks) && toks[i].is("outer") {
			i++
		}
		if i >= len(toks) || !toks[i].is("join") {
			return nil
		}
	case i < len(toks) && toks[i].is("inner"):
		keepsRows = false
		i++
		if i >= len(toks) || !toks[i].is("join") {
			return nil
		}
	case i < len(toks) && toks[i].is("join"):
		keepsRows = false
	}
	if i < len(toks) && toks[i].is("join") {
		other := &pushQuery{}
		if i = other.source(toks, i+1); i < 0 || i >= len(toks) || !toks[i].is("on") {
			return nil
		}
		q.joined = other.from
		on := i + 1
		i = nextClause(toks, on)
		if walkTop(toks[:i], on, func(t token) bool { return !t.is("join") && !t.is(",") }) < i {
			return nil // a second join: not understood
		}
	}
	clauses := map[string][]token{}
	order := []string{"where", "group", "having", "order", "limit"}
	for i < len(toks) {
		k := slices.IndexFunc(order, func(w string) bool { return toks[i].is(w) })
		if k < 0 {
			return nil
		}
		start := i + 1
		if order[k] == "group" || order[k] == "order" {
			if start >= len(toks) || !toks[start].is("by") {
				return nil
			}
			start++
		}
		end := nextClause(toks, start)
		clauses[order[k]] = toks[start:end]
		order = order[k+1:] // clauses come in this order, each once
		i = end
	}
	scan, all := q.filters(clauses["where"])
	selectList := toks[1:from]
	plain := all && keepsRows && clauses["group"] == nil && clauses["having"] == nil &&
		!slices.ContainsFunc(selectList, func(t token) bool { return t.is("(") || t.is("distinct") })
	if limit, ok := parseLimit(clauses["limit"]); plain && ok {
		switch ob := clauses["order"]; {
		case ob == nil:
			scan.Limit = limit
		case q.newestFirst(ob) && !aliases(selectList, "created_at"):
			scan.Limit, scan.NewestFirst = limit, true
		}
	}
	scan.Columns = neededColumns(toks, q.table, -1)
	if len(scan.Filters) == 0 && scan.Limit == 0 && scan.Columns == nil {
		return nil
	}
	return map[string]rowscan.Scan{q.table: scan}
}

// neededColumns lists the columns of table that the query can read: every column name it
// mentions (over-approximated: any word that names a column counts), or nil for all if a
// select list has a star other than the one at toks[innerStar].
func neededColumns(toks []token, name string, innerStar int) []string {
	i := slices.IndexFunc(queryTables, func(t table) bool { return t.name == name })
	if i < 0 {
		return nil
	}
	t := queryTables[i]
	seen := map[string]bool{"id": true} // never empty: an empty list means every column
	for i, tok := range toks {
		if tok.is("*") && i != innerStar && i > 0 &&
			(toks[i-1].is("select") || toks[i-1].is(",") || toks[i-1].is(".") || toks[i-1].is("distinct") || toks[i-1].is("all")) {
			return nil
		}
		if col := identName(tok); col != "" && tableHasColumn(name, col) {
			seen[col] = true
		}
	}
	if len(seen) >= len(t.cols) {
		return nil
	}
	var out []string
	for _, c := range t.cols {
		if seen[c.name] {
			out = append(out, c.name)
		}
	}
	return out
}

// pushdownSubquery handles SELECT … FROM (SELECT * FROM x [[AS] a] [LIMIT n]) [[AS] b]
// [WHERE …], toks[from] being the outer FROM.
func pushdownSubquery(toks []token, from int) map[string]rowscan.Scan {
	if countWord(toks, "select") != 2 {
		return nil
	}
	i := from + 2
	if i+3 >= len(toks) || !toks[i].is("select") || !toks[i+1].is("*") || !toks[i+2].is("from") {
		return nil
	}
	inner := &pushQuery{}
	if i = inner.source(toks, i+3); i < 0 || i >= len(toks) {
		return nil
	}
	limit := 0
	if toks[i].is("limit") {
		n, ok := parseLimit(toks[i+1 : nextClause(toks, i+1)])
		if !ok {
			return nil
		}
		limit, i = n, nextClause(toks, i+1)
	}
	if i >= len(toks) || !toks[i].is(")") {
		return nil
	}
	// The outer query sees the sub-select under its alias, with the table's columns;
	// without one, under the inner table's qualifier (derivedAliases).
	outer := &pushQuery{table: inner.table, name: inner.name}
	if i = outer.alias(toks, i+1); i < 0 {
		return nil
	}
	var where []token
	if i < len(toks) {
		if !toks[i].is("where") || nextClause(toks, i+1) != len(toks) {
			return nil
		}
		where = toks[i+1:]
	}
	scan, _ := outer.filters(where)
	scan.Limit = limit
	scan.Columns = neededColumns(toks, inner.table, from+3) // the inner SELECT * only feeds the outer query
	if len(scan.Filters) == 0 && limit == 0 && scan.Columns == nil {
		return nil
	}
	return map[string]rowscan.Scan{inner.table: scan}
}

// pushQuery is what the analysis knows of one FROM item.
type pushQuery struct {
	table  string // a worker table
	from   string // the table as named
	name   string // how columns are qualified: the alias, or the table's name
	joined string // the joined table, if any
}

// source reads "x [[AS] a]" at toks[i] and returns the index after it, or -1. A table that
// is not a worker table leaves q.table empty.
func (q *pushQuery) source(toks []token, i int) int {
	if i >= len(toks) || toks[i].kind != tkWord && toks[i].kind != tkIdent {
		return -1
	}
	name := toks[i].text
	if toks[i].kind == tkWord {
		name = strings.ToLower(name)
	}
	if i+1 < len(toks) && toks[i+1].is(".") {
		return -1 // schema-qualified
	}
	if _, ok := pushableColumns[name]; ok {
		q.table = name
	}
	q.from, q.name = name, name
	return q.alias(toks, i+1)
}

// alias reads an optional "[AS] a" at toks[i].
func (q *pushQuery) alias(toks []token, i int) int {
	if i < len(toks) && toks[i].is("as") {
		i++
		if i >= len(toks) || toks[i].kind != tkWord && toks[i].kind != tkIdent {
			return -1
		}
	}
	if i < len(toks) && (toks[i].kind == tkIdent || toks[i].kind == tkWord && !clauseWord(toks[i])) {
		q.name = toks[i].text
		if toks[i].kind == tkWord {
			q.name = strings.ToLower(q.name)
		}
		i++
	}
	return i
}

// clauseWord reports whether t is a keyword that can follow a FROM item.
func clauseWord(t token) bool {
	for _, w := range []string{"where", "group", "having", "order", "limit", "union", "intersect", "except", "window"} {
		if t.is(w) {
			return true
		}
	}
	return joinWord(t)
}

// joinWord reports whether t is a keyword of a join.
func joinWord(t token) bool {
	for _, w := range []string{"left", "inner", "join", "on", "outer", "cross", "natural", "right", "full", "using"} {
		if t.is(w) {
			return true
		}
	}
	return false
}

// filters turns the conditions of a WHERE clause into filters on q's table, and reports
// whether every condition became one.
func (q *pushQuery) filters(where []token) (rowscan.Scan, bool) {
	var scan rowscan.Scan
	if len(where) == 0 {
		return scan, true
	}
	stop := walkTop(where, 0, func(t token) bool { return !t.is("or") && !t.is("between") && !t.is("case") })
	if stop < len(where) {
		return rowscan.Scan{}, false
	}
	all := true
	for _, cond := range splitTop(where, "and") {
		f, ok := q.condition(cond)
		if ok {
			scan.Filters = append(scan.Filters, f)
		} else {
			all = false
		}
	}
	return scan, all
}

// condition reads one pushable condition.
func (q *pushQuery) condition(c []token) (rowscan.Filter, bool) {
	col, n := q.column(c)
	if n == 0 || n >= len(c) {
		return rowscan.Filter{}, false
	}
	rest := c[n:]
	switch {
	case len(rest) == 2 && (rest[0].is("=") || rest[0].is("==")) && rest[1].kind == tkString:
		return rowscan.Filter{Column: col, Op: rowscan.OpIn, Values: []string{rest[1].text}}, true
	case len(rest) == 2 && (rest[0].is("!=") || rest[0].is("<>")) && rest[1].kind == tkString:
		return rowscan.Filter{Column: col, Op: rowscan.OpNotIn, Values: []string{rest[1].text}}, true
	case rest[0].is("in"):
		if values, ok := stringList(rest[1:]); ok {
			return rowscan.Filter{Column: col, Op: rowscan.OpIn, Values: values}, true
		}
	case rest[0].is("not") && len(rest) > 1 && rest[1].is("in"):
		if values, ok := stringList(rest[2:]); ok {
			return rowscan.Filter{Column: col, Op: rowscan.OpNotIn, Values: values}, true
		}
	}
	return rowscan.Filter{}, false
}

// column reads a reference to a pushable column of q's table at the start of c: its name
// and how many tokens it took (0 if it is not one).
func (q *pushQuery) column(c []token) (string, int) {
	var name string
	n := 0
	switch {
	case len(c) >= 3 && c[1].is("."):
		qual := c[0].text
		if c[0].kind == tkWord {
			qual = strings.ToLower(qual)
		} else if c[0].kind != tkIdent {
			return "", 0
		}
		if qual != q.name {
			return "", 0
		}
		name, n = identName(c[2]), 3
	case len(c) >= 1:
		if q.joined != "" && tableHasColumn(q.joined, identName(c[0])) {
			return "", 0 // unqualified, and the joined table may have it
		}
		name, n = identName(c[0]), 1
	}
	if name == "" || !slices.Contains(pushableColumns[q.table], name) {
		return "", 0
	}
	return name, n
}

// newestFirst reports whether an ORDER BY is "created_at DESC [, id [ASC]]" on q's table,
// one of the invocation tables.
func (q *pushQuery) newestFirst(ob []token) bool {
	if q.table != "sys_invocation" && q.table != "sys_invocation_status" {
		return false
	}
	items := splitTop(ob, ",")
	if len(items) > 2 {
		return false
	}
	col, n := q.orderColumn(items[0])
	if col != "created_at" || n+1 != len(items[0]) || !items[0][n].is("desc") {
		return false
	}
	if len(items) == 2 {
		col, n := q.orderColumn(items[1])
		if col != "id" || n != len(items[1]) && (n+1 != len(items[1]) || !items[1][n].is("asc")) {
			return false
		}
	}
	return true
}

// orderColumn reads a column of q's table (pushable or not) at the start of c.
func (q *pushQuery) orderColumn(c []token) (string, int) {
	switch {
	case len(c) >= 3 && c[1].is(".") && strings.EqualFold(c[0].text, q.name):
		return identName(c[2]), 3
	case len(c) >= 1 && q.joined == "":
		return identName(c[0]), 1
	}
	return "", 0
}

// identName is the name a word or quoted identifier refers to; SQLite compares names
// case-insensitively, quoted or not, and every column name is lower case.
func identName(t token) string {
	if t.kind == tkWord || t.kind == tkIdent {
		return strings.ToLower(t.text)
	}
	return ""
}

// aliases reports whether a select list names an output column name (ORDER BY name then
// means that output, not the table's column): "x AS name" or "x name".
func aliases(selectList []token, name string) bool {
	for i, t := range selectList {
		if i == 0 || identName(t) != name {
			continue
		}
		switch prev := selectList[i-1]; {
		case prev.is(".") || prev.is(",") || prev.is("distinct") || prev.is("all"):
		default:
			return true
		}
	}
	return false
}

func tableHasColumn(table, col string) bool {
	for _, t := range queryTables {
		if t.name == table {
			return slices.ContainsFunc(t.cols, func(c column) bool { return c.name == col })
		}
	}
	return true // unknown: assume it may
}

// stringList reads "('a', 'b', …)" exactly.
func stringList(c []token) ([]string, bool) {
	if len(c) < 2 || !c[0].is("(") || !c[len(c)-1].is(")") {
		return nil, false
	}
	var out []string
	for i, t := range c[1 : len(c)-1] {
		if i%2 == 1 {
			if !t.is(",") {
				return nil, false
			}
			continue
		}
		if t.kind != tkString {
			return nil, false
		}
		out = append(out, t.text)
	}
	if len(c) > 2 && len(c)%2 != 1 { // "(a, )"
		return nil, false
	}
	return out, true
}

// parseLimit reads "n", "n OFFSET m" or "m, n" (SQLite's form) as the rows needed: n+m.
func parseLimit(c []token) (int, bool) {
	num := func(t token) (int, bool) {
		if t.kind != tkNumber {
			return 0, false
		}
		n, err := strconv.Atoi(t.text)
		return n, err == nil && n >= 0 && n <= 1<<30
	}
	switch {
	case len(c) == 1:
		return num(c[0])
	case len(c) == 3 && (c[1].is("offset") || c[1].is(",")):
		a, ok1 := num(c[0])
		b, ok2 := num(c[2])
		return a + b, ok1 && ok2
	}
	return 0, false
}

// walkTop calls more with each token from toks[i] on at parenthesis depth 0 (parentheses
// excluded) and returns the index of the first one it refuses, of a ")" that closes an
// enclosing level, or len(toks).
func walkTop(toks []token, i int, more func(token) bool) int {
	depth := 0
	for ; i < len(toks); i++ {
		switch t := toks[i]; {
		case t.is("("):
			depth++
		case t.is(")"):
			if depth == 0 {
				return i
			}
			depth--
		case depth == 0 && !more(t):
			return i
		}
	}
	return i
}

// findTop returns the index of the first word w at parenthesis depth 0 from i, or -1.
func findTop(toks []token, i int, w string) int {
	if i = walkTop(toks, i, func(t token) bool { return !t.is(w) }); i < len(toks) && toks[i].is(w) {
		return i
	}
	return -1
}

// nextClause returns the index of the next clause keyword at depth 0 from i (or the end,
// or a closing parenthesis of an enclosing level).
func nextClause(toks []token, i int) int {
	return walkTop(toks, i, func(t token) bool {
		return !t.is("where") && !t.is("group") && !t.is("having") && !t.is("order") && !t.is("limit")
	})
}

// splitTop splits c at the separator sep at depth 0.
func splitTop(c []token, sep string) [][]token {
	var out [][]token
	start := 0
	for {
		i := walkTop(c, start, func(t token) bool { return !t.is(sep) })
		if i >= len(c) || !c[i].is(sep) {
			return append(out, c[start:])
		}
		out = append(out, c[start:i])
		start = i + 1
	}
}

// countName counts the words and quoted identifiers naming name.
func countName(toks []token, name string) int {
	n := 0
	for _, t := range toks {
		if identName(t) == name {
			n++
		}
	}
	return n
}

func countWord(toks []token, w string) int {
	n := 0
	for _, t := range toks {
		if t.is(w) {
			n++
		}
	}
	return n
}
