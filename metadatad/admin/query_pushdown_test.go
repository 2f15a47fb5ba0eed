package admin

import (
	"reflect"
	"testing"

	"gorestate.dev/shared/rowscan"
)

func pushed(t *testing.T, q string) map[string]rowscan.Scan {
	t.Helper()
	text, err := scanSQL(q)
	if err != nil {
		t.Fatal(err)
	}
	return pushdown(text.tokens)
}

func notCompleted() rowscan.Filter {
	return rowscan.Filter{Column: "status", Op: rowscan.OpNotIn, Values: []string{"completed"}}
}

// The CLI's queries (PROTOCOL.md §4.1) reach the workers with their filters and limits.
func TestPushdownOfCLIQueries(t *testing.T) {
	inv := func(s rowscan.Scan) map[string]rowscan.Scan { return map[string]rowscan.Scan{"sys_invocation": s} }
	tests := []struct {
		q    string
		want map[string]rowscan.Scan
	}{
		{`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000 ) WHERE status != 'completed'`,
			inv(rowscan.Scan{Filters: []rowscan.Filter{notCompleted()}, Limit: 50000})},
		{`SELECT id FROM sys_invocation inv WHERE status != 'completed' ORDER BY inv.created_at DESC, inv.id LIMIT 100`,
			inv(rowscan.Scan{Filters: []rowscan.Filter{notCompleted()}, Limit: 100, NewestFirst: true})},
		{detailSelect + `WHERE status != 'completed' AND inv.id in ('inv_1', 'inv_2') ORDER BY inv.created_at DESC, inv.id`,
			inv(rowscan.Scan{Filters: []rowscan.Filter{notCompleted(), {Column: "id", Op: rowscan.OpIn, Values: []string{"inv_1", "inv_2"}}}})},
		{`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000 )`, inv(rowscan.Scan{Limit: 50000})},
		// The inner alias qualifies columns outside the sub-select (derivedAliases).
		{`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000 ) WHERE inv.target_service_name IN ('Counter') AND status != 'completed'`,
			inv(rowscan.Scan{Filters: []rowscan.Filter{{Column: "target_service_name", Op: rowscan.OpIn, Values: []string{"Counter"}}, notCompleted()}, Limit: 50000})},
		{`SELECT id FROM sys_invocation inv ORDER BY inv.created_at DESC, inv.id LIMIT 100`,
			inv(rowscan.Scan{Limit: 100, NewestFirst: true})},
		{`SELECT id FROM sys_invocation inv WHERE inv.id = 'inv_1' LIMIT 1`,
			inv(rowscan.Scan{Filters: []rowscan.Filter{{Column: "id", Op: rowscan.OpIn, Values: []string{"inv_1"}}}, Limit: 1})},
		{`SELECT target_service_name, target_handler_name, 'pending' as status, COUNT(1) as num_invocations, MIN(created_at) as oldest_at, FIRST_VALUE(id ORDER BY created_at ASC) as oldest_invocation FROM sys_invocation_status WHERE status == 'inboxed' AND target_service_name IN ('Greeter','Counter') GROUP BY target_service_name, target_handler_name`,
			map[string]rowscan.Scan{"sys_invocation_status": {Filters: []rowscan.Filter{
				{Column: "status", Op: rowscan.OpIn, Values: []string{"inboxed"}},
				{Column: "target_service_name", Op: rowscan.OpIn, Values: []string{"Greeter", "Counter"}}}}}},
		{`select key, value from state where service_name = 'Counter' and service_key = 'k1' ;`,
			map[string]rowscan.Scan{"state": {Filters: []rowscan.Filter{
				{Column: "service_name", Op: rowscan.OpIn, Values: []string{"Counter"}},
				{Column: "service_key", Op: rowscan.OpIn, Values: []string{"k1"}}}}}},
		{`SELECT sj.index, sj.entry_type FROM sys_journal sj WHERE sj.id = 'inv_1' ORDER BY index DESC LIMIT 100`,
			map[string]rowscan.Scan{"sys_journal": {Filters: []rowscan.Filter{{Column: "id", Op: rowscan.OpIn, Values: []string{"inv_1"}}}}}},
	}
	for _, tt := range tests {
		got := pushed(t, tt.q)
		for table, scan := range got {
			scan.Columns = nil // checked in TestPushdownColumns
			got[table] = scan
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s\n got %+v\nwant %+v", tt.q, got, tt.want)
		}
	}
}

