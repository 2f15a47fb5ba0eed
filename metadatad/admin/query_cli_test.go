package admin

import (
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
)

var rewriteCLIQueries = flag.Bool("rewrite-cli-queries", false, "rewrite the answers in testdata/cli_1.7.12_invocations_list.txt")

const cliQueriesFile = "testdata/cli_1.7.12_invocations_list.txt"

// cliQuery is one block of the recording: a query as the CLI sent it, with its accept
// header, and the rows it should answer (JSON, one a line).
type cliQuery struct {
	accept string
	query  string
	want   []string
}

// readCLIQueries parses the recording; prose keeps the comments and blank lines between
// blocks, so that a rewrite changes only the answers.
func readCLIQueries(t *testing.T) (prose [][]string, queries []cliQuery) {
	t.Helper()
	b, err := os.ReadFile(cliQueriesFile)
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
	prose, queries := readCLIQueries(t)
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
		if err := os.WriteFile(cliQueriesFile, []byte(out.String()), 0o644); err != nil {
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
