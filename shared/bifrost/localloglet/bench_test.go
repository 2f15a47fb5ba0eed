package localloglet

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"gorestate.dev/shared/bifrost"
)

// BenchmarkAppendParallel measures group commit: goroutines each append 200-byte payloads
// synchronously (fsync on) to 16 loglets of one store.
func BenchmarkAppendParallel(b *testing.B) {
	const loglets = 16
	payload := make([]byte, 200)
	for _, goroutines := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("goroutines=%d", goroutines), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			before := s.Stats()
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					l := s.Loglet(uint64(g % loglets))
					for next.Add(1) <= int64(b.N) {
						if _, err := l.Append(ctx, [][]byte{payload}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			secs := b.Elapsed().Seconds()
			syncs := s.Stats().Syncs - before.Syncs
			b.ReportMetric(float64(b.N)/secs, "appends/s")
			b.ReportMetric(float64(syncs)/secs, "fsyncs/s")
			b.ReportMetric(float64(b.N)/float64(max(syncs, 1)), "appends/fsync")
		})
	}
}

// BenchmarkRead reads 64-record batches of 200-byte payloads from the cache and from disk.
func BenchmarkRead(b *testing.B) {
	const records = 1 << 14
	for _, tc := range []struct {
		name      string
		cacheSize int64
	}{{"cached", 0}, {"disk", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{CacheSize: tc.cacheSize, NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			// Four interleaved loglets, as partitions share the files.
			batch := make([][]byte, 64)
			for i := range batch {
				batch[i] = make([]byte, 200)
			}
			for range records / 64 {
				for id := range uint64(4) {
					if _, err := s.Loglet(id).Append(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
			}
			l := s.Loglet(0)
			b.SetBytes(64 * 200)
			b.ResetTimer()
			from := bifrost.Offset(1)
			for b.Loop() {
				ents, err := l.Read(ctx, from, 64)
				if err != nil || len(ents) != 64 {
					b.Fatal(len(ents), err)
				}
				from += 64
				if from > records {
					from = 1
				}
			}
		})
	}
}
