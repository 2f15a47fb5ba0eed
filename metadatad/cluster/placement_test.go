package cluster

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gorestate.dev/shared/metadata"
)

func anyHost(uint32, string) bool { return true }

// checkPlacement checks the invariants of a placement: distinct replicas, all alive and
// able to host, as many as asked for or as possible, and a leader wherever there is a
// replica.
func checkPlacement(t *testing.T, in placementInput, out []metadata.PartitionPlacement) {
	t.Helper()
	if len(out) != int(in.partitions) {
		t.Fatalf("%d placements for %d partitions", len(out), in.partitions)
	}
	for p, pl := range out {
		rs := pl.Replicas()
		seen := map[string]bool{}
		hostable := 0
		for _, w := range in.workers {
			if in.canHost(uint32(p), w) {
				hostable++
			}
		}
		for _, r := range rs {
			if seen[r] || !slices.Contains(in.workers, r) || !in.canHost(uint32(p), r) {
				t.Fatalf("partition %d: bad replica set %+v (workers %v)", p, pl, in.workers)
			}
			seen[r] = true
		}
		if want := min(in.replication, hostable); len(rs) != want {
			t.Fatalf("partition %d: %d replicas, want %d: %+v", p, len(rs), want, pl)
		}
		if len(rs) > 0 && pl.Leader == "" {
			t.Fatalf("partition %d: replicas without a leader: %+v", p, pl)
		}
		if (len(rs) < in.replication) != (pl.UnderReplicated != "") {
			t.Fatalf("partition %d: %d of %d replicas, reason %q", p, len(rs), in.replication, pl.UnderReplicated)
		}
	}
}

func leaderCounts(out []metadata.PartitionPlacement) map[string]int {
	c := map[string]int{}
	for _, pl := range out {
		c[pl.Leader]++
	}
	return c
}

func TestInitialPlacementSpreadsLeadersAndReplicas(t *testing.T) {
	in := placementInput{partitions: 8, workers: []string{"n1", "n2", "n3"}, replication: 2, canHost: anyHost}
	out := place(in)
	checkPlacement(t, in, out)
	for w, c := range leaderCounts(out) {
		if c < 2 || c > 3 {
			t.Fatalf("%s leads %d of 8 partitions: %v", w, c, leaderCounts(out))
		}
	}
	// Placing again changes nothing.
	in.current = out
	if again := place(in); !reflect.DeepEqual(again, out) {
		t.Fatalf("not idempotent:\n%+v\n%+v", out, again)
	}
}

// settle places until nothing changes, and fails if that takes more than a few passes.
func settle(t *testing.T, in placementInput) []metadata.PartitionPlacement {
	t.Helper()
	for pass := 0; pass < 4; pass++ {
		out := place(in)
		checkPlacement(t, in, out)
		if reflect.DeepEqual(out, in.current) {
			return out
		}
		in.current = out
	}
	t.Fatalf("placement did not settle in 4 passes: %+v", in.current)
	return nil
}

func TestLeaderLossPromotesAFollower(t *testing.T) {
	in := placementInput{partitions: 6, workers: []string{"n1", "n2", "n3"}, replication: 2, canHost: anyHost}
	before := place(in)
	in.current, in.workers = before, []string{"n2", "n3"} // n1 died
	after := place(in)
	checkPlacement(t, in, after)
	for p := range before {
		switch {
		case before[p].Leader == "n1" && !slices.Contains(before[p].Followers, after[p].Leader):
			// A follower added in this pass has not applied the log yet.
			t.Fatalf("partition %d: %+v became %+v: the new leader was no follower", p, before[p], after[p])
		case before[p].Leader != "n1" && after[p].Leader != before[p].Leader:
			t.Fatalf("partition %d: leader moved from %s to %s in the takeover, which moves only n1's", p, before[p].Leader, after[p].Leader)
		}
	}
	// Later passes balance the leaderships again, each to an established follower.
	in.current = after
	settled := settle(t, in)
	for p := range settled {
		if settled[p].Leader != after[p].Leader && !slices.Contains(after[p].Followers, settled[p].Leader) {
			t.Fatalf("partition %d: %+v became %+v", p, after[p], settled[p])
		}
	}
	if lc := leaderCounts(settled); lc["n2"] != 3 || lc["n3"] != 3 {
		t.Fatalf("leaders %v, want 3 each", lc)
	}
}

