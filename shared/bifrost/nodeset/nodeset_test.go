package nodeset

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestMinSizeAndFMajority(t *testing.T) {
	for _, c := range []struct{ r, min int }{{1, 2}, {2, 3}, {3, 5}, {4, 7}} {
		if got := MinSize(c.r); got != c.min {
			t.Errorf("MinSize(%d) = %d, want %d", c.r, got, c.min)
		}
		// An f-majority and a write quorum always intersect.
		n := MinSize(c.r)
		if FMajority(n, c.r)+c.r <= n {
			t.Errorf("r=%d n=%d: f-majority %d and write quorum %d do not intersect", c.r, n, FMajority(n, c.r), c.r)
		}
	}
}

func TestCheck(t *testing.T) {
	if err := Check(2, 0); err != nil {
		t.Fatal(err)
	}
	if err := Check(2, 2); err == nil {
		t.Fatal("nodeset 2 with replication 2 accepted")
	}
	if err := Check(0, 0); err == nil {
		t.Fatal("replication 0 accepted")
	}
}

func TestSelect(t *testing.T) {
	servers := []string{"ls-a", "ls-b", "ls-c", "ls-d", "ls-e"}
	got, err := Select(7, servers, 2, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !slices.IsSorted(got) {
		t.Fatalf("Select = %v, want 3 sorted servers", got)
	}
	again, _ := Select(7, []string{"ls-e", "ls-d", "ls-c", "ls-b", "ls-a"}, 2, 0, nil)
	if !slices.Equal(got, again) {
		t.Fatalf("not deterministic: %v vs %v", got, again)
	}
	// Logs spread: not every log gets the same nodeset.
	seen := map[string]bool{}
	for log := uint32(0); log < 16; log++ {
		ns, _ := Select(log, servers, 2, 0, nil)
		seen[strings.Join(ns, ",")] = true
	}
	if len(seen) < 2 {
		t.Fatalf("every log got the same nodeset")
	}
	// The previous nodeset is preferred.
	prev := []string{"ls-a", "ls-e", "ls-gone"}
	ns, _ := Select(3, servers, 2, 0, prev)
	if !slices.Contains(ns, "ls-a") || !slices.Contains(ns, "ls-e") {
		t.Fatalf("Select with prev %v = %v, want ls-a and ls-e kept", prev, ns)
	}
	if _, err := Select(1, servers[:2], 2, 0, nil); !errors.Is(err, ErrTooFewServers) {
		t.Fatalf("2 servers for replication 2: err = %v, want ErrTooFewServers", err)
	}
}
