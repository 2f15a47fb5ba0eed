package processor

import (
	"context"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/store"
)

// restart runs restartInvoke on the fixture's store.
func (f *fixture) restart(id []byte) (*logrecord.Invoke, rpc.RestartOutcome) {
	f.t.Helper()
	old, err := ids.InvocationIDFromBytes(id)
	if err != nil {
		f.t.Fatal(err)
	}
	snap, err := f.part.Snapshot()
	if err != nil {
		f.t.Fatal(err)
	}
	defer snap.Release()
	inv, outcome, err := restartInvoke(snap, old, ids.NewInvocationID(old.PartitionKey).Bytes())
	if err != nil {
		f.t.Fatal(err)
	}
	return inv, outcome
}

// A restart is a new invocation of the same target with the input and headers of the old
// one's journal and its retentions, which introspection shows restarted from the old one.
func TestRestartAsNewStartsTheSameInputAgain(t *testing.T) {
	f := newFixture(t)
	id := newID("k")
	r := invokeRec(id, "EXCLUSIVE", "k", 0)
	r.Invoke.Headers = []logrecord.Header{{Key: "x-my", Value: "hv"}}
	r.Invoke.CompletionRetentionMs, r.Invoke.JournalRetentionMs = 10_000, 5_000
	f.apply(r)
	for _, rec := range outputEnd(id, `"done"`) {
		f.apply(rec)
	}

	inv, outcome := f.restart(id)
	if outcome != rpc.RestartDone {
		t.Fatalf("restart of a completed invocation with its journal: %s", outcome)
	}
	oldID, _ := ids.InvocationIDFromBytes(id)
	newID, err := ids.InvocationIDFromBytes(inv.InvocationID)
	if err != nil || newID == oldID || newID.PartitionKey != oldID.PartitionKey {
		t.Fatalf("new id %s (%v), old %s: want another id with the same partition key", newID, err, oldID)
	}
	if inv.Target != r.Invoke.Target || string(inv.Input) != "1" || len(inv.Headers) != 1 || inv.Headers[0] != r.Invoke.Headers[0] ||
		inv.CompletionRetentionMs != 10_000 || inv.JournalRetentionMs != 5_000 || inv.IdempotencyKey != "" || !inv.Send ||
		inv.InvokedBy != logrecord.InvokedByRestart+oldID.String() {
		t.Fatalf("restart record %+v", inv)
	}
	acts := f.apply(&logrecord.Record{Kind: logrecord.KindInvoke, Invoke: inv})
	if a, ok := has[ActInvoke](acts); !ok || string(a.ID) != string(inv.InvocationID) {
		t.Fatalf("the restarted invocation did not start: %v", acts)
	}
	st := f.status(inv.InvocationID)
	if st == nil || st.InvokedBy != inv.InvokedBy || st.JournalLen != 1 {
		t.Fatalf("restarted invocation's status: %+v", st)
	}
	if old := f.status(id); old == nil || old.Phase != store.PhaseCompleted || old.JournalLen != 2 {
		t.Fatalf("the restarted invocation changed: %+v", old)
	}
}

// The refusals, as Restate orders its checks.
func TestRestartAsNewRefusals(t *testing.T) {
	f := newFixture(t)

	running, queued := newID("k"), newID("k")
	f.apply(invokeRec(running, "EXCLUSIVE", "k", 0))
	f.apply(invokeRec(queued, "EXCLUSIVE", "k", 0))
	scheduled := newID("")
	sr := invokeRec(scheduled, "", "", 0)
	sr.Invoke.ExecutionTime = f.now + 60_000
	f.apply(sr)

	noJournal, purged := newID(""), newID("")
	f.retained(noJournal, 10_000, 0)
	f.retained(purged, 10_000, 10_000)
	if got := f.purgeJournal(purged); got != rpc.ManageDone {
		t.Fatalf("purge-journal: %s", got)
	}

	workflow := newID("w")
	wr := invokeRec(workflow, "WORKFLOW", "w", 0)
	wr.Invoke.Target.ServiceType = "WORKFLOW"
	wr.Invoke.CompletionRetentionMs, wr.Invoke.JournalRetentionMs = 10_000, 10_000
	f.apply(wr)
	for _, rec := range outputEnd(workflow, `"done"`) {
		f.apply(rec)
	}

	for _, c := range []struct {
		name string
		id   []byte
		want rpc.RestartOutcome
	}{
		{"unknown", newID(""), rpc.RestartNotFound},
		{"running", running, rpc.RestartStillRunning},
		{"inboxed", queued, rpc.RestartNotStarted},
		{"scheduled", scheduled, rpc.RestartNotStarted},
		{"journal not retained", noJournal, rpc.RestartMissingInput},
		{"journal purged", purged, rpc.RestartMissingInput},
		{"workflow", workflow, rpc.RestartUnsupported},
	} {
		if inv, got := f.restart(c.id); got != c.want || inv != nil {
			t.Errorf("%s: %s (%+v), want %s", c.name, got, inv, c.want)
		}
	}
}

// Through the leader: the answer names the new invocation once it is durable, and it runs.
func TestLeaderRestartAsNew(t *testing.T) {
	log := newLog(t)
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	inv := nopInvoker{invoked: make(chan []byte, 4)}
	p, _ := startProcessor(t, log, db, inv)
	l := p.Leader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	id := newID("")
	if _, err := l.Invoke(ctx, &rpc.InvokeRequest{InvocationID: id, Send: true, Input: []byte(`"ann"`),
		Target:              rpc.Target{Service: "Greeter", Handler: "greet", ServiceType: "SERVICE"},
		CompletionRetention: time.Minute, JournalRetention: time.Minute}); err != nil {
		t.Fatal(err)
	}
	<-inv.invoked
	resp, err := l.RestartAsNew(ctx, &rpc.RestartAsNewRequest{InvocationID: id})
	if err != nil || resp.Outcome != rpc.RestartStillRunning {
		t.Fatalf("restart of a running invocation: %+v, %v", resp, err)
	}
	var last bifrost.LSN
	for _, rec := range outputEnd(id, `"Hello ann!"`) {
		done := make(chan error, 1)
		l.AppendAsync(rec, func(lsn bifrost.LSN, err error) { last = lsn; done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := l.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}
	resp, err = l.RestartAsNew(ctx, &rpc.RestartAsNewRequest{InvocationID: id})
	if err != nil || resp.Outcome != rpc.RestartDone || len(resp.NewInvocationID) == 0 {
		t.Fatalf("restart of a completed invocation: %+v, %v", resp, err)
	}
	// The leadership's start hands the invocations it finds invoked to the invoker too, so
	// the first one may come again if that scan ran after its Invoke was applied.
	for started := false; !started; {
		select {
		case got := <-inv.invoked:
			switch string(got) {
			case string(resp.NewInvocationID):
				started = true
			case string(id):
			default:
				t.Fatal("invoked another invocation than the restarted one")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the restarted invocation did not start")
		}
	}
	snap, err := l.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	journal, err := snap.Journal(resp.NewInvocationID, 1)
	input := &protocol.InputCommand{}
	if err != nil || input.Unmarshal(journal[0].Payload) != nil || string(input.Value.Content) != `"ann"` {
		t.Fatalf("restarted invocation's input: %v %+v", err, input)
	}
}
