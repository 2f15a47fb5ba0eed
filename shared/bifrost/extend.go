package bifrost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"gorestate.dev/shared/metadata"
)

// ErrSegmentMismatch is returned by SealAndExtend when the log's tail segment is not the
// expected one: someone else extended the chain first (or it never had that segment).
var ErrSegmentMismatch = errors.New("bifrost: tail segment is not the expected one")

// ErrNoReconfigure is returned by Watchdog when Options.Reconfigure is not set.
var ErrNoReconfigure = errors.New("bifrost: no Reconfigure hook")

// NoSegment is the expected index to pass to SealAndExtend for a log without segments:
// the chain then gets its first segment (index 0, base LSN 1).
const NoSegment = ^uint32(0)

// SealAndExtend replaces the tail segment of a log by a successor (Delos' reconfiguration:
// seal, find the tail, compare-and-set the chain):
//
//  1. The tail segment's Index must be expectedIndex, else the current tail segment is
//     returned with an error matching ErrSegmentMismatch.
//  2. Its loglet is sealed, and FindTail is asked until it reports the seal: T is the
//     sealed tail.
//  3. next builds the successor from the sealed tail LSN (base + T - 1) and the old
//     segment; SealAndExtend sets its BaseLSN to that LSN, its Index to the old one + 1
//     and its LogletID to LogletID(logID, Index). An empty old segment (T = 1) is
//     replaced instead of followed.
//  4. The whole logs object is written with a compare-and-set on its version, the index
//     being checked again on every attempt: of all racing callers exactly one wins; the
//     others get the winner's segment and ErrSegmentMismatch.
//
// For a log without segments pass NoSegment: nothing is sealed, next gets LSN 1 and a
// zero Segment, and the successor becomes segment 0. The new segment is returned. An
// error other than ErrSegmentMismatch leaves the chain as it was or extended by this call
// (a write whose outcome stayed unknown after retries); calling again with the same index
// sorts it out: the caller then adopts the stored chain.
func (b *Bifrost) SealAndExtend(ctx context.Context, logID uint32, expectedIndex uint32, next func(sealedTail LSN, prev metadata.Segment) (metadata.Segment, error)) (metadata.Segment, error) {
	cs, err := b.current(ctx)
	if err != nil {
		return metadata.Segment{}, fmt.Errorf("seal and extend log %d: %w", logID, err)
	}
	prev, ok := tailOf(cs.chain(logID))
	if got := indexOf(prev, ok); got != expectedIndex {
		// The cache may lag behind what the caller knows: ask the store before refusing.
		if cs, err = b.refresh(ctx); err != nil {
			return metadata.Segment{}, fmt.Errorf("seal and extend log %d: %w", logID, err)
		}
		prev, ok = tailOf(cs.chain(logID))
		if got := indexOf(prev, ok); got != expectedIndex {
			return prev, fmt.Errorf("seal and extend log %d: tail segment is %s, expected %s: %w", logID, indexName(got), indexName(expectedIndex), ErrSegmentMismatch)
		}
	}

	sealed := LSN(1)
	if ok {
		l, err := b.open(ctx, prev)
		if err != nil {
			return metadata.Segment{}, fmt.Errorf("seal and extend log %d: %w", logID, err)
		}
		tail, err := b.seal(ctx, l)
		if err != nil {
			return metadata.Segment{}, fmt.Errorf("seal and extend log %d: seal segment %d: %w", logID, prev.Index, err)
		}
		sealed = toLSN(prev, tail)
	}
	succ, err := next(sealed, prev)
	if err != nil {
		return metadata.Segment{}, fmt.Errorf("seal and extend log %d: build the successor of segment %s: %w", logID, indexName(expectedIndex), err)
	}
	succ.BaseLSN = uint64(sealed)
	replace := ok && sealed == LSN(prev.BaseLSN)

	// uncertain counts writes of this call whose outcome is unknown (the store failed to
	// answer): finding our own segment stored then means we won.
	uncertain := 0
	for {
		v, err := b.opts.Meta.Get(ctx, metadata.KeyLogs)
		if err != nil && !errors.Is(err, metadata.ErrNotFound) {
			return metadata.Segment{}, fmt.Errorf("seal and extend log %d: read logs: %w", logID, err)
		}
		logs := metadata.Logs{}
		if v.Version > 0 {
			if err := json.Unmarshal(v.Value, &logs); err != nil {
				return metadata.Segment{}, fmt.Errorf("seal and extend log %d: decode logs v%d: %w", logID, v.Version, err)
			}
			b.install(v.Version, logs)
		}
		chain := logs.Chains[logID]
		cur, curOK := tailOf(chain)
		if got := indexOf(cur, curOK); got != expectedIndex {
			mine := succ
			mine.Index, mine.LogletID = cur.Index, cur.LogletID
			if uncertain > 0 && curOK && cur.Index >= nextIndex(expectedIndex) && sameSegment(cur, mine) {
				return cur, nil // our own write landed after all
			}
			return cur, fmt.Errorf("seal and extend log %d: tail segment is %s, expected %s: %w", logID, indexName(got), indexName(expectedIndex), ErrSegmentMismatch)
		}
		succ = withPlace(succ, logID, nextIndex(expectedIndex), logs)
		// logs is in the cache now: change copies.
		if replace {
			chain = append(chain[:len(chain)-1:len(chain)-1], succ)
		} else {
			chain = append(chain[:len(chain):len(chain)], succ)
		}
		updated := metadata.Logs{Chains: maps.Clone(logs.Chains)}
		if updated.Chains == nil {
			updated.Chains = map[uint32][]metadata.Segment{}
		}
		updated.Chains[logID] = chain
		logs = updated
		value, err := json.Marshal(logs)
		if err != nil {
			return metadata.Segment{}, fmt.Errorf("seal and extend log %d: encode logs: %w", logID, err)
		}
		version, err := b.opts.Meta.Put(ctx, metadata.KeyLogs, value, v.Version)
		if errors.Is(err, metadata.ErrVersionMismatch) {
			continue
		}
		if err != nil {
			if uncertain++; uncertain > 3 || ctx.Err() != nil {
				return metadata.Segment{}, fmt.Errorf("seal and extend log %d: write logs: %w", logID, err)
			}
			b.log.Warn("write logs failed; reading back to see whether it landed", "log", logID, "error", err)
			if err := b.backoff(ctx, uncertain); err != nil {
				return metadata.Segment{}, fmt.Errorf("seal and extend log %d: write logs: %w", logID, err)
			}
			continue
		}
		b.install(version, logs)
		b.log.Info("extended log chain", "log", logID, "segment", succ.Index, "base_lsn", succ.BaseLSN,
			"provider", succ.Provider, "loglet", succ.LogletID, "replaced_empty", replace)
		return succ, nil
	}
}

