package logstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
)

// LogletState is what the store holds about one loglet, as recovery sees it.
type LogletState struct {
	// LocalTail is 1 + the highest stored offset, raised to TrimPoint+1.
	LocalTail bifrost.Offset
	// TrimPoint is the highest trimmed offset (0: none).
	TrimPoint bifrost.Offset
	// GlobalTail is the last known global tail written, raised to TrimPoint+1: a trim
	// point is always below the global tail it was clipped to.
	GlobalTail bifrost.Offset
	Sealed     bool
	// Sequencer is the pinned sequencer, nil before the first store.
	Sequencer *metadata.NodeID
}

// LoadLoglet reads a loglet's state. A loglet the store never saw has LocalTail 1 and
// GlobalTail 1. Records left below the trim point by an interrupted deletion are scheduled
// for deletion again.
func (s *Store) LoadLoglet(loglet uint64) (LogletState, error) {
	var st LogletState
	trim, err := s.getU64(metaKey(metaTrimPoint, loglet))
	if err != nil {
		return st, fmt.Errorf("load loglet %d: trim point: %w", loglet, err)
	}
	global, err := s.getU64(metaKey(metaGlobalTail, loglet))
	if err != nil {
		return st, fmt.Errorf("load loglet %d: global tail: %w", loglet, err)
	}
	if st.Sealed, err = s.meta.Has(metaKey(metaSeal, loglet), nil); err != nil {
		return st, fmt.Errorf("load loglet %d: seal: %w", loglet, err)
	}
	v, err := s.meta.Get(metaKey(metaSequencer, loglet), nil)
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
	case err != nil:
		return st, fmt.Errorf("load loglet %d: sequencer: %w", loglet, err)
	case len(v) < 8:
		return st, fmt.Errorf("load loglet %d: sequencer record is %d bytes, want at least 8", loglet, len(v))
	default:
		st.Sequencer = &metadata.NodeID{Generation: binary.BigEndian.Uint64(v), Name: string(v[8:])}
	}
	st.TrimPoint = bifrost.Offset(trim)
	st.LocalTail, st.GlobalTail = 1, max(bifrost.Offset(global), 1)

	it := s.db.NewIterator(dataRange(loglet, 0, ^bifrost.Offset(0)), nil)
	defer it.Release()
	if it.Last() {
		last, _ := dataKeyOffset(it.Key(), loglet)
		st.LocalTail = last + 1
		if it.First() {
			if first, _ := dataKeyOffset(it.Key(), loglet); first <= st.TrimPoint {
				s.trims.schedule(loglet, st.TrimPoint)
			}
		}
	}
	if err := it.Error(); err != nil {
		return st, fmt.Errorf("load loglet %d: find local tail: %w", loglet, err)
	}
	st.LocalTail = max(st.LocalTail, st.TrimPoint+1)
	st.GlobalTail = max(st.GlobalTail, st.TrimPoint+1)
	return st, nil
}

func (s *Store) getU64(key []byte) (uint64, error) {
	v, err := s.meta.Get(key, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("value is %d bytes, want 8", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// ReadRecords returns the records the store holds in [from, to], in order, holes skipped:
// as many as fit in limitBytes of payload but at least one, and at most maxRecords. next is
// where a following read continues: the first offset not returned, or to+1.
func (s *Store) ReadRecords(loglet uint64, from, to bifrost.Offset, limitBytes, maxRecords int) (recs []bifrost.Record, next bifrost.Offset, err error) {
	if from > to {
		return nil, from, nil
	}
	it := s.db.NewIterator(dataRange(loglet, from, to), nil)
	defer it.Release()
	size := 0
	for it.Next() {
		off, ok := dataKeyOffset(it.Key(), loglet)
		if !ok {
			continue
		}
		v := it.Value()
		if len(recs) > 0 && (size+len(v) > limitBytes || len(recs) >= maxRecords) {
			return recs, off, nil
		}
		size += len(v)
		// The iterator reuses its buffers.
		recs = append(recs, bifrost.Record{Offset: off, Payload: bytes.Clone(v)})
	}
	if err := it.Error(); err != nil {
		return nil, 0, fmt.Errorf("read loglet %d [%d, %d]: %w", loglet, from, to, err)
	}
	if to == ^bifrost.Offset(0) {
		return recs, to, nil
	}
	return recs, to + 1, nil
}

// Run is a range [From, To] of consecutive stored offsets.
type Run struct{ From, To bifrost.Offset }

// Digest returns the runs of offsets the store holds in [from, to], in order, at most
// maxRuns of them (a longer answer is cut: later offsets look missing).
func (s *Store) Digest(loglet uint64, from, to bifrost.Offset, maxRuns int) ([]Run, error) {
	if from > to {
		return nil, nil
	}
	it := s.db.NewIterator(dataRange(loglet, from, to), nil)
	defer it.Release()
	var runs []Run
	for it.Next() {
		off, ok := dataKeyOffset(it.Key(), loglet)
		if !ok {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1].To+1 == off {
			runs[n-1].To = off
			continue
		}
		if len(runs) == maxRuns {
			break
		}
		runs = append(runs, Run{From: off, To: off})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("digest loglet %d [%d, %d]: %w", loglet, from, to, err)
	}
	return runs, nil
}

// Holds reports whether the store holds exactly payloads at first, first+1, …; offsets at or
// below trimPoint count as held (they were committed before they were trimmed).
func (s *Store) Holds(loglet uint64, first bifrost.Offset, payloads [][]byte, trimPoint bifrost.Offset) (bool, error) {
	for i, p := range payloads {
		off := first + bifrost.Offset(i)
		if off <= trimPoint {
			continue
		}
		v, err := s.db.Get(dataKey(loglet, off), nil)
		if errors.Is(err, leveldb.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read loglet %d at %d: %w", loglet, off, err)
		}
		if !bytes.Equal(v, p) {
			return false, nil
		}
	}
	return true, nil
}
