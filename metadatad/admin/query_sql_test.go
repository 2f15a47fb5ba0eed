package admin

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

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

func TestBooleanItems(t *testing.T) {
	tests := []struct {
		q    string
		want []bool
	}{
		{`select 1=1 as e`, []bool{true}},
		{`SELECT id, pinned_deployment_id is not null as y FROM sys_invocation`, []bool{false, true}},
		{`SELECT DISTINCT a < b, a <= b, a > b, a >= b, a == b, a != b, a <> b FROM t`,
			[]bool{true, true, true, true, true, true, true}},
		{`SELECT NOT a, a AND b, a OR b, a IN (1, 2), a NOT IN (SELECT x FROM y), a LIKE 'x%', a GLOB 'x*',
			a BETWEEN 1 AND 2, EXISTS (SELECT 1), a ISNULL, a NOTNULL, a IS b, TRUE, false x, (a = b) AS p FROM t`,
			[]bool{true, true, true, true, true, true, true, true, true, true, true, true, true, true, true}},
		{`SELECT a, a + 1, a || 'x', a << 2, a -> '$.k', a ->> '$.k', abs(a = b), CASE WHEN a = b THEN 1 ELSE 0 END,
			(SELECT count(*) FROM t WHERE a = b), CAST(a = b AS INTEGER), 'a = b', "in" FROM t`,
			[]bool{false, false, false, false, false, false, false, false, false, false, false, false}},
		{`SELECT CASE WHEN a THEN 1 END = 1 AS c FROM t WHERE a = 1 ORDER BY a = 1`, []bool{true}},
		{`WITH x AS (SELECT 1 = 1 AS b) SELECT b, b = 1 FROM x`, []bool{false, true}},
		{`SELECT count(*) AS n FROM t GROUP BY a HAVING a = 1`, []bool{false}},
		{`SELECT * FROM t`, nil},
		{`SELECT t.*, a = b FROM t`, nil},
		{`VALUES (1 = 1)`, nil},
	}
	for _, tt := range tests {
		text, err := scanSQL(tt.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := booleanItems(text.tokens); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s\n got %v\nwant %v", tt.q, got, tt.want)
		}
	}
}

// Naming derived tables takes time in proportion to the query: a body of thousands of
// joined derived tables (the admin API reads up to 1 MiB) took minutes before SQLite saw it.
func TestScanSQLManyDerivedTablesQuickly(t *testing.T) {
	for _, q := range []string{
		"SELECT 1 FROM (SELECT * FROM t x)" + strings.Repeat(" JOIN (SELECT * FROM t x)", 20000) + " WHERE x.a = 1",
		"SELECT 1 FROM " + strings.Repeat("(SELECT (SELECT 1 FROM ", 20000) + "t" + strings.Repeat("))", 20000),
	} {
		start := time.Now()
		if _, err := scanSQL(q); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("scanSQL of %d bytes took %v", len(q), d)
		}
	}
}
