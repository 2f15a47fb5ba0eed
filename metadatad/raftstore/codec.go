package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"gorestate.dev/shared/metadata"
)

// Command types of the replicated log. They are stored in raft logs on disk and travel
// between members of different versions: append new ones, never renumber or reuse one.
const (
	cmdPut    byte = 1 // compare-and-set one key
	cmdImport byte = 2 // load objects keeping their versions (migration from a LocalStore)
)

// snapshotFormat is the first byte of a snapshot, so that the format can change later
// without guessing.
const snapshotFormat byte = 1

// errCorrupt marks bytes that do not decode; they come from disk or the network.
var errCorrupt = errors.New("raftstore: corrupt encoding")

// command is one decoded log entry of the FSM.
type command struct {
	typ      byte
	key      string
	value    []byte
	expected uint64
	objects  map[string]metadata.Versioned // cmdImport only
}

// encodePut encodes a compare-and-set: type, key, expected version, then the value up to
// the end (its length is implied, which saves a field and a check).
func encodePut(key string, value []byte, expected uint64) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(key)+len(value))
	b = append(b, cmdPut)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendUvarint(b, expected)
	return append(b, value...)
}

// encodeImport encodes an import of objs.
func encodeImport(objs map[string]metadata.Versioned) []byte {
	return appendObjects([]byte{cmdImport}, objs)
}

// decodeCommand decodes a log entry written by encodePut or encodeImport. The returned
// slices alias b.
func decodeCommand(b []byte) (command, error) {
	if len(b) == 0 {
		return command{}, fmt.Errorf("%w: empty command", errCorrupt)
	}
	r := reader{b: b[1:]}
	switch typ := b[0]; typ {
	case cmdPut:
		key := r.bytes(r.uvarint())
		expected := r.uvarint()
		if r.err != nil {
			return command{}, fmt.Errorf("put command: %w", r.err)
		}
		return command{typ: typ, key: string(key), expected: expected, value: r.b}, nil
	case cmdImport:
		objs, err := decodeObjects(&r)
		if err == nil && len(r.b) != 0 {
			err = fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(r.b))
		}
		if err != nil {
			return command{}, fmt.Errorf("import command: %w", err)
		}
		return command{typ: typ, objects: objs}, nil
	default:
		// A newer member wrote a type this one does not know; the FSM reports it instead of
		// guessing.
		return command{}, fmt.Errorf("%w: unknown command type %d", errCorrupt, typ)
	}
}

// encodeSnapshot encodes the whole FSM state.
func encodeSnapshot(objs map[string]metadata.Versioned) []byte {
	return appendObjects([]byte{snapshotFormat}, objs)
}

// decodeSnapshot decodes encodeSnapshot's bytes. The values alias b.
func decodeSnapshot(b []byte) (map[string]metadata.Versioned, error) {
	if len(b) == 0 || b[0] != snapshotFormat {
		return nil, fmt.Errorf("%w: snapshot does not start with format byte %d", errCorrupt, snapshotFormat)
	}
	r := reader{b: b[1:]}
	objs, err := decodeObjects(&r)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("snapshot: %w: %d trailing bytes", errCorrupt, len(r.b))
	}
	return objs, nil
}

// appendObjects appends a count, then key, version and value of each object in key order,
// so that equal maps always encode to equal bytes.
func appendObjects(b []byte, objs map[string]metadata.Versioned) []byte {
	keys := make([]string, 0, len(objs))
	for k := range objs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		v := objs[k]
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, v.Version)
		b = binary.AppendUvarint(b, uint64(len(v.Value)))
		b = append(b, v.Value...)
	}
	return b
}

func decodeObjects(r *reader) (map[string]metadata.Versioned, error) {
	n := r.uvarint()
	// Each object takes at least three bytes; a larger count is corrupt, and checking it
	// first keeps a corrupt count from sizing a huge map.
	if r.err == nil && n > uint64(len(r.b))/3 {
		return nil, fmt.Errorf("%w: %d objects cannot fit in %d bytes", errCorrupt, n, len(r.b))
	}
	objs := make(map[string]metadata.Versioned, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		key := string(r.bytes(r.uvarint()))
		version := r.uvarint()
		value := r.bytes(r.uvarint())
		if r.err != nil {
			break
		}
		if _, dup := objs[key]; dup {
			return nil, fmt.Errorf("%w: key %q appears twice", errCorrupt, key)
		}
		objs[key] = metadata.Versioned{Version: version, Value: value}
	}
	if r.err != nil {
		return nil, r.err
	}
	return objs, nil
}

// reader decodes varints and length-prefixed bytes, remembering the first error so that
// callers check once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("%w: bad varint", errCorrupt)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("%w: length %d exceeds the %d bytes left", errCorrupt, n, len(r.b))
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}
