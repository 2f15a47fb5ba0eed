package processor

import (
	"context"
	"math"
	"reflect"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
	"gorestate.dev/workerd/store"
)

// Deployments of the restart tests: dpOld is where the invocations ran (pinned at protocol
// 6), dpNew the latest of their services; dpV5 speaks only protocol 5.
var (
	dpOld, dpNew, dpV5 = ids.NewDeploymentID(), ids.NewDeploymentID(), ids.NewDeploymentID()
	restartRegistry    = &schema.Registry{
		Deployments: []schema.Deployment{
			{ID: dpOld, MinProtocolVersion: 5, MaxProtocolVersion: 6},
			{ID: dpNew, MinProtocolVersion: 5, MaxProtocolVersion: 7},
			{ID: dpV5, MinProtocolVersion: 5, MaxProtocolVersion: 5},
		},
		Services: map[string]*schema.Service{"Counter": {Name: "Counter", DeploymentID: dpNew}},
	}
)

func runCmd(c uint32) logrecord.Entry { return entry(&protocol.RunCommand{ResultCompletionID: c}) }

func runDone(c uint32, v string) logrecord.Entry {
	return notification(protocol.RunCompletionType, protocol.CompletionNotification(c).WithValue([]byte(v)))
}

// ranToTheEnd runs a retained invocation of Counter that journals
//
//	0 Input, 1 Run (completion 1), 2 Sleep (completion 2), 3 Run's completion,
//	4 Sleep's completion, 5 SetState, 6 Output "done"
//
// on dpOld at protocol 6 and completes; key "" makes it a plain service call.
func (f *fixture) ranToTheEnd(id []byte, key string) {
	f.t.Helper()
	r := invokeRec(id, "", key, 0)
	if key != "" {
		r.Invoke.Target.HandlerType = "EXCLUSIVE"
	}
	r.Invoke.CompletionRetentionMs, r.Invoke.JournalRetentionMs = 60_000, 30_000
	f.apply(r)
	created := f.status(id).CreatedAt
	wake := f.now + 5
	first := effect(id, logrecord.EffectEntries, runCmd(1), entry(&protocol.SleepCommand{WakeUpTime: uint64(wake), ResultCompletionID: 2}))
	first.InvokerEffect.DeploymentID, first.InvokerEffect.ProtocolVersion = dpOld, 6
	for _, rec := range []*logrecord.Record{
		first,
		effect(id, logrecord.EffectEntries, runDone(1, `"o-1"`)),
		{Kind: logrecord.KindTimerFired, TimerFired: &logrecord.TimerFired{InvocationID: id, Kind: logrecord.TimerSleep, CompletionID: 2, WakeAt: wake, InvocationCreatedAt: created}},
		effect(id, logrecord.EffectEntries, entry(&protocol.SetStateCommand{Key: []byte("k"), Value: protocol.NewValue([]byte("v1"))}), output(`"done"`)),
		effect(id, logrecord.EffectEnd),
	} {
		f.apply(rec)
	}
	if st := f.status(id); st == nil || st.Phase != store.PhaseCompleted || st.JournalLen != 7 || st.DeploymentID != dpOld {
		f.t.Fatalf("the invocation to restart: %+v", st)
	}
}

// restartApply applies a RestartAsNew record and returns the outcome it answered.
func (f *fixture) restartApply(old, newID []byte, from uint32, deployment string) (rpc.RestartOutcome, []Action) {
	f.t.Helper()
	acts := f.apply(&logrecord.Record{Kind: logrecord.KindRestartAsNew, RestartAsNew: &logrecord.RestartAsNew{
		InvocationID: old, NewInvocationID: newID, From: from, DeploymentID: deployment, RequestID: 7,
	}})
	r, ok := has[ActRestartReply](acts)
	if !ok || r.RequestID != 7 {
		f.t.Fatalf("restart without a reply: %v", acts)
	}
	return r.Outcome, acts
}

func (f *fixture) journal(id []byte) []store.JournalEntry {
	f.t.Helper()
	st := f.status(id)
	if st == nil {
		return nil
	}
	snap, err := f.part.Snapshot()
	if err != nil {
		f.t.Fatal(err)
	}
	defer snap.Release()
	j, err := snap.Journal(id, st.JournalLen)
	if err != nil {
		f.t.Fatal(err)
	}
	return j
}

