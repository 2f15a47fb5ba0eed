package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// KeyPartitionEpoch is the key of partition p's epoch record.
func KeyPartitionEpoch(p uint32) string { return fmt.Sprintf("partition_epoch_%d", p) }

// EpochRecord says which node life leads a partition, and in which epoch. A leader claims
// its epoch with a compare-and-set on this record, so no two leaderships of a partition ever
// share an epoch: the epoch alone tells a record of the current leader from a deposed one's.
type EpochRecord struct {
	Epoch  uint64 `json:"epoch"`
	Leader NodeID `json:"leader"`
}

// PartitionEpoch reads partition p's epoch record and its version (zero values if no leader
// ever claimed one).
func PartitionEpoch(ctx context.Context, s Store, p uint32) (EpochRecord, uint64, error) {
	v, err := s.Get(ctx, KeyPartitionEpoch(p))
	if errors.Is(err, ErrNotFound) {
		return EpochRecord{}, 0, nil
	}
	if err != nil {
		return EpochRecord{}, 0, err
	}
	var r EpochRecord
	if err := json.Unmarshal(v.Value, &r); err != nil {
		return EpochRecord{}, 0, fmt.Errorf("decode %s: %w", KeyPartitionEpoch(p), err)
	}
	return r, v.Version, nil
}

// ClaimEpoch makes leader the leader of partition p in a new epoch, above both the stored
// one and atLeast (the highest epoch the claimant has seen in the partition's log, which
// covers logs written before epochs were claimed here), and returns it. The read may be
// stale: the compare-and-set is what makes the claim unique, and a lost race reads again.
func ClaimEpoch(ctx context.Context, s Store, p uint32, leader NodeID, atLeast uint64) (uint64, error) {
	for {
		cur, version, err := PartitionEpoch(ctx, s, p)
		if err != nil {
			return 0, fmt.Errorf("claim epoch of partition %d: %w", p, err)
		}
		next := EpochRecord{Epoch: max(cur.Epoch, atLeast) + 1, Leader: leader}
		b, err := json.Marshal(next)
		if err != nil {
			return 0, err
		}
		_, err = s.Put(ctx, KeyPartitionEpoch(p), b, version)
		switch {
		case errors.Is(err, ErrVersionMismatch):
			continue
		case err != nil:
			return 0, fmt.Errorf("claim epoch of partition %d: %w", p, err)
		}
		return next.Epoch, nil
	}
}
