package logstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
)

func open(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// write enqueues w and waits for it.
func write(t testing.TB, s *Store, w Write) {
	t.Helper()
	done := make(chan error, 1)
	if err := s.Enqueue(w, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func payloads(first, n int) [][]byte {
	var ps [][]byte
	for i := range n {
		ps = append(ps, fmt.Appendf(nil, "record-%d", first+i))
	}
	return ps
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRecoveryAfterReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seq := metadata.NodeID{Name: "n1", Generation: 3}
	write(t, s, Write{Loglet: 1, First: 1, Payloads: payloads(1, 10), Sequencer: &seq})
	write(t, s, Write{Loglet: 1, First: 20, Payloads: payloads(20, 2)}) // a hole: 11..19
	write(t, s, Write{Loglet: 1, TrimPoint: 5, GlobalTail: 12})
	write(t, s, Write{Loglet: 1, Seal: true})
	write(t, s, Write{Loglet: 2, TrimPoint: 30}) // trimmed past anything it holds
	write(t, s, Write{Loglet: 3, First: 1, Payloads: payloads(1, 1)})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir, Options{})
	tests := []struct {
		loglet uint64
		want   LogletState
	}{
		{1, LogletState{LocalTail: 22, TrimPoint: 5, GlobalTail: 12, Sealed: true, Sequencer: &seq}},
		{2, LogletState{LocalTail: 31, TrimPoint: 30, GlobalTail: 31}},
		{3, LogletState{LocalTail: 2, GlobalTail: 1}},
		{4, LogletState{LocalTail: 1, GlobalTail: 1}}, // never seen
	}
	for _, tt := range tests {
		got, err := s.LoadLoglet(tt.loglet)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got.Sequencer) != fmt.Sprint(tt.want.Sequencer) {
			t.Errorf("loglet %d: sequencer %v, want %v", tt.loglet, got.Sequencer, tt.want.Sequencer)
		}
		got.Sequencer, tt.want.Sequencer = nil, nil
		if got != tt.want {
			t.Errorf("loglet %d: %+v, want %+v", tt.loglet, got, tt.want)
		}
	}
}

func TestFormatVersion(t *testing.T) {
	t.Parallel()
	t.Run("unknown version", func(t *testing.T) {
		dir := t.TempDir()
		db, err := leveldb.OpenFile(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Put(keyFormat, []byte{0, 0, 0, 7}, nil)
		db.Close()
		_, err = Open(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), "log store format version 7 is not supported (this build reads versions 1 to 4)") {
			t.Fatalf("Open = %v", err)
		}
	})
	t.Run("not a log store", func(t *testing.T) {
		dir := t.TempDir()
		db, err := leveldb.OpenFile(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Put([]byte("other"), []byte("x"), nil)
		db.Close()
		_, err = Open(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), "no format version") {
			t.Fatalf("Open = %v", err)
		}
	})
	t.Run("new store gets the version", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = open(t, dir, Options{}) // reopens fine
	})
}

func TestMarker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _ := Open(dir, Options{})
	if _, ok, err := s.Marker(); ok || err != nil {
		t.Fatalf("new store has a marker: %v %v", ok, err)
	}
	if err := s.WriteMarker("n1", nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, Options{})
	if name, ok, err := s.Marker(); !ok || err != nil || name != "n1" {
		t.Fatalf("marker %q %v %v", name, ok, err)
	}
}

func TestGroupCommit(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), Options{})
	const writers, each = 64, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				write(t, s, Write{Loglet: uint64(w), First: bifrost.Offset(i + 1), Payloads: payloads(i, 1)})
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	if st.Writes != writers*each {
		t.Fatalf("stats %+v, want %d writes", st, writers*each)
	}
	// Writers block until their write is synced, so every batch after the first carries
	// whatever queued during the previous sync.
	if st.Batches >= st.Writes/2 {
		t.Fatalf("%d batches for %d writes: no group commit", st.Batches, st.Writes)
	}
	t.Logf("%d writes in %d batches", st.Writes, st.Batches)
}

func TestBatchBounds(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), Options{MaxBatchWrites: 3, MaxBatchBytes: 1 << 20})
	// Block the writer so the queue builds up, then release it.
	s.qmu.Lock()
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Add(1)
		s.queue = append(s.queue, request{apply: (&Write{Loglet: 1, First: bifrost.Offset(i + 1), Payloads: payloads(i, 1)}).apply, size: 10,
			done: func(err error) { errs <- err; wg.Done() }})
	}
	s.qmu.Unlock()
	s.wake()
	wg.Wait()
	if st := s.Stats(); st.Batches != 4 {
		t.Fatalf("10 writes with at most 3 a batch took %d batches", st.Batches)
	}
}