// Shapes whose meaning a push-down could change get none, or only the part that is safe.
func TestPushdownStaysSafe(t *testing.T) {
	none := []string{
		`SELECT id FROM sys_invocation WHERE status = 'completed' OR id = 'x'`,
		`SELECT id FROM sys_invocation WHERE created_at BETWEEN '1' AND '2' AND status = 'paused'`,
		`SELECT id FROM sys_invocation WHERE id IN (SELECT id FROM sys_inbox)`,
		`SELECT id FROM sys_invocation UNION SELECT id FROM sys_inbox`,
		`SELECT id FROM sys_invocation LIMIT 1 + 1`,
		`SELECT id FROM sys_invocation WHERE status = "completed"`, // SQLite may take a column here
		`SELECT i.id FROM sys_invocation i JOIN sys_deployment d ON d.id = i.pinned_deployment_id WHERE id = 'x'`,
		`SELECT id FROM sys_invocation WHERE last_failure = 'boom'`,
		`SELECT id FROM sys_invocation WHERE status = 5`,
		`SELECT id FROM sys_invocation ORDER BY created_at DESC`,
		`SELECT id FROM main.sys_invocation WHERE id = 'x'`,
		// A self-join loads the table once for both sides.
		`SELECT a.id FROM sys_invocation a LEFT JOIN sys_invocation b ON b.id = a.invoked_by_id WHERE a.status = 'suspended'`,
		`SELECT a.id FROM sys_invocation a LEFT JOIN "sys_invocation" b ON b.id = a.invoked_by_id WHERE a.status = 'suspended'`,
		// A second join (here an inner one that can drop rows) is not understood.
		`SELECT i.id FROM sys_invocation i LEFT JOIN sys_deployment d ON d.id = i.pinned_deployment_id JOIN state s ON s.service_key = i.target_service_key WHERE i.status = 'paused' ORDER BY i.created_at DESC LIMIT 5`,
	}
	for _, q := range none {
		if got := pushed(t, q)["sys_invocation"]; len(got.Filters) != 0 || got.Limit != 0 {
			t.Errorf("%s: pushed %+v", q, got)
		}
	}
	filtersOnly := []string{
		`SELECT COUNT(*) FROM sys_invocation WHERE status = 'paused' LIMIT 1`,
		`SELECT DISTINCT target FROM sys_invocation WHERE status = 'paused' LIMIT 1`,
		`SELECT target, COUNT(*) FROM sys_invocation WHERE status = 'paused' GROUP BY target LIMIT 1`,
		`SELECT id FROM sys_invocation WHERE status = 'paused' AND created_at > '2026' LIMIT 1`,
		`SELECT id FROM sys_invocation WHERE status = 'paused' ORDER BY modified_at DESC LIMIT 1`,
		`SELECT id FROM sys_invocation WHERE status = 'paused' ORDER BY created_at LIMIT 1`,
		`SELECT i.id FROM sys_invocation i INNER JOIN sys_deployment d ON d.id = i.pinned_deployment_id WHERE i.status = 'paused' LIMIT 1`,
		// ORDER BY created_at means the output column of that name.
		`SELECT id, modified_at AS created_at FROM sys_invocation WHERE status = 'paused' ORDER BY created_at DESC LIMIT 3`,
		`SELECT id, modified_at created_at FROM sys_invocation WHERE status = 'paused' ORDER BY created_at DESC LIMIT 3`,
	}
	for _, q := range filtersOnly {
		got := pushed(t, q)["sys_invocation"]
		if len(got.Filters) != 1 || got.Limit != 0 {
			t.Errorf("%s: pushed %+v, want the status filter only", q, got)
		}
	}
}

