package localloglet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"

	"gorestate.dev/shared/bifrost"
)

// Trim makes records with offset <= upTo unreadable. upTo is clamped to the last durable
// record; trimming never moves the trim point back. The new trim point is persisted before
// it takes effect, and segment files holding only trimmed records are then deleted.
func (l *Loglet) Trim(ctx context.Context, upTo bifrost.Offset) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("trim loglet %d: %w", l.id, err)
	}
	s := l.s
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	if s.isClosed() {
		return fmt.Errorf("trim loglet %d: %w", l.id, bifrost.ErrClosed)
	}
	l.mu.RLock()
	durable, cur := l.durable, l.trim
	l.mu.RUnlock()
	upTo = min(upTo, durable-1)
	if upTo <= cur {
		return nil
	}

	trims := maps.Clone(s.trims)
	trims[l.id] = upTo
	if err := trimFile.save(s.dir, trims, s.opts.NoSync); err != nil {
		return fmt.Errorf("trim loglet %d to %d: %w", l.id, upTo, err)
	}
	s.trims = trims

	l.mu.Lock()
	l.trim = upTo
	idxStart := l.durable - bifrost.Offset(len(l.idx))
	if upTo >= idxStart {
		l.idx = l.idx[upTo-idxStart+1:]
		if cap(l.idx) > 1024 && len(l.idx) < cap(l.idx)/4 {
			l.idx = append([]pos(nil), l.idx...) // release the trimmed prefix
		}
	}
	l.dropCached(upTo)
	l.mu.Unlock()

	if err := s.deleteTrimmedSegments(); err != nil {
		return fmt.Errorf("trim loglet %d to %d: %w", l.id, upTo, err)
	}
	return nil
}

// deleteTrimmedSegments deletes every segment, other than the one being written, whose
// records are all trimmed. Callers hold s.trimMu.
func (s *Store) deleteTrimmedSegments() error {
	var dead []*segment
	s.segMu.Lock()
	for id, sg := range s.segs {
		if sg == s.active || !s.allTrimmed(sg) {
			continue
		}
		delete(s.segs, id)
		dead = append(dead, sg)
	}
	s.segMu.Unlock()

	var errs []error
	for _, sg := range dead {
		// close waits for reads in progress; later reads of it report ErrTrimmed.
		errs = append(errs, sg.close(segmentRemoved))
		if err := os.Remove(sg.path); err != nil {
			errs = append(errs, fmt.Errorf("delete trimmed segment: %w", err))
		}
		errs = append(errs, removeSummary(s.dir, sg.id))
	}
	// No directory fsync: a deletion lost in a crash only brings back trimmed records,
	// which recovery skips.
	return errors.Join(errs...)
}

// allTrimmed reports whether every record of a non-active segment is at or below its
// loglet's persisted trim point. Callers hold s.trimMu and s.segMu.
func (s *Store) allTrimmed(sg *segment) bool {
	for id, last := range sg.maxLSN {
		if last > s.trims[id] {
			return false
		}
	}
	return true
}
