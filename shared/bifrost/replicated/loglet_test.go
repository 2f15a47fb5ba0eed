package replicated

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metadata"
)

var (
	w1 = metadata.NodeID{Name: "w1", Generation: 1}
	w2 = metadata.NodeID{Name: "w2", Generation: 1}
)

// ackLog records acknowledged appends (offset → payload) from many goroutines.
type ackLog struct {
	mu    sync.Mutex
	acked map[bifrost.Offset]string
	errs  []error
}

func newAckLog() *ackLog { return &ackLog{acked: map[bifrost.Offset]string{}} }

func (a *ackLog) add(t *testing.T, first bifrost.Offset, payloads []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, p := range payloads {
		o := first + bifrost.Offset(i)
		if prev, dup := a.acked[o]; dup {
			t.Errorf("offset %d acknowledged twice (%q, %q)", o, prev, p)
		}
		a.acked[o] = p
	}
}

func (a *ackLog) fail(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errs = append(a.errs, err)
}

func (a *ackLog) max() bifrost.Offset {
	a.mu.Lock()
	defer a.mu.Unlock()
	var m bifrost.Offset
	for o := range a.acked {
		m = max(m, o)
	}
	return m
}

// checkReadBack asserts that every acknowledged record was read at its offset, and that
// no acknowledged payload appears twice.
func checkReadBack(t *testing.T, acked, read map[bifrost.Offset]string) {
	t.Helper()
	seen := map[string]bifrost.Offset{}
	for o, p := range read {
		if prev, dup := seen[p]; dup {
			t.Fatalf("payload %q read at %d and %d", p, prev, o)
		}
		seen[p] = o
	}
	for o, p := range acked {
		if read[o] != p {
			t.Fatalf("acknowledged offset %d: read %q, want %q", o, read[o], p)
		}
	}
}

// runAppenders runs n goroutines appending batches until stop closes or each made count
// appends (0: unlimited); each batch is 1–3 records with payloads unique per name.
func runAppenders(t *testing.T, name string, l bifrost.Loglet, n, count int, stop <-chan struct{}, log *ackLog) *sync.WaitGroup {
	var wg sync.WaitGroup
	for a := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := 0; count == 0 || i < count; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := 1 + (a+i)%3
				payloads := make([]string, k)
				raw := make([][]byte, k)
				for j := range k {
					payloads[j] = fmt.Sprintf("%s%d-%d-%d", name, a, i, j)
					raw[j] = []byte(payloads[j])
				}
				first, err := l.Append(ctx, raw)
				if err != nil {
					log.fail(err)
					if count == 0 {
						return
					}
					continue
				}
				log.add(t, first, payloads)
			}
		}()
	}
	return &wg
}

func TestAppendReadLocalAndRemote(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 1)
	seg := c.segment(1<<32|1, w1)
	l1 := c.open(c.provider("w1", 1, nil), seg)
	l2 := c.open(c.provider("w2", 1, nil), seg)
	if !l1.IsSequencer() || l2.IsSequencer() {
		t.Fatal("sequencer placement")
	}
	ctx := testCtx(t, 20*time.Second)

	// AppendAsync from one goroutine: increasing offsets, done calls in enqueue order.
	const batches = 200
	var mu sync.Mutex
	var firsts []bifrost.Offset
	all := make(chan struct{})
	for i := range batches {
		l1.AppendAsync([][]byte{[]byte(fmt.Sprintf("r%d", i))}, func(first bifrost.Offset, err error) {
			if err != nil {
				t.Errorf("append %d: %v", i, err)
			}
			mu.Lock()
			firsts = append(firsts, first)
			if len(firsts) == batches {
				close(all)
			}
			mu.Unlock()
		})
	}
	select {
	case <-all:
	case <-ctx.Done():
		t.Fatal("appends did not complete")
	}
	for i, f := range firsts {
		if f != bifrost.Offset(i+1) {
			t.Fatalf("done call %d has offset %d: order broken", i, f)
		}
	}
	for _, l := range []*Loglet{l1, l2} {
		got := readAll(t, ctx, l, 1, batches+1)
		for i := range batches {
			if got[bifrost.Offset(i+1)] != fmt.Sprintf("r%d", i) {
				t.Fatalf("sequencer=%v offset %d: %q", l.IsSequencer(), i+1, got[bifrost.Offset(i+1)])
			}
		}
	}
	// The remote reader saw the last batch without a later append: the tail was pushed.
	if tail, err := l2.FindTail(ctx); err != nil || tail.Offset != batches+1 || tail.Sealed {
		t.Fatalf("remote find tail: %v %v", tail, err)
	}
}

