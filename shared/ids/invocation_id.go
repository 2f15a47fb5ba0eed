package ids

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

const (
	// InvocationIDLen is the size of the raw id: partition key ‖ uuid.
	InvocationIDLen = 24
	// InvocationIDStringLen is the size of the "inv_1…" form.
	InvocationIDStringLen = len(invocationPrefix) + 1 + base62U64Width + base62U128Width

	invocationPrefix = "inv_"
)

// InvocationID identifies one invocation. Its partition key decides which partition owns it,
// so the key travels inside the id and routing needs no lookup.
type InvocationID struct {
	PartitionKey PartitionKey
	UUID         [16]byte
}

// NewInvocationID returns a random id in partition key pk. The uuid is ULID-shaped (48-bit
// millisecond timestamp, then randomness) so that ids sort roughly by creation time.
func NewInvocationID(pk PartitionKey) InvocationID {
	return InvocationID{PartitionKey: pk, UUID: newULID(time.Now())}
}

// DeterministicInvocationID derives the id from parts, so that repeating a request that must
// map to one invocation (a workflow run, an idempotent call) finds the same id on any node.
// The uuid is the first 16 bytes of SHA-256 over the parts joined by ",".
func DeterministicInvocationID(pk PartitionKey, parts ...string) InvocationID {
	h := sha256.New()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{','})
		}
		h.Write([]byte(p))
	}
	var sum [sha256.Size]byte
	id := InvocationID{PartitionKey: pk}
	copy(id.UUID[:], h.Sum(sum[:0]))
	return id
}

// WorkflowInvocationID is the id of the run handler of workflow service with the given key.
func WorkflowInvocationID(pk PartitionKey, service, key string) InvocationID {
	return DeterministicInvocationID(pk, "wf", service, key)
}

// IdempotentInvocationID is the id of an idempotent request; key is the object/workflow key,
// or "" for a plain service (it is then left out of the hash, not hashed as empty).
func IdempotentInvocationID(pk PartitionKey, service, key, handler, idempotencyKey string) InvocationID {
	if key == "" {
		return DeterministicInvocationID(pk, "ik", service, handler, idempotencyKey)
	}
	return DeterministicInvocationID(pk, "ik", service, key, handler, idempotencyKey)
}

// InvocationIDFromBytes decodes the 24-byte form (StartMessage.id, storage keys).
func InvocationIDFromBytes(b []byte) (InvocationID, error) {
	if len(b) != InvocationIDLen {
		return InvocationID{}, fmt.Errorf("invocation id of %d bytes: %w", len(b), ErrBadLength)
	}
	var id InvocationID
	id.PartitionKey = PartitionKey(binary.BigEndian.Uint64(b))
	copy(id.UUID[:], b[8:])
	return id, nil
}

// Bytes returns the 24-byte form: partition key big-endian ‖ uuid.
func (id InvocationID) Bytes() []byte {
	return id.AppendBytes(make([]byte, 0, InvocationIDLen))
}

// AppendBytes appends the 24-byte form to dst.
func (id InvocationID) AppendBytes(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(id.PartitionKey))
	return append(dst, id.UUID[:]...)
}

// IsZero reports whether id is the zero value, which no generator produces.
func (id InvocationID) IsZero() bool {
	return id == InvocationID{}
}

// String returns the "inv_1…" form that users, the CLI and the SDKs see.
func (id InvocationID) String() string {
	b := make([]byte, 0, InvocationIDStringLen)
	b = append(b, invocationPrefix...)
	b = append(b, idSchemeVersion)
	// Restate byte-swaps each part before base62-encoding it (it converts with to_be on a
	// little-endian machine), so the encoded integers are the big-endian bytes read as
	// little-endian. Reproducing that keeps our strings identical to Restate's.
	var raw [InvocationIDLen]byte
	id.AppendBytes(raw[:0])
	b = appendBase62(b, 0, binary.LittleEndian.Uint64(raw[0:8]), base62U64Width)
	b = appendBase62(b, binary.LittleEndian.Uint64(raw[16:24]), binary.LittleEndian.Uint64(raw[8:16]), base62U128Width)
	return string(b)
}

// ParseInvocationID parses the "inv_1…" form. The error text is fit for a 400 answer.
func ParseInvocationID(s string) (InvocationID, error) {
	rest, err := splitPrefix(s, strings.TrimSuffix(invocationPrefix, "_"))
	if err != nil {
		return InvocationID{}, err
	}
	if len(rest) != base62U64Width+base62U128Width {
		return InvocationID{}, ErrBadLength
	}
	hi, pkLE, err := parseBase62(rest[:base62U64Width])
	if err != nil {
		return InvocationID{}, err
	}
	if hi != 0 {
		return InvocationID{}, ErrCodec
	}
	uHi, uLo, err := parseBase62(rest[base62U64Width:])
	if err != nil {
		return InvocationID{}, err
	}
	var raw [InvocationIDLen]byte
	binary.LittleEndian.PutUint64(raw[0:8], pkLE)
	binary.LittleEndian.PutUint64(raw[8:16], uLo)
	binary.LittleEndian.PutUint64(raw[16:24], uHi)
	return InvocationIDFromBytes(raw[:])
}

// MarshalText encodes the id in its string form, so ids serialise readably in JSON and TOML.
func (id InvocationID) MarshalText() ([]byte, error) {
	return []byte(id.String()), nil
}

// UnmarshalText parses the string form.
func (id *InvocationID) UnmarshalText(b []byte) error {
	parsed, err := ParseInvocationID(string(b))
	if err != nil {
		return fmt.Errorf("parse invocation id %q: %w", b, err)
	}
	*id = parsed
	return nil
}

// newULID returns 48 bits of milliseconds since the epoch followed by 80 random bits.
func newULID(now time.Time) [16]byte {
	var u [16]byte
	ms := uint64(now.UnixMilli())
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	// crypto/rand.Read never fails since Go 1.24.
	_, _ = rand.Read(u[6:])
	return u
}