// plan runs the leader's checks on the fixture's store.
func (f *fixture) plan(id []byte, from uint32, deployment string) (*logrecord.RestartAsNew, *rpc.RestartAsNewResponse) {
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
	req := &rpc.RestartAsNewRequest{InvocationID: id, From: from, Deployment: deployment}
	rec, refusal, err := planRestart(snap, req, restartRegistry, old, ids.NewInvocationID(old.PartitionKey).Bytes())
	if err != nil {
		f.t.Fatal(err)
	}
	if (rec == nil) == (refusal == nil) {
		f.t.Fatalf("plan: record %+v and refusal %+v", rec, refusal)
	}
	return rec, refusal
}

// The new invocation gets the entries 0..from and, after them in journal order, the
// completions of the commands among them from wherever they were; entries are copied as
// stored, and nothing a copied command did is done again (restate-server 1.7.12 copies
// the same entries: observed with sys_journal on Orders.place and a run/sleep/state
// handler).
func TestRestartAsNewCopiesTheJournalPrefix(t *testing.T) {
	types := func(j []store.JournalEntry) []protocol.MessageType {
		var out []protocol.MessageType
		for _, e := range j {
			out = append(out, protocol.MessageType(e.Type))
		}
		return out
	}
	const (
		input, run, sleep, set, out = protocol.InputCommandType, protocol.RunCommandType, protocol.SleepCommandType, protocol.SetStateCommandType, protocol.OutputCommandType
		runC, sleepC                = protocol.RunCompletionType, protocol.SleepCompletionType
	)
	for _, c := range []struct {
		from     uint32
		want     []protocol.MessageType
		commands uint32
		result   string // the result of a copied Output
	}{
		{0, []protocol.MessageType{input}, 1, ""},
		{1, []protocol.MessageType{input, run, runC}, 2, ""},
		{2, []protocol.MessageType{input, run, sleep, runC, sleepC}, 3, ""},
		{3, []protocol.MessageType{input, run, sleep, runC, sleepC}, 3, ""},
		{5, []protocol.MessageType{input, run, sleep, runC, sleepC, set}, 4, ""},
		{6, []protocol.MessageType{input, run, sleep, runC, sleepC, set, out}, 5, `"done"`},
	} {
		f := newFixture(t)
		id, newInv := newID(""), newID("")
		f.ranToTheEnd(id, "")
		oldJournal := f.journal(id)
		f.setState("", "k", "v2")
		f.now += 1_000
		outcome, acts := f.restartApply(id, newInv, c.from, "")
		if outcome != rpc.RestartDone {
			t.Fatalf("from %d: %s", c.from, outcome)
		}
		if a, ok := has[ActInvoke](acts); !ok || string(a.ID) != string(newInv) {
			t.Fatalf("from %d: the new invocation did not start: %v", c.from, acts)
		}
		st := f.status(newInv)
		j := f.journal(newInv)
		if got := types(j); len(got) != len(c.want) || st.JournalLen != uint32(len(c.want)) || st.CommandCount != c.commands {
			t.Fatalf("from %d: journal %v (status %d entries, %d commands), want %v (%d commands)", c.from, got, st.JournalLen, st.CommandCount, c.want, c.commands)
		} else {
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("from %d: journal %v, want %v", c.from, got, c.want)
				}
			}
		}
		// Copied byte for byte, append times included.
		for i, e := range j {
			var src *store.JournalEntry
			for k := range oldJournal {
				if oldJournal[k].Type == e.Type && string(oldJournal[k].Payload) == string(e.Payload) {
					src = &oldJournal[k]
				}
			}
			if src == nil || src.AppendedAt != e.AppendedAt || src.Flags != e.Flags {
				t.Fatalf("from %d: entry %d %+v is no copy of the old journal's", c.from, i, e)
			}
		}
		if st.Phase != store.PhaseInvoked || st.CreatedAt != f.now || st.InvokedBy != logrecord.InvokedByRestart+invString(id) ||
			st.CompletionRetentionMs != 60_000 || st.JournalRetentionMs != 30_000 || st.DeploymentID != dpOld || st.ProtocolVersion != 6 {
			t.Fatalf("from %d: new status %+v", c.from, st)
		}
		if got := ""; st.Result != nil {
			got = string(st.Result.Value)
			if got != c.result {
				t.Fatalf("from %d: result %q, want %q", c.from, got, c.result)
			}
		} else if c.result != "" {
			t.Fatalf("from %d: no result, want %q", c.from, c.result)
		}
		// The copied completions are indexed, so the replay finds them and a second one for
		// the same completion is dropped.
		for cid, want := range map[uint32]bool{1: c.from >= 1, 2: c.from >= 2} {
			if ok, err := f.part.Begin().Notified(newInv, store.NotifyCompletion, store.CompletionIdent(cid)); err != nil || ok != want {
				t.Fatalf("from %d: completion %d notified %v (%v), want %v", c.from, cid, ok, err, want)
			}
		}
		wantState(t, f.state(""), "k", "v2") // a copied SetState is not applied again
		if old := f.status(id); old.Phase != store.PhaseCompleted || old.JournalLen != 7 {
			t.Fatalf("from %d: the restarted invocation changed: %+v", c.from, old)
		}
		// A copied Output ends the replay: the new invocation completes with its result.
		if c.result != "" {
			acts := f.apply(effect(newInv, logrecord.EffectEnd))
			if a, ok := has[ActCompleted](acts); !ok || string(a.Result.Value) != c.result {
				t.Fatalf("from %d: end of the replay: %v", c.from, acts)
			}
		}
	}
}

