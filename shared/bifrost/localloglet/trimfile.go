package localloglet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"gorestate.dev/shared/bifrost"
)

const (
	trimFileName = "trim.meta"
	trimMagic    = "GRLTRIM1"
)

// Layout of trim.meta: trimMagic, uint32 count, count × (uint64 loglet, uint64 trim LSN)
// sorted by loglet, then a CRC32C of everything before it. It is replaced atomically
// (write temp, fsync, rename, fsync dir), so a crash leaves either the old or the new one.

func encodeTrims(trims map[uint64]bifrost.LSN) []byte {
	ids := make([]uint64, 0, len(trims))
	for id := range trims {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	b := make([]byte, 0, len(trimMagic)+4+16*len(ids)+4)
	b = append(b, trimMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		b = binary.LittleEndian.AppendUint64(b, id)
		b = binary.LittleEndian.AppendUint64(b, uint64(trims[id]))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeTrims(b []byte) (map[uint64]bifrost.LSN, error) {
	if len(b) < len(trimMagic)+8 || string(b[:len(trimMagic)]) != trimMagic {
		return nil, errors.New("bad header")
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, errors.New("checksum mismatch")
	}
	n := binary.LittleEndian.Uint32(body[len(trimMagic):])
	ents := body[len(trimMagic)+4:]
	if uint64(len(ents)) != 16*uint64(n) {
		return nil, fmt.Errorf("%d entries in %d bytes", n, len(ents))
	}
	trims := make(map[uint64]bifrost.LSN, n)
	for i := 0; i < len(ents); i += 16 {
		trims[binary.LittleEndian.Uint64(ents[i:])] = bifrost.LSN(binary.LittleEndian.Uint64(ents[i+8:]))
	}
	return trims, nil
}

// loadTrims reads dir's trim points; a missing file means nothing was ever trimmed.
func loadTrims(dir string) (map[uint64]bifrost.LSN, error) {
	path := filepath.Join(dir, trimFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[uint64]bifrost.LSN{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read trim points: %w", err)
	}
	trims, err := decodeTrims(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	return trims, nil
}

// saveTrims atomically replaces dir's trim points.
func saveTrims(dir string, trims map[uint64]bifrost.LSN, noSync bool) error {
	path := filepath.Join(dir, trimFileName)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("save trim points: %w", err)
	}
	_, err = f.Write(encodeTrims(trims))
	if err == nil && !noSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save trim points: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save trim points: %w", err)
	}
	if noSync {
		return nil
	}
	return syncDir(dir)
}
