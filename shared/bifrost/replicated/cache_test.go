package replicated

import (
	"testing"

	"gorestate.dev/shared/bifrost"
)

// A range that is empty or lies outside the cache gives nothing. A reader once asked a
// sequencer for [1291, 1292) bounded by the sequencer's own committed tail, 1290: a seal by
// another node had found records committed that the frozen sequencer never heard of, and
// slicing [1:0] panicked the node (seen in the chaos test).
func TestRecordCacheSliceOfAnEmptyRange(t *testing.T) {
	var c recordCache
	c.put(1290, [][]byte{[]byte("a"), []byte("b"), []byte("c")})
	for _, r := range []struct{ from, to bifrost.Offset }{{1291, 1290}, {1291, 1291}, {1289, 1292}, {1293, 1294}, {1292, 1000}} {
		if got := c.slice(r.from, r.to); len(got) != 0 {
			t.Errorf("slice(%d, %d) = %q, want nothing", r.from, r.to, got)
		}
	}
	if got := c.slice(1291, 1300); len(got) != 2 || string(got[0]) != "b" || string(got[1]) != "c" {
		t.Errorf("slice(1291, 1300) = %q, want [b c]", got)
	}
}
