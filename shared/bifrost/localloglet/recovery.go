package localloglet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gorestate.dev/shared/bifrost"
)

// scanChunk is how much of a segment recovery reads at a time.
const scanChunk = 4 << 20

// logletRecovery is what recovery has learned about one loglet so far.
type logletRecovery struct {
	trim bifrost.Offset
	prev bifrost.Offset // highest offset seen, trimmed or not
	idx  []pos          // positions of trim+1 .. prev
}

// pendingRecord is a data record seen after the last commit record.
type pendingRecord struct {
	loglet uint64
	lsn    bifrost.Offset
	off    int64
	n      int
}

// recover rebuilds the segment table, the loglets' indexes and tails from the files.
// Called by Open before the writer starts.
func (s *Store) recover() error {
	ids, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	states := make(map[uint64]*logletRecovery)
	var buf []byte // grown by scanSegment as needed
	if err := removeOrphanSummaries(s.dir, ids); err != nil {
		return err
	}
	for i, id := range ids {
		sg, err := s.recoverSegment(id, i == len(ids)-1, states, &buf)
		if sg != nil {
			s.segs[id] = sg
		}
		if err != nil {
			return err
		}
	}
	if len(ids) == 0 {
		sg, err := createSegment(s.dir, 1, s.opts.NoSync)
		if err != nil {
			return err
		}
		s.segs[1] = sg
		s.active = sg
	} else {
		s.active = s.segs[ids[len(ids)-1]]
	}

	for _, m := range []map[uint64]bifrost.Offset{s.trims, s.seals} {
		for id := range m {
			if states[id] == nil {
				states[id] = &logletRecovery{trim: s.trims[id]}
			}
		}
	}
	for id, st := range states {
		l := newLoglet(s, id, st.trim, max(st.prev, st.trim)+1)
		l.idx = st.idx
		if sealed, ok := s.seals[id]; ok {
			// A seal is persisted only after every record below it is durable, and no
			// append is written after it: the records must end exactly there.
			if l.durable != sealed {
				return fmt.Errorf("%w: loglet %d is sealed at offset %d but its records end at %d", ErrCorrupt, id, sealed, l.durable)
			}
			l.sealing, l.sealed = true, true
		}
		s.loglets[id] = l
	}
	for _, sg := range s.segs {
		if sg.needsSummary && sg != s.active {
			// A store from before summaries, or a summary lost in a crash. Failing to
			// write one only costs the next Open a scan.
			if err := s.writeSummary(sg); err != nil {
				s.summaryErrors.Add(1)
			}
		}
	}
	return nil
}

// removeOrphanSummaries deletes summaries whose segment is gone (a trim deleted the
// segment while the writer was writing its summary) and temp files of interrupted writes.
func removeOrphanSummaries(dir string, segs []uint32) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list summaries in %s: %w", dir, err)
	}
	for _, e := range ents {
		name := e.Name()
		base, ok := strings.CutSuffix(name, summaryExt)
		if tmp, isTmp := strings.CutSuffix(name, summaryExt+".tmp"); isTmp {
			base, ok = tmp, false
		} else if !ok {
			continue
		}
		if id, valid := parseSegmentName(base + segmentExt); ok && valid && slices.Contains(segs, id) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("delete stale summary: %w", err)
		}
	}
	return nil
}

