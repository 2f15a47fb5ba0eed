package replicated

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/replicated/faultnet"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metadata"
)

// Seal succeeds with one of three servers down (n=3, r=2: f-majority 2), from the
// sequencer's node and from another node, and is idempotent.
func TestSealWithOneServerDown(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"sequencer", "remote"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, 3, 2, 40)
			seg := c.segment(40, w1)
			l1 := c.open(c.provider("w1", 1, nil), seg)
			l2 := c.open(c.provider("w2", 1, nil), seg)
			ctx := testCtx(t, 20*time.Second)
			c.net.Partition("s2")
			for i := range 5 {
				if _, err := l1.Append(ctx, [][]byte{[]byte(fmt.Sprintf("r%d", i))}); err != nil {
					t.Fatal(err)
				}
			}
			sealer := l1
			if via == "remote" {
				sealer = l2
			}
			tail, err := sealer.Seal(ctx)
			if err != nil || tail != 6 {
				t.Fatalf("seal: %d %v", tail, err)
			}
			if again, err := sealer.Seal(ctx); err != nil || again != tail {
				t.Fatalf("second seal: %d %v", again, err)
			}
			for _, l := range []*Loglet{l1, l2} {
				if got, err := l.FindTail(ctx); err != nil || got != (bifrost.TailState{Offset: 6, Sealed: true}) {
					t.Fatalf("find tail (sequencer=%v): %v %v", l.IsSequencer(), got, err)
				}
			}
			// Refusals reach the caller of a sealed loglet.
			for _, l := range []*Loglet{l1, l2} {
				_, err = l.Append(ctx, [][]byte{[]byte("late")})
				var se *bifrost.SealedError
				if !errors.As(err, &se) {
					t.Fatalf("append after seal (sequencer=%v): %v", l.IsSequencer(), err)
				}
			}
			readAll(t, ctx, l2, 1, 6)
			if _, err := l2.Read(ctx, 6, 1); !errors.Is(err, bifrost.ErrSealed) {
				t.Fatalf("read at the sealed tail: %v", err)
			}
		})
	}
}

// Seal on the sequencer's node drains first (#2094): every acknowledged offset is below
// the sealed tail and nothing at or above it is acknowledged afterwards; the committed set
// equals what is read back.
func TestSealThroughSequencerDrains(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 41)
	c.net.SetFaults("s1", faultDelay(time.Millisecond, 3*time.Millisecond))
	seg := c.segment(41, w1)
	l1 := c.open(c.provider("w1", 1, nil), seg)
	l2 := c.open(c.provider("w2", 1, nil), seg)
	ctx := testCtx(t, 30*time.Second)
	log := newAckLog()
	wg := runAppenders(t, "a", l1, 50, 0, nil, log)
	eventually(t, 10*time.Second, "some acknowledged appends", func() bool { return log.max() > 100 })
	tail, err := l1.Seal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait() // every appender stops at its first error
	for _, err := range log.errs {
		if !errors.Is(err, bifrost.ErrSealed) {
			t.Fatalf("append failed with %v, want a seal error", err)
		}
	}
	for o := range log.acked {
		if o >= tail {
			t.Fatalf("offset %d acknowledged, sealed tail %d", o, tail)
		}
	}
	read := readAll(t, ctx, l2, 1, tail)
	checkReadBack(t, log.acked, read)
	// Sealed via the sequencer, the committed set is exactly what is read.
	if len(read) != len(log.acked) {
		t.Fatalf("read %d records below %d, %d acknowledged", len(read), tail, len(log.acked))
	}
	if got, err := l2.FindTail(ctx); err != nil || got != (bifrost.TailState{Offset: tail, Sealed: true}) {
		t.Fatalf("remote find tail %v %v, want sealed(%d)", got, err, tail)
	}
}