func TestUnderReplicatedSaysWhy(t *testing.T) {
	in := placementInput{partitions: 2, workers: []string{"n1"}, replication: 3, canHost: anyHost}
	out := place(in)
	checkPlacement(t, in, out)
	if !strings.Contains(out[0].UnderReplicated, "1 of 3 replicas: only 1 alive worker node") {
		t.Fatalf("reason %q", out[0].UnderReplicated)
	}
	// A partition whose log has a local segment on n1 can only live there.
	in = placementInput{partitions: 2, workers: []string{"n1", "n2"}, replication: 2,
		canHost: func(p uint32, n string) bool { return p != 0 || n == "n1" }}
	out = place(in)
	checkPlacement(t, in, out)
	if out[0].Leader != "n1" || !strings.Contains(out[0].UnderReplicated, "can read the partition's log") {
		t.Fatalf("partition 0: %+v", out[0])
	}
	if out := place(placementInput{partitions: 1, replication: 1, canHost: anyHost}); out[0].UnderReplicated != "no alive worker node" {
		t.Fatalf("no workers: %+v", out[0])
	}
}

func TestJoiningWorkerGetsItsShare(t *testing.T) {
	in := placementInput{partitions: 12, workers: []string{"n1", "n2", "n3"}, replication: 2, canHost: anyHost}
	in.current = place(in)
	in.workers = append(in.workers, "n4")
	out := settle(t, in)
	lc := leaderCounts(out)
	rc := map[string]int{}
	for _, pl := range out {
		for _, r := range pl.Replicas() {
			rc[r]++
		}
	}
	for _, w := range in.workers {
		if lc[w] != 3 || rc[w] != 6 {
			t.Fatalf("%s leads %d and holds %d replicas; want 3 and 6: leaders %v replicas %v", w, lc[w], rc[w], lc, rc)
		}
	}
}

// Random sequences of deaths, joins and replication changes keep the invariants, and
// placement settles after every step.
func TestPlacementInvariantsUnderChurn(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		in := placementInput{partitions: uint32(1 + rng.IntN(16)), replication: 1 + rng.IntN(3), canHost: anyHost}
		all := []string{"a", "b", "c", "d", "e"}
		for step := 0; step < 30; step++ {
			in.workers = nil
			for _, w := range all {
				if rng.IntN(3) != 0 {
					in.workers = append(in.workers, w)
				}
			}
			if rng.IntN(5) == 0 {
				in.replication = 1 + rng.IntN(3)
			}
			out := place(in)
			t.Run(fmt.Sprint(seed, "/", step), func(t *testing.T) { checkPlacement(t, in, out) })
			in.current = out
			in.current = settle(t, in)
		}
	}
}

// Workers die and come back one at a time, the controller settling after each event, as
// in a cluster's life: every placement settles within a few passes (a placement that
// never settles rewrites the table every pass and restarts followers), and with followers
// to hand leaderships to, no worker ends above ceil(partitions/workers) of them. Before,
// a follower that balanceLeaders placed to take a leadership over was moved away again by
// balanceFollowers, pass after pass (seed 1669: 47 partitions, a-e, -c -b -e +e +c +b).
func TestPlacementSettlesAfterEachDeathAndRejoin(t *testing.T) {
	for seed := uint64(1); seed <= 2000; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		all := []string{"a", "b", "c", "d", "e", "f", "g", "h"}[:3+rng.IntN(6)]
		in := placementInput{partitions: uint32(1 + rng.IntN(48)), replication: 1 + rng.IntN(3), canHost: anyHost, workers: slices.Clone(all)}
		in.current = settle(t, in)
		var events []string
		for range 12 {
			var dead []string
			for _, w := range all {
				if !slices.Contains(in.workers, w) {
					dead = append(dead, w)
				}
			}
			if len(dead) > 0 && (rng.IntN(2) == 0 || len(in.workers) <= 2) {
				w := dead[rng.IntN(len(dead))]
				in.workers = append(in.workers, w)
				slices.Sort(in.workers)
				events = append(events, "+"+w)
			} else {
				i := rng.IntN(len(in.workers))
				events = append(events, "-"+in.workers[i])
				in.workers = slices.Delete(slices.Clone(in.workers), i, i+1)
			}
			in.current = settle(t, in)
			if in.replication < 2 {
				continue // no follower to hand a leadership to
			}
			hi := (int(in.partitions) + len(in.workers) - 1) / len(in.workers)
			for w, n := range leaderCounts(in.current) {
				if n > hi {
					t.Fatalf("seed %d: %d partitions, replication %d, after %v: %s leads %d, more than %d (%v)",
						seed, in.partitions, in.replication, events, w, n, hi, leaderCounts(in.current))
				}
			}
		}
	}
}

