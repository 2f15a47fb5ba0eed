package admin

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

// TestInformationSchemaMatchesRestate compares information_schema.columns with the recording
// of restate-server 1.7.12's (testdata/reference_1.7.12_columns.txt): every table we serve
// has Restate's columns, in Restate's order, with Restate's type names and nullability.
func TestInformationSchemaMatchesRestate(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/reference_1.7.12_columns.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		table, rest, _ := strings.Cut(line, "\t")
		want[table] = append(want[table], rest)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	a := startQueryAdmin(t, fixtureSource())
	rows := jsonRows(t, a.query(t, "/query", "application/json",
		`SELECT table_catalog, table_name, column_name, data_type, is_nullable FROM information_schema.columns ORDER BY table_name, ordinal_position`))
	got := map[string][]string{}
	for _, r := range rows {
		if r["table_catalog"] != "restate" {
			t.Fatalf("catalog of %v, want restate", r)
		}
		table := r["table_name"].(string)
		got[table] = append(got[table], strings.Join([]string{r["column_name"].(string), r["data_type"].(string), r["is_nullable"].(string)}, "\t"))
	}
	for _, tb := range queryTables {
		if strings.Join(got[tb.name], "\n") != strings.Join(want[tb.name], "\n") {
			t.Errorf("columns of %s\n got %q\nwant %q", tb.name, got[tb.name], want[tb.name])
		}
	}
	if len(got) != len(want) {
		t.Errorf("tables %d, want the %d recorded", len(got), len(want))
	}
}

// TestQueryColumnRendering covers the JSON of the column types Restate has and SQLite lacks:
// unsigned 64-bit partition keys beyond 2^63, lists of numbers and NULL lists.
func TestQueryColumnRendering(t *testing.T) {
	t.Parallel()
	src := fixtureSource()
	src.tables["sys_invocation_status"] = []map[string]any{{
		"partition_key": uint64(13453369920534753711), "id": invB, "status": "suspended",
		"suspended_waiting_for_completions": []uint32{2}, "suspended_waiting_for_signals": []uint32{},
		"suspended_waiting_future_json": `{"Unknown":[{"Single":{"CompletionId":2}}]}`, "completion_retention": "PT86400S",
	}, {"partition_key": uint64(7), "id": invA, "status": "invoked"}}
	a := startQueryAdmin(t, src)
	r := a.query(t, "/query", "application/json", `SELECT partition_key, suspended_waiting_for_completions, suspended_waiting_for_signals, completion_retention FROM sys_invocation_status ORDER BY id`)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	want := `{"rows":[{"partition_key":7},{"partition_key":13453369920534753711,"suspended_waiting_for_completions":[2],"suspended_waiting_for_signals":[],"completion_retention":"PT86400S"}]}`
	if invA > invB {
		want = `{"rows":[{"partition_key":13453369920534753711,"suspended_waiting_for_completions":[2],"suspended_waiting_for_signals":[],"completion_retention":"PT86400S"},{"partition_key":7}]}`
	}
	if string(r.body) != want {
		t.Fatalf("rows\n got %s\nwant %s", r.body, want)
	}
}

// TestArrowListColumns: list columns reach Arrow clients (the CLI's restate sql, --json
// included) as lists, as from Restate, not as the JSON text they are stored as.
func TestArrowListColumns(t *testing.T) {
	t.Parallel()
	src := fixtureSource()
	src.tables["sys_invocation_status"] = []map[string]any{{
		"id": invB, "status": "suspended",
		"suspended_waiting_for_completions": []uint32{2, 5}, "suspended_waiting_for_signals": []uint32{},
	}}
	a := startQueryAdmin(t, src)
	schema, cols := arrowColumns(t, a.query(t, "/query", "*/*", `SELECT services FROM sys_deployment`))
	if got := schema.Field(0).Type; !arrow.TypeEqual(got, arrow.ListOf(arrow.BinaryTypes.String)) {
		t.Errorf("services has type %s, want a list of strings", got)
	}
	if got, want := mustJSON(cols[0]), `[["Greeter","Counter","Signup"]]`; got != want {
		t.Errorf("services %s, want %s", got, want)
	}
	schema, cols = arrowColumns(t, a.query(t, "/query", "*/*",
		`SELECT suspended_waiting_for_completions, suspended_waiting_for_signals FROM sys_invocation_status`))
	for i, f := range schema.Fields() {
		if !arrow.TypeEqual(f.Type, arrow.ListOf(arrow.PrimitiveTypes.Uint32)) {
			t.Errorf("%s has type %s, want a list of UInt32", f.Name, f.Type)
		}
		if got, want := mustJSON(cols[i]), [...]string{`[[2,5]]`, `[[]]`}[i]; got != want {
			t.Errorf("%s %s, want %s", f.Name, got, want)
		}
	}
}