// The conformance suite's "append after seal concurrent" on the replicated provider:
// hundreds of appenders on two nodes while the loglet is sealed from the sequencer's node
// or from another node, on a clean or a lossy network. Acknowledged offsets are unique,
// all below the first observed sealed tail, and all read back.
func TestAppendConcurrentWithSeal(t *testing.T) {
	t.Parallel()
	for i, tc := range []struct {
		via   string
		lossy bool
	}{{"sequencer", false}, {"remote", false}, {"sequencer", true}, {"remote", true}} {
		t.Run(fmt.Sprintf("%s lossy=%v", tc.via, tc.lossy), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, 3, 2, uint64(50+i))
			for _, s := range c.names {
				f := faultDelay(0, time.Millisecond)
				if tc.lossy {
					f.DropRequest, f.DropResponse, f.Duplicate, f.Reorder = 0.05, 0.05, 0.05, 0.05
				}
				c.net.SetFaults(s, f)
			}
			seg := c.segment(uint64(50+i), w1)
			l1 := c.open(c.provider("w1", 1, nil), seg)
			l2 := c.open(c.provider("w2", 1, nil), seg)
			ctx := testCtx(t, 60*time.Second)
			log := newAckLog()
			wg1 := runAppenders(t, "a", l1, 200, 0, nil, log)
			wg2 := runAppenders(t, "b", l2, 100, 0, nil, log)
			eventually(t, 10*time.Second, "some acknowledged appends", func() bool { return log.max() > 200 })
			sealer := l1
			if tc.via == "remote" {
				sealer = l2
			}
			tail, err := sealer.Seal(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wg1.Wait()
			wg2.Wait()
			for _, err := range log.errs {
				if !errors.Is(err, bifrost.ErrSealed) && !errors.Is(err, bifrost.ErrReconfigurationNeeded) {
					t.Fatalf("append failed with %v", err)
				}
			}
			for o := range log.acked {
				if o >= tail {
					t.Fatalf("offset %d acknowledged, sealed tail %d", o, tail)
				}
			}
			for _, l := range []*Loglet{l1, l2} {
				// What a chain reader does once the sealer wrote tail into the chain.
				l.AdoptSealedTail(tail)
				if got, err := l.FindTail(ctx); err != nil || got != (bifrost.TailState{Offset: tail, Sealed: true}) {
					t.Fatalf("find tail (sequencer=%v): %v %v, want sealed(%d)", l.IsSequencer(), got, err, tail)
				}
				checkReadBack(t, log.acked, readAll(t, ctx, l, 1, tail))
			}
			t.Logf("sealed at %d with %d acknowledged, %d refused", tail, len(log.acked), len(log.errs))
		})
	}
}

// A sequencer dies with a record stored on one server only. A find-tail on another node
// seals the loglet and either repairs the record onto a write quorum (its holder is in
// the f-majority) or excludes it (its holder is unreachable). Every acknowledged record
// survives, and nothing at or above the sealed tail is ever read.
func TestDeadSequencerRecordOnOneServer(t *testing.T) {
	t.Parallel()
	for i, tc := range []struct {
		name      string
		down      string // unreachable during the find-tail
		findSeals bool
		wantTail  bifrost.Offset
	}{
		{"repaired", "s3", true, 12},
		{"excluded", "s1", false, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, 3, 2, uint64(60+i))
			id := uint64(60 + i)
			ctx := testCtx(t, 30*time.Second)
			seg, acked := deadSequencerWithOrphan(t, ctx, c, id)

			c.net.Partition(tc.down)
			l2 := c.open(c.provider("w2", 1, nil), seg)
			// FindTail alone seals the loglet when the tail is inconsistent and the
			// sequencer is dead and quiet (#3385); with a consistent tail it reports it
			// open and the writer's reconfiguration seals it.
			found, err := l2.FindTail(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if found.Sealed != tc.findSeals {
				t.Fatalf("find tail %v, want sealed=%v", found, tc.findSeals)
			}
			tail, err := l2.Seal(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if found.Sealed && found.Offset != tail {
				t.Fatalf("find tail %v, seal %d", found, tail)
			}
			if tail != tc.wantTail {
				t.Fatalf("sealed tail %d, want %d", tail, tc.wantTail)
			}
			if tail == 12 {
				checkOrphanRepaired(t, c, id, acked)
			}
			c.net.Heal(tc.down)
			checkReadBack(t, acked, readAll(t, ctx, l2, 1, tail))
			if _, err := l2.Read(ctx, tail, 1); !errors.Is(err, bifrost.ErrSealed) {
				t.Fatalf("read at the sealed tail: %v", err)
			}
		})
	}
}

