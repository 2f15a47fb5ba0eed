package cluster

import (
	"fmt"
	"slices"

	"gorestate.dev/shared/metadata"
)

// placementInput is what the controller places partitions from.
type placementInput struct {
	current     []metadata.PartitionPlacement // the table's placement (may be empty or short)
	partitions  uint32
	workers     []string // alive worker nodes
	replication int      // replicas wanted per partition (leader included), at least 1
	// canHost reports whether node can run a processor of partition p: it can read the
	// partition's log (a local segment is readable on its own node only).
	canHost func(p uint32, node string) bool
	// whyNot, if set, says why some workers cannot host partition p ("" for the usual
	// reason: the log has a segment local to another node).
	whyNot func(p uint32) string
	// applied, if set, is how far a node's processor of partition p has applied the log
	// (false: unknown); of several followers the most caught-up one is promoted.
	applied func(p uint32, node string) (uint64, bool)
	// noBalance holds back balancing moves (a takeover is still settling).
	noBalance bool
	// caughtUp, if set, reports whether node's follower of partition p has applied nearly
	// all of the log; a balancing move hands the leadership only to such a follower. With
	// it, balancing also moves a follower make-before-break: the new one is added, and the
	// one it replaces goes once the new one has caught up (see trimSurplus).
	caughtUp func(p uint32, node string) bool
}

// place computes the placement the controller wants: every partition keeps its alive
// replicas; a partition whose leader is gone gets its most caught-up alive follower as
// leader (its processor has applied the log and only catches up on the rest); missing replicas are
// added on the least loaded workers; and leaders and followers are moved to balance the
// load when workers joined (followers first; leaderships move to followers on a later pass).
// It is deterministic, and placing its own output again reaches a fixed point within a few
// passes.
func place(in placementInput) []metadata.PartitionPlacement {
	workers := slices.Clone(in.workers)
	slices.Sort(workers)
	alive := map[string]bool{}
	for _, w := range workers {
		alive[w] = true
	}
	out := make([]metadata.PartitionPlacement, in.partitions)
	leaders, replicas := map[string]int{}, map[string]int{}
	failover := false // a leader is gone: this pass only replaces it
	for p := range in.partitions {
		var cur metadata.PartitionPlacement
		if int(p) < len(in.current) {
			cur = in.current[p]
		}
		keep := func(node string) bool { return node != "" && alive[node] && in.canHost(p, node) }
		var followers []string
		for _, f := range cur.Followers {
			if keep(f) && f != cur.Leader && !slices.Contains(followers, f) {
				followers = append(followers, f)
			}
		}
		leader := cur.Leader
		if !keep(leader) {
			failover = failover || leader != ""
			leader = ""
			if len(followers) > 0 {
				best := mostCaughtUp(p, followers, in.applied)
				leader = followers[best]
				followers = slices.Delete(slices.Clone(followers), best, best+1)
			}
		}
		out[p] = metadata.PartitionPlacement{Leader: leader, Followers: followers}
		count(out[p], leaders, replicas, 1)
	}
	// Missing replicas, on the least loaded workers that can host them.
	for p := range in.partitions {
		pl := &out[p]
		for pl.Leader == "" || len(pl.Followers) < in.replication-1 {
			w, ok := leastLoaded(workers, func(w string) bool { return !pl.Has(w) && in.canHost(p, w) }, leaders, replicas, pl.Leader == "")
			if !ok {
				break
			}
			if pl.Leader == "" {
				pl.Leader = w
				leaders[w]++
			} else {
				pl.Followers = append(pl.Followers, w)
			}
			replicas[w]++
		}
	}
	trimSurplus(out, in, leaders, replicas)
	if len(workers) > 0 && !failover && !in.noBalance {
		// Balancing waits for a pass without a failover, so that a takeover moves no
		// partition but the lost leader's. Leaderships move only to followers that were
		// placed before this pass: they have been applying the log, so taking over costs
		// them only the last records.
		established := func(p int, node string) bool {
			return p < len(in.current) && slices.Contains(in.current[p].Followers, node) &&
				(in.caughtUp == nil || in.caughtUp(uint32(p), node))
		}
		mv := mover{replication: in.replication, makeBeforeBreak: in.caughtUp != nil, replicas: replicas}
		balanceLeaders(out, workers, leaders, replicas, established, in.canHost, mv)
		balanceFollowers(out, workers, leaders, replicas, in.canHost, mv)
	}
	for p := range out {
		pl := &out[p]
		if len(pl.Followers) == 0 {
			pl.Followers = nil // as the table decodes it: an unchanged placement compares equal
		}
		hostable := 0
		for _, w := range workers {
			if in.canHost(uint32(p), w) {
				hostable++
			}
		}
		switch have := len(pl.Replicas()); {
		case have >= in.replication:
			pl.UnderReplicated = ""
		case len(workers) == 0:
			pl.UnderReplicated = "no alive worker node"
		case hostable < len(workers) && in.whyNot != nil && in.whyNot(uint32(p)) != "":
			pl.UnderReplicated = fmt.Sprintf("%d of %d replicas: %s", have, in.replication, in.whyNot(uint32(p)))
		case hostable < len(workers):
			pl.UnderReplicated = fmt.Sprintf("%d of %d replicas: only %d alive worker node(s) can read the partition's log: a local segment stays on its node until a snapshot covers it and the log is trimmed past it", have, in.replication, hostable)
		default:
			pl.UnderReplicated = fmt.Sprintf("%d of %d replicas: only %d alive worker node(s)", have, in.replication, len(workers))
		}
	}
	return out
}