// A worker that follows only partitions of workers with few leaderships still gets one:
// it first replaces a follower of a busier leader, then takes the leadership.
func TestJoiningWorkerGetsALeadershipFromTheBusiestLeader(t *testing.T) {
	in := placementInput{partitions: 4, workers: []string{"n1", "n2", "n3", "n4"}, replication: 2, canHost: anyHost,
		current: []metadata.PartitionPlacement{
			{Leader: "n1", Followers: []string{"n4"}}, {Leader: "n3", Followers: []string{"n1"}},
			{Leader: "n2", Followers: []string{"n4"}}, {Leader: "n3", Followers: []string{"n2"}}}}
	out := settle(t, in)
	for w, c := range leaderCounts(out) {
		if c != 1 {
			t.Fatalf("%s leads %d partitions: %+v", w, c, out)
		}
	}
}

// A balancing move gives the leadership only to a follower that has caught up: one still
// restoring a snapshot or replaying the log would leave the partition without a leader that
// serves.
func TestLeadershipMovesOnlyToACaughtUpFollower(t *testing.T) {
	in := placementInput{partitions: 2, workers: []string{"n1", "n2"}, replication: 2, canHost: anyHost,
		current:  []metadata.PartitionPlacement{{Leader: "n1", Followers: []string{"n2"}}, {Leader: "n1", Followers: []string{"n2"}}},
		caughtUp: func(uint32, string) bool { return false }}
	if out := place(in); leaderCounts(out)["n1"] != 2 {
		t.Fatalf("a leadership moved to a follower that has not caught up: %+v", out)
	}
	in.caughtUp = func(p uint32, node string) bool { return p == 1 && node == "n2" }
	out := place(in)
	if out[0].Leader != "n1" || out[1].Leader != "n2" {
		t.Fatalf("want partition 1's leadership on its caught-up follower n2: %+v", out)
	}
}

// A placement read back from the table (JSON) compares equal to the one placed, so an
// unchanged placement is not written again on every pass.
func TestPlacementSurvivesTheTableEncoding(t *testing.T) {
	in := placementInput{partitions: 3, workers: []string{"a", "b"}, replication: 2, canHost: anyHost}
	in.current = settle(t, in)
	in.replication = 1 // followers go, in this very pass
	out := place(in)
	b, err := json.Marshal(metadata.PartitionTable{NumPartitions: 3, Placement: out})
	if err != nil {
		t.Fatal(err)
	}
	var back metadata.PartitionTable
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Placement, out) {
		t.Fatalf("placement changes through the table encoding:\n%#v\n%#v", out, back.Placement)
	}
}

// Of several followers of a lost leader, the one that applied the most takes over.
func TestMostCaughtUpFollowerLeads(t *testing.T) {
	lsns := map[string]uint64{"b": 10, "c": 42, "d": 41}
	in := placementInput{partitions: 1, workers: []string{"b", "c", "d"}, replication: 4, canHost: anyHost,
		current: []metadata.PartitionPlacement{{Leader: "a", Followers: []string{"b", "c", "d"}}},
		applied: func(_ uint32, n string) (uint64, bool) { l, ok := lsns[n]; return l, ok }}
	if out := place(in); out[0].Leader != "c" || !slices.Equal(out[0].Followers, []string{"b", "d"}) {
		t.Fatalf("placed %+v, want c leading b and d", out[0])
	}
	// Unknown progress: the first follower.
	in.applied = func(uint32, string) (uint64, bool) { return 0, false }
	if out := place(in); out[0].Leader != "b" {
		t.Fatalf("placed %+v, want b", out[0])
	}
}