// deadSequencerWithOrphan appends 10 records to loglet id through a sequencer on w1 and
// waits until every server knows the global tail 11; then w1's node dies with one more
// record, 11 ("orphan"), on s1 only. It returns the segment and the acknowledged records.
func deadSequencerWithOrphan(t *testing.T, ctx context.Context, c *cluster, id uint64) (metadata.Segment, map[bifrost.Offset]string) {
	t.Helper()
	seg := c.segment(id, w1)
	p1 := c.provider("w1", 1, nil)
	l1 := c.open(p1, seg)
	acked := map[bifrost.Offset]string{}
	for i := range 10 {
		first, err := l1.Append(ctx, [][]byte{[]byte(fmt.Sprintf("r%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		acked[first] = fmt.Sprintf("r%d", i)
	}
	for _, s := range c.servers {
		eventually(t, 5*time.Second, "the tail push", func() bool { _, g, _ := s.state(id); return g == 11 })
	}
	_ = p1.Close()
	c.net.Kill("w1")
	c.setAlive("w1", false)
	c.servers[0].plant(t, id, w1, 11, 11, "orphan")
	return seg, acked
}

// checkOrphanRepaired checks that the orphan of deadSequencerWithOrphan is on a write
// quorum now, and counts it acknowledged.
func checkOrphanRepaired(t *testing.T, c *cluster, id uint64, acked map[bifrost.Offset]string) {
	t.Helper()
	holders := 0
	for _, s := range c.servers {
		if s.holds(id, 11) {
			holders++
		}
	}
	if holders < 2 {
		t.Fatalf("repaired record on %d servers", holders)
	}
	acked[11] = "orphan"
}

// A find-tail from a node that is not the sequencer asks the live sequencer first; the
// sequencer notices a seal made by another node when asked.
func TestFindTailAsksSequencer(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 70)
	seg := c.segment(70, w1)
	l1 := c.open(c.provider("w1", 1, func(o *Options) { o.TailPushDelay = time.Hour }), seg)
	l2 := c.open(c.provider("w2", 1, nil), seg)
	ctx := testCtx(t, 20*time.Second)
	for i := range 3 {
		if _, err := l1.Append(ctx, [][]byte{[]byte(fmt.Sprintf("r%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	// Without the tail push the servers lag behind; the sequencer knows the tail.
	if got, err := l2.FindTail(ctx); err != nil || got != (bifrost.TailState{Offset: 4}) {
		t.Fatalf("find tail %v %v", got, err)
	}
	// Seal the servers behind the sequencer's back; it learns it when asked.
	if err := l2.sealServers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got, err := l2.FindTail(ctx); err != nil || got != (bifrost.TailState{Offset: 4, Sealed: true}) {
		t.Fatalf("find tail after an external seal %v %v", got, err)
	}
	if got, _ := l1.FindTail(ctx); got != (bifrost.TailState{Offset: 4, Sealed: true}) {
		t.Fatalf("sequencer tail %v", got)
	}
}

// A later life of the sequencer's node cannot resume the loglet: it seals it.
func TestSequencerRestartSealsLoglet(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 71)
	seg := c.segment(71, w1)
	p1 := c.provider("w1", 1, nil)
	l1 := c.open(p1, seg)
	ctx := testCtx(t, 20*time.Second)
	for i := range 5 {
		if _, err := l1.Append(ctx, [][]byte{[]byte(fmt.Sprintf("r%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	_ = p1.Close()
	l := c.open(c.provider("w1", 2, nil), seg)
	if _, err := l.Append(ctx, [][]byte{[]byte("x")}); !errors.Is(err, bifrost.ErrReconfigurationNeeded) {
		t.Fatalf("append: %v", err)
	}
	tail, err := l.Seal(ctx)
	if err != nil || tail != 6 {
		t.Fatalf("seal: %d %v", tail, err)
	}
	readAll(t, ctx, l, 1, 6)
}

// Concurrent seals from several nodes agree on one tail when the sequencer is alive.
func TestConcurrentSealsAgree(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 72)
	seg := c.segment(72, w1)
	l1 := c.open(c.provider("w1", 1, nil), seg)
	ls := []*Loglet{l1}
	for _, n := range []string{"w2", "w3"} {
		ls = append(ls, c.open(c.provider(n, 1, nil), seg))
	}
	ctx := testCtx(t, 30*time.Second)
	log := newAckLog()
	wg := runAppenders(t, "a", l1, 20, 0, nil, log)
	eventually(t, 10*time.Second, "some acknowledged appends", func() bool { return log.max() > 50 })
	tails := make([]bifrost.Offset, len(ls))
	var swg sync.WaitGroup
	for i, l := range ls {
		swg.Add(1)
		go func() {
			defer swg.Done()
			tail, err := l.Seal(ctx)
			if err != nil {
				t.Errorf("seal from %d: %v", i, err)
			}
			tails[i] = tail
		}()
	}
	swg.Wait()
	wg.Wait()
	for i, tail := range tails {
		if tail != tails[0] {
			t.Fatalf("seal %d returned %d, seal 0 returned %d", i, tail, tails[0])
		}
	}
	for o := range log.acked {
		if o >= tails[0] {
			t.Fatalf("offset %d acknowledged, sealed tail %d", o, tails[0])
		}
	}
}

// A partial seal (a sealer died after sealing one server) is finished by the sequencer
// when it notices, draining first; every node then agrees on the sealed tail.
func TestPartialSealIsFinished(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 73)
	seg := c.segment(73, w1)
	l1 := c.open(c.provider("w1", 1, nil), seg)
	l2 := c.open(c.provider("w2", 1, nil), seg)
	ctx := testCtx(t, 20*time.Second)
	log := newAckLog()
	runAppenders(t, "a", l1, 1, 3, nil, log).Wait()
	if _, err := c.servers[0].Seal(ctx, &wire.Seal{Header: wire.Header{LogletID: 73}, Sequencer: w1}); err != nil {
		t.Fatal(err)
	}
	wg := runAppenders(t, "b", l1, 5, 0, nil, log)
	eventually(t, 10*time.Second, "the sequencer to finish the seal", func() bool { return l1.KnownTail().Sealed })
	wg.Wait()
	tail := l1.KnownTail().Offset
	for o := range log.acked {
		if o >= tail {
			t.Fatalf("offset %d acknowledged, sealed tail %d", o, tail)
		}
	}
	if got, err := l2.FindTail(ctx); err != nil || got != (bifrost.TailState{Offset: tail, Sealed: true}) {
		t.Fatalf("remote find tail %v %v, want sealed(%d)", got, err, tail)
	}
	checkReadBack(t, log.acked, readAll(t, ctx, l2, 1, tail))
}

// A log server that lost its data counts toward the seal's f-majority (it takes no
// stores) but never toward choosing the tail: with one server wiped and another down, the
// tail cannot be decided; once the other is back it can.
func TestDataLossServerNotCountedForTail(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 74)
	seg := c.segment(74, w1)
	p1 := c.provider("w1", 1, nil)
	l1 := c.open(p1, seg)
	ctx := testCtx(t, 20*time.Second)
	log := newAckLog()
	runAppenders(t, "a", l1, 1, 5, nil, log).Wait()
	_ = p1.Close()
	c.setAlive("w1", false)

	wiped := c.servers[0]
	wiped.mu.Lock()
	wiped.dataLoss = true
	wiped.loglets = map[uint64]*fakeLoglet{}
	wiped.mu.Unlock()
	c.net.Partition("s3")
	l2 := c.open(c.provider("w2", 1, nil), seg)

	short := testCtx(t, 300*time.Millisecond)
	if tail, err := l2.Seal(short); err == nil {
		t.Fatalf("sealed at %d deciding from one authoritative server", tail)
	}
	_, _, sealed := c.servers[1].state(74)
	if !sealed {
		t.Fatal("the reachable server should be sealed (f-majority with the wiped one)")
	}
	c.net.Heal("s3")
	tail, err := l2.Seal(ctx)
	if err != nil || tail != log.max()+1 {
		t.Fatalf("seal: %d %v, want %d", tail, err, log.max()+1)
	}
	checkReadBack(t, log.acked, readAll(t, ctx, l2, 1, tail))
}

// A log server cut off by a silent network (its calls hang instead of failing) must not
// hold a find-tail's repair for its RPC timeouts: the digests of an f-majority suffice
// (the failover of a partition whose leader's node was cut off waits on this).
func TestRepairDoesNotWaitForASilentServer(t *testing.T) {
	t.Parallel()
	const id = 70
	c := newCluster(t, 3, 2, id)
	ctx := testCtx(t, time.Minute)
	seg, acked := deadSequencerWithOrphan(t, ctx, c, id)
	// And s3 goes silent.
	c.net.SetFaults("s3", faultnet.Faults{BlackHole: true})
	c.net.Partition("s3")

	const rpcTimeout = 10 * time.Second
	l2 := c.open(c.provider("w2", 1, func(o *Options) { o.RPCTimeout = rpcTimeout }), seg)
	start := time.Now()
	found, err := l2.FindTail(ctx)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if found != (bifrost.TailState{Offset: 12, Sealed: true}) {
		t.Fatalf("find tail %v, want sealed at 12 (the orphan repaired)", found)
	}
	t.Logf("find-tail with a silent server sealed and repaired in %v", took)
	if took > rpcTimeout/2 {
		t.Fatalf("find-tail took %v: it waited on the silent server", took)
	}
	checkOrphanRepaired(t, c, id, acked)
	c.net.ClearFaults("s3")
	c.net.Heal("s3")
	checkReadBack(t, acked, readAll(t, ctx, l2, 1, 12))
}