// trimSurplus removes the followers beyond the replication: it was lowered, or a balancing
// move added a follower (mover). Without caughtUp the last ones go. With it the ones on the
// workers with the most replicas go, but only once every follower of the partition has
// caught up: while one is still catching up (restoring a snapshot, replaying the log), the
// caught-up ones stay, so that the leader has a follower ready to take over if it fails
// meanwhile. Those that are to go no longer count towards their workers' load.
//
// The partitions that keep their surplus for now are counted first, and only then do the
// others choose which followers go: chosen by a load that still counted followers about to
// stop counting, the one to go could be on a worker that ends the pass below the others,
// where balancing adds a follower back at once, pass after pass.
//
// A follower that is to take the leadership from a worker above ceil(partitions/workers)
// leaders (balanceLeaders added it for that) goes last: dropped for its load, it would be
// added back by balanceLeaders on every pass and never get to lead.
func trimSurplus(out []metadata.PartitionPlacement, in placementInput, leaders, replicas map[string]int) {
	want := max(in.replication-1, 0)
	if in.caughtUp == nil {
		for p := range out {
			pl := &out[p]
			if surplus := len(pl.Followers) - want; surplus > 0 {
				for _, f := range pl.Followers[want:] {
					replicas[f]--
				}
				pl.Followers = pl.Followers[:want]
			}
		}
		return
	}
	hiLeaders := 0
	if len(in.workers) > 0 {
		hiLeaders = (int(in.partitions) + len(in.workers) - 1) / len(in.workers)
	}
	// The most loaded first; of equally loaded ones the earlier in the list (a follower a
	// move added is last: it must not be the one to go); a follower to take the leadership
	// after all others.
	byLoad := func(pl *metadata.PartitionPlacement, fs []string) []string {
		takes := func(f string) bool { return leaders[pl.Leader] > hiLeaders && leaders[f] < hiLeaders }
		out := slices.Clone(fs)
		slices.SortStableFunc(out, func(a, b string) int {
			if ta, tb := takes(a), takes(b); ta != tb {
				if ta {
					return 1
				}
				return -1
			}
			return replicas[b] - replicas[a]
		})
		return out
	}
	waiting := make([]bool, len(out)) // a follower of the partition is still catching up
	for p := range out {
		pl := &out[p]
		surplus := len(pl.Followers) - want
		if surplus <= 0 {
			continue
		}
		var ready []string
		for _, f := range pl.Followers {
			if in.caughtUp(uint32(p), f) {
				ready = append(ready, f)
			} else {
				waiting[p] = true
			}
		}
		if waiting[p] {
			for _, f := range byLoad(pl, ready)[:min(surplus, len(ready))] {
				replicas[f]-- // it stays until the others have caught up
			}
		}
	}
	for p := range out {
		pl := &out[p]
		surplus := len(pl.Followers) - want
		if surplus <= 0 || waiting[p] {
			continue
		}
		for _, f := range byLoad(pl, pl.Followers)[:surplus] {
			replicas[f]--
			pl.Followers = slices.DeleteFunc(pl.Followers, func(g string) bool { return g == f })
		}
	}
}

// mover carries out balancing moves of followers.
type mover struct {
	replication     int
	makeBeforeBreak bool
	replicas        map[string]int
}

// moving reports whether partition pl has a move under way: more followers than the
// replication asks for (make-before-break keeps the replaced one until the new one has
// caught up). Such a partition gets no further move until it is done.
func (m mover) moving(pl *metadata.PartitionPlacement) bool {
	return m.makeBeforeBreak && len(pl.Followers) > max(m.replication-1, 0)
}

// replace moves pl's follower i to worker to: make-before-break, to joins and the follower
// stays until to has caught up (trimSurplus), no longer counted; otherwise at once.
func (m mover) replace(pl *metadata.PartitionPlacement, i int, to string) {
	m.replicas[pl.Followers[i]]--
	m.replicas[to]++
	if m.makeBeforeBreak {
		pl.Followers = append(pl.Followers, to)
		return
	}
	pl.Followers[i] = to
}