// recoverSegment scans one segment file. In the last segment, whatever follows the last
// commit record is a write that was never acknowledged and is truncated away, unless the
// damage it holds is followed by a later committed write (then it is corruption).
func (s *Store) recoverSegment(id uint32, last bool, states map[uint64]*logletRecovery, buf *[]byte) (*segment, error) {
	path := filepath.Join(s.dir, segmentName(id))
	flag := os.O_RDONLY
	if last {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment: %w", err)
	}
	sg := &segment{id: id, path: path, f: f, maxLSN: make(map[uint64]bifrost.Offset)}
	fi, err := f.Stat()
	if err != nil {
		return sg, fmt.Errorf("stat segment: %w", err)
	}
	size := fi.Size()
	if size > math.MaxUint32 {
		return sg, fmt.Errorf("%w: %s is %d bytes, more than a segment can hold", ErrCorrupt, path, size)
	}

	if !last {
		sum, err := loadSummary(s.dir, id, size)
		if err == nil {
			err = applySummary(states, sg, sum, s.trims)
		}
		if err == nil {
			s.writeSeq = max(s.writeSeq, sum.lastSeq)
			sg.size = size
			return sg, nil
		}
		// No usable summary: scan the segment, and write its summary once it is open.
		sg.needsSummary = true
	}

	var pending []pendingRecord
	committed := int64(0) // end of the last commit record
	var seq uint64        // sequence number of the last commit record
	haveSeq := false
	apply := func() error {
		for _, p := range pending {
			if err := applyRecord(states, sg, p, s.trims[p.loglet]); err != nil {
				return fmt.Errorf("%w: %s at offset %d: %w", ErrCorrupt, path, p.off, err)
			}
		}
		pending = pending[:0]
		return nil
	}
	end, damage := scanSegment(f, size, buf, func(rec record, off int64, n int) error {
		if !rec.commit {
			pending = append(pending, pendingRecord{loglet: rec.loglet, lsn: rec.lsn, off: off, n: len(rec.payload)})
			return nil
		}
		if haveSeq && uint64(rec.lsn) != seq+1 {
			return fmt.Errorf("%w: %s at offset %d: commit record %d after %d", ErrCorrupt, path, off, rec.lsn, seq)
		}
		committed, seq, haveSeq = off+int64(n), uint64(rec.lsn), true
		s.writeSeq = max(s.writeSeq, seq)
		return apply()
	})
	var fatal *scanFatal
	if errors.As(damage, &fatal) {
		return sg, fatal.err
	}
	sg.lastSeq = seq
	if damage == nil && end == committed {
		sg.size = end
		return sg, nil
	}
	what, at := "uncommitted records", committed
	if damage != nil {
		what, at = damage.Error(), end
	}
	if !last {
		return sg, fmt.Errorf("%w: %s at offset %d: %s in a sealed segment", ErrCorrupt, path, at, what)
	}
	if damage != nil {
		rest := make([]byte, size-end)
		if _, err := f.ReadAt(rest, end); err != nil {
			return sg, fmt.Errorf("read segment tail: %w", err)
		}
		if committedAfter(rest, seq, haveSeq) {
			return sg, fmt.Errorf("%w: %s at offset %d: %s, followed by committed records", ErrCorrupt, path, end, what)
		}
	}
	// A torn (never acknowledged) last write: drop it.
	if err := f.Truncate(committed); err != nil {
		return sg, fmt.Errorf("truncate torn tail of %s at %d: %w", path, committed, err)
	}
	if !s.opts.NoSync {
		if err := f.Sync(); err != nil {
			return sg, fmt.Errorf("truncate torn tail of %s at %d: %w", path, committed, err)
		}
	}
	sg.size = committed
	return sg, nil
}

// applyRecord adds a committed record to its loglet's recovery state after checking that
// the loglet's offsets increase and are contiguous above its trim point (below it, deleted
// segments may have left gaps).
func applyRecord(states map[uint64]*logletRecovery, sg *segment, p pendingRecord, trim bifrost.Offset) error {
	st := states[p.loglet]
	if st == nil {
		st = &logletRecovery{trim: trim}
		states[p.loglet] = st
	}
	if p.lsn <= st.prev {
		return fmt.Errorf("loglet %d: lsn %d after lsn %d", p.loglet, p.lsn, st.prev)
	}
	if p.lsn > st.trim {
		if want := max(st.prev, st.trim) + 1; p.lsn != want {
			return fmt.Errorf("loglet %d: lsn %d where %d was expected", p.loglet, p.lsn, want)
		}
		st.idx = append(st.idx, pos{seg: sg.id, off: uint32(p.off), n: uint32(p.n)})
	}
	st.prev = p.lsn
	sg.maxLSN[p.loglet] = p.lsn
	return nil
}

// scanFatal carries a visit or read error out of scanSegment, to tell it from damage.
type scanFatal struct{ err error }

func (e *scanFatal) Error() string { return e.err.Error() }

// scanSegment decodes f's records in order, calling visit for each, reading scanChunk bytes
// at a time. It returns the offset where decoding stopped and, unless that is the end of
// the file, the decode error found there (or an *scanFatal from visit).
func scanSegment(f *os.File, size int64, bufp *[]byte, visit func(rec record, off int64, n int) error) (int64, error) {
	buf := *bufp
	var start int64 // file offset of buf[0]
	lo, hi := 0, 0  // buf[lo:hi] holds unread bytes
	for {
		off := start + int64(lo)
		if off == size {
			return off, nil
		}
		rec, n, err := decodeRecord(buf[lo:hi])
		if errors.Is(err, errShortRecord) && start+int64(hi) < size {
			need := scanChunk
			if hi-lo >= headerSize {
				need = max(need, recordSize(payloadLength(buf[lo:hi])))
			}
			// No point in a buffer larger than what is left of the file.
			need = int(min(int64(need), size-off))
			if need > len(buf) {
				nb := make([]byte, need)
				*bufp = nb
				copy(nb, buf[lo:hi])
				buf = nb
			} else {
				copy(buf, buf[lo:hi])
			}
			hi -= lo
			start += int64(lo)
			lo = 0
			m := int(min(int64(len(buf)-hi), size-(start+int64(hi))))
			if _, err := f.ReadAt(buf[hi:hi+m], start+int64(hi)); err != nil {
				return off, &scanFatal{fmt.Errorf("read %s at %d: %w", f.Name(), start+int64(hi), err)}
			}
			hi += m
			continue
		}
		if err != nil {
			return off, err
		}
		if err := visit(rec, off, n); err != nil {
			return off, &scanFatal{err}
		}
		lo += n
	}
}

// payloadLength returns the payload length in the header at the start of b (which holds
// at least headerSize bytes), capped at MaxPayloadSize.
func payloadLength(b []byte) int {
	return int(min(binary.LittleEndian.Uint32(b[8:])&lengthMask, MaxPayloadSize))
}