// passes places in again and again, as the controller does, with a follower counting as
// caught up once it was a follower in the placement pass before (it had one pass to catch
// up) unless slow says it never catches up. check runs on every pass's output with the
// placement before it. It returns the settled placement.
func passes(t *testing.T, in placementInput, slow func(p uint32, node string) bool,
	check func(before, after []metadata.PartitionPlacement)) []metadata.PartitionPlacement {
	t.Helper()
	var before []metadata.PartitionPlacement
	in.caughtUp = func(p uint32, node string) bool {
		return int(p) < len(before) && slices.Contains(before[p].Followers, node) && !slow(p, node)
	}
	for range 12 {
		out := place(in)
		check(in.current, out)
		// Settled: unchanged for two passes (a follower catches up by waiting a pass).
		if reflect.DeepEqual(out, in.current) && reflect.DeepEqual(before, in.current) {
			return out
		}
		before, in.current = in.current, out
	}
	t.Fatalf("placement did not settle in 12 passes: %+v", in.current)
	return nil
}

// caughtUpFollowers counts the followers of pl that were followers in before as well
// (placed at least a pass ago).
func caughtUpFollowers(before, pl metadata.PartitionPlacement) int {
	n := 0
	for _, f := range pl.Followers {
		if slices.Contains(before.Followers, f) {
			n++
		}
	}
	return n
}

// A worker joins and balancing moves followers to it make-before-break: the new follower is
// added beside the one it replaces, which goes only once the new one has caught up. At no
// pass does a partition have fewer established followers than before the join, so a leader
// failing at any moment has a follower ready to take over. (Before, the follower was
// replaced in one pass, and until the new one had restored a snapshot and replayed the log
// the partition had no follower that could take over at once.)
func TestBalancingMovesFollowersMakeBeforeBreak(t *testing.T) {
	in := placementInput{partitions: 12, workers: []string{"n1", "n2", "n3"}, replication: 2, canHost: anyHost}
	in.current = settle(t, in)
	in.workers = append(in.workers, "n4")
	never := func(uint32, string) bool { return false }
	out := passes(t, in, never, func(before, after []metadata.PartitionPlacement) {
		for p := range after {
			if len(after[p].Replicas()) < in.replication || after[p].Leader == "" {
				t.Fatalf("partition %d placed on %+v: fewer than %d replicas", p, after[p], in.replication)
			}
			if len(after[p].Followers) > in.replication {
				t.Fatalf("partition %d placed on %+v: more than one follower added at once", p, after[p])
			}
			if stayed := caughtUpFollowers(before[p], after[p]); stayed < 1 && after[p].Leader == before[p].Leader {
				t.Fatalf("partition %d: %+v became %+v: no follower of the pass before is left", p, before[p], after[p])
			}
		}
	})
	lc, rc := leaderCounts(out), map[string]int{}
	for p, pl := range out {
		if len(pl.Followers) != in.replication-1 {
			t.Fatalf("partition %d settled on %+v: %d followers", p, pl, len(pl.Followers))
		}
		for _, r := range pl.Replicas() {
			rc[r]++
		}
	}
	for _, w := range in.workers {
		if lc[w] != 3 || rc[w] != 6 {
			t.Fatalf("%s leads %d and holds %d replicas; want 3 and 6: leaders %v replicas %v", w, lc[w], rc[w], lc, rc)
		}
	}
}

// A follower added by a balancing move that never catches up (it cannot restore) leaves the
// follower it was to replace in place, and the placement stays as it is instead of adding
// follower after follower.
func TestAFollowerThatNeverCatchesUpReplacesNothing(t *testing.T) {
	in := placementInput{partitions: 6, workers: []string{"n1", "n2"}, replication: 2, canHost: anyHost}
	in.current = settle(t, in)
	in.workers = append(in.workers, "n3")
	out := passes(t, in, func(_ uint32, node string) bool { return node == "n3" }, func(before, after []metadata.PartitionPlacement) {})
	added := 0
	for p, pl := range out {
		if !slices.ContainsFunc(pl.Replicas(), func(r string) bool { return r == "n1" || r == "n2" }) || len(pl.Replicas()) < 2 {
			t.Fatalf("partition %d settled on %+v", p, pl)
		}
		old := in.current[p]
		for _, f := range old.Followers {
			if f != pl.Leader && !slices.Contains(pl.Followers, f) {
				t.Fatalf("partition %d: %+v became %+v: its follower %s went though n3 never caught up", p, old, pl, f)
			}
		}
		if slices.Contains(pl.Followers, "n3") {
			added++
		}
	}
	if added == 0 {
		t.Fatalf("no follower was added on n3: %+v", out)
	}
}

