package admin

import (
	"slices"
	"testing"
)

// FuzzScanSQL feeds arbitrary text through the query's rewrite and boolean detection: none
// may panic, the rewrite keeps every string literal as it was and only inserts outside
// them, and rewriting the rewritten query changes nothing more.
func FuzzScanSQL(f *testing.F) {
	for _, q := range []string{
		"SELECT COUNT(1) FROM (SELECT * FROM sys_invocation inv LIMIT 50000) WHERE inv.target_service_name IN ('a')",
		"SELECT * FROM (SELECT * FROM (SELECT * FROM sys_invocation inv)) WHERE inv.id = 'x'",
		"SELECT index, 'it''s (select' FROM (SELECT * FROM sys_journal j) WHERE j.id = ')' -- (SELECT\n",
		"SELECT dp.id IS NOT NULL AS pinned_deployment_exists, (1 = 1), CASE WHEN a = 1 THEN 2 END FROM t",
		"WITH x AS (SELECT 1) SELECT TRUE t, NOT x.a, x.a IN (1) FROM x /* ( */",
		"SELECT [a]]b], `c`, \"d\"\"e\" FROM (SELECT * FROM \"T\" ä)ä WHERE ä.x ->> '$.a'",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		text, err := scanSQL(q)
		if err != nil {
			return
		}
		_ = booleanItems(text.tokens)
		again, err := scanSQL(text.sql)
		if err != nil {
			t.Fatalf("rewritten %q of %q does not scan: %v", text.sql, q, err)
		}
		if again.sql != text.sql {
			t.Fatalf("rewrite not idempotent: %q -> %q -> %q", q, text.sql, again.sql)
		}
		strs := func(toks []token) []string {
			var out []string
			for _, t := range toks {
				if t.kind == tkString {
					out = append(out, t.text)
				}
			}
			return out
		}
		if a, b := strs(text.tokens), strs(again.tokens); !slices.Equal(a, b) {
			t.Fatalf("rewrite of %q changed its strings: %q -> %q", q, a, b)
		}
	})
}
