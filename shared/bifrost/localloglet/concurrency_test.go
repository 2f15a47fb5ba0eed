package localloglet

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"

	"gorestate.dev/shared/bifrost"
)

// TestConcurrentAppendAsync has many goroutines append batches to shared loglets with
// AppendAsync while readers tail every loglet. It checks that each loglet's LSNs are
// exactly 1..n with every batch contiguous, that one goroutine's batches get increasing
// LSNs and complete in call order, and that readers see exactly what was acknowledged.
func TestConcurrentAppendAsync(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts Options
	}{
		{"default", Options{}},
		{"tiny cache, small segments", Options{CacheSize: 4 << 10, SegmentSize: 16 << 10}},
		{"no cache", Options{CacheSize: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testConcurrentAppendAsync(t, tc.opts)
		})
	}
}

// concPayload encodes who appended a record, so readers can check it against the
// acknowledgements.
func concPayload(writer, seq, i int) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(writer))
	b = binary.LittleEndian.AppendUint32(b, uint32(seq))
	b = binary.LittleEndian.AppendUint32(b, uint32(i))
	return append(b, bytes.Repeat([]byte{byte(writer)}, 40+seq%50)...)
}

func testConcurrentAppendAsync(t *testing.T, opts Options) {
	const (
		loglets = 4
		writers = 16
		batches = 60 // per writer
	)
	s := openStore(t, t.TempDir(), opts)
	ctx := testContext(t)

	type ack struct {
		seq, n int
		loglet uint64
		first  bifrost.Offset
	}
	acks := make([][]ack, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			var mu sync.Mutex
			done := make(chan struct{})
			completed := 0
			for seq := range batches {
				id := uint64((w + seq) % loglets)
				n := 1 + (w*7+seq)%3
				batch := make([][]byte, n)
				for i := range batch {
					batch[i] = concPayload(w, seq, i)
				}
				s.Loglet(id).AppendAsync(batch, func(first bifrost.Offset, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						t.Errorf("writer %d batch %d: %v", w, seq, err)
					}
					if completed != seq {
						t.Errorf("writer %d: batch %d completed as number %d", w, seq, completed)
					}
					completed++
					acks[w] = append(acks[w], ack{seq: seq, n: n, loglet: id, first: first})
					if completed == batches {
						close(done)
					}
				})
			}
			<-done
		})
	}

	// Tailing readers, one per loglet, collect everything up to the final count.
	total := make([]int, loglets)
	for w := range writers {
		for seq := range batches {
			total[(w+seq)%loglets] += 1 + (w*7+seq)%3
		}
	}
	read := make([][]bifrost.Record, loglets)
	var rg sync.WaitGroup
	for id := range loglets {
		rg.Go(func() {
			l := s.Loglet(uint64(id))
			for next := bifrost.Offset(1); next <= bifrost.Offset(total[id]); {
				ents, err := l.Read(ctx, next, 16)
				if err != nil {
					t.Errorf("reader %d at %d: %v", id, next, err)
					return
				}
				for _, e := range ents {
					if e.Offset != next {
						t.Errorf("reader %d: lsn %d, want %d", id, e.Offset, next)
						return
					}
					if e.Offset >= l.Tail() {
						t.Errorf("reader %d: got lsn %d at or above the durable tail %d", id, e.Offset, l.Tail())
					}
					next++
				}
				read[id] = append(read[id], ents...)
			}
		})
	}
	wg.Wait()
	rg.Wait()
	if t.Failed() {
		return
	}

	// Every acknowledged batch is where its acknowledgement says, and nothing else is.
	owner := make([]map[bifrost.Offset][]byte, loglets)
	for id := range owner {
		owner[id] = make(map[bifrost.Offset][]byte)
	}
	for w, as := range acks {
		last := make(map[uint64]bifrost.Offset)
		for _, a := range as {
			if a.first <= last[a.loglet] {
				t.Fatalf("writer %d: batch %d on loglet %d got lsn %d after %d", w, a.seq, a.loglet, a.first, last[a.loglet])
			}
			last[a.loglet] = a.first
			for i := range a.n {
				lsn := a.first + bifrost.Offset(i)
				if _, dup := owner[a.loglet][lsn]; dup {
					t.Fatalf("loglet %d lsn %d acknowledged twice", a.loglet, lsn)
				}
				owner[a.loglet][lsn] = concPayload(w, a.seq, i)
			}
		}
	}
	for id := range loglets {
		if len(owner[id]) != total[id] || len(read[id]) != total[id] {
			t.Fatalf("loglet %d: %d acknowledged, %d read, want %d", id, len(owner[id]), len(read[id]), total[id])
		}
		for _, e := range read[id] {
			if !bytes.Equal(e.Payload, owner[id][e.Offset]) {
				t.Fatalf("loglet %d lsn %d: read %x, acknowledged %x", id, e.Offset, e.Payload, owner[id][e.Offset])
			}
		}
		if got := s.Loglet(uint64(id)).Tail(); got != bifrost.Offset(total[id]+1) {
			t.Fatalf("loglet %d tail %d, want %d", id, got, total[id]+1)
		}
	}

	// And the same after a restart, from disk.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, s.dir, opts)
	for id := range loglets {
		l := s.Loglet(uint64(id))
		for next := bifrost.Offset(1); next <= bifrost.Offset(total[id]); {
			ents, err := l.Read(ctx, next, 64)
			if err != nil {
				t.Fatalf("after restart: loglet %d at %d: %v", id, next, err)
			}
			for _, e := range ents {
				if !bytes.Equal(e.Payload, owner[id][e.Offset]) {
					t.Fatalf("after restart: loglet %d lsn %d: read %x, acknowledged %x", id, e.Offset, e.Payload, owner[id][e.Offset])
				}
			}
			next += bifrost.Offset(len(ents))
		}
	}
}
