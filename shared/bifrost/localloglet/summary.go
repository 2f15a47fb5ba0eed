package localloglet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"gorestate.dev/shared/bifrost"
)

// A summary file (NNNNNNNNNN.sum beside NNNNNNNNNN.wal) lists where each loglet's records
// are in a segment the writer has moved on from, so that Open reads a few bytes per record
// instead of scanning and checksumming the whole segment: restart time then depends on the
// size of the last segment, not on the length of the history. It is a cache. A missing,
// short or damaged summary, or one that does not match the segment, is ignored and the
// segment is scanned as before (and its summary rewritten); records read through a summary
// are still checked (CRC, loglet, offset) when read. That is why it is written without
// fsync: a crash can only lose it or leave it damaged, never make it lie undetected.
//
// Layout (integers little-endian):
//
//	magic    uint32  summaryMagic
//	version  uint32  1
//	segment  uint32  segment id
//	size     uint64  segment file size
//	lastSeq  uint64  sequence number of the segment's last commit record
//	loglets  uint32  number of loglet entries, then for each, in increasing id order:
//	  id     uint64
//	  last   uint64  highest offset of the loglet in the segment
//	  count  uint32  records listed: offsets last-count+1 .. last (older ones of the
//	                 segment were trimmed when the summary was written)
//	  count × (off uint32, n uint32)  record position and payload length
//	crc      uint32  CRC32C (Castagnoli) of everything before it
const (
	summaryExt     = ".sum"
	summaryMagic   = 0x4c4c534d // "LLSM"
	summaryVersion = 1
	summaryHeader  = 4 + 4 + 4 + 8 + 8 + 4
	summaryEntry   = 8 + 8 + 4
)

func summaryName(id uint32) string { return fmt.Sprintf("%010d%s", id, summaryExt) }

// segmentSummary is a decoded summary file.
type segmentSummary struct {
	lastSeq uint64
	loglets []summaryLoglet
}

type summaryLoglet struct {
	id   uint64
	last bifrost.Offset
	pos  []pos // of offsets last-len(pos)+1 .. last
}

// writeSummary writes the summary of sg, a segment the writer no longer appends to, from
// the loglets' in-memory indexes (whose entries of sg are durable and published). Called
// by the writer goroutine after a roll, and by Open for segments recovered without one.
func (s *Store) writeSummary(sg *segment) error {
	ids := make([]uint64, 0, len(sg.maxLSN))
	for id := range sg.maxLSN {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b := appendSummaryHeader(make([]byte, 0, summaryHeader+len(ids)*summaryEntry), sg.id, sg.size, sg.lastSeq, len(ids))
	for _, id := range ids {
		s.mu.Lock()
		l := s.loglets[id]
		s.mu.Unlock()
		if l == nil {
			return fmt.Errorf("summary of %s: loglet %d has records there but is not open", sg.path, id)
		}
		var err error
		if b, err = l.appendSummary(b, sg, sg.maxLSN[id]); err != nil {
			return fmt.Errorf("summary of %s: %w", sg.path, err)
		}
	}
	b = appendSummaryCRC(b)

	path := filepath.Join(s.dir, summaryName(sg.id))
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write summary: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// appendSummary appends l's entry for segment sg, whose last record of l is last: the
// positions of l's untrimmed records in sg.
func (l *Loglet) appendSummary(b []byte, sg *segment, last bifrost.Offset) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	// The index is in offset order, hence in segment order.
	lo := sort.Search(len(l.idx), func(i int) bool { return l.idx[i].seg >= sg.id })
	hi := lo + sort.Search(len(l.idx)-lo, func(i int) bool { return l.idx[lo+i].seg > sg.id })
	if hi > lo {
		idxStart := l.durable - bifrost.Offset(len(l.idx))
		if got := idxStart + bifrost.Offset(hi-1); got != last {
			return b, fmt.Errorf("loglet %d: index ends at offset %d in the segment, its last record there is %d", l.id, got, last)
		}
	}
	return appendSummaryEntry(b, l.id, last, l.idx[lo:hi]), nil
}

func appendSummaryHeader(b []byte, id uint32, size int64, lastSeq uint64, loglets int) []byte {
	b = binary.LittleEndian.AppendUint32(b, summaryMagic)
	b = binary.LittleEndian.AppendUint32(b, summaryVersion)
	b = binary.LittleEndian.AppendUint32(b, id)
	b = binary.LittleEndian.AppendUint64(b, uint64(size))
	b = binary.LittleEndian.AppendUint64(b, lastSeq)
	return binary.LittleEndian.AppendUint32(b, uint32(loglets))
}

func appendSummaryEntry(b []byte, loglet uint64, last bifrost.Offset, ps []pos) []byte {
	b = binary.LittleEndian.AppendUint64(b, loglet)
	b = binary.LittleEndian.AppendUint64(b, uint64(last))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(ps)))
	for _, p := range ps {
		b = binary.LittleEndian.AppendUint32(b, p.off)
		b = binary.LittleEndian.AppendUint32(b, p.n)
	}
	return b
}

