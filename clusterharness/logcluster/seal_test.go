package logcluster

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metadata"
)

// BIFROST.md §10 milestone 2: a seal from a node that is not the sequencer succeeds with
// one of three log servers SIGKILLed (an f-majority of 2 is left), whether the sequencer
// is alive (it learns of the seal when asked and stops) or dead. Afterwards every
// observer reports the same sealed tail, appends are refused with a *bifrost.SealedError,
// and the records below the tail read back.
func TestSealWithOneServerDown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		seqAlive bool
	}{
		{"sequencer alive", true},
		{"sequencer dead", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, 3)
			ctx := testCtx(t, time.Minute)
			seg := c.Segment(2, 0, writer, 2)
			p1 := newProvider(t, writer, c.Network(), nil)
			l1 := open(t, p1, seg)
			acked := map[bifrost.Offset]string{}
			appendAll(t, ctx, l1, acked, records("r", 10)...)

			c.Kill(2)
			seqs := map[string]wire.Sequencer{}
			if tc.seqAlive {
				seqs[writer.Name] = p1.SequencerService()
			} else {
				_ = p1.Close()
			}
			l2 := open(t, newProvider(t, sealer, c.NetworkWith(seqs), fastFailover), seg)
			tail, err := l2.Seal(ctx)
			if err != nil {
				t.Fatalf("seal with ls3 down: %v", err)
			}
			if tail != 11 {
				t.Fatalf("sealed tail %d, want 11", tail)
			}
			if got, err := l2.FindTail(ctx); err != nil || got != (bifrost.TailState{Offset: 11, Sealed: true}) {
				t.Fatalf("find tail after the seal = %v, %v; want sealed(11)", got, err)
			}
			expectSealedAppend(t, ctx, l2, "the sealer")
			if tc.seqAlive {
				// The sealer asked the sequencer for its tail, which made it check the seal
				// bits and stop.
				if got, err := l1.FindTail(ctx); err != nil || got != (bifrost.TailState{Offset: 11, Sealed: true}) {
					t.Fatalf("sequencer's tail after the seal = %v, %v; want sealed(11)", got, err)
				}
				expectSealedAppend(t, ctx, l1, "the sequencer")
			}
			// Both survivors are sealed. The records are committed on a write quorum, which
			// ls3 may be part of: then only one survivor holds them all (the other is the
			// sequencer's standby and may have missed its last batch).
			highest := bifrost.Offset(0)
			for i := range 2 {
				info, err := logletInfo(ctx, c, i, seg.LogletID)
				if err != nil || !info.Sealed || info.LocalTail > 11 {
					t.Fatalf("%s after the seal: %+v, %v; want sealed with local tail at most 11", c.Servers[i].Name, info, err)
				}
				highest = max(highest, info.LocalTail)
			}
			if highest != 11 {
				t.Fatalf("after the seal no survivor has local tail 11 (highest %d)", highest)
			}
			checkReadBack(t, acked, readRange(t, ctx, l2, 1, tail))
			expectReadSealed(t, ctx, l2, tail)
		})
	}
}