func TestWriteFailureIsFinal(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), Options{})
	write(t, s, Write{Loglet: 1, First: 1, Payloads: payloads(1, 1)})
	_ = s.db.Close() // every later write fails
	done := make(chan error, 1)
	if err := s.Enqueue(Write{Loglet: 1, First: 2, Payloads: payloads(2, 1)}, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrFailed) {
		t.Fatalf("write on a closed db: %v, want ErrFailed", err)
	}
	select {
	case <-s.Failed():
	default:
		t.Fatal("Failed not closed")
	}
	if err := s.Enqueue(Write{Loglet: 1, Seal: true}, nil); !errors.Is(err, ErrFailed) {
		t.Fatalf("enqueue after failure: %v", err)
	}
	if !errors.Is(s.Err(), ErrFailed) {
		t.Fatalf("Err = %v", s.Err())
	}
}

func TestReadRecords(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), Options{})
	write(t, s, Write{Loglet: 1, First: 1, Payloads: payloads(1, 5)})  // 1..5, 8 bytes each
	write(t, s, Write{Loglet: 1, First: 8, Payloads: payloads(8, 3)})  // 8..10
	write(t, s, Write{Loglet: 2, First: 1, Payloads: payloads(1, 20)}) // another loglet
	tests := []struct {
		name       string
		from, to   bifrost.Offset
		limit, max int
		wantOffs   []bifrost.Offset
		wantNext   bifrost.Offset
	}{
		{"all, holes skipped", 1, 20, 1 << 20, 100, []bifrost.Offset{1, 2, 3, 4, 5, 8, 9, 10}, 21},
		{"byte budget", 1, 20, 20, 100, []bifrost.Offset{1, 2}, 3},
		{"at least one", 3, 20, 1, 100, []bifrost.Offset{3}, 4},
		{"count bound", 4, 20, 1 << 20, 2, []bifrost.Offset{4, 5}, 8},
		{"in a hole", 6, 7, 1 << 20, 100, nil, 8},
		{"empty range", 9, 8, 1 << 20, 100, nil, 9},
	}
	for _, tt := range tests {
		recs, next, err := s.ReadRecords(1, tt.from, tt.to, tt.limit, tt.max)
		if err != nil {
			t.Fatal(err)
		}
		var offs []bifrost.Offset
		for _, r := range recs {
			offs = append(offs, r.Offset)
			if want := fmt.Sprintf("record-%d", r.Offset); string(r.Payload) != want {
				t.Errorf("%s: payload %q at %d", tt.name, r.Payload, r.Offset)
			}
		}
		if fmt.Sprint(offs) != fmt.Sprint(tt.wantOffs) || next != tt.wantNext {
			t.Errorf("%s: offsets %v next %d, want %v next %d", tt.name, offs, next, tt.wantOffs, tt.wantNext)
		}
	}
}

func TestDigestAndHolds(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), Options{})
	write(t, s, Write{Loglet: 1, First: 1, Payloads: payloads(1, 3)})
	write(t, s, Write{Loglet: 1, First: 5, Payloads: payloads(5, 2)})
	write(t, s, Write{Loglet: 1, First: 9, Payloads: payloads(9, 1)})
	runs, err := s.Digest(1, 2, 100, 10)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(runs) != "[{2 3} {5 6} {9 9}]" {
		t.Fatalf("runs %v", runs)
	}
	if runs, _ := s.Digest(1, 1, 100, 2); fmt.Sprint(runs) != "[{1 3} {5 6}]" {
		t.Fatalf("bounded runs %v", runs)
	}
	if ok, err := s.Holds(1, 5, payloads(5, 2), 0); !ok || err != nil {
		t.Fatalf("Holds(5..6) = %v %v", ok, err)
	}
	if ok, _ := s.Holds(1, 3, payloads(3, 2), 0); ok {
		t.Fatal("Holds a hole")
	}
	if ok, _ := s.Holds(1, 3, payloads(3, 2), 4); !ok {
		t.Fatal("trimmed offsets do not count as held")
	}
	if ok, _ := s.Holds(1, 1, [][]byte{[]byte("other")}, 0); ok {
		t.Fatal("Holds different content")
	}
}