// A reader on another node blocks at the tail and wakes on the next commit (via the
// servers' WaitForTail), and a seal wakes it with ErrSealed.
func TestRemoteReaderWaitsForTail(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 2)
	seg := c.segment(2, w1)
	l1 := c.open(c.provider("w1", 1, nil), seg)
	l2 := c.open(c.provider("w2", 1, nil), seg)
	ctx := testCtx(t, 20*time.Second)
	got := make(chan []bifrost.Record, 1)
	go func() {
		recs, err := l2.Read(ctx, 1, 10)
		if err != nil {
			t.Errorf("read: %v", err)
		}
		got <- recs
	}()
	if _, err := l1.Append(ctx, [][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
	if recs := <-got; len(recs) != 1 || string(recs[0].Payload) != "x" {
		t.Fatalf("read %v", recs)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := l2.Read(ctx, 2, 10)
		errc <- err
	}()
	tail, err := l1.Seal(ctx)
	if err != nil || tail != 2 {
		t.Fatalf("seal: %d %v", tail, err)
	}
	if err := <-errc; !errors.Is(err, bifrost.ErrSealed) {
		t.Fatalf("blocked read after seal: %v", err)
	}
}

// Remote appends go through SequencerService and keep one goroutine's order.
func TestRemoteAppendThroughSequencerService(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 3)
	seg := c.segment(3, w1)
	l1 := c.open(c.provider("w1", 1, nil), seg)
	l2 := c.open(c.provider("w2", 1, nil), seg)
	ctx := testCtx(t, 20*time.Second)
	const n = 100
	results := make(chan bifrost.Offset, n)
	for i := range n {
		l2.AppendAsync([][]byte{[]byte(fmt.Sprintf("r%d", i))}, func(first bifrost.Offset, err error) {
			if err != nil {
				t.Errorf("remote append %d: %v", i, err)
			}
			results <- first
		})
	}
	for i := range n {
		if f := <-results; f != bifrost.Offset(i+1) {
			t.Fatalf("remote done %d: offset %d", i, f)
		}
	}
	got := readAll(t, ctx, l1, 1, n+1)
	for i := range n {
		if got[bifrost.Offset(i+1)] != fmt.Sprintf("r%d", i) {
			t.Fatalf("offset %d: %q", i+1, got[bifrost.Offset(i+1)])
		}
	}
	tail, err := l1.Seal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l2.Append(ctx, [][]byte{[]byte("late")})
	var se *bifrost.SealedError
	if !errors.As(err, &se) {
		t.Fatalf("remote append after seal: %v", err)
	}
	if got, _ := l2.FindTail(ctx); !got.Sealed || got.Offset != tail {
		t.Fatalf("remote tail %v, want sealed(%d)", got, tail)
	}

	// A sequencer service without the loglet answers NotSequencer.
	resp, err := c.provs[1].SequencerService().Append(ctx, &wire.Append{LogletID: 3, Payloads: [][]byte{[]byte("x")}})
	if err != nil || resp.Status != wire.StatusNotSequencer {
		t.Fatalf("append to a non-sequencer: %+v %v", resp, err)
	}
}

