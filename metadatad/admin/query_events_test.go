package admin

import (
	"testing"
	"time"
)

// sys_journal_events answers with Restate's columns; the web UI's queries of it (the last
// transient error of an invocation, errors grouped by message with ->>) run.
func TestQueryJournalEvents(t *testing.T) {
	t.Parallel()
	src := fixtureSource()
	// '<', '&' and U+2028 go out as they are, as Restate's JSON writer leaves them.
	te := `{"ty":"TransientError","error_code":500,"error_message":"boom <1> & ` + "\u2028" + `","restate_doc_error_code":"RT0007"}`
	src.tables["sys_journal_events"] = []map[string]any{
		{"partition_key": uint64(13453369920534753711), "id": invB, "after_journal_entry_index": int64(0), "appended_at": at(time.Second),
			"event_type": "TransientError", "event_json": te},
		{"partition_key": uint64(13453369920534753711), "id": invB, "after_journal_entry_index": int64(2), "appended_at": at(2 * time.Second),
			"event_type": "Paused", "event_json": `{"ty":"Paused"}`},
		{"partition_key": uint64(7), "id": invA, "after_journal_entry_index": int64(0), "appended_at": at(3 * time.Second),
			"event_type": "TransientError", "event_json": te},
	}
	a := startQueryAdmin(t, src)
	r := a.query(t, "/query", "application/json", `SELECT partition_key, after_journal_entry_index, appended_at, event_type, event_json FROM sys_journal_events WHERE id = '`+invB+`' ORDER BY appended_at`)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	want := `{"rows":[{"partition_key":13453369920534753711,"after_journal_entry_index":0,"appended_at":"` + at(time.Second).Format("2006-01-02T15:04:05.000Z") +
		`","event_type":"TransientError","event_json":"{\"ty\":\"TransientError\",\"error_code\":500,\"error_message\":\"boom <1> & ` + "\u2028" + `\",\"restate_doc_error_code\":\"RT0007\"}"},` +
		`{"partition_key":13453369920534753711,"after_journal_entry_index":2,"appended_at":"` + at(2*time.Second).Format("2006-01-02T15:04:05.000Z") +
		`","event_type":"Paused","event_json":"{\"ty\":\"Paused\"}"}]}`
	if string(r.body) != want {
		t.Fatalf("rows\n got %s\nwant %s", r.body, want)
	}
	rows := jsonRows(t, a.query(t, "/query", "application/json", `SELECT COUNT(*) AS n, event_json ->> 'error_message' AS msg FROM sys_journal_events WHERE event_type = 'TransientError' GROUP BY msg`))
	if len(rows) != 1 || rows[0]["msg"] != "boom <1> & \u2028" || rows[0]["n"] != float64(2) {
		t.Fatalf("grouped by message: %v", rows)
	}
}