func TestTrimDeletesInBackground(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), Options{TrimChunk: 100})
	write(t, s, Write{Loglet: 1, First: 1, Payloads: payloads(1, 1000)})
	write(t, s, Write{Loglet: 2, First: 1, Payloads: payloads(1, 10)})
	write(t, s, Write{Loglet: 1, TrimPoint: 750})
	waitFor(t, "deletion of loglet 1 up to 750", func() bool {
		recs, _, _ := s.ReadRecords(1, 1, 2000, 1<<20, 10)
		return len(recs) > 0 && recs[0].Offset == 751
	})
	if recs, _, _ := s.ReadRecords(1, 1, 2000, 1<<30, 10000); len(recs) != 250 {
		t.Fatalf("%d records left, want 250", len(recs))
	}
	if recs, _, _ := s.ReadRecords(2, 1, 100, 1<<20, 100); len(recs) != 10 {
		t.Fatalf("other loglet lost records: %d left", len(recs))
	}
	st, _ := s.LoadLoglet(1)
	if st.LocalTail != 1001 || st.TrimPoint != 750 {
		t.Fatalf("state %+v", st)
	}
}

func TestTrimDeletionResumesOnLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _ := Open(dir, Options{})
	write(t, s, Write{Loglet: 1, First: 1, Payloads: payloads(1, 50)})
	s.Close()
	// A trim point whose deletion never ran (a crash right after it was persisted).
	db, err := leveldb.OpenFile(filepath.Join(dir, "meta"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Put(metaKey(metaTrimPoint, 1), u64(40), nil)
	db.Close()

	s = open(t, dir, Options{})
	if _, err := s.LoadLoglet(1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deletion after load", func() bool {
		recs, _, _ := s.ReadRecords(1, 1, 100, 1<<20, 100)
		return len(recs) == 10 && !s.trims.pending()
	})
}

// BenchmarkStores64 measures 1-record stores from 64 goroutines, each waiting for its
// store to be durable before the next: with group commit, stores/s is a multiple of the
// disk's syncs/s.
func BenchmarkStores64(b *testing.B) {
	s := open(b, b.TempDir(), Options{})
	const goroutines = 64
	payload := make([]byte, 100)
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := g; i < b.N; i += goroutines {
				done := make(chan error, 1)
				if err := s.Enqueue(Write{Loglet: uint64(g), First: bifrost.Offset(i + 1), Payloads: [][]byte{payload}}, func(err error) { done <- err }); err != nil {
					b.Error(err)
					return
				}
				if err := <-done; err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	st := s.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "stores/s")
	if st.Batches > 0 {
		b.ReportMetric(float64(st.Writes)/float64(st.Batches), "stores/batch")
	}
}