// The new invocation runs on the deployment the old one was pinned to, or on the one the
// record names; one that was never pinned stays free to pick the latest (as restate-server
// 1.7.12 does: deployment=<id> on an unpinned invocation left it unpinned).
func TestRestartAsNewPinsTheDeployment(t *testing.T) {
	f := newFixture(t)
	pinned := newID("")
	f.ranToTheEnd(pinned, "")
	unpinned := newID("")
	f.retained(unpinned, 60_000, 60_000)
	for _, c := range []struct {
		old        []byte
		deployment string
		want       string
		version    uint32
	}{
		{pinned, "", dpOld, 6},
		{pinned, dpNew, dpNew, 6},
		{unpinned, "", "", 0},
		{unpinned, dpNew, "", 0},
	} {
		newInv := newID("")
		if o, _ := f.restartApply(c.old, newInv, 0, c.deployment); o != rpc.RestartDone {
			t.Fatalf("restart: %s", o)
		}
		if st := f.status(newInv); st.DeploymentID != c.want || st.ProtocolVersion != c.version {
			t.Errorf("restart on %q: pinned %q at %d, want %q at %d", c.deployment, st.DeploymentID, st.ProtocolVersion, c.want, c.version)
		}
	}
}

// A restart of an object's invocation queues behind the invocation holding its key's lock.
func TestRestartAsNewOfAnObjectQueuesForItsKey(t *testing.T) {
	f := newFixture(t)
	old, holder, newInv := newID("k"), newID("k"), newID("k")
	f.ranToTheEnd(old, "k")
	f.apply(invokeRec(holder, "EXCLUSIVE", "k", 0))
	if o, acts := f.restartApply(old, newInv, 2, ""); o != rpc.RestartDone {
		t.Fatalf("restart: %s", o)
	} else if _, ok := has[ActInvoke](acts); ok {
		t.Fatalf("started while the lock is held: %v", acts)
	}
	if st := f.status(newInv); st.Phase != store.PhaseInboxed || st.JournalLen != 5 {
		t.Fatalf("new status %+v", st)
	}
	acts := f.apply(outputEnd(holder, `1`)[0])
	acts = append(acts, f.apply(outputEnd(holder, `1`)[1])...)
	if a, ok := has[ActInvoke](acts); !ok || string(a.ID) != string(newInv) {
		t.Fatalf("the restarted invocation did not take the lock: %v", acts)
	}
}