// BIFROST.md §10 milestone 2: the sequencer dies while its last record reached one log
// server only (the two others were down; the append's context ended unacknowledged).
// After the servers are back, a find-tail from another node seals the loglet and either
// repairs the record onto a write quorum or leaves it out of the sealed loglet. Every
// acknowledged record survives, and nothing at or above the sealed tail is ever read. A
// fresh reader started afterwards may find the other outcome when the orphan's holder
// joins its f-majority (BIFROST.md §4: sealers may differ, the chain's compare-and-set
// decides); that is logged as a NOTE, and the reader must then be consistent with its own
// tail.
func TestDeadSequencerRecordOnOneServer(t *testing.T) {
	const (
		holder = 0  // ls1 keeps the orphan record
		orphan = 11 // its offset: ten acknowledged records precede it
	)
	for _, tc := range []struct {
		name string
		down int // log server down during the find-tail (-1: none)
		// What the find-tail must conclude (0: either outcome is right).
		wantTail bifrost.Offset
	}{
		// The holder is in the f-majority: the find-tail sees a record above every
		// write quorum, the sequencer dead and quiet, so it seals and repairs.
		{"holder answers", 2, orphan + 1},
		// The holder is out: the two others agree on 11, which is open and
		// consistent; the seal then excludes the orphan.
		{"holder down", holder, orphan},
		// Every server answers: which two form the sealed f-majority decides.
		{"all answer", -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, 3)
			ctx := testCtx(t, time.Minute)
			seg := c.Segment(3, 0, writer, 2)
			p1 := newProvider(t, writer, c.Network(), nil)
			l1 := open(t, p1, seg)
			acked := map[bifrost.Offset]string{}
			appendAll(t, ctx, l1, acked, records("r", orphan-1)...)
			for i := range c.Servers {
				waitFor(t, ctx, "the tail push", func() bool {
					info, err := logletInfo(ctx, c, i, seg.LogletID)
					return err == nil && info.KnownGlobalTail == orphan
				})
			}

			// Only the holder is up: the orphan's store reaches it alone.
			c.Kill(1)
			c.Kill(2)
			actx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := l1.Append(actx, [][]byte{[]byte("orphan")})
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("append with two of three servers down: %v, want the context's deadline", err)
			}
			waitFor(t, ctx, "the orphan stored on ls1", func() bool {
				info, err := logletInfo(ctx, c, holder, seg.LogletID)
				return err == nil && info.LocalTail == orphan+1
			})
			// The sequencer's process dies.
			_ = p1.Close()
			for _, i := range []int{1, 2} {
				if err := c.Restart(ctx, i); err != nil {
					t.Fatal(err)
				}
			}
			if tc.down >= 0 {
				c.Kill(tc.down)
			}

			l2 := open(t, newProvider(t, sealer, c.Network(), fastFailover), seg)
			found, err := l2.FindTail(ctx)
			if err != nil {
				t.Fatalf("find tail: %v", err)
			}
			tail, err := l2.Seal(ctx)
			if err != nil {
				t.Fatalf("seal: %v", err)
			}
			t.Logf("find tail: %v; seal: %d", found, tail)
			if found.Sealed && found.Offset != tail {
				t.Fatalf("find tail said %v, seal %d", found, tail)
			}
			if tc.wantTail != 0 && tail != tc.wantTail {
				t.Fatalf("sealed tail %d, want %d", tail, tc.wantTail)
			}
			switch tail {
			case orphan + 1:
				// Repaired: on a write quorum now.
				n := 0
				for i := range c.Servers {
					if i == tc.down {
						continue
					}
					if ok, err := holds(ctx, c, i, seg.LogletID, orphan); err != nil {
						t.Fatal(err)
					} else if ok {
						n++
					}
				}
				if n < 2 {
					t.Fatalf("sealed at %d but the orphan is on %d live servers", tail, n)
				}
				acked[orphan] = "orphan"
			case orphan:
			default:
				t.Fatalf("sealed tail %d, want %d or %d", tail, orphan, orphan+1)
			}
			checkReadBack(t, acked, readRange(t, ctx, l2, 1, tail))
			expectReadSealed(t, ctx, l2, tail)
			expectSealedAppend(t, ctx, l2, "the sealer")

			// Every server back: a fresh reader on another node finds a sealed tail and
			// reads exactly the records below it.
			if tc.down >= 0 {
				if err := c.Restart(ctx, tc.down); err != nil {
					t.Fatal(err)
				}
			}
			l3 := open(t, newProvider(t, reader, c.Network(), fastFailover), seg)
			got, err := l3.FindTail(ctx)
			if err != nil || !got.Sealed || got.Offset < orphan || got.Offset > orphan+1 {
				t.Fatalf("fresh reader's find tail = %v, %v; want sealed(%d) or sealed(%d)", got, err, orphan, orphan+1)
			}
			if got.Offset != tail {
				// BIFROST.md §4 allows it ("the one CAS-written into the chain wins"), but
				// a reader of the chain's open tail segment may then deliver a record the
				// chain leaves out: reported, not failed.
				t.Logf("NOTE: sealed tails diverge across nodes: the sealer found %d, a fresh reader %d (the orphan's holder joined its f-majority)", tail, got.Offset)
			}
			readersAcked := maps.Clone(acked)
			if got.Offset == orphan+1 {
				readersAcked[orphan] = "orphan"
			}
			checkReadBack(t, readersAcked, readRange(t, ctx, l3, 1, got.Offset))
			expectReadSealed(t, ctx, l3, got.Offset)
			// The sealer's own view never moves.
			if again, err := l2.FindTail(ctx); err != nil || again != (bifrost.TailState{Offset: tail, Sealed: true}) {
				t.Fatalf("the sealer's find tail after the reader's = %v, %v; want sealed(%d)", again, err, tail)
			}
			expectReadSealed(t, ctx, l2, tail)
		})
	}
}

