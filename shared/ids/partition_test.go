package ids

import (
	"math"
	"strconv"
	"testing"
)

func TestPartitionOfCoversKeySpace(t *testing.T) {
	t.Parallel()
	for _, n := range []uint32{1, 2, 3, 7, 24, 128, 1000, math.MaxUint32} {
		if got := PartitionOf(0, n); got != 0 {
			t.Errorf("n=%d: PartitionOf(0) = %d, want 0", n, got)
		}
		if got := PartitionOf(math.MaxUint64, n); got != n-1 {
			t.Errorf("n=%d: PartitionOf(MaxUint64) = %d, want %d", n, got, n-1)
		}
		// Ranges are contiguous, ordered and tile the whole space.
		var next PartitionKey
		limit := n
		if limit > 300 {
			limit = 300
		}
		for p := range limit {
			first, last := PartitionRange(p, n)
			if first != next {
				t.Fatalf("n=%d p=%d: range starts at %d, want %d", n, p, first, next)
			}
			if first > last {
				t.Fatalf("n=%d p=%d: empty range [%d,%d]", n, p, first, last)
			}
			for _, k := range []PartitionKey{first, last, first + (last-first)/2} {
				if got := PartitionOf(k, n); got != p {
					t.Fatalf("n=%d: PartitionOf(%d) = %d, want %d", n, k, got, p)
				}
			}
			if p > 0 {
				if got := PartitionOf(first-1, n); got != p-1 {
					t.Fatalf("n=%d: key before range %d is in %d", n, p, got)
				}
			}
			next = last + 1
		}
		if limit == n && next != 0 {
			t.Errorf("n=%d: ranges end before MaxUint64 (next %d)", n, next)
		}
	}
}

func TestPartitionOfMonotonic(t *testing.T) {
	t.Parallel()
	const n = 13
	prev := uint32(0)
	step := PartitionKey(math.MaxUint64 / 10007)
	for k := PartitionKey(0); ; k += step {
		p := PartitionOf(k, n)
		if p < prev {
			t.Fatalf("PartitionOf(%d) = %d after %d", k, p, prev)
		}
		prev = p
		if k > math.MaxUint64-step {
			break
		}
	}
	if PartitionOf(12345, 0) != 0 {
		t.Error("zero partitions must map to 0")
	}
}

func TestPartitionRangePanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("PartitionRange(3, 3) did not panic")
		}
	}()
	PartitionRange(3, 3)
}

func TestPartitionKeyOfStable(t *testing.T) {
	t.Parallel()
	// Frozen values, computed independently in Python from the documented algorithm. These keys are persisted inside invocation ids, so the hash must never
	// change. If this test fails, the change breaks existing data.
	tests := []struct {
		key  string
		want PartitionKey
	}{
		{"", 0xefd01f60ba992926},
		{"alice", 0x3507d047a67c08f4},
		{"bob", 0xf6493629e5654ae0},
		{"a-much-longer-object-key/with/slashes", 0xdca30b0767fc17af},
	}
	for _, tc := range tests {
		if got := PartitionKeyOf(tc.key); got != tc.want {
			t.Errorf("PartitionKeyOf(%q) = %#x, want %#x", tc.key, uint64(got), uint64(tc.want))
		}
	}
}

func TestPartitionKeyOfSpreads(t *testing.T) {
	t.Parallel()
	// Sequential short keys are the common case (user ids); they must not pile up in a few
	// partitions.
	const n, keys = 16, 16000
	var counts [n]int
	for i := range keys {
		counts[PartitionOf(PartitionKeyOf("user-"+strconv.Itoa(i)), n)]++
	}
	for p, c := range counts {
		if c < keys/n*8/10 || c > keys/n*12/10 {
			t.Errorf("partition %d got %d keys, want about %d", p, c, keys/n)
		}
	}
	if RandomPartitionKey() == RandomPartitionKey() {
		t.Error("RandomPartitionKey repeated")
	}
}
