package introspect

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gorestate.dev/shared/rowscan"
	"gorestate.dev/workerd/store"
)

// The newest n invocations over many partitions hold n rows (plus ties) at any time: each
// partition's rows are trimmed to n when it ends. The budget must count the rows held, not
// every row offered: here 8 partitions of 100 invocations, newest 50 first, with room for
// 200 rows, is refused although no more than 100 rows are ever held. With 24 partitions
// and the real budget, ORDER BY created_at DESC LIMIT 11000 fails on a store that holds
// 11000 rows (about 11 MiB).
func TestNewestFirstBudgetCountsOnlyHeldRows(t *testing.T) {
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var parts []*store.Partition
	for pid := range uint32(8) {
		p := db.Partition(pid)
		if _, err := p.BuildIndexes(); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
		txn := p.Begin()
		for i := range 100 {
			must(t, txn.PutStatus(newID(fmt.Sprintf("%d-%d", pid, i)), &store.Status{Phase: store.PhaseCompleted, Target: greeter,
				CreatedAt: ms(time.Duration(int(pid)*100+i) * time.Millisecond)}, nil))
		}
		must(t, txn.Commit())
	}
	ctx := context.Background()
	newest := rowscan.Scan{Limit: 50, NewestFirst: true}
	rows, err := Scan(ctx, parts, TableInvocation, newest)
	if err != nil || len(rows) != 50 {
		t.Fatalf("%d rows, %v", len(rows), err)
	}
	old := rowscan.MaxBytes
	rowscan.MaxBytes = 200 * newest.EstimateSize(rows[0])
	defer func() { rowscan.MaxBytes = old }()
	if rows, err := Scan(ctx, parts, TableInvocation, newest); err != nil || len(rows) != 50 {
		t.Fatalf("newest 50 with room for 200 rows: %d rows, %v", len(rows), err)
	}
}
