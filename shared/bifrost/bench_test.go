package bifrost_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/localloglet"
	"gorestate.dev/shared/metadata"
)

// BenchmarkAppend compares appends of 200-byte records to a local loglet directly and
// through a writer-mode virtual log over it, to show what the virtual log adds (with fsync
// off, the CPU cost alone).
func BenchmarkAppend(b *testing.B) {
	payload := make([]byte, 200)
	for _, fsync := range []bool{true, false} {
		for _, goroutines := range []int{1, 64} {
			for _, via := range []string{"loglet", "writerlog"} {
				b.Run(fmt.Sprintf("fsync=%v/goroutines=%d/via=%s", fsync, goroutines, via), func(b *testing.B) {
					s, err := localloglet.Open(b.TempDir(), localloglet.Options{NoSync: !fsync})
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					meta, err := metadata.OpenLocal(b.TempDir())
					if err != nil {
						b.Fatal(err)
					}
					defer meta.Close()
					seg := metadata.Segment{BaseLSN: 1, Provider: bifrost.ProviderLocal, LogletID: bifrost.LogletID(1, 0)}
					chains, _ := json.Marshal(metadata.Logs{Chains: map[uint32][]metadata.Segment{1: {seg}}})
					if _, err := meta.Put(context.Background(), metadata.KeyLogs, chains, 0); err != nil {
						b.Fatal(err)
					}
					bf := bifrost.New(bifrost.Options{Meta: meta, Logger: hclog.NewNullLogger(),
						Registry: bifrost.Registry{bifrost.ProviderLocal: localloglet.NewProvider(s, "n1")}})
					defer bf.Close()
					log, loglet := bf.WriterLog(1), s.Loglet(seg.LogletID)
					appendOne := func(ctx context.Context) error {
						if via == "loglet" {
							_, err := loglet.Append(ctx, [][]byte{payload})
							return err
						}
						_, err := log.Append(ctx, [][]byte{payload})
						return err
					}
					ctx := context.Background()
					if err := appendOne(ctx); err != nil { // opens the segment
						b.Fatal(err)
					}
					var next atomic.Int64
					b.ResetTimer()
					var wg sync.WaitGroup
					for range goroutines {
						wg.Go(func() {
							for next.Add(1) <= int64(b.N) {
								if err := appendOne(ctx); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					wg.Wait()
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
				})
			}
		}
	}
}
