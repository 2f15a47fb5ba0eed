package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gorestate.dev/logserverd/logstore"
	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metadata"
)

var (
	seqA = metadata.NodeID{Name: "a", Generation: 1}
	seqB = metadata.NodeID{Name: "b", Generation: 1}
	// now is the harness clock: Store deadlines are checked against it.
	now = time.Unix(1_700_000_000, 0)
)

const testLoglet = 7<<32 | 1

// harness is a server over a store in a temporary directory.
type harness struct {
	t     *testing.T
	dir   string
	store *logstore.Store
	srv   *Server
	opts  Options
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), opts: opts}
	h.open()
	t.Cleanup(h.close)
	return h
}

func (h *harness) open() {
	h.t.Helper()
	st, err := logstore.Open(h.dir, logstore.Options{TrimChunk: 10})
	if err != nil {
		h.t.Fatal(err)
	}
	opts := h.opts
	opts.Now = func() time.Time { return now }
	h.store, h.srv = st, New(st, opts)
}

func (h *harness) close() {
	if h.srv == nil {
		return
	}
	_ = h.srv.Close()
	_ = h.store.Close()
	h.srv, h.store = nil, nil
}

// reopen closes the server and its store and opens them again from disk.
func (h *harness) reopen() {
	h.close()
	h.open()
}

func recs(first, n int) [][]byte {
	var ps [][]byte
	for i := range n {
		ps = append(ps, fmt.Appendf(nil, "rec-%d", first+i))
	}
	return ps
}

func storeReq(first, n int, global bifrost.Offset) *wire.Store {
	return &wire.Store{Header: wire.Header{LogletID: testLoglet, KnownGlobalTail: global}, FirstOffset: bifrost.Offset(first),
		Sequencer: seqA, Payloads: recs(first, n)}
}

func (h *harness) store1(req *wire.Store) *wire.Stored {
	h.t.Helper()
	resp, err := h.srv.Store(context.Background(), req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// mustStore stores n records at first and fails unless they were stored.
func (h *harness) mustStore(first, n int) {
	h.t.Helper()
	if r := h.store1(storeReq(first, n, 0)); r.Status != wire.StatusOK {
		h.t.Fatalf("store %d+%d: %+v", first, n, r)
	}
}

func (h *harness) seal() *wire.Sealed {
	h.t.Helper()
	r, err := h.srv.Seal(context.Background(), &wire.Seal{Header: wire.Header{LogletID: testLoglet}, Sequencer: seqA})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) info() *wire.LogletInfo {
	h.t.Helper()
	r, err := h.srv.GetLogletInfo(context.Background(), &wire.GetLogletInfo{Header: wire.Header{LogletID: testLoglet}})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) trim(point, global bifrost.Offset) *wire.Trimmed {
	h.t.Helper()
	r, err := h.srv.Trim(context.Background(), &wire.Trim{Header: wire.Header{LogletID: testLoglet, KnownGlobalTail: global}, TrimPoint: point})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) records(from, to bifrost.Offset, limit uint32) *wire.Records {
	h.t.Helper()
	r, err := h.srv.GetRecords(context.Background(), &wire.GetRecords{Header: wire.Header{LogletID: testLoglet}, From: from, To: to, LimitBytes: limit})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// blockWriter stalls the store's writer goroutine (a done callback that blocks runs on it)
// until the returned function is called, so that later writes stay in flight.
func (h *harness) blockWriter() (release func()) {
	h.t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	err := h.store.Enqueue(logstore.Write{Loglet: 1 << 60, GlobalTail: 1}, func(error) {
		close(started)
		<-unblock
	})
	if err != nil {
		h.t.Fatal(err)
	}
	<-started
	return sync1(func() { close(unblock) })
}

func sync1(f func()) func() {
	done := false
	return func() {
		if !done {
			done = true
			f()
		}
	}
}

// state reads a loglet's in-memory state under its lock.
func (h *harness) state(read func(l *loglet) bool) bool {
	l, err := h.srv.lock(testLoglet)
	if err != nil {
		h.t.Fatal(err)
	}
	defer l.mu.Unlock()
	return read(l)
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// async runs f in a goroutine; the result arrives on the channel.
func async[T any](f func() T) <-chan T {
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	return ch
}

// pending fails if ch already has a result: the call it stands for must still be waiting.
func pending[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s answered early: %+v", what, v)
	default:
	}
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not answer", what)
		panic("unreachable")
	}
}