// What the apply refuses: the old invocation's status is checked again (it may have
// changed since the leader looked), and an entry past the journal is Restate's "index out
// of range".
func TestRestartAsNewApplyRefusals(t *testing.T) {
	f := newFixture(t)
	done, purged, running := newID(""), newID(""), newID("")
	f.ranToTheEnd(done, "")
	f.ranToTheEnd(purged, "")
	if got := f.purgeJournal(purged); got != rpc.ManageDone {
		t.Fatalf("purge-journal: %s", got)
	}
	f.apply(invokeRec(running, "", "", 0))
	holder, queued := newID("q"), newID("q")
	f.apply(invokeRec(holder, "EXCLUSIVE", "q", 0))
	f.apply(invokeRec(queued, "EXCLUSIVE", "q", 0))
	for _, c := range []struct {
		name  string
		old   []byte
		newID []byte
		from  uint32
		want  rpc.RestartOutcome
	}{
		{"unknown", newID(""), newID(""), 0, rpc.RestartNotFound},
		{"queued", queued, newID("q"), 0, rpc.RestartNotStarted},
		{"running", running, newID(""), 0, rpc.RestartStillRunning},
		{"past the journal", done, newID(""), 7, rpc.RestartIndexOutOfRange},
		{"at the maximum", done, newID(""), math.MaxUint32, rpc.RestartIndexOutOfRange},
		{"journal purged", purged, newID(""), 0, rpc.RestartIndexOutOfRange},
		{"new id in use", done, running, 0, rpc.RestartNotFound},
		{"new id is the old one", done, done, 0, rpc.RestartNotFound},
	} {
		before := f.status(c.newID)
		if got, acts := f.restartApply(c.old, c.newID, c.from, ""); got != c.want || len(acts) != 1 {
			t.Errorf("%s: %s %v, want %s and only the reply", c.name, got, acts, c.want)
		}
		if after := f.status(c.newID); (before == nil) != (after == nil) || before != nil && before.Phase != after.Phase {
			t.Errorf("%s: the new id's status changed: %+v -> %+v", c.name, before, after)
		}
	}
}

// The leader's checks, in Restate's order, with Restate's outcomes (observed against
// restate-server 1.7.12 where an example could reach them).
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

	done := newID("")
	f.ranToTheEnd(done, "")
	unpinned := newID("") // completed before any attempt was pinned
	f.retained(unpinned, 60_000, 60_000)
	v5 := newID("") // pinned at protocol 5
	vr := invokeRec(v5, "", "", 0)
	vr.Invoke.CompletionRetentionMs, vr.Invoke.JournalRetentionMs = 60_000, 60_000
	f.apply(vr)
	e := effect(v5, logrecord.EffectEntries, output(`"done"`))
	e.InvokerEffect.DeploymentID, e.InvokerEffect.ProtocolVersion = dpOld, 5
	f.apply(e)
	f.apply(effect(v5, logrecord.EffectEnd))
	// Killed while it slept: the Sleep has no completion.
	asleep := newID("")
	ar := invokeRec(asleep, "", "", 0)
	ar.Invoke.CompletionRetentionMs, ar.Invoke.JournalRetentionMs = 60_000, 60_000
	f.apply(ar)
	e = effect(asleep, logrecord.EffectEntries, runCmd(1), runDone(1, `1`), entry(&protocol.SleepCommand{WakeUpTime: uint64(f.now + 60_000), ResultCompletionID: 2}))
	e.InvokerEffect.DeploymentID, e.InvokerEffect.ProtocolVersion = dpOld, 6
	f.apply(e)
	f.apply(&logrecord.Record{Kind: logrecord.KindManage, Manage: &logrecord.Manage{InvocationID: asleep, Op: logrecord.ManageKill}})
	unknownDeployment := ids.NewDeploymentID()

	for _, c := range []struct {
		name       string
		id         []byte
		from       uint32
		deployment string
		want       rpc.RestartOutcome
	}{
		{"unknown", newID(""), 0, "", rpc.RestartNotFound},
		{"unknown, from past the journal", newID(""), 99, unknownDeployment, rpc.RestartNotFound},
		{"running", running, 99, unknownDeployment, rpc.RestartStillRunning},
		{"inboxed", queued, 0, "", rpc.RestartNotStarted},
		{"scheduled", scheduled, 0, "", rpc.RestartNotStarted},
		{"journal not retained", noJournal, 0, "", rpc.RestartMissingInput},
		{"journal purged", purged, 0, "", rpc.RestartMissingInput},
		{"workflow", workflow, 0, "", rpc.RestartUnsupported},
		{"never pinned, from a prefix", unpinned, 1, "keep", rpc.RestartUnsupported},
		{"protocol 5, from a prefix", v5, 1, "", rpc.RestartUnsupported},
		{"no such deployment", done, 0, unknownDeployment, rpc.RestartDeploymentNotFound},
		{"no such deployment, from past the journal", done, 99, unknownDeployment, rpc.RestartDeploymentNotFound},
		{"protocol 5, not spoken by the latest", v5, 0, "", rpc.RestartDone},
		{"protocol 6, not spoken by the chosen one", done, 0, dpV5, rpc.RestartIncompatibleDeployment},
		{"protocol 5 on its own deployment", v5, 0, "keep", rpc.RestartDone},
		{"the sleep has no completion", asleep, 3, "", rpc.RestartCopyRangeInvalid},
		{"the run has one", asleep, 2, "", rpc.RestartDone},
		{"past the journal", done, 7, "", rpc.RestartCopyRangeInvalid},
		{"far past the journal", done, 99, "keep", rpc.RestartCopyRangeInvalid},
		// Restate's check wraps at the maximum: the record is appended, its apply refuses.
		{"at the maximum", done, math.MaxUint32, "", rpc.RestartDone},
		{"the whole journal", done, 6, "", rpc.RestartDone},
		{"never pinned, from the input", unpinned, 0, "", rpc.RestartDone},
	} {
		rec, refusal := f.plan(c.id, c.from, c.deployment)
		got := rpc.RestartDone
		if refusal != nil {
			got = refusal.Outcome
		}
		if got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
		if rec != nil && (rec.From != c.from || string(rec.InvocationID) != string(c.id) || len(rec.NewInvocationID) != 24 || string(rec.NewInvocationID) == string(c.id)) {
			t.Errorf("%s: record %+v", c.name, rec)
		}
	}

	// The deployment the record names: the latest of the service, the chosen one, or none
	// to keep the pinned one.
	for deployment, want := range map[string]string{"": dpNew, "latest": dpNew, dpOld: dpOld, "keep": ""} {
		if rec, refusal := f.plan(done, 2, deployment); refusal != nil || rec.DeploymentID != want {
			t.Errorf("deployment %q: record %+v, refusal %+v; want deployment %q", deployment, rec, refusal, want)
		}
	}
	_, refusal := f.plan(done, 0, dpV5)
	if want := (rpc.RestartAsNewResponse{Outcome: rpc.RestartIncompatibleDeployment, PinnedProtocolVersion: 6, DeploymentID: dpV5, MinProtocolVersion: 5, MaxProtocolVersion: 5}); !reflect.DeepEqual(*refusal, want) {
		t.Errorf("incompatible deployment: %+v, want %+v", refusal, want)
	}
}

