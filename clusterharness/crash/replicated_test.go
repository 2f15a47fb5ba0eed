package crash

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/metadatad/cluster"
	"gorestate.dev/shared/metadata"
)

// TestReplicatedLogsSurviveNodeKills runs the partition logs on the replicated loglet from
// the start (replication 2 over three log servers: node A, which also runs every other
// role, and logserverd nodes B and C) under idempotent Counter.add load, and kills:
//
//  1. log server B with SIGKILL, keeps loading (a write quorum of A and C remains), and
//     restarts it: the chains do not change and stay replicated;
//  2. node A, the worker and every logs' sequencer, with SIGKILL, and restarts it on the
//     same data directory and ports: its new life never resumes the old loglets, so every
//     log gets a new open segment whose sequencer is A's new generation, based at the old
//     segment's sealed tail (sealed on an f-majority of its nodeset, not below what was
//     committed before the kill and not past the records the log servers hold).
//
// Every request is re-sent with its idempotency key until acknowledged, and in the end every
// key's value must equal its number of acknowledged adds; the committed records of the open
// segments must lie on a write quorum that includes B or C.
func TestReplicatedLogsSurviveNodeKills(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts and kills server processes")
	}
	uri := harness.StartExamples(t)
	c := newTrio(t, "RESTATE_BIFROST__DEFAULT_PROVIDER=replicated", "RESTATE_DEFAULT_REPLICATION=2")
	// A provisions replicated logs without segments and is ready only once its partitions
	// can append, that is once three log servers are registered: start B and C meanwhile.
	c.A.Launch()
	waitClusterAPI(t, c.A.Fabric)
	c.B.Start()
	c.C.Start()
	c.A.WaitReady()
	harness.Register(t, c.A.Admin, uri)

	life1 := generation(t, c.A.Fabric, nodeA)
	st := waitLogs(t, c.A.Fabric, "every log on an open replicated segment of "+life1.String(), func(st *cluster.LogsStatus) error {
		return eachLog(st, both(openTailOf(life1), allReplicated))
	})
	logChains(t, st)

	w := NewWorkload(c.A.Ingress, "add", CounterKeys("repl-", 16), 8, AcceptAdd)
	load := w.StartSteady(1, "a")
	defer func() { load.Stop() }()
	if !load.WaitAcked(time.Time{}, 100, progressTimeout) {
		t.Fatalf("only %d calls acknowledged in %v", load.AckedSince(time.Time{}), progressTimeout)
	}

	// (a) Log server B dies; A and C are a write quorum of every nodeset. Stores to B fail
	// at once (its port is closed) until the gossip declares it failed, and then B is left
	// out; the load runs through both.
	killB := time.Now()
	c.B.Kill()
	if !load.WaitAcked(killB, 100, progressTimeout) {
		t.Fatalf("with log server %s down, only %d calls acknowledged in %v", nodeB, load.AckedSince(killB), progressTimeout)
	}
	// Serf declares a member failed after memberlist's suspicion timeout (4 s at least with
	// three nodes, longer while a loaded node's awareness stretches its probes; up to ~15 s
	// seen): progressTimeout (20 s) left little room on a loaded host.
	harness.Eventually(t, chainTimeout, "the gossip to declare "+nodeB+" failed", func() bool {
		return gossipState(c.A.Fabric, nodeB) == "failed"
	})
	failedB := time.Now()
	t.Logf("the gossip declared log server %s failed %v after its kill", nodeB, failedB.Sub(killB).Round(time.Millisecond))
	if !load.WaitAcked(failedB, 100, progressTimeout) {
		t.Fatalf("with log server %s failed, only %d calls acknowledged in %v", nodeB, load.AckedSince(failedB), progressTimeout)
	}
	time.Sleep(time.Second) // load duration with B known to be down
	t.Logf("log server %s down for %v: %d calls acknowledged meanwhile", nodeB, time.Since(killB).Round(time.Millisecond), load.AckedSince(killB))
	restartB := time.Now()
	c.B.Start()
	t.Logf("log server %s restarted on its data directory, ready in %v", nodeB, time.Since(restartB).Round(time.Millisecond))
	if !load.WaitAcked(restartB, 100, progressTimeout) {
		t.Fatalf("after %s's restart, only %d calls acknowledged in %v", nodeB, load.AckedSince(restartB), progressTimeout)
	}
	time.Sleep(2 * time.Second) // load duration with B back
	gap, began := load.LongestGap(killB, killB)
	t.Logf("kill of log server %s: longest gap between acknowledged calls around it %v (began %v before the kill)",
		nodeB, gap.Round(time.Millisecond), killB.Sub(began).Round(time.Millisecond))
	gap, began = load.LongestGap(killB, time.Now())
	t.Logf("from the kill of %s to now: longest gap %v (began %v after the kill)", nodeB, gap.Round(time.Millisecond), began.Sub(killB).Round(time.Millisecond))
	// Same life of A: its open segments stay (or, after a reconfiguration, move to other
	// segments of the same sequencer), all replicated.
	st = waitLogs(t, c.A.Fabric, "every log still on replicated segments of "+life1.String(), func(st *cluster.LogsStatus) error {
		return eachLog(st, both(openTailOf(life1), allReplicated))
	})
	logChains(t, st)
	load.Stop()
	DrainAll(t, w, 1)
	CheckExactlyOnce(t, w)

	load = w.StartSteady(1, "b")
	if !load.WaitAcked(time.Time{}, 100, progressTimeout) {
		t.Fatalf("only %d calls acknowledged in %v", load.AckedSince(time.Time{}), progressTimeout)
	}
	time.Sleep(time.Second) // load duration before the kill

	// (b) Node A dies: the worker, every sequencer, the metadata server and one log server.
	beforeKill, err := logsView(c.A.Fabric)
	if err != nil {
		t.Fatal(err)
	}
	var inflight int64
	killA := time.Now()
	c.A.KillThen(func() {
		inflight = w.inflight.Load()
		load.SetPhase(2)
	})
	w.client.CloseIdleConnections() // pooled connections point at the dead process
	restartA := time.Now()
	c.A.Start()
	t.Logf("node %s killed with %d calls in flight; restarted on its data directory, ready in %v",
		nodeA, inflight, time.Since(restartA).Round(time.Millisecond))
	life2 := generation(t, c.A.Fabric, nodeA)
	if life2.Generation <= life1.Generation {
		t.Fatalf("node %s restarted as %s, not a newer life than %s", nodeA, life2, life1)
	}
	after := waitLogs(t, c.A.Fabric, "every log on an open replicated segment of "+life2.String(), func(st *cluster.LogsStatus) error {
		return eachLog(st, both(openTailOf(life2), allReplicated))
	})
	t.Logf("every log moved to a segment of %s %v after the restart", life2, time.Since(restartA).Round(time.Millisecond))
	logChains(t, after)
	if !load.WaitAcked(restartA, 100, progressTimeout) {
		t.Fatalf("after %s's restart, only %d calls acknowledged in %v", nodeA, load.AckedSince(restartA), progressTimeout)
	}
	time.Sleep(2 * time.Second) // load duration on the new life
	// killA is taken before the signal; acknowledgements may still come in until the
	// process is gone, so the outage is the longest gap from the kill on, not the one
	// around that instant.
	gap, began = load.LongestGap(killA, time.Now())
	t.Logf("kill of node %s: longest gap between acknowledged calls from the kill to now %v (began at the kill %+v)",
		nodeA, gap.Round(time.Millisecond), began.Sub(killA).Round(time.Millisecond))
	load.Stop()

	addrs := addresses(t, c.A.Fabric)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, l := range after.Logs {
		if err := checkSuccession(ctx, addrs, beforeKill.Logs[i], l, life1, life2); err != nil {
			t.Errorf("log %d: %v", l.ID, err)
		}
	}

	DrainAll(t, w, 2)
	values := CheckExactlyOnce(t, w)
	var retried int
	for _, op := range w.Ops() {
		if op.Attempts > 1 {
			retried++
		}
	}
	t.Logf("%d requests needed more than one attempt (%d were in flight at %s's kill)", retried, inflight, nodeA)
	// Adds acknowledged by A's first life, re-sent with their keys, return the stored
	// answer of their one execution.
	resendSample(t, w, 1, 40, func(op *Op, a *Answer) error {
		if a.Status != op.Status || a.Body != op.Body || a.ID != op.ID {
			return fmt.Errorf("got %d %q id %s, first acknowledged %d %q id %s", a.Status, a.Body, a.ID, op.Status, op.Body, op.ID)
		}
		return nil
	})
	again, err := counterValues(w)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range SortedKeys(again) {
		if again[key] != values[key] {
			t.Errorf("key %s: value %d after re-sending acknowledged adds, was %d", key, again[key], values[key])
		}
	}

	// The records of the new life's segments are on the log servers, not only in A. An open
	// segment's tail is what its writer reports to the logs view, which leaves it 0 (state
	// unknown) when the writer does not answer within 2 s: wait for a view that has them.
	final := waitLogs(t, c.A.Fabric, "every open segment's tail reported", func(st *cluster.LogsStatus) error {
		return eachLog(st, func(l cluster.LogStatus) error {
			tail := l.Segments[len(l.Segments)-1]
			if tail.State != "open" || tail.TailLSN <= tail.BaseLSN {
				return fmt.Errorf("open segment %d is %s with tail %d, base %d", tail.Index, tail.State, tail.TailLSN, tail.BaseLSN)
			}
			return nil
		})
	})
	for _, l := range final.Logs {
		tail := l.Segments[len(l.Segments)-1]
		if err := storedOffNode(ctx, addrs, tail, tail.TailLSN, nodeA); err != nil {
			t.Errorf("log %d: %v", l.ID, err)
		}
	}
	t.Logf("gorestatectl logs list:\n%s", c.ctlRun(t, "logs", "list"))
}