// Deaths, joins and replication changes with followers that catch up after a pass, or
// (some of them) never: every placement keeps distinct alive replicas with a leader and
// at least as many replicas as wanted (where workers allow), and each event settles.
func TestPlacementWithCatchUpUnderChurn(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		all := []string{"a", "b", "c", "d", "e", "f"}[:3+rng.IntN(4)]
		in := placementInput{partitions: uint32(1 + rng.IntN(24)), replication: 1 + rng.IntN(3), canHost: anyHost, workers: slices.Clone(all)}
		stuck := all[rng.IntN(len(all))] // its new followers never catch up
		slow := func(_ uint32, node string) bool { return node == stuck && seed%2 == 0 }
		check := func(before, after []metadata.PartitionPlacement) {
			for p, pl := range after {
				rs := pl.Replicas()
				seen := map[string]bool{}
				for _, r := range rs {
					if seen[r] || !slices.Contains(in.workers, r) {
						t.Fatalf("seed %d: partition %d: bad replica set %+v (workers %v)", seed, p, pl, in.workers)
					}
					seen[r] = true
				}
				if len(rs) < min(in.replication, len(in.workers)) || pl.Leader == "" {
					t.Fatalf("seed %d: partition %d: %+v has fewer than %d replicas", seed, p, pl, in.replication)
				}
			}
		}
		in.current = passes(t, in, slow, check)
		for range 10 {
			switch r := rng.IntN(5); {
			case r == 0:
				in.replication = 1 + rng.IntN(3)
			case r <= 2 && len(in.workers) > 2:
				i := rng.IntN(len(in.workers))
				in.workers = slices.Delete(slices.Clone(in.workers), i, i+1)
			default:
				for _, w := range all {
					if !slices.Contains(in.workers, w) {
						in.workers = append(in.workers, w)
						slices.Sort(in.workers)
						break
					}
				}
			}
			in.current = passes(t, in, slow, check)
			if seed%2 == 0 {
				continue // a stuck follower may hold a move open
			}
			for p, pl := range in.current {
				if want := min(in.replication, len(in.workers)) - 1; len(pl.Followers) != want {
					t.Fatalf("seed %d: partition %d settled on %+v, want %d followers", seed, p, pl, want)
				}
			}
			if hi := (int(in.partitions) + len(in.workers) - 1) / len(in.workers); in.replication >= 2 {
				for w, n := range leaderCounts(in.current) {
					if n > hi {
						t.Fatalf("seed %d: %s leads %d, more than %d (%v)", seed, w, n, hi, leaderCounts(in.current))
					}
				}
			}
		}
	}
}

// A worker restarts and its new followers are slow to catch up (here they never do): the
// partitions it follows keep their surplus followers meanwhile, which no longer count
// towards their workers' load, and every other placement settles. Before, a partition
// whose followers had all caught up chose the one to go by a load that still counted the
// followers that the partitions after it were about to stop counting: it dropped a follower
// on a worker that ended the pass below the others, balancing added a follower there
// again, and the table changed on every pass (with a new follower to restore each time).
func TestSurplusFollowersGoByTheLoadThatRemains(t *testing.T) {
	in := placementInput{partitions: 10, workers: []string{"a", "b", "c", "d", "e"}, replication: 3, canHost: anyHost}
	slowA := func(_ uint32, node string) bool { return node == "a" }
	check := func(before, after []metadata.PartitionPlacement) {}
	in.current = passes(t, in, slowA, check)
	in.workers = []string{"b", "c", "d", "e"}
	in.current = passes(t, in, slowA, check)
	in.workers = []string{"a", "b", "c", "d", "e"}
	out := passes(t, in, slowA, check)
	for p, pl := range out {
		if len(pl.Replicas()) < in.replication || len(pl.Followers) > in.replication {
			t.Fatalf("partition %d settled on %+v", p, pl)
		}
	}
}