// Through the leader: the answer names the new invocation once it is durable, and it runs
// with the copied journal.
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
		Target:              rpc.Target{Service: "Counter", Handler: "greet", ServiceType: "SERVICE"},
		CompletionRetention: time.Minute, JournalRetention: time.Minute}); err != nil {
		t.Fatal(err)
	}
	<-inv.invoked
	resp, err := l.RestartAsNew(ctx, &rpc.RestartAsNewRequest{InvocationID: id}, restartRegistry)
	if err != nil || resp.Outcome != rpc.RestartStillRunning {
		t.Fatalf("restart of a running invocation: %+v, %v", resp, err)
	}
	first := effect(id, logrecord.EffectEntries, runCmd(1), runDone(1, `"r"`))
	first.InvokerEffect.DeploymentID, first.InvokerEffect.ProtocolVersion = dpOld, 6
	var last bifrost.LSN
	for _, rec := range append([]*logrecord.Record{first}, outputEnd(id, `"Hello ann!"`)...) {
		done := make(chan error, 1)
		l.AppendAsync(rec, func(lsn bifrost.LSN, err error) { last = lsn; done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := l.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from uint32
		want rpc.RestartOutcome
	}{{4, rpc.RestartCopyRangeInvalid}, {math.MaxUint32, rpc.RestartIndexOutOfRange}} {
		if resp, err := l.RestartAsNew(ctx, &rpc.RestartAsNewRequest{InvocationID: id, From: c.from}, restartRegistry); err != nil || resp.Outcome != c.want || resp.NewInvocationID != nil {
			t.Fatalf("restart from %d: %+v, %v; want %s", c.from, resp, err, c.want)
		}
	}
	resp, err = l.RestartAsNew(ctx, &rpc.RestartAsNewRequest{InvocationID: id, From: 1, Deployment: "keep"}, restartRegistry)
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
	journal, err := snap.Journal(resp.NewInvocationID, 3)
	input := &protocol.InputCommand{}
	if err != nil || input.Unmarshal(journal[0].Payload) != nil || string(input.Value.Content) != `"ann"` ||
		protocol.MessageType(journal[1].Type) != protocol.RunCommandType || protocol.MessageType(journal[2].Type) != protocol.RunCompletionType {
		t.Fatalf("restarted invocation's journal: %v %+v", err, journal)
	}
	if st, err := snap.Status(resp.NewInvocationID); err != nil || st.JournalLen != 3 || st.DeploymentID != dpOld {
		t.Fatalf("restarted invocation's status: %+v, %v", st, err)
	}
}
