package localloglet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"

	"gorestate.dev/shared/bifrost"
)

const (
	// recordMagic starts every record ("GRL1" as bytes). It carries no integrity on its own
	// (the CRC does); it lets recovery search for intact records after a damaged one, which
	// is how a torn tail is told apart from damage to committed data.
	recordMagic uint32 = 0x314c5247
	headerSize         = 28

	// The top bit of the length field marks a commit record: the writer ends every write
	// call with one, so after a crash the records behind the last intact commit record are
	// exactly the write whose fsync never completed.
	flagCommit uint32 = 1 << 31
	lengthMask uint32 = 1<<31 - 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Decode failures. errShortRecord means the bytes end inside the record, which at the end
// of the last segment is the signature of a torn write.
var (
	errShortRecord = errors.New("record truncated")
	errBadMagic    = errors.New("bad record magic")
	errBadLength   = errors.New("record length out of range")
	errBadCRC      = errors.New("record checksum mismatch")
	errZeroLSN     = errors.New("data record with lsn 0")
)

// record is one decoded record; payload aliases the decoded buffer. For a commit record
// lsn is the writer's write sequence number and loglet is 0.
type record struct {
	commit  bool
	loglet  uint64
	lsn     bifrost.Offset
	payload []byte
}

// recordSize is the encoded size of a record with an n-byte payload.
func recordSize(n int) int { return headerSize + n }

// appendRecord appends the encoding of one data record to dst.
func appendRecord(dst []byte, loglet uint64, lsn bifrost.Offset, payload []byte) []byte {
	return appendRaw(dst, uint32(len(payload)), loglet, uint64(lsn), payload)
}

// appendCommit appends a commit record carrying the write sequence number seq.
func appendCommit(dst []byte, seq uint64) []byte {
	return appendRaw(dst, flagCommit, 0, seq, nil)
}

func appendRaw(dst []byte, lenField uint32, loglet, lsn uint64, payload []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, recordMagic)
	dst = binary.LittleEndian.AppendUint32(dst, 0) // crc, patched below
	dst = binary.LittleEndian.AppendUint32(dst, lenField)
	dst = binary.LittleEndian.AppendUint64(dst, loglet)
	dst = binary.LittleEndian.AppendUint64(dst, lsn)
	dst = append(dst, payload...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+8:], castagnoli))
	return dst
}

// decodeRecord decodes the record at the start of b and returns it with its encoded size.
// It never reads past b and never panics, whatever b holds.
func decodeRecord(b []byte) (record, int, error) {
	if len(b) < headerSize {
		return record{}, 0, errShortRecord
	}
	if binary.LittleEndian.Uint32(b) != recordMagic {
		return record{}, 0, errBadMagic
	}
	lenField := binary.LittleEndian.Uint32(b[8:])
	commit := lenField&flagCommit != 0
	n := lenField & lengthMask
	if n > MaxPayloadSize || commit && n != 0 {
		return record{}, 0, errBadLength
	}
	size := recordSize(int(n))
	if len(b) < size {
		return record{}, 0, errShortRecord
	}
	if crc32.Checksum(b[8:size], castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return record{}, 0, errBadCRC
	}
	r := record{
		commit:  commit,
		loglet:  binary.LittleEndian.Uint64(b[12:]),
		lsn:     bifrost.Offset(binary.LittleEndian.Uint64(b[20:])),
		payload: b[headerSize:size:size],
	}
	if !commit && r.lsn == 0 {
		return record{}, 0, errZeroLSN
	}
	return r, size, nil
}

// nextIntact returns the offset and decoding of the first intact record in b at an offset
// >= from.
func nextIntact(b []byte, from int) (int, record, int, bool) {
	var magic [4]byte
	binary.LittleEndian.PutUint32(magic[:], recordMagic)
	for i := from; i < len(b); {
		j := bytes.Index(b[i:], magic[:])
		if j < 0 {
			break
		}
		if rec, n, err := decodeRecord(b[i+j:]); err == nil {
			return i + j, rec, n, true
		}
		i += j + 1
	}
	return 0, record{}, 0, false
}

// committedAfter reports whether the bytes b of the last segment, which start at a damaged
// record, show that the damage is in a committed write rather than in the write a crash
// tore. prevSeq is the sequence number of the last intact commit record before b (every
// segment starts with one; ok is false when b starts at offset 0).
//
// A torn write can leave any subset of its pages behind, including its own commit record,
// but never a later write: the writer starts the next write only after this one's fsync.
// So the damage is committed data if the first intact commit record after it closes a
// later write than the one following prevSeq, or if any intact record follows that commit.
func committedAfter(b []byte, prevSeq uint64, ok bool) bool {
	for i := 1; ; {
		off, rec, n, found := nextIntact(b, i)
		if !found {
			return false
		}
		if rec.commit {
			if ok && uint64(rec.lsn) != prevSeq+1 {
				return true
			}
			_, _, _, later := nextIntact(b, off+n)
			return later
		}
		i = off + n
	}
}