// seal seals l and asks FindTail until it reports the seal: the sealed tail a replicated
// loglet returns may need a consistent read to be known everywhere.
func (b *Bifrost) seal(ctx context.Context, l Loglet) (Offset, error) {
	tail, err := l.Seal(ctx)
	if err != nil {
		return 0, err
	}
	for attempt := 1; ; attempt++ {
		ts, err := l.FindTail(ctx)
		if err == nil && ts.Sealed {
			if ts.Offset != tail {
				return 0, fmt.Errorf("seal returned tail %d, find-tail says %v", tail, ts)
			}
			return tail, nil
		}
		if err == nil {
			err = fmt.Errorf("find-tail says %v after the seal", ts)
		}
		b.log.Debug("wait for the seal to show", "attempt", attempt, "error", err)
		if berr := b.backoff(ctx, attempt); berr != nil {
			return 0, fmt.Errorf("%w (last: %w)", berr, err)
		}
	}
}

// withPlace sets a new segment's place in the chain: Index index (or the next one whose
// loglet id no segment of logs uses: chains provisioned before LogletID(log, index) named
// loglets by log id alone, and log 0's ids would collide with them) and its LogletID.
func withPlace(s metadata.Segment, logID uint32, index uint32, logs metadata.Logs) metadata.Segment {
	used := map[uint64]bool{}
	for _, chain := range logs.Chains {
		for _, seg := range chain {
			used[seg.LogletID] = true
		}
	}
	for used[LogletID(logID, index)] {
		index++
	}
	s.Index, s.LogletID = index, LogletID(logID, index)
	return s
}

func tailOf(chain []metadata.Segment) (metadata.Segment, bool) {
	if len(chain) == 0 {
		return metadata.Segment{}, false
	}
	return chain[len(chain)-1], true
}

func indexOf(s metadata.Segment, ok bool) uint32 {
	if !ok {
		return NoSegment
	}
	return s.Index
}

func nextIndex(i uint32) uint32 {
	if i == NoSegment {
		return 0
	}
	return i + 1
}

func indexName(i uint32) string {
	if i == NoSegment {
		return "none"
	}
	return fmt.Sprint(i)
}

// sameSegment compares segments by their stored form.
func sameSegment(a, b metadata.Segment) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// Watchdog checks a writer log's tail segment once: if the log has no segment, or check
// says its tail segment should be replaced (its sequencer is not this node, its provider
// or replication changed), the writer log seals and extends the chain as after a refused
// append, and Watchdog returns true once the chain has moved past that segment. The
// caller runs it periodically (every second upstream) with its policy in check.
func (b *Bifrost) Watchdog(ctx context.Context, logID uint32, check func(tail metadata.Segment) bool) (bool, error) {
	if b.opts.Reconfigure == nil {
		return false, fmt.Errorf("watchdog of log %d: %w", logID, ErrNoReconfigure)
	}
	cs, err := b.current(ctx)
	if err != nil {
		return false, fmt.Errorf("watchdog of log %d: %w", logID, err)
	}
	tail, ok := tailOf(cs.chain(logID))
	if ok && !check(tail) {
		return false, nil
	}
	v := b.virtualLog(logID, true)
	if ok {
		v.app.refused(tail)
	} else {
		v.app.kick()
	}
	for {
		if cur, ok2 := tailOf(cs.chain(logID)); ok2 && (!ok || cur.Index > tail.Index) {
			return true, nil
		}
		if cs, err = b.waitNewer(ctx, cs.version); err != nil {
			return false, fmt.Errorf("watchdog of log %d: wait for the new segment: %w", logID, err)
		}
	}
}
