package localloglet

import (
	"fmt"

	"gorestate.dev/shared/bifrost"
)

// Disk reads of neighbouring records are merged into one ReadAt when the gap between them
// is small (other loglets' records interleave with a loglet's own), up to a chunk limit.
const (
	readMergeGap = 4 << 10
	readChunkMax = 1 << 20
)

// readRecords fills in the payloads of ents, whose records are at disk[i], from the segment
// files, checking each record's CRC, loglet and offset.
func (s *Store) readRecords(loglet uint64, ents []bifrost.Record, disk []pos) error {
	for i := 0; i < len(disk); {
		first := disk[i]
		end := int64(first.off) + int64(recordSize(int(first.n)))
		j := i + 1
		for ; j < len(disk); j++ {
			p := disk[j]
			pEnd := int64(p.off) + int64(recordSize(int(p.n)))
			if p.seg != first.seg || int64(p.off) < end || int64(p.off)-end > readMergeGap ||
				pEnd-int64(first.off) > readChunkMax {
				break
			}
			end = pEnd
		}
		if err := s.readChunk(loglet, ents[i:j], disk[i:j], int64(first.off), end); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// readChunk reads [start, end) of one segment and decodes the records at disk into ents.
func (s *Store) readChunk(loglet uint64, ents []bifrost.Record, disk []pos, start, end int64) error {
	s.segMu.RLock()
	sg := s.segs[disk[0].seg]
	s.segMu.RUnlock()
	if sg == nil {
		return bifrost.ErrTrimmed // deleted after a trim that passed these records
	}
	buf := make([]byte, end-start)
	s.diskReads.Add(1)
	if err := sg.readAt(buf, start); err != nil {
		return err
	}
	for k, p := range disk {
		rel := int64(p.off) - start
		rec, _, err := decodeRecord(buf[rel:])
		if err == nil && (rec.loglet != loglet || rec.lsn != ents[k].Offset || len(rec.payload) != int(p.n)) {
			err = fmt.Errorf("found loglet %d lsn %d", rec.loglet, rec.lsn)
		}
		if err != nil {
			return fmt.Errorf("%w: %s at offset %d (loglet %d lsn %d): %w",
				ErrCorrupt, sg.path, p.off, loglet, ents[k].Offset, err)
		}
		ents[k].Payload = rec.payload
	}
	return nil
}
