package ids

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
)

const (
	signalAwakeablePrefix = "sign_1"
	legacyAwakeablePrefix = "prom_1"
)

// AwakeableID builds the id an SDK hands out for an awakeable: "sign_1" + unpadded URL-safe
// base64 of (invocation id bytes ‖ signal index u32 big-endian). SDKs compute it themselves
// from StartMessage.id; the runtime needs it to route CompleteAwakeable and ingress
// resolutions back to the owning invocation.
func AwakeableID(invocationID []byte, signalIndex uint32) string {
	return formatAwakeable(signalAwakeablePrefix, invocationID, signalIndex)
}

// LegacyAwakeableID builds a V1–V3 "prom_1" id, whose index is a journal entry index.
func LegacyAwakeableID(invocationID []byte, entryIndex uint32) string {
	return formatAwakeable(legacyAwakeablePrefix, invocationID, entryIndex)
}

func formatAwakeable(prefix string, invocationID []byte, index uint32) string {
	raw := make([]byte, 0, len(invocationID)+4)
	raw = append(raw, invocationID...)
	raw = binary.BigEndian.AppendUint32(raw, index)
	return prefix + base64.RawURLEncoding.EncodeToString(raw)
}

// ParseAwakeableID decodes a "sign_1" id into the owning invocation and the signal index to
// notify. Padding is optional and may be partial ("=" where "==" is due), as Restate's
// decoder (base64 DecodePaddingMode::Indifferent) reads it. A "prom_1" id yields
// ErrLegacyAwakeableID. Errors are the bare sentinels, whose texts are Restate's.
func ParseAwakeableID(s string) (InvocationID, uint32, error) {
	if strings.HasPrefix(s, legacyAwakeablePrefix) {
		return InvocationID{}, 0, ErrLegacyAwakeableID
	}
	return parseAwakeable(s, "sign")
}

// ParseLegacyAwakeableID decodes a "prom_1" id into the owning invocation and the journal
// entry index it completes.
func ParseLegacyAwakeableID(s string) (InvocationID, uint32, error) {
	return parseAwakeable(s, "prom")
}

func parseAwakeable(s, resource string) (InvocationID, uint32, error) {
	rest, err := splitPrefix(s, resource)
	if err != nil {
		return InvocationID{}, 0, err
	}
	// Go's decoder skips CR/LF; Restate's does not, and an id with a line break in it is not the
	// same id.
	if strings.ContainsAny(rest, "\r\n") {
		return InvocationID{}, 0, ErrCodec
	}
	// Up to the canonical padding is accepted, none of it required.
	data := strings.TrimRight(rest, "=")
	if pad := len(rest) - len(data); pad > 0 && pad > (4-len(data)%4)%4 {
		return InvocationID{}, 0, ErrCodec
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(data)
	if err != nil {
		return InvocationID{}, 0, ErrCodec
	}
	if len(raw) != InvocationIDLen+4 {
		return InvocationID{}, 0, ErrBadLength
	}
	id, err := InvocationIDFromBytes(raw[:InvocationIDLen])
	if err != nil {
		return InvocationID{}, 0, err
	}
	return id, binary.BigEndian.Uint32(raw[InvocationIDLen:]), nil
}
