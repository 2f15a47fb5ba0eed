package localloglet

import (
	"fmt"
	"maps"

	"gorestate.dev/shared/bifrost"
)

// persistSeal records l's sealed tail in seal.meta and then publishes the seal to readers
// and FindTail. Publishing only after the file is durable means that nobody can observe a
// seal that a crash would undo. Called by Seal once the appends before the seal drained,
// so tail equals l's durable tail.
func (s *Store) persistSeal(l *Loglet, tail bifrost.Offset) error {
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	if s.isClosed() {
		return bifrost.ErrClosed
	}
	if cur, ok := s.seals[l.id]; ok {
		if cur != tail {
			return fmt.Errorf("%w: loglet %d sealed at %d, now at %d", ErrCorrupt, l.id, cur, tail)
		}
		return nil // a concurrent Seal persisted it first
	}
	if d := l.Tail(); d != tail {
		// The barrier guarantees this; a mismatch is a bug that must not become durable.
		return fmt.Errorf("loglet %d: durable tail %d after draining appends below %d", l.id, d, tail)
	}
	seals := maps.Clone(s.seals)
	seals[l.id] = tail
	if err := sealFile.save(s.dir, seals, s.opts.NoSync); err != nil {
		return err
	}
	s.seals = seals
	l.mu.Lock()
	l.sealed = true
	l.wake()
	l.mu.Unlock()
	return nil
}
