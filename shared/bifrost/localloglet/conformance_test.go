package localloglet

import (
	"testing"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/loglettest"
)

// TestConformance runs the loglet suite on a loglet of its own store (fsync on), and on a
// loglet that shares its store with a busy neighbour, as partitions share one store.
func TestConformance(t *testing.T) {
	t.Parallel()
	t.Run("own store", func(t *testing.T) {
		t.Parallel()
		loglettest.Run(t, func(t *testing.T) bifrost.Loglet {
			return openStore(t, t.TempDir(), Options{}).Loglet(1)
		})
	})
	t.Run("shared store, small segments, no cache", func(t *testing.T) {
		t.Parallel()
		loglettest.RunWith(t, loglettest.Options{Rounds: 5}, func(t *testing.T) bifrost.Loglet {
			s := openStore(t, t.TempDir(), Options{SegmentSize: 8 << 10, CacheSize: -1})
			appendN(t, s.Loglet(2), 2, 50)
			return s.Loglet(1)
		})
	})
}