// The node that extends a chain opens the new segment's sequencer only after the chain is
// written, and other nodes may read the chain first. An Append forwarded to the sequencer's
// node meanwhile opens the loglet there (Options.Segment) instead of being refused, but
// only for a segment whose parameters name that node's current life as sequencer.
func TestForwardedAppendOpensSequencer(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 6)
	ctx := testCtx(t, 20*time.Second)
	chain := map[uint32]metadata.Segment{6: c.segment(6, w1), 7: c.segment(7, metadata.NodeID{Name: "w1", Generation: 9})}
	lookup := func(_ context.Context, logID, index uint32) (metadata.Segment, bool, error) {
		seg, ok := chain[index]
		return seg, ok && logID == 0, nil
	}
	p1 := c.provider("w1", 1, func(o *Options) { o.Segment = lookup })
	l2 := c.open(c.provider("w2", 1, nil), chain[6])
	first, err := l2.Append(ctx, [][]byte{[]byte("a"), []byte("b")})
	if err != nil || first != 1 {
		t.Fatalf("append forwarded to a sequencer not yet opened = %d, %v; want 1", first, err)
	}
	l1, ok := p1.Loglet(6)
	if !ok || !l1.IsSequencer() {
		t.Fatal("the forwarded append did not open the sequencer on its node")
	}
	if got := readAll(t, ctx, l1, 1, 3); got[1] != "a" || got[2] != "b" {
		t.Fatalf("read back %v", got)
	}
	// A segment naming another life of w1, or one the chain does not have, is refused.
	for _, req := range []*wire.Append{
		{LogID: 0, SegmentIndex: 7, LogletID: 7, Payloads: [][]byte{[]byte("x")}},
		{LogID: 0, SegmentIndex: 8, LogletID: 8, Payloads: [][]byte{[]byte("x")}},
		{LogID: 0, SegmentIndex: 6, LogletID: 99, Payloads: [][]byte{[]byte("x")}},
	} {
		resp, err := p1.SequencerService().Append(ctx, req)
		if err != nil || resp.Status != wire.StatusNotSequencer {
			t.Fatalf("append for segment %d loglet %d: %+v %v; want NotSequencer", req.SegmentIndex, req.LogletID, resp, err)
		}
	}
	if _, ok := p1.Loglet(7); ok {
		t.Fatal("an earlier life's segment was opened")
	}
}

// Writers elsewhere never take the sequencer over: an unreachable sequencer fails appends
// with ErrReconfigurationNeeded, as does a sequencer from an earlier life of this node.
func TestRemoteAppendSequencerUnavailable(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 4)
	ctx := testCtx(t, 20*time.Second)
	l2 := c.open(c.provider("w2", 1, nil), c.segment(4, metadata.NodeID{Name: "w9", Generation: 1}))
	if _, err := l2.Append(ctx, [][]byte{[]byte("x")}); !errors.Is(err, bifrost.ErrReconfigurationNeeded) {
		t.Fatalf("append to a missing sequencer: %v", err)
	}
	// w1's second life opens a segment whose sequencer was its first life.
	p := c.provider("w1", 2, nil)
	l := c.open(p, c.segment(5, w1))
	if l.IsSequencer() {
		t.Fatal("a later life must not run an earlier life's sequencer")
	}
	if _, err := l.Append(ctx, [][]byte{[]byte("x")}); !errors.Is(err, bifrost.ErrReconfigurationNeeded) {
		t.Fatalf("append to an earlier life's loglet: %v", err)
	}
}

