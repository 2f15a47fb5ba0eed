package localloglet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"gorestate.dev/shared/fsync"

	"gorestate.dev/shared/bifrost"
)

// offsetsFile is a small file mapping loglet ids to offsets, replaced atomically as a
// whole: trim.meta (trim points) and seal.meta (sealed tails). Layout: magic, uint32
// count, count × (uint64 loglet, uint64 offset) sorted by loglet, then a CRC32C of
// everything before it, all little-endian. It is replaced by writing a temp file, fsync,
// rename, fsync of the directory, so a crash leaves either the old or the new one.
type offsetsFile struct {
	name  string // file name in the store directory
	magic string // 8 bytes
	what  string // for errors
}

var (
	trimFile = offsetsFile{name: "trim.meta", magic: "GRLTRIM1", what: "trim points"}
	sealFile = offsetsFile{name: "seal.meta", magic: "GRLSEAL1", what: "sealed tails"}
)

func (f offsetsFile) encode(m map[uint64]bifrost.Offset) []byte {
	ids := slices.Sorted(maps.Keys(m))
	b := make([]byte, 0, len(f.magic)+4+16*len(ids)+4)
	b = append(b, f.magic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		b = binary.LittleEndian.AppendUint64(b, id)
		b = binary.LittleEndian.AppendUint64(b, uint64(m[id]))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func (f offsetsFile) decode(b []byte) (map[uint64]bifrost.Offset, error) {
	if len(b) < len(f.magic)+8 || string(b[:len(f.magic)]) != f.magic {
		return nil, errors.New("bad header")
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, errors.New("checksum mismatch")
	}
	n := binary.LittleEndian.Uint32(body[len(f.magic):])
	ents := body[len(f.magic)+4:]
	if uint64(len(ents)) != 16*uint64(n) {
		return nil, fmt.Errorf("%d entries in %d bytes", n, len(ents))
	}
	m := make(map[uint64]bifrost.Offset, n)
	for i := 0; i < len(ents); i += 16 {
		id := binary.LittleEndian.Uint64(ents[i:])
		if i > 0 && id <= binary.LittleEndian.Uint64(ents[i-16:]) {
			// encode writes ids in increasing order, once each: anything else is damage.
			return nil, fmt.Errorf("loglet ids out of order at entry %d", i/16)
		}
		m[id] = bifrost.Offset(binary.LittleEndian.Uint64(ents[i+8:]))
	}
	return m, nil
}

// load reads the file from dir; a missing file is an empty map. A leftover temp file from
// a crash during save is removed: its rename never happened, so it is stale.
func (f offsetsFile) load(dir string) (map[uint64]bifrost.Offset, error) {
	path := filepath.Join(dir, f.name)
	os.Remove(path + ".tmp")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[uint64]bifrost.Offset{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.what, err)
	}
	m, err := f.decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	return m, nil
}

// save atomically replaces the file in dir with m.
func (f offsetsFile) save(dir string, m map[uint64]bifrost.Offset, noSync bool) error {
	path := filepath.Join(dir, f.name)
	tmp := path + ".tmp"
	file, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("save %s: %w", f.what, err)
	}
	_, err = file.Write(f.encode(m))
	if err == nil && !noSync {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save %s: %w", f.what, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save %s: %w", f.what, err)
	}
	if noSync {
		return nil
	}
	return fsync.Dir(dir)
}