// checkSuccession checks how a log's chain changed over A's restart: before is the view
// just before the kill, after the view once every log moved to life2. The last segment of
// life1 must be sealed on an f-majority of its nodeset, and its successor (life2's first
// segment) based at its sealed tail: not below the tail committed before the kill, and not
// past the records that the log servers hold. life1 must have created no segment since.
func checkSuccession(ctx context.Context, addrs map[string]string, before, after cluster.LogStatus, life1, life2 metadata.NodeID) error {
	of := func(l cluster.LogStatus, life metadata.NodeID) (n int) {
		for _, s := range l.Segments {
			if s.Sequencer != nil && *s.Sequencer == life {
				n++
			}
		}
		return n
	}
	if b, a := of(before, life1), of(after, life1); a != b {
		return fmt.Errorf("%d segments of %s before the kill, %d after the restart", b, life1, a)
	}
	first := -1
	for i, s := range after.Segments {
		if *s.Sequencer == life2 {
			first = i
			break
		}
	}
	if first < 1 || *after.Segments[first-1].Sequencer != life1 {
		return fmt.Errorf("no segment of %s followed by one of %s", life1, life2)
	}
	prev, next := after.Segments[first-1], after.Segments[first]
	for _, s := range after.Segments[first:] {
		if *s.Sequencer != life2 {
			return fmt.Errorf("segment %d after %s's first segment has sequencer %s", s.Index, life2, s.Sequencer)
		}
	}
	if prev.State != "sealed" || prev.TailLSN != next.BaseLSN {
		return fmt.Errorf("segment %d of %s is %s with tail %d, want sealed at segment %d's base %d", prev.Index, life1, prev.State, prev.TailLSN, next.Index, next.BaseLSN)
	}
	oldTail := before.Segments[len(before.Segments)-1]
	if oldTail.Index != prev.Index {
		return fmt.Errorf("the open segment before the kill was %d, the last of %s after the restart is %d", oldTail.Index, life1, prev.Index)
	}
	if next.BaseLSN < oldTail.TailLSN {
		return fmt.Errorf("segment %d starts at LSN %d, below the tail %d committed in segment %d before the kill: committed records lost",
			next.Index, next.BaseLSN, oldTail.TailLSN, prev.Index)
	}
	infos, err := logletInfos(ctx, addrs, prev)
	if err != nil {
		return err
	}
	sealedTail := tailOffset(prev, next.BaseLSN)
	sealed, highest := 0, uint64(0)
	var views []string
	for _, node := range SortedKeys(infos) {
		info := infos[node]
		if info.Sealed {
			sealed++
		}
		highest = max(highest, uint64(info.LocalTail))
		views = append(views, fmt.Sprintf("%s: local tail %d sealed %v", node, info.LocalTail, info.Sealed))
	}
	if sealed < fMajority || uint64(sealedTail) > highest {
		return fmt.Errorf("segment %d (loglet %d) sealed at offset %d; log servers: %s; want %d sealed, none short of the tail",
			prev.Index, prev.LogletID, sealedTail, strings.Join(views, ", "), fMajority)
	}
	return nil
}