// A reader starting on a server that missed records (it skipped to the global tail)
// moves to another server for the hole.
func TestReaderCrossesHoles(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 5)
	seg := c.segment(6, w1)
	l1 := c.open(c.provider("w1", 1, nil), seg)
	ctx := testCtx(t, 20*time.Second)
	appendOne := func(i int) {
		if _, err := l1.Append(ctx, [][]byte{[]byte(fmt.Sprintf("r%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	c.net.Partition("s3")
	n := 0
	for ; n < 20; n++ {
		appendOne(n)
	}
	c.net.Heal("s3")
	s3 := c.servers[2]
	// Once its sender is out of backoff and idle when a batch arrives, s3 gets stores
	// again, starting at the global tail (records committed meanwhile stay holes on it).
	deadline := time.Now().Add(10 * time.Second)
	for local, _, _ := s3.state(6); local <= 21; local, _, _ = s3.state(6) {
		if time.Now().After(deadline) {
			t.Fatal("s3 never stored a record at the tail")
		}
		appendOne(n)
		n++
	}
	if s3.holds(6, 5) {
		t.Fatal("s3 should have a hole below the global tail")
	}
	l2 := c.open(c.provider("w2", 1, nil), seg)
	l2.mu.Lock()
	l2.readOrder = []int{2, 0, 1} // start on the server with the hole
	l2.mu.Unlock()
	got := readAll(t, ctx, l2, 1, bifrost.Offset(n+1))
	for i := range n {
		if got[bifrost.Offset(i+1)] != fmt.Sprintf("r%d", i) {
			t.Fatalf("offset %d: %q", i+1, got[bifrost.Offset(i+1)])
		}
	}
}

func TestTrim(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 6)
	seg := c.segment(7, w1)
	l1 := c.open(c.provider("w1", 1, nil), seg)
	l2 := c.open(c.provider("w2", 1, nil), seg)
	ctx := testCtx(t, 20*time.Second)
	for i := range 20 {
		if _, err := l1.Append(ctx, [][]byte{[]byte(fmt.Sprintf("r%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l1.Trim(ctx, 10); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*Loglet{l1, l2} {
		if tp, err := l.TrimPoint(ctx); err != nil || tp != 10 {
			t.Fatalf("trim point %d %v", tp, err)
		}
		_, err := l.Read(ctx, 5, 10)
		var te *bifrost.TrimmedError
		if !errors.As(err, &te) || te.TrimPoint != 10 {
			t.Fatalf("read below trim point: %v", err)
		}
		if recs, err := l.Read(ctx, 11, 1); err != nil || string(recs[0].Payload) != "r10" {
			t.Fatalf("read above trim point: %v %v", recs, err)
		}
	}
	// A trim past the tail is clipped to tail − 1.
	if err := l2.Trim(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	if tp, err := l1.TrimPoint(ctx); err != nil || tp != 20 {
		t.Fatalf("clipped trim point %d %v", tp, err)
	}
}

func TestOffsetLimitDemandsReconfiguration(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 7)
	l := c.open(c.provider("w1", 1, func(o *Options) { o.MaxOffset = 10 }), c.segment(8, w1))
	ctx := testCtx(t, 10*time.Second)
	if _, err := l.Append(ctx, make([][]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, [][]byte{nil}); !errors.Is(err, bifrost.ErrReconfigurationNeeded) {
		t.Fatalf("append past the offset limit: %v", err)
	}
	if _, err := l.Append(ctx, nil); !errors.Is(err, ErrEmptyBatch) {
		t.Fatalf("empty append: %v", err)
	}
}

func TestOpenValidation(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 8)
	p := c.provider("w1", 1, nil)
	ctx := context.Background()
	seg := c.segment(9, w1)
	a, err := p.Open(ctx, seg)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := p.Open(ctx, seg); a != b {
		t.Fatal("second Open returned another loglet")
	}
	bad := c.segment(9, w2)
	if _, err := p.Open(ctx, bad); err == nil {
		t.Fatal("same loglet id with other parameters accepted")
	}
	bad = c.segment(10, w1)
	bad.Replicated.Replication = 4
	if _, err := p.Open(ctx, bad); err == nil {
		t.Fatal("replication above nodeset size accepted")
	}
	bad = c.segment(11, w1)
	bad.Replicated.Nodeset = []string{"s1", "s1", "s2"}
	if _, err := p.Open(ctx, bad); err == nil {
		t.Fatal("duplicate nodeset member accepted")
	}
	if p.Kind() != bifrost.ProviderReplicated {
		t.Fatal(p.Kind())
	}
}

// Close fails pending appends and blocked reads with ErrClosed and stops every goroutine.
func TestCloseStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	c := newCluster(t, 3, 2, 9)
	seg := c.segment(12, w1)
	p1, p2 := c.provider("w1", 1, nil), c.provider("w2", 1, nil)
	l1, l2 := c.open(p1, seg), c.open(p2, seg)
	ctx := testCtx(t, 10*time.Second)
	c.net.Partition("s1")
	c.net.Partition("s2") // appends cannot commit
	errc := make(chan error, 3)
	l1.AppendAsync([][]byte{[]byte("x")}, func(_ bifrost.Offset, err error) { errc <- err })
	go func() { _, err := l1.Read(ctx, 1, 1); errc <- err }()
	go func() { _, err := l2.Read(ctx, 1, 1); errc <- err }()
	_ = p1.Close()
	_ = p2.Close()
	for range 3 {
		if err := <-errc; !errors.Is(err, bifrost.ErrClosed) {
			t.Fatalf("after close: %v", err)
		}
	}
	c.net.Close()
	eventually(t, 5*time.Second, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before+2 })
}

// A done callback that appends again (and may block for permits) does not stall the
// sequencer: callbacks run on their own goroutine, not on the senders'.
func TestReentrantDoneCallback(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, 1, 10)
	l := c.open(c.provider("w1", 1, func(o *Options) { o.MaxInflightRecords = 2 }), c.segment(13, w1))
	ctx := testCtx(t, 20*time.Second)
	finished := make(chan bifrost.Offset, 1)
	var next func(i int) func(bifrost.Offset, error)
	next = func(i int) func(bifrost.Offset, error) {
		return func(first bifrost.Offset, err error) {
			if err != nil {
				t.Errorf("append %d: %v", i, err)
				finished <- 0
				return
			}
			if i == 100 {
				finished <- first
				return
			}
			// Two appends per callback: the second waits for permits.
			l.AppendAsync([][]byte{[]byte("x")}, func(bifrost.Offset, error) {})
			l.AppendAsync([][]byte{[]byte("y")}, next(i+1))
		}
	}
	l.AppendAsync([][]byte{[]byte("first")}, next(0))
	select {
	case got := <-finished:
		if got != 201 {
			t.Fatalf("last offset %d, want 201", got)
		}
	case <-ctx.Done():
		t.Fatal("re-entrant appends stalled")
	}
}

// Under concurrent load the sender merges queued batches: far fewer stores than appends.
func TestStoresMergeBatches(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 11)
	for _, s := range c.names {
		c.net.SetFaults(s, faultDelay(time.Millisecond, 0))
	}
	l := c.open(c.provider("w1", 1, nil), c.segment(14, w1))
	log := newAckLog()
	runAppenders(t, "a", l, 50, 10, nil, log).Wait()
	if len(log.errs) > 0 {
		t.Fatal(log.errs[0])
	}
	c.servers[0].mu.Lock()
	stores := c.servers[0].loglet(14).stores
	c.servers[0].mu.Unlock()
	if appends := 500; stores*2 > appends {
		t.Fatalf("%d stores for %d appends: batches not merged", stores, appends)
	}
	t.Logf("%d stores to s1 for 500 appends (%d records)", stores, len(log.acked))
}

// AdoptSealedTail lets a node that sealed lower read up to the chain's tail.
func TestAdoptSealedTail(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 12)
	seg := c.segment(15, w1)
	l1 := c.open(c.provider("w1", 1, nil), seg)
	ctx := testCtx(t, 10*time.Second)
	for i := range 3 {
		if _, err := l1.Append(ctx, [][]byte{[]byte(fmt.Sprintf("r%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	// A record beyond the sealed tail of w1 that another sealer repaired onto a quorum.
	if _, err := l1.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range c.servers[:2] {
		resp, err := s.Store(ctx, &wire.Store{Header: wire.Header{LogletID: 15, KnownGlobalTail: 4}, Flags: wire.FlagIgnoreSeal,
			FirstOffset: 4, Sequencer: w1, Payloads: [][]byte{[]byte("repaired")}})
		if err != nil || resp.Status != wire.StatusOK {
			t.Fatalf("repair store: %v %+v", err, resp)
		}
	}
	if _, err := l1.Read(ctx, 4, 1); !errors.Is(err, bifrost.ErrSealed) {
		t.Fatalf("read past the local sealed tail: %v", err)
	}
	l1.AdoptSealedTail(5)
	l1.AdoptSealedTail(2) // lower: ignored
	recs, err := l1.Read(ctx, 4, 5)
	if err != nil || len(recs) != 1 || string(recs[0].Payload) != "repaired" {
		t.Fatalf("read after adopting the chain's tail: %v %v", recs, err)
	}
	if _, err := l1.Read(ctx, 5, 1); !errors.Is(err, bifrost.ErrSealed) {
		t.Fatalf("read at the adopted tail: %v", err)
	}
}

// A server that lost its disk answers data-loss for the loglet: it holds none of its
// records, so a trim counts it, and succeeds with one other server while the third is cut
// off (it used to wait for two servers to trim). The trim point is then read only from
// servers that answer for the loglet, so it is known once the cut-off one is back.
func TestTrimCountsAServerThatLostItsData(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 75)
	seg := c.segment(75, w1)
	l := c.open(c.provider("w1", 1, nil), seg)
	ctx := testCtx(t, 20*time.Second)
	for i := range 20 {
		if _, err := l.Append(ctx, [][]byte{[]byte(fmt.Sprintf("r%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	wiped := c.servers[0]
	wiped.mu.Lock()
	wiped.dataLoss = true
	wiped.loglets = map[uint64]*fakeLoglet{}
	wiped.mu.Unlock()
	c.net.Partition("s3")
	short := testCtx(t, 2*time.Second)
	if err := l.Trim(short, 10); err != nil {
		t.Fatalf("trim with s1 wiped and s3 cut off: %v", err)
	}
	c.net.Heal("s3")
	l2 := c.open(c.provider("w2", 1, nil), seg)
	if tp, err := l2.TrimPoint(ctx); err != nil || tp != 10 {
		t.Fatalf("trim point %d %v, want 10", tp, err)
	}
}
