package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/syndtr/goleveldb/leveldb"
)

// The export format of a partition's state, the data file of a snapshot: a magic line, then
// for every key of the partition in key order (without the partition prefix, without the
// durability bookkeeping) uvarint(len key) key uvarint(len value) value, then an end record
// uvarint(0) uvarint(0). Keys are never empty, so the end record is unambiguous. Integrity
// is checked by the caller (the snapshot metadata holds the file's SHA-256).
//
// Version 2 keys statuses, journals and notifications by keyID; an import of version 1 moves
// them (MigrateKeyLayout). A build that reads only version 1 refuses version 2.
var exportMagic = []byte("gorestate-partition-export v2\n")

// exportMagicV1 starts an export of a version before 2026-12-07.
var exportMagicV1 = []byte("gorestate-partition-export v1\n")

// maxExportField bounds one key or value read from an export: the store never holds values
// anywhere near it, so a larger length means a damaged file.
const maxExportField = 256 << 20

// ErrBadExport says an export stream is not one this version can read.
var ErrBadExport = errors.New("bad partition export")

// Export is a consistent view of a partition's state, to be written out once.
type Export struct {
	p    *Partition
	snap *leveldb.Snapshot
	// Applied is the applied LSN of the state the export holds.
	Applied uint64
}

// OpenExport takes a consistent view of the partition's state for an export; Release it.
func (p *Partition) OpenExport() (*Export, error) {
	snap, err := p.db.GetSnapshot()
	if err != nil {
		return nil, fmt.Errorf("partition %d export: %w", p.id, err)
	}
	e := &Export{p: p, snap: snap}
	if v, err := snap.Get(p.key(tMeta, []byte{metaApplied}), nil); err == nil {
		e.Applied = binary.BigEndian.Uint64(v)
	} else if !errors.Is(err, leveldb.ErrNotFound) {
		snap.Release()
		return nil, fmt.Errorf("partition %d export: %w", p.id, err)
	}
	return e, nil
}

// Release frees the view.
func (e *Export) Release() { e.snap.Release() }

// WriteTo writes the export to w. Memory does not grow with the store: keys are streamed
// from the goleveldb snapshot.
func (e *Export) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	if _, err := bw.Write(exportMagic); err != nil {
		return cw.n, err
	}
	prefix := u32(e.p.id)
	it := e.snap.NewIterator(prefixRange(prefix), bulk)
	defer it.Release()
	var n [binary.MaxVarintLen64]byte
	for it.Next() {
		k := it.Key()[len(prefix):]
		if bookkeeping(k) {
			continue
		}
		for _, b := range [][]byte{k, it.Value()} {
			if _, err := bw.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))]); err != nil {
				return cw.n, err
			}
			if _, err := bw.Write(b); err != nil {
				return cw.n, err
			}
		}
	}
	if err := it.Error(); err != nil {
		return cw.n, fmt.Errorf("partition %d export: %w", e.p.id, err)
	}
	if _, err := bw.Write([]byte{0, 0}); err != nil {
		return cw.n, err
	}
	err := bw.Flush()
	return cw.n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// Import replaces the partition's state with an export read from r and makes it durable;
// it returns the applied LSN of the import. The partition is wiped first; a damaged
// stream leaves it empty (applied LSN 0) rather than half written, and so does a crash
// before the import is complete (Verify reports it).
func (p *Partition) Import(r io.Reader) (uint64, error) {
	return p.ImportVerified(r, nil)
}

// ImportVerified is Import with a check run after the whole export was read and before the
// import is committed (made durable and unmarked as a replace): verify gets the imported
// applied LSN, and an error from it leaves the partition empty as a damaged stream does. A
// caller that checks the stream (its size, a checksum) must do it here, not after Import:
// a crash in between would keep a damaged state that looks sound.
func (p *Partition) ImportVerified(r io.Reader, verify func(applied uint64) error) (uint64, error) {
	defer p.epochs.forget(p.id) // the import brings its own epoch
	defer p.heads.clear()       // and its own inbox sequence numbers
	if err := p.beginReplace(); err != nil {
		return 0, err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	magic := make([]byte, len(exportMagic))
	if _, err := io.ReadFull(br, magic); err != nil || !bytes.Equal(magic, exportMagic) && !bytes.Equal(magic, exportMagicV1) {
		return 0, fmt.Errorf("%w: partition %d: not an export of this format (starts %q)", ErrBadExport, p.id, bytes.TrimSpace(magic))
	}
	field := func() ([]byte, error) {
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, err
		}
		if n > maxExportField {
			return nil, fmt.Errorf("field of %d bytes", n)
		}
		b := make([]byte, n)
		_, err = io.ReadFull(br, b)
		return b, err
	}
	var b leveldb.Batch
	fail := func(err error) (uint64, error) {
		_ = p.Wipe()
		return 0, fmt.Errorf("%w: partition %d: %v", ErrBadExport, p.id, err)
	}
	for {
		k, err := field()
		if err != nil {
			return fail(err)
		}
		v, err := field()
		if err != nil {
			return fail(err)
		}
		if len(k) == 0 {
			break
		}
		if bookkeeping(k) {
			return fail(fmt.Errorf("bookkeeping key %q in an export", k))
		}
		b.Put(p.key(k[0], k[1:]), v)
		if b.Len() >= 1000 {
			if err := p.db.Write(&b, nil); err != nil {
				return fail(err)
			}
			b.Reset()
		}
	}
	if err := p.db.Write(&b, nil); err != nil {
		return fail(err)
	}
	if _, err := p.MigrateKeyLayout(); err != nil { // an export of an older version
		return fail(err)
	}
	if _, err := p.BuildIndexes(); err != nil { // likewise
		return fail(err)
	}
	applied, err := p.Applied()
	if err != nil {
		return fail(err)
	}
	if verify != nil {
		if err := verify(applied); err != nil {
			return fail(err)
		}
	}
	// Durable at once: the imported state is what the log may be trimmed below.
	var cp leveldb.Batch
	cp.Put(p.key(tMeta, []byte{metaDurable}), u64(applied))
	if err := p.endReplace(&cp); err != nil {
		return fail(err)
	}
	return applied, nil
}