// TestMigrationToReplicatedLogs starts a single node on local logs, writes counters, then
// starts two logserverd nodes (node A also runs a log server: three in all) and switches
// the cluster to replicated logs with replication 2 (`gorestatectl config set`) while
// calls keep coming. Every log's chain must then end in an open replicated segment of A's
// life, based at the sealed tail of its last local segment; the old counters read as
// before, every call made across the migration is applied exactly once, and the new
// records lie on a write quorum of log servers that includes B or C.
func TestMigrationToReplicatedLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts server processes")
	}
	uri := harness.StartExamples(t)
	c := newTrio(t)
	c.A.Start()
	harness.Register(t, c.A.Admin, uri)
	life := generation(t, c.A.Fabric, nodeA)

	// A alone cannot carry replicated logs with replication 2.
	resp, err := harness.Send(http.MethodPatch, c.A.Fabric+cluster.PathPrefix+"config",
		`{"log_provider":"replicated","log_replication":2}`, map[string]string{"content-type": "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusBadRequest || !strings.Contains(resp.Body, "log servers") {
		t.Fatalf("switching to replicated logs with one log server: got %d %s, want 400 naming the missing log servers", resp.Status, resp.Body)
	}

	oldW := NewWorkload(c.A.Ingress, "add", CounterKeys("old-", 12), 8, AcceptAdd)
	old := oldW.StartSteady(1, "s")
	if !old.WaitAcked(time.Time{}, 200, progressTimeout) {
		old.Stop()
		t.Fatalf("only %d calls acknowledged in %v", old.AckedSince(time.Time{}), progressTimeout)
	}
	old.Stop()
	DrainAll(t, oldW, 1)
	oldValues := CheckExactlyOnce(t, oldW)
	st := waitLogs(t, c.A.Fabric, "every log on one open local segment", func(st *cluster.LogsStatus) error {
		return eachLog(st, func(l cluster.LogStatus) error {
			if len(l.Segments) != 1 || l.Segments[0].Provider != cluster.ProviderLocal || l.Segments[0].State != "open" {
				return fmt.Errorf("segments %+v, want one open local segment", l.Segments)
			}
			return nil
		})
	})
	logChains(t, st)

	// Calls keep coming while log servers join and the logs move.
	w := NewWorkload(c.A.Ingress, "add", CounterKeys("new-", 12), 8, AcceptAdd)
	load := w.StartSteady(1, "s")
	defer load.Stop()
	c.B.Start()
	c.C.Start()
	harness.Eventually(t, progressTimeout, "three read-write log servers", func() bool {
		n, err := readWriteLogServers(c.A.Fabric)
		return err == nil && n == 3
	})
	before, err := logsView(c.A.Fabric)
	if err != nil {
		t.Fatal(err)
	}
	setAt := time.Now()
	t.Logf("gorestatectl config set:\n%s", c.ctlRun(t, "config", "set", "--log-provider", "replicated", "--log-replication", "2", "--yes"))
	migrated := waitLogs(t, c.A.Fabric, "every log on an open replicated segment", func(st *cluster.LogsStatus) error {
		return eachLog(st, both(openTailOf(life), localThenReplicated))
	})
	migratedAt := time.Now()
	t.Logf("every log moved to a replicated segment %v after config set", migratedAt.Sub(setAt).Round(time.Millisecond))
	logChains(t, migrated)
	for i, l := range migrated.Logs {
		if err := checkMigration(before.Logs[i], l); err != nil {
			t.Errorf("log %d: %v", l.ID, err)
		}
	}

	if !load.WaitAcked(migratedAt, 200, progressTimeout) {
		t.Fatalf("after the migration, only %d calls acknowledged in %v", load.AckedSince(migratedAt), progressTimeout)
	}
	// The keys spread over every partition, so every log's replicated segment gets records.
	grown := waitLogs(t, c.A.Fabric, "records in every log's replicated segment", func(st *cluster.LogsStatus) error {
		return eachLog(st, func(l cluster.LogStatus) error {
			tail := l.Segments[len(l.Segments)-1]
			if tail.Provider != cluster.ProviderReplicated || tail.TailLSN <= tail.BaseLSN {
				return fmt.Errorf("open segment %d (%s): base %d, tail %d", tail.Index, tail.Provider, tail.BaseLSN, tail.TailLSN)
			}
			return nil
		})
	})
	load.Stop()
	gap, began := load.LongestGap(setAt, migratedAt)
	t.Logf("migration: longest gap between acknowledged calls from config set until every log moved: %v (began %v after config set)",
		gap.Round(time.Millisecond), began.Sub(setAt).Round(time.Millisecond))

	DrainAll(t, w, 1)
	CheckExactlyOnce(t, w)
	again, err := counterValues(oldW)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range SortedKeys(oldValues) {
		if again[key] != oldValues[key] {
			t.Errorf("old key %s: value %d after the migration, was %d", key, again[key], oldValues[key])
		}
	}

	addrs := addresses(t, c.A.Fabric)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, l := range grown.Logs {
		tail := l.Segments[len(l.Segments)-1]
		if err := storedOffNode(ctx, addrs, tail, tail.TailLSN, nodeA); err != nil {
			t.Errorf("log %d: %v", l.ID, err)
		}
	}
	t.Logf("gorestatectl logs list:\n%s", c.ctlRun(t, "logs", "list"))
}

