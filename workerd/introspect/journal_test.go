package introspect

import (
	"context"
	"runtime"
	"testing"

	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rowscan"
	"gorestate.dev/workerd/store"
)

// bigJournal stores one invocation's journal of n Run completions of size bytes each.
func bigJournal(t *testing.T, n, size int) (*store.Partition, []byte) {
	t.Helper()
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p := db.Partition(0)
	id := newID("big journal")
	val := make([]byte, size)
	for i := range val {
		val[i] = byte(200 + i%50) // three digits a byte in JSON
	}
	txn := p.Begin()
	for i := range uint32(n) {
		nt := protocol.CompletionNotification(i).WithValue(val)
		txn.PutJournalEntry(id, i, store.JournalEntry{Type: uint16(protocol.RunCompletionType), Payload: nt.Marshal(), AppendedAt: 1})
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	return p, id
}

// scanAlloc scans sys_journal and returns its rows and the bytes the scan allocated.
func scanAlloc(t *testing.T, p *store.Partition, scan rowscan.Scan) ([]map[string]any, uint64) {
	t.Helper()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	rows, err := Scan(context.Background(), []*store.Partition{p}, TableJournal, scan)
	runtime.ReadMemStats(&m1)
	if err != nil {
		t.Fatal(err)
	}
	return rows, m1.TotalAlloc - m0.TotalAlloc
}

// entry_json renders payloads as arrays of numbers, four bytes of JSON to a byte: a query
// that does not read it (SELECT id, index, entry_type …) must not build it for every entry
// it scans, and one that does should not copy it over and over. Before, a scan of the
// columns the CLI lists allocated some 36 times the journal's bytes, the one of every column
// as much.
func TestJournalScanBuildsOnlyWhatIsAskedFor(t *testing.T) {
	const n, size = 200, 10_000
	p, _ := bigJournal(t, n, size)
	journal := uint64(n * size)

	rows, narrow := scanAlloc(t, p, rowscan.Scan{Columns: []string{"id", "index", "entry_type"}})
	if len(rows) != n || rows[0]["entry_type"] != "Notification: Run" {
		t.Fatalf("%d rows, first %v", len(rows), rows[0])
	}
	if narrow > 4*journal {
		t.Errorf("a scan of id, index and entry_type allocated %d bytes for a journal of %d (%.1f times)", narrow, journal, float64(narrow)/float64(journal))
	}

	rows, full := scanAlloc(t, p, rowscan.All)
	js, _ := rows[0]["entry_json"].(string)
	if len(rows) != n || len(js) < 4*size || rows[0]["entry_lite_json"] == nil || rows[0]["raw"] == nil {
		t.Fatalf("%d rows, first has entry_json of %d bytes: %v", len(rows), len(js), rows[0]["entry_lite_json"])
	}
	// The rows hold the payload and its JSON (5 bytes a byte); building them costs a few
	// copies of the JSON more.
	if full > 24*journal {
		t.Errorf("a scan of every column allocated %d bytes for a journal of %d (%.1f times)", full, journal, float64(full)/float64(journal))
	}
}
