package raftstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"gorestate.dev/shared/metadata"
)

// waitValue waits until m has applied key at version with value.
func waitValue(t *testing.T, m *member, key string, version uint64, value string) {
	t.Helper()
	ctx := testCtx(t)
	v, err := m.store().WaitNewer(ctx, key, version-1)
	if err != nil {
		t.Fatalf("%s: wait for %s@%d: %v", m.name, key, version, err)
	}
	if v.Version != version || string(v.Value) != value {
		t.Fatalf("%s: %s = %d %q, want %d %q", m.name, key, v.Version, v.Value, version, value)
	}
}

func TestLeaderKilledWritesContinue(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := testCtx(t)
	old := c.waitLeader()
	oldTerm := old.store().Status().Term
	if _, err := old.store().Put(ctx, "k", []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	c.stop(old)

	survivors := c.running()
	// The first write rides out the election: Put retries while no leader is known.
	for i, version := 0, uint64(1); i < 6; i, version = i+1, version+1 {
		m := survivors[i%len(survivors)]
		got, err := m.store().Put(ctx, "k", []byte(fmt.Sprintf("v%d", version+1)), version)
		if err != nil {
			t.Fatalf("write %d via %s after the leader died: %v", i, m.name, err)
		}
		if got != version+1 {
			t.Fatalf("write %d: version %d, want %d", i, got, version+1)
		}
	}
	leader := c.waitLeader()
	if st := leader.store().Status(); st.Term <= oldTerm {
		t.Errorf("new leader %s has term %d, not above the old %d", leader.name, st.Term, oldTerm)
	}
	for _, m := range survivors {
		waitValue(t, m, "k", 7, "v7")
	}
}

// Eight writers, spread over the three members, race in lockstep rounds to write version
// r+1; then they run free read-modify-write loops. Every version must have exactly one
// winner, every loser a version mismatch, and every member must end with the same value.
func TestConcurrentCompareAndSet(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.waitLeader()
	ctx := testCtx(t)
	const (
		writers = 8
		rounds  = 10
		final   = rounds + 40
	)
	var (
		mu         sync.Mutex
		winners    = map[uint64]string{}
		mismatches int
	)
	record := func(version uint64, value string) error {
		mu.Lock()
		defer mu.Unlock()
		if prev, dup := winners[version]; dup {
			return fmt.Errorf("version %d written twice: %q and %q", version, prev, value)
		}
		winners[version] = value
		return nil
	}

	// Watchers check that every value a member shows is the one that won its version.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var watchers sync.WaitGroup
	seen := make([][]metadata.Versioned, len(c.members))
	for i, m := range c.members {
		watchers.Add(1)
		go func() {
			defer watchers.Done()
			var version uint64
			for version < final {
				v, err := m.store().WaitNewer(watchCtx, "cas", version)
				if err != nil {
					return
				}
				seen[i] = append(seen[i], v)
				version = v.Version
			}
		}()
	}

	for round := range uint64(rounds) {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, writers)
		wins := make(chan string, writers)
		for w := range writers {
			m := c.members[w%len(c.members)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				value := fmt.Sprintf("round %d writer %d via %s", round, w, m.name)
				v, err := m.store().Put(ctx, "cas", []byte(value), round)
				switch {
				case err == nil && v != round+1:
					errs <- fmt.Errorf("%s won version %d, want %d", value, v, round+1)
				case err == nil:
					wins <- value
					errs <- record(v, value)
				case errors.Is(err, metadata.ErrVersionMismatch):
					mu.Lock()
					mismatches++
					mu.Unlock()
				default:
					errs <- fmt.Errorf("%s: %w", value, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		close(wins)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if len(wins) != 1 {
			t.Fatalf("round %d: %d writers won version %d, want exactly 1", round, len(wins), round+1)
		}
	}
	if want := rounds * (writers - 1); mismatches != want {
		t.Fatalf("lockstep rounds: %d version mismatches, want %d", mismatches, want)
	}

	// Free-running read-modify-write loops until the final version.
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		m := c.members[w%len(c.members)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; ; attempt++ {
				cur, err := m.store().Get(ctx, "cas")
				if err != nil {
					errs <- err
					return
				}
				if cur.Version >= final {
					return
				}
				value := fmt.Sprintf("free writer %d attempt %d via %s", w, attempt, m.name)
				v, err := m.store().Put(ctx, "cas", []byte(value), cur.Version)
				if errors.Is(err, metadata.ErrVersionMismatch) {
					continue
				}
				if err == nil && v != cur.Version+1 {
					err = fmt.Errorf("%s: version %d, want %d", value, v, cur.Version+1)
				}
				if err == nil {
					err = record(v, value)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// No gaps: every version from 1 to the final one has its winner.
	for v := uint64(1); v <= final; v++ {
		if _, ok := winners[v]; !ok {
			t.Fatalf("version %d has no winner", v)
		}
	}
	if len(winners) != final {
		t.Fatalf("%d winners, want %d", len(winners), final)
	}
	for _, m := range c.members {
		waitValue(t, m, "cas", final, winners[final])
	}
	watchers.Wait()
	for i, vs := range seen {
		for _, v := range vs {
			if string(v.Value) != winners[v.Version] {
				t.Errorf("%s showed version %d = %q, but %q won it", c.members[i].name, v.Version, v.Value, winners[v.Version])
			}
		}
	}
}

func TestPartitionedLeaderCannotCommit(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := testCtx(t)
	old := c.waitLeader()
	majority := c.followers(old)
	if _, err := old.store().Put(ctx, "before", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	oldTerm := old.store().Status().Term

	c.faults.Isolate(old.addr, majority[0].addr, majority[1].addr)

	// The old leader cannot reach a majority: its write must fail, within its context.
	putCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err := old.store().Put(putCtx, "p", []byte("from the isolated leader"), 0)
	cancel()
	if err == nil {
		t.Fatal("the isolated former leader committed a write")
	}
	t.Logf("isolated leader's Put failed as expected: %v", err)

	// The majority elects a new leader and commits, through either of its members.
	leader := c.waitLeader(majority...)
	if leader == old {
		t.Fatal("the isolated member still leads the majority")
	}
	if st := leader.store().Status(); st.Term <= oldTerm {
		t.Fatalf("new leader's term %d is not above %d", st.Term, oldTerm)
	}
	for i, m := range majority {
		if _, err := m.store().Put(ctx, "p", []byte(fmt.Sprintf("majority %d", i+1)), uint64(i)); err != nil {
			t.Fatalf("majority write via %s: %v", m.name, err)
		}
	}
	if st := old.store().Status(); st.State == raft.Leader.String() {
		t.Errorf("the isolated member still believes it leads (term %d)", st.Term)
	}
	if v, err := old.store().Get(ctx, "p"); err == nil {
		t.Errorf("the isolated member shows p = %d %q", v.Version, v.Value)
	}

	c.faults.Heal()
	// The old leader follows the majority's leader and converges to its values; its own
	// uncommitted entry is gone.
	eventually(t, func() error {
		if name, _ := old.store().Leader(); name != leader.name || old.store().raft.State() != raft.Follower {
			return fmt.Errorf("%s is %s and follows %q, want follower of %s", old.name, old.store().raft.State(), name, leader.name)
		}
		return nil
	})
	waitValue(t, old, "p", 2, "majority 2")
	// And it takes writes again, forwarded to the new leader.
	if _, err := old.store().Put(ctx, "p", []byte("after heal"), 2); err != nil {
		t.Fatalf("write via the healed member: %v", err)
	}
	for _, m := range c.members {
		waitValue(t, m, "p", 3, "after heal")
		waitValue(t, m, "before", 1, "x")
	}
}

func TestRestartedMemberCatchesUpFromSnapshot(t *testing.T) {
	c := newCluster(t, 3, func(o *Options) {
		o.SnapshotThreshold = 16
		o.TrailingLogs = 4
		o.SnapshotInterval = 50 * time.Millisecond
	})
	ctx := testCtx(t)
	leader := c.waitLeader()
	lagger := c.followers(leader)[0]
	if _, err := leader.store().Put(ctx, "k0", []byte("early"), 0); err != nil {
		t.Fatal(err)
	}
	waitValue(t, lagger, "k0", 1, "early")
	laggerLast := lagger.store().Status().LastIndex
	c.stop(lagger)

	const writes = 40
	for i := range writes {
		key := fmt.Sprintf("k%d", i%10)
		if _, err := leader.store().Put(ctx, key, []byte(fmt.Sprintf("value %d", i)), uint64(i/10)+boolToUint(i%10 == 0)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	// Compact the leader's log past everything the stopped member has, so that only a
	// snapshot can bring it up to date.
	if err := leader.store().raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		t.Fatal(err)
	}
	first, err := leader.store().logs.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	if first <= laggerLast+1 {
		t.Fatalf("leader's log starts at %d, not compacted past the stopped member's last index %d", first, laggerLast)
	}

	c.open(lagger)
	restoresAtOpen := lagger.store().fsm.restores.Load()
	for i := writes - 10; i < writes; i++ {
		key := fmt.Sprintf("k%d", i%10)
		want := uint64(i/10) + 1 + boolToUint(i%10 == 0)
		waitValue(t, lagger, key, want, fmt.Sprintf("value %d", i))
	}
	if got := lagger.store().fsm.restores.Load(); got <= restoresAtOpen {
		t.Errorf("the restarted member restored %d snapshots since opening, want an installed one", got-restoresAtOpen)
	}
}

func boolToUint(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func TestMigrateLocalStoreThenJoin(t *testing.T) {
	ctx := testCtx(t)
	localDir := t.TempDir()
	ls, err := metadata.OpenLocal(localDir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]metadata.Versioned{}
	for key, writes := range map[string]int{metadata.KeySchema: 3, metadata.KeyLogs: 1, metadata.KeyPartitionTable: 2, "empty": 1} {
		for i := range writes {
			value := fmt.Sprintf("%s #%d", key, i+1)
			if key == "empty" {
				value = ""
			}
			v, err := ls.Put(ctx, key, []byte(value), uint64(i))
			if err != nil {
				t.Fatal(err)
			}
			want[key] = metadata.Versioned{Version: v, Value: []byte(value)}
		}
	}
	if err := ls.Close(); err != nil {
		t.Fatal(err)
	}

	objs, err := LocalObjects(localDir)
	if err != nil {
		t.Fatal(err)
	}
	c := newEmptyCluster(t)
	first := c.addMember("n1", nil)
	c.open(first)
	if has, err := first.store().HasState(); err != nil || has {
		t.Fatalf("fresh member HasState = %v, %v", has, err)
	}
	if err := first.store().Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.store().Import(ctx, objs); err != nil {
		t.Fatal(err)
	}
	if has, err := first.store().HasState(); err != nil || !has {
		t.Fatalf("bootstrapped member HasState = %v, %v", has, err)
	}
	check := func(m *member) {
		t.Helper()
		for key, w := range want {
			waitValue(t, m, key, w.Version, string(w.Value))
		}
	}
	check(first)

	// The joining node itself and a seed that refuses connections come first: Join must skip
	// the one and move on from the other to the live seed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	_ = ln.Close()
	for _, name := range []string{"n2", "n3"} {
		m := c.addMember(name, nil)
		c.open(m)
		if err := m.store().JoinCluster(ctx, []string{m.url, dead, first.url}); err != nil {
			t.Fatal(err)
		}
		check(m)
	}
	// Adding a member again (not a fresh join: it has its state) is a no-op.
	if err := c.members[2].store().AddVoter(ctx, "n2", c.members[1].addr); err != nil {
		t.Fatalf("repeated add: %v", err)
	}
	members, err := c.members[2].store().Members()
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 3 {
		t.Fatalf("members = %+v, want 3", members)
	}
	for _, m := range members {
		if m.Suffrage != "voter" {
			t.Errorf("member %+v is not a voter", m)
		}
	}
	// The joined members take writes that keep the imported versions going.
	if _, err := c.members[2].store().Put(ctx, metadata.KeySchema, []byte("after migration"), want[metadata.KeySchema].Version); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.members {
		waitValue(t, m, metadata.KeySchema, want[metadata.KeySchema].Version+1, "after migration")
	}

	// The HTTP membership endpoints: status, and removal through a member that may not lead.
	var st Status
	getJSON(t, first.url+ClusterPath+"status", &st)
	if st.Node != "n1" || st.LeaderName == "" || len(st.Members) != 3 || st.AppliedIndex == 0 {
		t.Fatalf("status = %+v", st)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, c.members[1].url+ClusterPath+"members/n3", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("DELETE member: %s: %s", res.Status, msg)
	}
	var after []Member
	getJSON(t, first.url+ClusterPath+"members", &after)
	if len(after) != 2 || after[0].Name == "n3" || after[1].Name == "n3" {
		t.Fatalf("members after removing n3: %+v", after)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// TestWipedMemberRejoinsFresh: a member whose raft state is lost (a wiped disk) must not
// count as an up-to-date voter under its old entry; its fresh join replaces the entry and
// it catches up with everything committed before.
func TestWipedMemberRejoinsFresh(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := testCtx(t)
	leader := c.waitLeader()
	wiped := c.followers(leader)[0]
	if _, err := leader.store().Put(ctx, "before", []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	c.stop(wiped)
	if err := os.RemoveAll(wiped.dir); err != nil {
		t.Fatal(err)
	}
	c.open(wiped)
	if has, err := wiped.store().HasState(); err != nil || has {
		t.Fatalf("wiped member HasState = %v, %v", has, err)
	}
	if err := wiped.store().JoinCluster(ctx, []string{leader.url}); err != nil {
		t.Fatal(err)
	}
	if err := wiped.store().WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	waitValue(t, wiped, "before", 1, "v1")
	if !strings.Contains(c.logs.tail(400), "rejoins without raft state") {
		t.Error("the leader did not re-add the wiped member")
	}
	members, err := leader.store().Members()
	if err != nil || len(members) != 3 {
		t.Fatalf("members after the rejoin: %+v, %v", members, err)
	}
}

// TestWaitReadyAfterRestartSeesCommittedWrites: right after WaitReady, a restarted member's
// local reads include everything committed before it stopped.
func TestWaitReadyAfterRestartSeesCommittedWrites(t *testing.T) {
	c := newCluster(t, 1, nil)
	ctx := testCtx(t)
	m := c.members[0]
	for i := range 10 {
		if _, err := m.store().Put(ctx, "k", []byte(fmt.Sprint(i)), uint64(i)); err != nil {
			t.Fatal(err)
		}
		c.stop(m)
		c.open(m)
		if err := m.store().WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		v, err := m.store().Get(ctx, "k")
		if err != nil || v.Version != uint64(i+1) {
			t.Fatalf("restart %d: Get right after WaitReady = %d, %v; want version %d", i, v.Version, err, i+1)
		}
	}
}

// A write a follower forwards to a leader that stopped answering (its raft tunnel still
// works, so it stays the leader) ends within ForwardTimeout with an unknown outcome, even
// for a caller without a deadline; it hung before.
func TestForwardedWriteToASilentLeaderEnds(t *testing.T) {
	c := newCluster(t, 3, func(o *Options) { o.ForwardTimeout = 300 * time.Millisecond })
	leader := c.waitLeader()
	follower := c.followers(leader)[0]
	leader.hangObjects.Store(true)
	defer leader.hangObjects.Store(false)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := follower.store().Put(context.Background(), "k", []byte("v"), 0)
		done <- err
	}()
	select {
	case err := <-done:
		t.Logf("forwarded write ended after %v: %v", time.Since(start).Round(time.Millisecond), err)
		if !errors.Is(err, ErrOutcomeUnknown) {
			t.Fatalf("forwarded write to a silent leader: %v, want ErrOutcomeUnknown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a forwarded write to a silent leader still hangs after 10s")
	}
}
