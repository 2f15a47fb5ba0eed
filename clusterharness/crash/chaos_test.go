package crash

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/metadatad/cluster"
	"gorestate.dev/shared/metadata"
)

// TestChaos (make test-chaos) runs three nodes with every role (replicated metadata and
// logs, replication 2, snapshots to MinIO) under two loads sent through every ingress, while
// faults chosen by a seeded schedule hit the nodes one after another for
// GORESTATE_CHAOS_DURATION:
//
//   - one node SIGKILLed and restarted after up to 2 s;
//   - two nodes SIGKILLed at once (the metadata store and the logs lose their quorum) and
//     restarted together;
//   - all three SIGKILLed at once and restarted;
//   - one node frozen (SIGSTOP) for 1-6 s and thawed;
//   - one node SIGKILLed, its data directory deleted, and started again with the same name.
//
// The loads are idempotent Counter.add; MixedProgram.run: object state, a side effect, a
// call through two more objects and services (other partitions), a durable sleep, an
// awakeable that another invocation resolves, a delayed one-way send; and Approvals.request,
// whose awakeable the test resolves through the ingress. After each fault the cluster must
// settle (every partition led where it is placed, and followed) and every load must make
// progress within bounded times. At the end every request is acknowledged, every key holds
// exactly its acknowledged requests (the answers of a key are 1..n, in real-time order),
// every value read meanwhile counts the adds acknowledged before the read (Reads), every approval answers
// with the value it was resolved with, no invocation is left unfinished, and every replica
// of a partition reaches the same applied LSN.
//
// GORESTATE_CHAOS_SEED replays a schedule; the processes' timing still differs per run.
func TestChaos(t *testing.T) {
	duration := os.Getenv("GORESTATE_CHAOS_DURATION")
	if duration == "" || testing.Short() {
		t.Skip("make test-chaos runs it (GORESTATE_CHAOS_DURATION)")
	}
	runFor, err := time.ParseDuration(duration)
	if err != nil {
		t.Fatalf("GORESTATE_CHAOS_DURATION=%q: %v", duration, err)
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GORESTATE_CHAOS_SEED"); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("GORESTATE_CHAOS_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (GORESTATE_CHAOS_SEED=%d replays this schedule of faults)", seed, seed)
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	// Every kill cuts off the services' streams, which the SDK logs as errors by the
	// hundred; the test's own checks say what went wrong.
	slog.SetLogLoggerLevel(slog.LevelError + 1)
	t.Cleanup(func() { slog.SetLogLoggerLevel(slog.LevelError) })

	env, _ := withMinIO(t, "chaos-bucket")
	uri := harness.StartExamples(t)
	c := newCluster3(t)
	for _, s := range c.nodes {
		s.Setenv(env...)
		s.Setenv("RESTATE_WORKER__SNAPSHOTS__SNAPSHOT_INTERVAL_NUM_RECORDS=500")
	}
	c.start()
	harness.Register(t, c.nodes[0].Admin, uri)
	c.waitPlaced(t, -1, "")

	adds := NewWorkload(c.nodes[0].Ingress, "add", CounterKeys("chaos-", 16), 8, AcceptAdd)
	programs := NewWorkload(c.nodes[0].Ingress, "run", CounterKeys("prog-", 8), 8, acceptRun)
	programs.Service = "MixedProgram"
	programs.Body = `{"account":"chaos-account","sleepMs":50,"delayMs":200}`
	loads := []*Workload{adds, programs}
	var running []*SteadyLoad
	for i, w := range loads {
		w.Ingresses = c.ingresses()
		// A frozen node holds the requests sent to it; the client gives up on it after a
		// while and re-sends to the next ingress, with the same idempotency key.
		w.client.Timeout = 2 * time.Second
		running = append(running, w.StartSteady(1, fmt.Sprintf("l%d", i)))
	}
	reads := adds.StartReads(2)
	// Approvals: invocations waiting on awakeables that the test resolves through the
	// ingresses (a resolution acknowledged and then lost would leave one waiting).
	approvals := StartApprovals(c.ingresses(), 4, "appr")
	stopLoads := func() {
		for _, l := range running {
			l.Stop()
		}
		reads.Stop()
		approvals.Stop()
	}
	defer stopLoads()
	progress := func(what string, since time.Time) {
		t.Helper()
		for i, l := range running {
			if !l.WaitAcked(since, 20, progressTimeout) {
				t.Fatalf("%s: load %s acknowledged only %d requests in %v", what, loads[i].service(), l.AckedSince(since), progressTimeout)
			}
		}
		done := approvals.Done()
		harness.Eventually(t, progressTimeout, what+": an approval answered", func() bool { return approvals.Done() > done })
	}
	progress("before the first fault", time.Time{})

	type outcome struct {
		fault   string
		settled time.Duration   // from the fault's end (restart, thaw) to a settled placement
		gaps    []time.Duration // longest gap between acknowledgements, per load
	}
	var outcomes []outcome
	nem := &nemesis{c: c, rnd: rnd, loads: loads}
	end := time.Now().Add(runFor)
	for n := 1; time.Now().Before(end); n++ {
		time.Sleep(time.Duration(1000+rnd.IntN(3000)) * time.Millisecond)
		began := time.Now()
		fault := nem.inject(t)
		t.Logf("fault %d: %s", n, fault)
		settled, why := c.waitSettled(t)
		if settled > 3*time.Second {
			t.Logf("fault %d: settled after %v; until then: %s", n, settled.Round(time.Millisecond), why)
		}
		progress(fmt.Sprintf("after fault %d (%s)", n, fault), time.Now())
		o := outcome{fault: fault, settled: settled}
		for _, l := range running {
			gap, _ := l.LongestGap(began, time.Now())
			o.gaps = append(o.gaps, gap)
		}
		outcomes = append(outcomes, o)
	}
	stopLoads()

	var report strings.Builder
	fmt.Fprintf(&report, "%-4s %-44s %10s %14s %14s\n", "#", "fault", "settled", "gap Counter", "gap programs")
	for i, o := range outcomes {
		fmt.Fprintf(&report, "%-4d %-44s %10v %14v %14v\n", i+1, o.fault, o.settled.Round(time.Millisecond),
			o.gaps[0].Round(time.Millisecond), o.gaps[1].Round(time.Millisecond))
	}
	t.Logf("%d faults in %v:\n%s", len(outcomes), runFor, report.String())

	for _, w := range loads {
		w.client.Timeout = 15 * time.Second
		DrainAll(t, w, 1)
		CheckExactlyOnce(t, w)
	}
	CheckReads(t, reads)
	if problems := approvals.Finish(DrainTimeout); len(problems) > 0 {
		t.Fatalf("%d approvals went wrong:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	t.Logf("%d approvals answered with the value their awakeable was resolved with", approvals.Done())
	// Every invocation finishes: the programs' calls, awakeables and delayed sends too.
	var last string
	harness.Eventually(t, chainTimeout, "every invocation to finish", func() bool {
		rows, err := queryRows(c.nodes[0].Admin, "SELECT id, target, status FROM sys_invocation WHERE status <> 'completed'")
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%d unfinished: %v", len(rows), rows[:min(len(rows), 10)])
		return len(rows) == 0
	})
	if t.Failed() {
		t.Fatal(last)
	}
	harness.Eventually(t, chainTimeout, "every replica at the same applied LSN", func() bool {
		st, err := c.status(-1)
		if err != nil {
			last = err.Error()
			return false
		}
		for _, p := range st.Partitions {
			if len(p.Processors) < 2 {
				last = fmt.Sprintf("partition %d has %d replicas", p.ID, len(p.Processors))
				return false
			}
			for _, pr := range p.Processors {
				if pr.AppliedLSN != p.Processors[0].AppliedLSN {
					last = fmt.Sprintf("partition %d: applied %d on %s, %d on %s", p.ID, p.Processors[0].AppliedLSN, p.Processors[0].Node, pr.AppliedLSN, pr.Node)
					return false
				}
			}
		}
		return true
	})
	if t.Failed() {
		t.Fatal(last)
	}
}

// waitSettled waits until every partition is led where it is placed, and followed, and
// returns how long that took and, if it was not at once, the last thing unsettled (with the
// time it was seen).
func (c *cluster3) waitSettled(t *testing.T) (time.Duration, string) {
	t.Helper()
	start := time.Now()
	var why []string
	for {
		st, err := c.status(-1)
		if err == nil {
			err = placedEverywhere(st, "")
		}
		if err == nil {
			return time.Since(start), strings.Join(why, "; ")
		}
		msg := fmt.Sprintf("%v: %v", time.Since(start).Round(100*time.Millisecond), err)
		if len(why) == 0 || !strings.HasSuffix(why[len(why)-1], err.Error()) {
			why = append(why, msg)
		}
		if time.Since(start) > chainTimeout {
			t.Fatalf("placement not settled after %v: %s", chainTimeout, strings.Join(why, "; "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runAnswer is MixedProgram.run's answer.
var runAnswer = regexp.MustCompile(`^"run [0-9]+: total [0-9]+, ok"$`)

func acceptRun(status int, body string) bool {
	return status == http.StatusOK && runAnswer.MatchString(body)
}

// nemesis draws the faults of a chaos run.
type nemesis struct {
	c     *cluster3
	rnd   *rand.Rand
	loads []*Workload
	// wiped is the last node whose data directory was deleted ("" if none yet).
	wiped string
}

// inject applies one fault drawn from rnd and returns once every node it stopped runs
// again; it describes the fault.
func (nem *nemesis) inject(t *testing.T) string {
	t.Helper()
	c, rnd, loads := nem.c, nem.rnd, nem.loads
	closeIdle := func() {
		for _, w := range loads {
			w.client.CloseIdleConnections()
		}
	}
	pause := func(maxMs int) time.Duration { return time.Duration(rnd.IntN(maxMs+1)) * time.Millisecond }
	victims := rnd.Perm(len(c.nodes))
	switch kind := rnd.IntN(10); {
	case kind < 4:
		i, down := victims[0], pause(2000)
		c.nodes[i].Kill()
		closeIdle()
		time.Sleep(down)
		c.nodes[i].Start()
		return fmt.Sprintf("SIGKILL %s, restarted after %v", c.names[i], down)
	case kind < 6:
		i, frozen := victims[0], 1000*time.Millisecond+pause(5000)
		pid := c.nodes[i].Pid()
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(frozen)
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("SIGSTOP %s for %v", c.names[i], frozen)
	case kind < 7 && !nem.wipeSafe():
		i := victims[0]
		c.nodes[i].Kill()
		closeIdle()
		c.nodes[i].Start()
		return fmt.Sprintf("SIGKILL %s, restarted (a wipe would exceed replication 2 now)", c.names[i])
	case kind < 7:
		i := victims[0]
		nem.wiped = c.names[i]
		c.nodes[i].Kill()
		closeIdle()
		if err := os.RemoveAll(c.nodes[i].DataDir()); err != nil {
			t.Fatal(err)
		}
		c.nodes[i].Start()
		return fmt.Sprintf("SIGKILL %s, data wiped, restarted", c.names[i])
	case kind < 9:
		pair, down := slices.Sorted(slices.Values(victims[:2])), pause(2000)
		for _, i := range pair {
			c.nodes[i].Kill()
		}
		closeIdle()
		time.Sleep(down)
		// Each needs the other: the metadata store and the logs have no quorum alone.
		for _, i := range pair {
			c.nodes[i].Launch()
		}
		for _, i := range pair {
			c.nodes[i].WaitReady()
		}
		return fmt.Sprintf("SIGKILL %s and %s, restarted after %v", c.names[pair[0]], c.names[pair[1]], down)
	default:
		for _, s := range c.nodes {
			s.Kill()
		}
		closeIdle()
		c.start()
		return "SIGKILL all three, restarted"
	}
}

// wipeSafe reports whether deleting another node's data stays within what replication 2
// survives: every segment the last wiped node lost its records of is trimmed away (its
// records are in snapshots). Until then some of their records have a single copy, on a node
// that the next wipe could take too (log servers do not copy sealed segments again).
func (nem *nemesis) wipeSafe() bool {
	if nem.wiped == "" {
		return true
	}
	for _, s := range nem.c.nodes {
		var nodes metadata.Nodes
		var logs cluster.LogsStatus
		if getJSON(s.Fabric+metadata.PathPrefix+"v1/"+metadata.KeyNodes, &nodes) != nil ||
			getJSON(s.Fabric+cluster.PathPrefix+"logs", &logs) != nil {
			continue
		}
		lost := nodes.Nodes[nem.wiped]
		for _, l := range logs.Logs {
			last, trim := -1, uint64(0)
			for i, seg := range l.Segments {
				if lost.Lost(l.ID, seg.Index) {
					last = i
				}
				trim = max(trim, seg.TrimPointLSN)
			}
			if last >= 0 && (last+1 == len(l.Segments) || trim+1 < l.Segments[last+1].BaseLSN) {
				return false
			}
		}
		return true
	}
	return false
}

func getJSON(url string, v any) error {
	resp, err := harness.Send(http.MethodGet, url, "", nil)
	if err != nil {
		return err
	}
	if resp.Status != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.Status, resp.Body)
	}
	return json.Unmarshal([]byte(resp.Body), v)
}

// queryRows runs sql through the admin's /query and returns its rows.
func queryRows(admin, sql string) ([]map[string]any, error) {
	body, err := json.Marshal(map[string]string{"query": sql})
	if err != nil {
		return nil, err
	}
	resp, err := harness.Send(http.MethodPost, admin+"/query", string(body), map[string]string{"accept": "application/json", "content-type": "application/json"})
	if err != nil {
		return nil, err
	}
	if resp.Status != http.StatusOK {
		return nil, fmt.Errorf("query: %d %s", resp.Status, resp.Body)
	}
	var out struct {
		Rows []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil {
		return nil, fmt.Errorf("query answer %q: %w", resp.Body, err)
	}
	return out.Rows, nil
}
