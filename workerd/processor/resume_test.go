package processor

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/workerd/store"
)

type resumeRecorder struct {
	nopInvoker
	resumed []string
}

func (r *resumeRecorder) Resume(_ Leadership, id []byte) { r.resumed = append(r.resumed, string(id)) }

// A new leader resumes every invoked invocation once, in pages, and none of the completed
// ones retained beside them.
func TestLeaderResumesInvokedInvocationsInPages(t *testing.T) {
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // after the processor's cleanup has stopped it (cleanups run last first)
	part := db.Partition(0)
	txn := part.Begin()
	want := map[string]bool{}
	for i := range 3*resumePage + 5 {
		id := fmt.Sprintf("inv-%05d", i)
		phase := store.PhaseCompleted
		if i%2 == 0 {
			phase = store.PhaseInvoked
			want[id] = true
		}
		if err := txn.PutStatus([]byte(id), &store.Status{Phase: phase}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	rec := &resumeRecorder{}
	l := &Leader{p: &Processor{cfg: Config{Store: part, Invoker: rec}, log: hclog.NewNullLogger()}}
	l.resumeInvoked(context.Background())
	if len(rec.resumed) != len(want) {
		t.Fatalf("resumed %d invocations, want %d", len(rec.resumed), len(want))
	}
	for _, id := range rec.resumed {
		if !want[id] {
			t.Fatalf("resumed %s twice or while not invoked", id)
		}
		delete(want, id)
	}
}
