package admin

import "testing"

// A derived table without an alias is named after its source's qualifier when the query
// uses that qualifier outside it, as DataFusion resolves it; nothing else is touched.
func TestScanSQLNamesDerivedTables(t *testing.T) {
	tests := []struct{ in, want string }{
		{`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000) WHERE inv.target_service_name IN ('Counter')`,
			`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000) AS "inv" WHERE inv.target_service_name IN ('Counter')`},
		// The CLI's spelling, newlines and all.
		{"SELECT COUNT(1) FROM (SELECT\n            *\n        FROM sys_invocation inv\n        LIMIT 50000\n        )\n        WHERE inv.completion_result = 'failure'",
			"SELECT COUNT(1) FROM (SELECT\n            *\n        FROM sys_invocation inv\n        LIMIT 50000\n        ) AS \"inv\"\n        WHERE inv.completion_result = 'failure'"},
		{`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation AS Inv) WHERE INV.status = 'paused'`,
			`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation AS Inv) AS "inv" WHERE INV.status = 'paused'`},
		{`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation LIMIT 5) WHERE sys_invocation.status = 'paused'`,
			`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation LIMIT 5) AS "sys_invocation" WHERE sys_invocation.status = 'paused'`},
		// Nested: the inner one is named first and passes the name on.
		{`SELECT inv.id FROM (SELECT * FROM (SELECT * FROM sys_invocation inv)) WHERE inv.status = 'paused'`,
			`SELECT inv.id FROM (SELECT * FROM (SELECT * FROM sys_invocation inv) AS "inv") AS "inv" WHERE inv.status = 'paused'`},
		{`SELECT s.id FROM sys_service x JOIN (SELECT * FROM sys_deployment s) ON s.id = x.deployment_id`,
			`SELECT s.id FROM sys_service x JOIN (SELECT * FROM sys_deployment s) AS "s" ON s.id = x.deployment_id`},
		// Unchanged: an alias of its own, no outside use, no single source, no derived table.
		{`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000) x WHERE x.status = 'paused'`, ""},
		{`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000) AS x WHERE x.status = 'paused'`, ""},
		{`SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000) WHERE status != 'completed'`, ""},
		{`SELECT COUNT(1) FROM (SELECT inv.id FROM sys_invocation inv WHERE inv.status = 'paused')`, ""},
		{`SELECT inv.id FROM (SELECT inv.id FROM sys_invocation inv JOIN sys_deployment dp ON dp.id = inv.pinned_deployment_id)`, ""},
		{`SELECT inv.id FROM (SELECT * FROM sys_invocation inv, sys_deployment dp)`, ""},
		{`SELECT inv.id FROM sys_invocation inv WHERE inv.target_service_name IN (SELECT name FROM sys_service inv)`, ""},
		{`SELECT "index" FROM (SELECT * FROM sys_journal sj) WHERE sj.index = 1`,
			`SELECT "index" FROM (SELECT * FROM sys_journal sj) AS "sj" WHERE sj."index" = 1`},
	}
	for _, tt := range tests {
		text, err := scanSQL(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		want := tt.want
		if want == "" {
			want = tt.in
		}
		if text.sql != want {
			t.Errorf("%s\n got %s\nwant %s", tt.in, text.sql, want)
		}
	}
}
