// Package ids owns the identifiers shared by every role: invocation ids, partition keys,
// deployment ids and awakeable ids, in Restate's string formats.
package ids

import (
	"errors"
	"fmt"
	"strings"
)

// The decode errors carry Restate's own wording so that an admin or ingress handler can put
// err.Error() straight into a 400 answer and match what Restate clients expect to read.
var (
	// ErrBadLength reports an id string or byte slice of the wrong size.
	ErrBadLength = errors.New("bad length")
	// ErrCodec reports a character outside the base62/base64 alphabet or a value that overflows.
	ErrCodec = errors.New("base62 decode error")
	// ErrBadFormat reports an id string without the "<resource>_" prefix.
	ErrBadFormat = errors.New("bad format")
	// ErrVersion reports an id whose scheme version character is not "1".
	ErrVersion = errors.New("unrecognized codec version")
	// ErrTypeMismatch reports a well-formed id of another resource type (e.g. a dp_ id where an
	// inv_ id is expected).
	ErrTypeMismatch = errors.New("id doesn't match the expected type")
	// ErrUnrecognizedType reports an unknown resource prefix.
	ErrUnrecognizedType = errors.New("unrecognized resource type")
	// ErrLegacyAwakeableID is returned by ParseAwakeableID for a V1–V3 "prom_1" id; parse those
	// with ParseLegacyAwakeableID.
	ErrLegacyAwakeableID = errors.New("legacy awakeable id (prom_1)")
)

// idSchemeVersion is the only id encoding version Restate has defined.
const idSchemeVersion = '1'

// knownResourceTypes are Restate's id prefixes; an unknown prefix is a different error than a
// known prefix of the wrong kind.
var knownResourceTypes = map[string]bool{
	"inv": true, "dp": true, "sub": true, "prom": true, "sign": true,
	"snap": true, "mut": true, "vq": true,
}

// splitPrefix checks "<resource>_<version>" and returns the text after the version character.
func splitPrefix(s, want string) (string, error) {
	if s == "" {
		return "", ErrBadLength
	}
	resource, rest, ok := strings.Cut(s, "_")
	if !ok {
		return "", ErrBadFormat
	}
	// Restate's order (IdDecoder::new, then the caller's type check): the prefix must be a
	// known resource and the version valid before a known prefix of the wrong kind is named.
	if !knownResourceTypes[resource] {
		return "", fmt.Errorf("%w: %s", ErrUnrecognizedType, resource)
	}
	if rest == "" {
		return "", ErrBadLength
	}
	if rest[0] != idSchemeVersion {
		return "", ErrVersion
	}
	if resource != want {
		return "", ErrTypeMismatch
	}
	return rest[1:], nil
}