// localThenReplicated checks that a chain is local segments, all sealed, then replicated
// ones.
func localThenReplicated(l cluster.LogStatus) error {
	i := 0
	for i < len(l.Segments) && l.Segments[i].Provider == cluster.ProviderLocal {
		if i == len(l.Segments)-1 || l.Segments[i].State != "sealed" {
			return fmt.Errorf("local segment %d is %s", l.Segments[i].Index, l.Segments[i].State)
		}
		i++
	}
	if i == 0 {
		return fmt.Errorf("segment %d is %s, want the local segments first", l.Segments[0].Index, l.Segments[0].Provider)
	}
	for _, s := range l.Segments[i:] {
		if err := replicatedShape(s); err != nil {
			return err
		}
	}
	return nil
}

// checkMigration checks the seam of a migrated chain: the first replicated segment starts
// at the last local segment's sealed tail, which is not below the tail committed before
// the configuration changed.
func checkMigration(before, after cluster.LogStatus) error {
	i := 0
	for after.Segments[i].Provider == cluster.ProviderLocal {
		i++
	}
	last, first := after.Segments[i-1], after.Segments[i]
	if last.TailLSN != first.BaseLSN {
		return fmt.Errorf("local segment %d sealed at %d, replicated segment %d starts at %d", last.Index, last.TailLSN, first.Index, first.BaseLSN)
	}
	open := before.Segments[len(before.Segments)-1]
	if open.Index != last.Index {
		return fmt.Errorf("the open segment before the change was %d, the last local one after it is %d", open.Index, last.Index)
	}
	if first.BaseLSN < open.TailLSN {
		return fmt.Errorf("replicated segment %d starts at LSN %d, below the tail %d committed in local segment %d before the change",
			first.Index, first.BaseLSN, open.TailLSN, last.Index)
	}
	return nil
}