func appendSummaryCRC(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// loadSummary reads the summary of segment id, whose file is size bytes. It returns nil
// (and the reason) when there is none or it cannot be used.
func loadSummary(dir string, id uint32, size int64) (*segmentSummary, error) {
	b, err := os.ReadFile(filepath.Join(dir, summaryName(id)))
	if err != nil {
		return nil, err
	}
	return decodeSummary(b, id, size)
}

func decodeSummary(b []byte, id uint32, size int64) (*segmentSummary, error) {
	if len(b) < summaryHeader+4 {
		return nil, errors.New("summary too short")
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(body):]) {
		return nil, errors.New("summary checksum mismatch")
	}
	switch {
	case binary.LittleEndian.Uint32(body[0:]) != summaryMagic:
		return nil, errors.New("not a summary")
	case binary.LittleEndian.Uint32(body[4:]) != summaryVersion:
		return nil, fmt.Errorf("summary version %d, want %d", binary.LittleEndian.Uint32(body[4:]), summaryVersion)
	case binary.LittleEndian.Uint32(body[8:]) != id:
		return nil, fmt.Errorf("summary of segment %d", binary.LittleEndian.Uint32(body[8:]))
	case int64(binary.LittleEndian.Uint64(body[12:])) != size:
		return nil, fmt.Errorf("summary of a %d-byte segment, the file has %d", binary.LittleEndian.Uint64(body[12:]), size)
	}
	sum := &segmentSummary{lastSeq: binary.LittleEndian.Uint64(body[20:])}
	n := binary.LittleEndian.Uint32(body[28:])
	rest := body[summaryHeader:]
	var prevID uint64
	for i := range n {
		if len(rest) < summaryEntry {
			return nil, errors.New("summary truncated")
		}
		e := summaryLoglet{id: binary.LittleEndian.Uint64(rest), last: bifrost.Offset(binary.LittleEndian.Uint64(rest[8:]))}
		count := uint64(binary.LittleEndian.Uint32(rest[16:]))
		rest = rest[summaryEntry:]
		if i > 0 && e.id <= prevID {
			return nil, errors.New("summary loglets out of order")
		}
		if count > uint64(e.last) || uint64(len(rest)) < count*8 {
			return nil, errors.New("summary truncated")
		}
		e.pos = make([]pos, count)
		for k := range e.pos {
			off, ln := binary.LittleEndian.Uint32(rest), binary.LittleEndian.Uint32(rest[4:])
			if int64(off)+int64(recordSize(int(ln))) > size {
				return nil, fmt.Errorf("summary names a record past the end of the segment at %d", off)
			}
			e.pos[k] = pos{seg: id, off: off, n: ln}
			rest = rest[8:]
		}
		prevID = e.id
		sum.loglets = append(sum.loglets, e)
	}
	if len(rest) != 0 {
		return nil, errors.New("summary has trailing bytes")
	}
	return sum, nil
}

// applySummary adds a segment's records, as its summary lists them, to the recovery state,
// with the checks applyRecord makes. It changes nothing and returns an error if the
// summary does not fit what earlier segments and the trim points say.
func applySummary(states map[uint64]*logletRecovery, sg *segment, sum *segmentSummary, trims map[uint64]bifrost.Offset) error {
	for pass := range 2 {
		apply := pass == 1
		for _, e := range sum.loglets {
			st := states[e.id]
			if st == nil {
				st = &logletRecovery{trim: trims[e.id]}
			}
			first := e.last - bifrost.Offset(len(e.pos)) + 1
			if e.last <= st.prev || (len(e.pos) > 0 && first <= st.prev) {
				return fmt.Errorf("loglet %d: lsns %d..%d after lsn %d", e.id, first, e.last, st.prev)
			}
			// Records the summary leaves out were trimmed when it was written, and trim
			// points only grow: they must be at or below the trim point now.
			if first-1 > max(st.prev, st.trim) {
				return fmt.Errorf("loglet %d: the summary starts at lsn %d, after lsn %d and trim point %d", e.id, first, st.prev, st.trim)
			}
			if !apply {
				continue
			}
			states[e.id] = st
			skip := 0 // records at or below the trim point
			if st.trim >= first {
				skip = int(min(st.trim-first+1, bifrost.Offset(len(e.pos))))
			}
			if st.idx == nil {
				st.idx = e.pos[skip:] // the decoded slice is not used again
			} else {
				st.idx = append(st.idx, e.pos[skip:]...)
			}
			st.prev = e.last
			sg.maxLSN[e.id] = e.last
		}
	}
	return nil
}

// removeSummary deletes the summary of segment id, if any.
func removeSummary(dir string, id uint32) error {
	err := os.Remove(filepath.Join(dir, summaryName(id)))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete summary: %w", err)
	}
	return nil
}