// The workers below the ceiling of leaderships cannot host a busy leader's partitions
// (here n4 cannot read any log). A follower placed on a worker already at the ceiling could
// never take the leadership, so no follower is moved for it: before, every pass replaced
// the follower with the other worker at the ceiling, and the table changed for good.
func TestNoFollowerMoveToAWorkerThatCannotTakeTheLeadership(t *testing.T) {
	in := placementInput{partitions: 8, workers: []string{"n1", "n2", "n3", "n4"}, replication: 2,
		canHost: func(_ uint32, node string) bool { return node != "n4" },
		current: []metadata.PartitionPlacement{
			{Leader: "n1", Followers: []string{"n2"}}, {Leader: "n1", Followers: []string{"n2"}},
			{Leader: "n1", Followers: []string{"n3"}}, {Leader: "n1", Followers: []string{"n3"}},
			{Leader: "n2", Followers: []string{"n1"}}, {Leader: "n2", Followers: []string{"n3"}},
			{Leader: "n3", Followers: []string{"n1"}}, {Leader: "n3", Followers: []string{"n2"}}}}
	for _, caughtUp := range []func(uint32, string) bool{nil, func(uint32, string) bool { return true }} {
		in.caughtUp = caughtUp
		if out := place(in); !reflect.DeepEqual(out, in.current) {
			t.Fatalf("caughtUp %v: moved followers that could not take a leadership:\n%+v\nwas\n%+v", caughtUp != nil, out, in.current)
		}
	}
}

// Random histories where some workers cannot host some partitions (their logs have local
// segments elsewhere) and followers catch up a pass after they are placed: every placement
// settles without a surplus follower. Before, a follower placed to take a leadership was
// dropped by trimSurplus for its load before it could take it, and placed again on every
// pass: the table stayed the same, with a surplus follower and the leaderships unbalanced
// (seed 748 found it, as did 410 with other bounds).
func TestPlacementSettlesWhereWorkersCannotHostEverything(t *testing.T) {
	for seed := uint64(1); seed <= 1000; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		all := []string{"a", "b", "c", "d", "e"}[:2+rng.IntN(4)]
		barred := map[string]bool{} // "p/node"
		in := placementInput{partitions: uint32(1 + rng.IntN(16)), replication: 1 + rng.IntN(3), workers: slices.Clone(all)}
		for p := range in.partitions {
			for _, w := range all[1:] { // a can host every partition
				if rng.IntN(2) == 0 {
					barred[fmt.Sprint(p, "/", w)] = true
				}
			}
		}
		in.canHost = func(p uint32, node string) bool { return !barred[fmt.Sprint(p, "/", node)] }
		noneSlow := func(uint32, string) bool { return false }
		// A move in progress holds one follower more than asked for.
		check := func(_, after []metadata.PartitionPlacement) {
			for p, pl := range after {
				seen := map[string]bool{}
				hostable := 0
				for _, w := range in.workers {
					if in.canHost(uint32(p), w) {
						hostable++
					}
				}
				for _, r := range pl.Replicas() {
					if seen[r] || !slices.Contains(in.workers, r) || !in.canHost(uint32(p), r) {
						t.Fatalf("seed %d: partition %d: bad replica set %+v (workers %v)", seed, p, pl, in.workers)
					}
					seen[r] = true
				}
				if n, want := len(seen), min(in.replication, hostable); n < want || n > want+1 || (n > 0 && pl.Leader == "") {
					t.Fatalf("seed %d: partition %d: %+v, want %d replicas", seed, p, pl, want)
				}
			}
		}
		for step := range 7 {
			if i := rng.IntN(len(all)); step > 0 && slices.Contains(in.workers, all[i]) && len(in.workers) > 1 {
				in.workers = slices.DeleteFunc(slices.Clone(in.workers), func(w string) bool { return w == all[i] })
			} else if step > 0 && !slices.Contains(in.workers, all[i]) {
				in.workers = append(slices.Clone(in.workers), all[i])
				slices.Sort(in.workers)
			}
			in.current = passes(t, in, noneSlow, check)
			for p, pl := range in.current {
				if len(pl.Replicas()) > in.replication {
					t.Fatalf("seed %d step %d: partition %d settled with a surplus: %+v (workers %v, replication %d)", seed, step, p, pl, in.workers, in.replication)
				}
			}
		}
	}
}
