package replicated

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
)

// quorum holds a loglet's quorum sizes (BIFROST.md §1, §10): a write quorum is r servers,
// an f-majority n−r+1, so that every f-majority intersects every write quorum.
type quorum struct {
	n, r, f int
}

func newQuorum(n, r int) quorum { return quorum{n: n, r: r, f: n - r + 1} }

// errBadParams is wrapped by Open for segments whose parameters cannot work.
var errBadParams = errors.New("replicated: invalid loglet parameters")

// validateParams checks what the protocol needs of a segment's parameters. It does not
// enforce the nodeset-size policy n ≥ max(2r−1, r+1) (that is the nodeset selector's job),
// only what would make quorums meaningless.
func validateParams(p *metadata.ReplicatedParams) error {
	if p == nil {
		return fmt.Errorf("%w: no replicated parameters", errBadParams)
	}
	n := len(p.Nodeset)
	switch {
	case p.Sequencer.Name == "":
		return fmt.Errorf("%w: no sequencer", errBadParams)
	case p.Replication < 1:
		return fmt.Errorf("%w: replication %d", errBadParams, p.Replication)
	case n < p.Replication:
		return fmt.Errorf("%w: nodeset of %d servers cannot hold %d copies", errBadParams, n, p.Replication)
	case n > MaxNodesetSize:
		return fmt.Errorf("%w: nodeset of %d servers (at most %d)", errBadParams, n, MaxNodesetSize)
	}
	for i, name := range p.Nodeset {
		if name == "" {
			return fmt.Errorf("%w: empty node name in nodeset", errBadParams)
		}
		if slices.Contains(p.Nodeset[:i], name) {
			return fmt.Errorf("%w: node %q twice in nodeset", errBadParams, name)
		}
	}
	return nil
}

// nodeMask is a set of nodeset members by index.
type nodeMask uint64

func (m nodeMask) has(i int) bool      { return m&(1<<uint(i)) != 0 }
func (m nodeMask) with(i int) nodeMask { return m | 1<<uint(i) }
func (m nodeMask) count() int          { return bits.OnesCount64(uint64(m)) }

// rthLargest returns the r-th largest of vals: the highest offset reached by at least r of
// them. vals is not modified.
func rthLargest(vals []bifrost.Offset, r int) bifrost.Offset {
	if r <= 0 || r > len(vals) {
		return 0
	}
	s := slices.Clone(vals)
	slices.SortFunc(s, func(a, b bifrost.Offset) int {
		switch {
		case a > b:
			return -1
		case a < b:
			return 1
		}
		return 0
	})
	return s[r-1]
}

// backoff computes retry delays: exponential from min to max with ±30 % jitter, so that
// retries of many loglets against one recovering server spread out.
type backoff struct {
	min, max time.Duration
	rng      *rand.Rand
}

func newBackoff(min, max time.Duration, seed uint64) *backoff {
	return &backoff{min: min, max: max, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// delay returns the pause before retry number attempt (1 = first retry). Callers
// serialize access (the rng is not safe for concurrent use).
func (b *backoff) delay(attempt int) time.Duration {
	d := b.min
	for i := 1; i < attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	jitter := 0.7 + 0.6*b.rng.Float64()
	return time.Duration(float64(d) * jitter)
}