// A deferred write is committed by the caller of CommitQueued, which returns once it is
// durable and answered; the writer goroutine is never woken for it.
func TestCommitQueuedCommitsOnTheCaller(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), Options{})
	// Let the writer settle: a wake-up left over from Open's own writes would take the
	// deferred write as well, which is allowed.
	time.Sleep(20 * time.Millisecond)
	before := s.Stats()
	done := make(chan error, 1)
	if err := s.EnqueueDeferred(Write{Loglet: 1, First: 1, Payloads: payloads(1, 3)}, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // a writer woken by mistake would commit it now
	if st := s.Stats(); st.Batches != before.Batches {
		t.Fatalf("deferred write committed before CommitQueued: %+v", st)
	}
	s.CommitQueued(true)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatal("CommitQueued returned before answering the write")
	}
	if st := s.Stats(); st.Batches != before.Batches+1 || st.OnCallers != 1 {
		t.Fatalf("stats %+v, want one batch more (%+v before), on the caller", st, before)
	}
	recs, _, err := s.ReadRecords(1, 1, 3, 1<<20, 10)
	if err != nil || len(recs) != 3 {
		t.Fatalf("read back %d records, %v", len(recs), err)
	}
	// Without onCaller the writer commits it.
	if err := s.EnqueueDeferred(Write{Loglet: 1, First: 4, Payloads: payloads(4, 1)}, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	s.CommitQueued(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Batches != before.Batches+2 || st.OnCallers != 1 {
		t.Fatalf("stats %+v, want the second batch on the writer", st)
	}
}

// Callers of CommitQueued and the writer take turns: every write is answered once and
// without error, in the order it was enqueued, whoever commits it.
func TestCommitQueuedTakesTurnsWithTheWriter(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), Options{MaxBatchWrites: 7})
	const loglets, each = 16, 200
	var (
		mu       sync.Mutex
		answered = map[uint64][]bifrost.Offset{}
		wg       sync.WaitGroup
	)
	for l := range uint64(loglets) {
		wg.Go(func() {
			var pending sync.WaitGroup
			defer pending.Wait()
			for i := range each {
				off := bifrost.Offset(i + 1)
				w := Write{Loglet: l, First: off, Payloads: payloads(i+1, 1)}
				pending.Add(1)
				cb := func(err error) {
					defer pending.Done()
					if err != nil {
						t.Error(err)
					}
					mu.Lock()
					answered[l] = append(answered[l], off)
					mu.Unlock()
				}
				// Half the loglets commit their own writes, now and then; the others
				// leave them to the writer.
				var err error
				if l%2 == 0 {
					err = s.EnqueueDeferred(w, cb)
					if err == nil && i%3 == 2 {
						s.CommitQueued(true)
					}
				} else {
					err = s.Enqueue(w, cb)
				}
				if err != nil {
					pending.Done()
					t.Error(err)
					return
				}
			}
			s.CommitQueued(true)
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for l := range uint64(loglets) {
		got := answered[l]
		if len(got) != each {
			t.Fatalf("loglet %d: %d answers, want %d", l, len(got), each)
		}
		for i, off := range got {
			if off != bifrost.Offset(i+1) {
				t.Fatalf("loglet %d: answer %d was for offset %d", l, i, off)
			}
		}
		recs, _, err := s.ReadRecords(l, 1, each, 1<<20, each)
		if err != nil || len(recs) != each {
			t.Fatalf("loglet %d: read back %d records, %v", l, len(recs), err)
		}
	}
	st := s.Stats()
	if st.Writes != loglets*each {
		t.Fatalf("stats %+v, want %d writes", st, loglets*each)
	}
	t.Logf("%d writes in %d batches, %d of them on callers", st.Writes, st.Batches, st.OnCallers)

	// With only deferred writes nothing wakes the writer but the callers: they commit.
	var answers sync.WaitGroup
	for l := range uint64(8) {
		wg.Go(func() {
			for i := range 50 {
				answers.Add(1)
				err := s.EnqueueDeferred(Write{Loglet: 100 + l, First: bifrost.Offset(i + 1), Payloads: payloads(i+1, 1)}, func(err error) {
					defer answers.Done()
					if err != nil {
						t.Error(err)
					}
				})
				if err != nil {
					answers.Done()
					t.Error(err)
					return
				}
				s.CommitQueued(true)
			}
		})
	}
	wg.Wait()
	answers.Wait()
	if after := s.Stats(); after.OnCallers == st.OnCallers || after.Writes != st.Writes+8*50 {
		t.Fatalf("stats %+v after %+v: the callers committed none of 400 deferred writes", after, st)
	}
}

// Close drains what was queued, also while callers commit: every write accepted before
// Close is answered without error and is there after a reopen; later writes are refused.
func TestCloseWhileCommittingOnCallers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		answered   sync.WaitGroup
		mu         sync.Mutex
		durable    = map[uint64]int{} // loglet -> offsets 1..n answered without error
		committers sync.WaitGroup
	)
	for l := range uint64(4) {
		committers.Go(func() {
			for i := 1; ; i++ {
				answered.Add(1)
				err := s.EnqueueDeferred(Write{Loglet: l, First: bifrost.Offset(i), Payloads: payloads(i, 1)}, func(err error) {
					defer answered.Done()
					if err != nil {
						t.Errorf("loglet %d offset %d: %v", l, i, err)
						return
					}
					mu.Lock()
					durable[l] = max(durable[l], i)
					mu.Unlock()
				})
				if err != nil {
					answered.Done()
					if !errors.Is(err, bifrost.ErrClosed) {
						t.Error(err)
					}
					return
				}
				s.CommitQueued(i%2 == 0)
			}
		})
	}
	waitFor(t, "writes of every loglet", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for l := range uint64(4) {
			if durable[l] < 5 {
				return false
			}
		}
		return true
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	committers.Wait()
	waited := make(chan struct{})
	go func() { answered.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("a write accepted before Close was never answered")
	}
	if err := s.EnqueueDeferred(Write{Loglet: 9, First: 1, Payloads: payloads(1, 1)}, func(error) {}); !errors.Is(err, bifrost.ErrClosed) {
		t.Fatalf("enqueue after Close: %v", err)
	}
	s = open(t, dir, Options{})
	for l := range uint64(4) {
		n := durable[l]
		recs, _, err := s.ReadRecords(l, 1, bifrost.Offset(n), 1<<30, n)
		if err != nil || len(recs) != n {
			t.Fatalf("loglet %d: %d of %d answered records read back after reopen, %v", l, len(recs), n, err)
		}
	}
}
