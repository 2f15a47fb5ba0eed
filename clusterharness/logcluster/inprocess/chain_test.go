package inprocess

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
)

// Appends through a writer-mode virtual log while the chain is sealed and extended every
// second (the upstream bifrost_append_and_seal_concurrent): hundreds of appenders, a seal
// through the sequencer each second for 10 s, replicated segments on three in-process log
// servers (r=2). Every committed LSN is read back by a reader on another node, none twice,
// and since every seal went through the sequencer (drained), the set read equals the set
// acknowledged.
func TestAppendAndSealExtendConcurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s of load")
	}
	const (
		appenders = 400
		duration  = 10 * time.Second
		logID     = 1
	)
	c, err := Start(t.TempDir(), 3, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	meta, err := metadata.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	ctx := t.Context()
	first := c.Segment(logID, 0, writer, 2)
	b, _ := json.Marshal(metadata.Logs{Chains: map[uint32][]metadata.Segment{logID: {first}}})
	if _, err := meta.Put(ctx, metadata.KeyLogs, b, 0); err != nil {
		t.Fatal(err)
	}
	next := func(_ context.Context, _ uint32, _ metadata.Segment, _ bifrost.LSN) (metadata.Segment, error) {
		return metadata.Segment{Provider: bifrost.ProviderReplicated, Replicated: first.Replicated}, nil
	}
	wp := c.Provider(providerOptions(writer))
	wb := bifrost.New(bifrost.Options{Meta: meta, Registry: bifrost.Registry{bifrost.ProviderReplicated: wp}, Reconfigure: next})
	t.Cleanup(func() { _ = wb.Close() })
	log := wb.WriterLog(logID)

	var (
		mu    sync.Mutex
		acked = map[string]bifrost.LSN{}
		errs  []error
		wg    sync.WaitGroup
	)
	loadCtx, stop := context.WithTimeout(ctx, duration)
	defer stop()
	for a := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; loadCtx.Err() == nil; i++ {
				p := fmt.Sprintf("a%d-%d", a, i)
				lsn, err := log.Append(ctx, [][]byte{[]byte(p)})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					acked[p] = lsn
				}
				mu.Unlock()
			}
		}()
	}
	seals := 0
	tick := time.NewTicker(time.Second)
	for loadCtx.Err() == nil {
		select {
		case <-tick.C:
		case <-loadCtx.Done():
			continue
		}
		chain, err := wb.Chain(ctx, logID)
		if err != nil {
			t.Fatal(err)
		}
		tail := chain[len(chain)-1]
		if _, err := wb.SealAndExtend(ctx, logID, tail.Index, func(_ bifrost.LSN, prev metadata.Segment) (metadata.Segment, error) {
			return next(ctx, logID, prev, 0)
		}); errors.Is(err, bifrost.ErrSegmentMismatch) {
			// The writer log saw its appends refused by our seal and extended the chain
			// first: one winner per segment, and it is still a seal through the sequencer.
		} else if err != nil {
			t.Fatalf("seal and extend segment %d: %v", tail.Index, err)
		}
		seals++
	}
	tick.Stop()
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d appends failed, first: %v", len(errs), errs[0])
	}
	chain, _ := wb.Chain(ctx, logID)
	t.Logf("%d appends acknowledged, %d seal-and-extends, %d segments", len(acked), seals, len(chain))
	if len(chain) < 6 || len(chain) > seals+1 {
		t.Fatalf("%d segments after %d seal-and-extends: want one new segment per seal, at least 5", len(chain), seals)
	}

	// Read everything back from another node: it reads from the log servers.
	rp := c.Provider(providerOptions(other))
	rb := bifrost.New(bifrost.Options{Meta: meta, Registry: bifrost.Registry{bifrost.ProviderReplicated: rp}})
	t.Cleanup(func() { _ = rb.Close() })
	reader := rb.Log(logID)
	tail, err := reader.FindTail(ctx)
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]bifrost.LSN{}
	readCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for from := bifrost.LSN(1); from < tail; {
		ents, err := reader.Read(readCtx, from, 1000)
		if err != nil {
			t.Fatalf("read from %d (tail %d): %v", from, tail, err)
		}
		for _, e := range ents {
			if e.LSN != from {
				t.Fatalf("read LSN %d, want %d (a gap)", e.LSN, from)
			}
			if prev, dup := read[string(e.Payload)]; dup {
				t.Fatalf("%q read at LSN %d and %d", e.Payload, prev, e.LSN)
			}
			read[string(e.Payload)] = e.LSN
			from++
		}
	}
	for p, lsn := range acked {
		if got, ok := read[p]; !ok || got != lsn {
			t.Fatalf("acknowledged %q at LSN %d, read at %d (found %v)", p, lsn, got, ok)
		}
	}
	if len(read) != len(acked) {
		t.Fatalf("read %d records, acknowledged %d: sealing through the sequencer must not leave unacknowledged records", len(read), len(acked))
	}
}
