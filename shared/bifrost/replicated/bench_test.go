package replicated

import (
	"context"
	"testing"
)

// In-memory throughput of the sequencer path (fake log servers, no network): what the
// protocol logic costs, and how well merging scales with concurrent writers.

func benchLoglet(b *testing.B) *Loglet {
	c := newCluster(b, 3, 2, 1)
	return c.open(c.provider("w1", 1, nil), c.segment(1, w1))
}

func BenchmarkAppend(b *testing.B) {
	l := benchLoglet(b)
	payload := [][]byte{make([]byte, 100)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(context.Background(), payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendParallel(b *testing.B) {
	l := benchLoglet(b)
	payload := [][]byte{make([]byte, 100)}
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(context.Background(), payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
