// Package nodeset owns the sizing rules of replicated loglets and the choice of the log
// servers (the nodeset) that store a new segment.
//
// With replication r and a nodeset of n servers, a record is committed once r servers
// stored it (the write quorum) and a seal needs n − r + 1 servers (the f-majority), so the
// two always intersect. n ≥ 2r − 1 keeps an f-majority no larger than a write quorum plus
// the failures it tolerates, and n ≥ r + 1 lets writes continue with one server down.
package nodeset

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
)

// ErrTooFewServers is returned when fewer log servers are available than a nodeset needs.
var ErrTooFewServers = errors.New("too few log servers")

// MinSize is the smallest nodeset allowed for replication r: max(2r−1, r+1).
func MinSize(r int) int { return max(2*r-1, r+1) }

// Size is the nodeset size to use for replication r and a configured size (0 = automatic).
func Size(r, configured int) int { return max(configured, MinSize(r)) }

// FMajority is the number of servers a seal must reach in a nodeset of n with replication r.
func FMajority(n, r int) int { return n - r + 1 }

// Check reports whether replication r and a configured nodeset size (0 = automatic) obey the
// rules, naming what is wrong.
func Check(r, configured int) error {
	if r < 1 {
		return fmt.Errorf("log replication %d: want 1 or more", r)
	}
	if configured != 0 && configured < MinSize(r) {
		return fmt.Errorf("nodeset size %d is too small for log replication %d: a nodeset needs at least max(2r−1, r+1) = %d log servers", configured, r, MinSize(r))
	}
	return nil
}

// Select chooses the nodeset of a new segment of log logID from the candidates (read-write
// log servers that are alive). The choice is deterministic per log, so logs spread over the
// servers instead of all landing on the first ones, and it prefers servers of prev (the
// previous nodeset) so that a reconfiguration moves as little as possible.
func Select(logID uint32, candidates []string, r, configured int, prev []string) ([]string, error) {
	if err := Check(r, configured); err != nil {
		return nil, err
	}
	want := Size(r, configured)
	cands := slices.Clone(candidates)
	slices.Sort(cands)
	cands = slices.Compact(cands)
	if len(cands) < want {
		return nil, fmt.Errorf("%w: log replication %d needs a nodeset of %d log servers, %d available (%v)", ErrTooFewServers, r, want, len(cands), cands)
	}
	// Rotate the sorted candidates by a hash of the log id, then move the previous
	// nodeset's members to the front (keeping their rotated order).
	h := fnv.New32a()
	_, _ = h.Write([]byte{byte(logID), byte(logID >> 8), byte(logID >> 16), byte(logID >> 24)})
	start := int(h.Sum32() % uint32(len(cands)))
	rotated := append(slices.Clone(cands[start:]), cands[:start]...)
	var kept, others []string
	for _, c := range rotated {
		if slices.Contains(prev, c) {
			kept = append(kept, c)
		} else {
			others = append(others, c)
		}
	}
	out := append(kept, others...)[:want]
	slices.Sort(out)
	return out, nil
}