// BIFROST.md §2, §10 milestone 2: a log server that lost its disk restarts knowing which
// loglets it lost (those of the chains when it came back; the nodes configuration records
// them) and answers StatusDataLoss for them. A find-tail and a seal never count it as an
// empty open replica (which would claim "tail 1"): with the two other servers up they find
// the real tail; with only a lagging server and the wiped one answering they wait rather
// than settle on the lagging server's tail.
func TestWipedLogServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		// lagging: ls1 misses the second half of the records, and ls2, the only other
		// holder of them, is down while the tail is first looked for.
		lagging bool
	}{
		{"others complete", false},
		{"other lagging", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const wiped = 2 // ls3
			c := startCluster(t, 3)
			ctx := testCtx(t, time.Minute)
			seg := c.Segment(4, 0, writer, 2)
			// As a writer does, the segment is in the chain before anything is written to it.
			chains, _ := json.Marshal(metadata.Logs{Chains: map[uint32][]metadata.Segment{4: {seg}}})
			if _, err := c.Meta.Put(ctx, metadata.KeyLogs, chains, 0); err != nil {
				t.Fatal(err)
			}
			p1 := newProvider(t, writer, c.Network(), nil)
			l1 := open(t, p1, seg)
			acked := map[bifrost.Offset]string{}
			appendAll(t, ctx, l1, acked, records("a", 20)...)
			if tc.lagging {
				c.Kill(0)
				appendAll(t, ctx, l1, acked, records("b", 20)...)
			}
			want := bifrost.Offset(len(acked) + 1)
			// The sequencer's node dies too: the tail must come from the log servers.
			_ = p1.Close()

			c.Kill(wiped)
			if err := c.Wipe(wiped); err != nil {
				t.Fatal(err)
			}
			if err := c.Restart(ctx, wiped); err != nil {
				t.Fatal(err)
			}
			if n := lostSegments(t, ctx, c, c.Servers[wiped].Name); !n.Lost(4, 0) || n.LogStorage != metadata.StorageReadWrite {
				t.Fatalf("the wiped server in the nodes configuration: %+v; want read-write, log 4 segment 0 lost", n)
			}
			info, err := logletInfo(ctx, c, wiped, seg.LogletID)
			if err != nil || info.Status != wire.StatusDataLoss {
				t.Fatalf("GetLogletInfo on the wiped server = %+v, %v; want status data-loss", info, err)
			}

			l2 := open(t, newProvider(t, sealer, c.Network(), fastFailover), seg)
			if tc.lagging {
				// ls1 (lagging, tail 21) and the wiped ls3 answer; ls2 holds 21..40.
				if err := c.Restart(ctx, 0); err != nil {
					t.Fatal(err)
				}
				c.Kill(1)
				for _, op := range []struct {
					name string
					run  func(context.Context) (bifrost.Offset, error)
				}{
					{"find tail", func(ctx context.Context) (bifrost.Offset, error) {
						ts, err := l2.FindTail(ctx)
						return ts.Offset, err
					}},
					{"seal", l2.Seal},
				} {
					octx, cancel := context.WithTimeout(ctx, 2*time.Second)
					got, err := op.run(octx)
					cancel()
					if err == nil && got < want {
						t.Fatalf("%s with the holder of %d..%d down settled on %d: acknowledged records lost", op.name, 21, want-1, got)
					}
					if err == nil {
						t.Fatalf("%s with only a lagging server and a wiped one answering = %d; it should wait", op.name, got)
					}
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("%s with only a lagging server and a wiped one answering: %v, want it to wait", op.name, err)
					}
				}
				if err := c.Restart(ctx, 1); err != nil {
					t.Fatal(err)
				}
			}

			found, err := l2.FindTail(ctx)
			if err != nil || found.Offset != want {
				t.Fatalf("find tail = %v, %v; want the real tail %d", found, err, want)
			}
			tail, err := l2.Seal(ctx)
			if err != nil || tail != want {
				t.Fatalf("seal = %d, %v; want %d", tail, err, want)
			}
			// A reader that starts with the wiped server must skip it.
			l3 := open(t, newProvider(t, metadata.NodeID{Name: c.Servers[wiped].Name, Generation: 1000}, c.Network(), fastFailover), seg)
			checkReadBack(t, acked, readRange(t, ctx, l3, 1, tail))
			expectReadSealed(t, ctx, l3, tail)
			if info, err := logletInfo(ctx, c, wiped, seg.LogletID); err != nil || info.Status != wire.StatusDataLoss {
				t.Fatalf("GetLogletInfo on the wiped server at the end = %+v, %v; want status data-loss", info, err)
			}
		})
	}
}

// lostSegments reads a node's entry of the nodes configuration.
func lostSegments(t *testing.T, ctx context.Context, c *Cluster, name string) metadata.Node {
	t.Helper()
	v, err := c.Meta.Get(ctx, metadata.KeyNodes)
	if err != nil {
		t.Fatal(err)
	}
	var nodes metadata.Nodes
	if err := json.Unmarshal(v.Value, &nodes); err != nil {
		t.Fatal(err)
	}
	return nodes.Nodes[name]
}
