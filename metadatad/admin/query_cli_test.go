package admin

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rulebook"
)

var rewriteCLIQueries = flag.Bool("rewrite-cli-queries", false, "rewrite the answers in testdata/cli_1.7.12_*.txt")

// cliQuery is one block of the recording: a query as the CLI sent it, with its accept
// header, and the rows it should answer (JSON, one a line).
type cliQuery struct {
	accept string
	query  string
	want   []string
}

// readCLIQueries parses a recording; prose keeps the comments and blank lines between
// blocks, so that a rewrite changes only the answers.
func readCLIQueries(t *testing.T, file string) (prose [][]string, queries []cliQuery) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	var cur []string
	for i := 0; i < len(lines); i++ {
		accept, ok := strings.CutPrefix(lines[i], "query ")
		if !ok {
			cur = append(cur, lines[i])
			continue
		}
		prose, cur = append(prose, cur), nil
		q := cliQuery{accept: accept}
		var sql []string
		for i++; i < len(lines) && lines[i] != "----"; i++ {
			sql = append(sql, lines[i])
		}
		q.query = strings.Join(sql, "\n")
		for i++; i < len(lines) && lines[i] != ""; i++ {
			q.want = append(q.want, lines[i])
		}
		i-- // the blank line belongs to the prose
		queries = append(queries, q)
	}
	return append(prose, cur), queries
}

// TestCLIInvocationsListQueries replays what `restate invocations list` sends for each of
// its filters over the fixture, in the CLI's order: the count (Arrow), the ids, and the
// details of those ids.
func TestCLIInvocationsListQueries(t *testing.T) {
	a := startQueryAdmin(t, fixtureSource())
	names := strings.NewReplacer("$dp", dpID, "$invA", invA, "$invB", invB, "$invC1", invC1,
		"$invC2", invC2, "$invD", invD, "$invE", invE)
	symbols := strings.NewReplacer(dpID, "$dp", invA, "$invA", invB, "$invB", invC1, "$invC1",
		invC2, "$invC2", invD, "$invD", invE, "$invE")
	replayCLIQueries(t, a, "testdata/cli_1.7.12_invocations_list.txt", names, symbols)
}

// TestCLIRulesQueries replays what `restate rules` sends to list and look up rules, over the
// book the recording describes, and expects restate-server 1.7.12's answers.
func TestCLIRulesQueries(t *testing.T) {
	at := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMilli()
	}
	changed := "changed"
	book := &rulebook.Book{Version: 12, Rules: map[string]rulebook.Rule{
		"*":           {Version: 5, Description: &changed, LastModified: at("2026-12-07T22:45:17.819Z")},
		"scope1/*":    {Version: 12, Concurrency: 7, LastModified: at("2026-12-07T22:45:18.423Z")},
		"scope1/t1/*": {Version: 3, Disabled: true, LastModified: at("2026-12-07T22:45:17.446Z")},
	}}
	b, err := book.Encode()
	if err != nil {
		t.Fatal(err)
	}
	store := newMemStore()
	if _, err := store.Put(context.Background(), metadata.KeyRuleBook, b, 0); err != nil {
		t.Fatal(err)
	}
	a := startAdmin(t, store)
	none := strings.NewReplacer()
	replayCLIQueries(t, a, "testdata/cli_1.7.12_rules.txt", none, none)
}

// replayCLIQueries sends the queries of a recording in order and compares the rows
// answered. names turns the recording's symbols into the fixture's values, symbols back.
// A block whose SQL holds $ids gets the ids the last block of ids alone answered.
func replayCLIQueries(t *testing.T, a *testAdmin, file string, names, symbols *strings.Replacer) {
	t.Helper()
	prose, queries := readCLIQueries(t, file)
	var ids []string // quoted, as the CLI lists them
	for n, q := range queries {
		sql := names.Replace(strings.ReplaceAll(q.query, "$ids", strings.Join(ids, ",")))
		var rows []map[string]any
		if q.accept == "application/json" {
			rows = jsonRows(t, a.query(t, "/v4/query", q.accept, sql))
		} else {
			schema, cols := arrowColumns(t, a.query(t, "/v4/query", q.accept, sql))
			for r := range cols[0] {
				row := map[string]any{}
				for c, f := range schema.Fields() {
					row[f.Name] = cols[c][r]
				}
				rows = append(rows, row)
			}
		}
		onlyIDs, answered := true, []string{}
		for _, r := range rows {
			id, ok := r["id"].(string)
			onlyIDs = onlyIDs && ok && len(r) == 1
			answered = append(answered, "'"+id+"'")
		}
		if onlyIDs && !strings.Contains(q.query, "$ids") {
			ids = answered
		}
		var got []string
		for _, r := range rows {
			got = append(got, symbols.Replace(mustJSON(r)))
		}
		if *rewriteCLIQueries {
			queries[n].want = got
			continue
		}
		if !reflect.DeepEqual(normalizeRows(t, got), normalizeRows(t, q.want)) {
			t.Errorf("%s\n got %s\nwant %s", q.query, strings.Join(got, "\n     "), strings.Join(q.want, "\n     "))
		}
	}
	if *rewriteCLIQueries {
		var out strings.Builder
		for n, p := range prose {
			for _, l := range p {
				out.WriteString(l + "\n")
			}
			if n < len(queries) {
				q := queries[n]
				out.WriteString("query " + q.accept + "\n" + q.query + "\n----\n")
				for _, l := range q.want {
					out.WriteString(l + "\n")
				}
			}
		}
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// normalizeRows decodes JSON rows, so that numbers compare alike whatever their spelling.
func normalizeRows(t *testing.T, rows []string) []any {
	t.Helper()
	var out []any
	for _, r := range rows {
		var v any
		if err := json.Unmarshal([]byte(r), &v); err != nil {
			t.Fatalf("row %s: %v", r, err)
		}
		out = append(out, v)
	}
	return out
}