// mostCaughtUp is the index of the follower that has applied the most of partition p's log,
// the first one where that is unknown or tied: it takes over with the least to catch up on.
func mostCaughtUp(p uint32, followers []string, applied func(uint32, string) (uint64, bool)) int {
	best, bestLSN := 0, uint64(0)
	if applied == nil {
		return 0
	}
	for i, f := range followers {
		if lsn, ok := applied(p, f); ok && lsn > bestLSN {
			best, bestLSN = i, lsn
		}
	}
	return best
}

func count(pl metadata.PartitionPlacement, leaders, replicas map[string]int, d int) {
	if pl.Leader != "" {
		leaders[pl.Leader] += d
	}
	for _, r := range pl.Replicas() {
		replicas[r] += d
	}
}

// leastLoaded picks the eligible worker with the fewest replicas (the fewest leaders first
// when a leader is wanted), ties broken by name.
func leastLoaded(workers []string, eligible func(string) bool, leaders, replicas map[string]int, forLeader bool) (string, bool) {
	best, found := "", false
	less := func(a, b string) bool {
		if forLeader && leaders[a] != leaders[b] {
			return leaders[a] < leaders[b]
		}
		if replicas[a] != replicas[b] {
			return replicas[a] < replicas[b]
		}
		return a < b
	}
	for _, w := range workers {
		if eligible(w) && (!found || less(w, best)) {
			best, found = w, true
		}
	}
	return best, found
}

// balanceLeaders hands leaderships from workers above ceil(partitions/workers) leaders to
// one of the partition's established followers below that: a swap of roles, so no
// processor has to be created for it. Where no follower of such a partition can take it, a
// worker with at least two leaderships fewer than the leader replaces one of its followers,
// to take the leadership in a later pass, once it has applied the log (only a worker below
// the ceiling: any other could not take it). Every move brings
// the busiest worker down or prepares that, so it ends.
func balanceLeaders(out []metadata.PartitionPlacement, workers []string, leaders, replicas map[string]int,
	established func(p int, node string) bool, canHost func(uint32, string) bool, mv mover) {
	hi := (len(out) + len(workers) - 1) / len(workers)
	for moved := true; moved; {
		moved = false
		for p := range out {
			pl := &out[p]
			if pl.Leader == "" || leaders[pl.Leader] <= hi {
				continue
			}
			for i, f := range pl.Followers {
				if leaders[f] < hi && established(p, f) {
					leaders[pl.Leader]--
					leaders[f]++
					pl.Followers[i], pl.Leader = pl.Leader, f
					moved = true
					break
				}
			}
			if moved || len(pl.Followers) == 0 || mv.moving(pl) || slices.ContainsFunc(pl.Followers, func(f string) bool { return leaders[f] < hi }) {
				continue // moved, a move is under way, or a follower will be able to take it once established
			}
			// Only a worker below the ceiling could take the leadership once established
			// (see above); a follower placed anywhere else would be replaced again on the
			// next pass, and the one after.
			w, ok := leastLoaded(workers, func(w string) bool {
				return leaders[w] < hi && leaders[w]+2 <= leaders[pl.Leader] && !pl.Has(w) && canHost(uint32(p), w)
			}, leaders, replicas, true)
			if !ok {
				continue
			}
			i := 0
			for j, f := range pl.Followers {
				if replicas[f] > replicas[pl.Followers[i]] {
					i = j
				}
			}
			mv.replace(pl, i, w)
		}
	}
}

// balanceFollowers moves followers from workers above ceil(replicas/workers) replicas to
// workers below floor(replicas/workers), one per partition and pass, so that a joining
// worker takes its share. Leaders stay where they are, and so does a follower that is to
// take the leadership from a worker above ceil(partitions/workers) leaders (balanceLeaders
// placed it there): moving it away would undo that, pass after pass.
func balanceFollowers(out []metadata.PartitionPlacement, workers []string, leaders, replicas map[string]int, canHost func(uint32, string) bool, mv mover) {
	total := 0
	for _, w := range workers {
		total += replicas[w]
	}
	lo, hi := total/len(workers), (total+len(workers)-1)/len(workers)
	hiLeaders := (len(out) + len(workers) - 1) / len(workers)
	for moved := true; moved; {
		moved = false
		for p := range out {
			pl := &out[p]
			if mv.moving(pl) {
				continue
			}
			for i, f := range pl.Followers {
				if replicas[f] <= hi || leaders[pl.Leader] > hiLeaders && leaders[f] < hiLeaders {
					continue
				}
				to, ok := leastLoaded(workers, func(w string) bool { return replicas[w] < lo && !pl.Has(w) && canHost(uint32(p), w) }, nil, replicas, false)
				if !ok {
					continue
				}
				mv.replace(pl, i, to)
				moved = true
				break
			}
		}
	}
}
