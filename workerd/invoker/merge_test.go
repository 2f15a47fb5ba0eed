package invoker

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
	"gorestate.dev/workerd/store"
)

// recordingLeadership keeps what is appended and acknowledges it at once.
type recordingLeadership struct {
	mu   sync.Mutex
	recs []*logrecord.Record
}

func (l *recordingLeadership) NoteFailure([]byte, rpc.Failure)    {}
func (l *recordingLeadership) Partition() uint32                  { return 1 }
func (l *recordingLeadership) Context() context.Context           { return context.Background() }
func (l *recordingLeadership) Snapshot() (*store.Snapshot, error) { return nil, fmt.Errorf("unused") }
func (l *recordingLeadership) WaitApplied(context.Context, bifrost.LSN) error {
	return nil
}
func (l *recordingLeadership) AppendAsync(r *logrecord.Record, done func(bifrost.LSN, error)) {
	l.mu.Lock()
	l.recs = append(l.recs, r)
	n := len(l.recs)
	l.mu.Unlock()
	done(bifrost.LSN(n), nil)
}

func entry(payload string) logrecord.Entry {
	return logrecord.Entry{Type: 0x0403, Payload: []byte(payload)}
}

// Effects emitted before a flush become one record, in order, ending with the terminal kind;
// an effect after a terminal one, or one that would make the record too large, starts a new
// record. Only the first record pins the deployment.
func TestEffectsOfABurstAreMerged(t *testing.T) {
	l := &recordingLeadership{}
	a := &run{t: &task{l: l, id: []byte("inv")}, dp: &schema.Deployment{ID: "dp_1"}, version: 5, st: &store.Status{Attempt: 2}}
	a.emit(&logrecord.InvokerEffect{Entries: []logrecord.Entry{entry("set")}})
	a.emit(&logrecord.InvokerEffect{Entries: []logrecord.Entry{entry("output")}})
	a.emit(&logrecord.InvokerEffect{Kind: logrecord.EffectEnd})
	a.emit(&logrecord.InvokerEffect{Entries: []logrecord.Entry{entry("late")}})
	big := string(bytes.Repeat([]byte("x"), maxMergedBytes))
	a.emit(&logrecord.InvokerEffect{Entries: []logrecord.Entry{entry(big)}})
	if err := a.wait(); err != nil {
		t.Fatal(err)
	}
	if len(l.recs) != 3 {
		t.Fatalf("%d records, want 3 (the burst, then 'late', then the large one)", len(l.recs))
	}
	first := l.recs[0].InvokerEffect
	if len(first.Entries) != 2 || string(first.Entries[0].Payload) != "set" || string(first.Entries[1].Payload) != "output" ||
		first.Kind != logrecord.EffectEnd || first.DeploymentID != "dp_1" || first.Attempt != 2 || string(first.InvocationID) != "inv" {
		t.Fatalf("first record %+v", first)
	}
	if second := l.recs[1].InvokerEffect; len(second.Entries) != 1 || second.DeploymentID != "" {
		t.Fatalf("second record %+v", second)
	}
	if third := l.recs[2].InvokerEffect; len(third.Entries) != 1 || len(third.Entries[0].Payload) != maxMergedBytes {
		t.Fatalf("third record has %d entries", len(third.Entries))
	}
	if got := a.t.lastAppended(); got != 3 {
		t.Fatalf("last appended LSN %d, want 3", got)
	}
}

// An attempt pins its deployment with its first entry, as Restate's does: an effect without
// entries (a suspension or failure before any) names no deployment, since apply pins on
// whatever deployment a record names.
func TestEffectWithoutEntriesNamesNoDeployment(t *testing.T) {
	l := &recordingLeadership{}
	a := &run{t: &task{l: l, id: []byte("inv")}, dp: &schema.Deployment{ID: "dp_1"}, version: 5, st: &store.Status{Attempt: 1}}
	a.emit(&logrecord.InvokerEffect{Kind: logrecord.EffectSuspend, WaitingCompletions: []uint32{1}})
	a.flush()
	a.emit(&logrecord.InvokerEffect{Entries: []logrecord.Entry{entry("sleep")}})
	a.flush()
	if err := a.wait(); err != nil {
		t.Fatal(err)
	}
	if len(l.recs) != 2 {
		t.Fatalf("%d records, want 2", len(l.recs))
	}
	if first := l.recs[0].InvokerEffect; first.DeploymentID != "" || first.ProtocolVersion != 0 {
		t.Fatalf("an effect without entries names deployment %q v%d", first.DeploymentID, first.ProtocolVersion)
	}
	if second := l.recs[1].InvokerEffect; second.DeploymentID != "dp_1" || second.ProtocolVersion != 5 {
		t.Fatalf("the first effect with entries names deployment %q v%d, want dp_1 v5", second.DeploymentID, second.ProtocolVersion)
	}
}