// Workers are asked only for the columns a query mentions, unless a select list takes all.
func TestPushdownColumns(t *testing.T) {
	for q, want := range map[string][]string{
		`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000 ) WHERE status != 'completed'`: {"id", "status"},
		`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000 )`:                             {"id"},
		`SELECT id FROM sys_invocation inv ORDER BY inv.created_at DESC, inv.id LIMIT 100`:                 {"id", "created_at"},
		`select key, value from state where service_name = 'Counter' and service_key = 'k1'`:               {"service_name", "service_key", "key", "value"},
		`SELECT * FROM sys_invocation WHERE status = 'paused'`:                                             nil,
		`SELECT inv.* FROM sys_invocation inv`:                                                             nil,
		`SELECT id, * FROM sys_invocation`:                                                                 nil,
		`SELECT * FROM (SELECT * FROM sys_invocation LIMIT 5)`:                                             nil,
		`SELECT "Target", "ID" FROM sys_invocation`:                                                        {"id", "target"},
	} {
		if got := pushed(t, q)["sys_invocation"].Columns; q[:6] == "select" {
			if got := pushed(t, q)["state"].Columns; !reflect.DeepEqual(got, want) {
				t.Errorf("%s: columns %v, want %v", q, got, want)
			}
		} else if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: columns %v, want %v", q, got, want)
		}
	}
}

// Every query answers the same whether workers honour the pushed scans or send every row.
func TestPushdownKeepsAnswers(t *testing.T) {
	queries := []string{
		`SELECT id FROM sys_invocation inv WHERE status != 'completed' ORDER BY inv.created_at DESC, inv.id LIMIT 2`,
		`SELECT id FROM sys_invocation inv ORDER BY inv.created_at DESC, inv.id LIMIT 3`,
		`SELECT id FROM sys_invocation ORDER BY created_at DESC LIMIT 1 OFFSET 2`,
		`SELECT id FROM sys_invocation ORDER BY created_at DESC LIMIT 2, 2`,
		`SELECT COUNT(1) AS n FROM (SELECT * FROM sys_invocation inv LIMIT 3) WHERE status != 'completed'`,
		`SELECT COUNT(1) AS n FROM (SELECT * FROM sys_invocation inv LIMIT 50000) x WHERE x.status NOT IN ('completed', 'paused')`,
		`SELECT COUNT(1) AS n FROM (SELECT * FROM sys_invocation inv LIMIT 50000) WHERE inv.target_service_key IN ('k1') AND status != 'completed'`,
		`SELECT id FROM sys_invocation WHERE target_service_name IN ('Counter') AND target_service_key = 'k1' ORDER BY id`,
		`SELECT id FROM sys_invocation WHERE status = 'completed' OR status = 'paused' ORDER BY id`,
		`SELECT id, status FROM sys_invocation WHERE id IN ('` + invA + `', '` + invD + `', 'nonsense') ORDER BY id`,
		`SELECT id FROM sys_invocation WHERE id IN ('` + invA + `', '` + invA + `') ORDER BY id`,
		`SELECT "Target" FROM sys_invocation WHERE "ID" = '` + invA + `'`,
		`SELECT id, modified_at AS created_at FROM sys_invocation ORDER BY created_at DESC LIMIT 2`,
		`SELECT a.id, b.target FROM sys_invocation a LEFT JOIN sys_invocation b ON b.id = a.invoked_by_id WHERE a.status = 'pending' ORDER BY a.id`,
		`SELECT COUNT(*) AS n FROM sys_invocation WHERE status != 'completed' LIMIT 1`,
		`SELECT status, COUNT(*) AS n FROM sys_invocation WHERE target_service_name = 'Counter' GROUP BY status ORDER BY status LIMIT 1`,
		`SELECT inv.id, dp.id IS NOT NULL AS has_dp FROM sys_invocation inv LEFT JOIN sys_deployment dp ON dp.id = inv.pinned_deployment_id WHERE inv.status != 'completed' ORDER BY inv.created_at DESC, inv.id LIMIT 2`,
		`SELECT id FROM sys_invocation_status WHERE status IN ('inboxed', 'invoked') ORDER BY id`,
		`select key, value from state where service_name = 'Counter' and service_key = 'k1'`,
		`SELECT service_name, COUNT(1) AS n FROM sys_inbox WHERE service_name IN ('Counter') GROUP BY service_name`,
		`SELECT sj.index, sj.entry_type FROM sys_journal sj WHERE sj.id = '` + invB + `' ORDER BY index DESC LIMIT 1`,
	}
	honour, ignore := fixtureSource(), fixtureSource()
	ignore.ignoreScans = true
	a, b := startQueryAdmin(t, honour), startQueryAdmin(t, ignore)
	for _, q := range queries {
		got := jsonRows(t, a.query(t, "/query", "application/json", q))
		want := jsonRows(t, b.query(t, "/query", "application/json", q))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s\n pushed down: %s\n every row:   %s", q, mustJSON(got), mustJSON(want))
		}
	}
}
