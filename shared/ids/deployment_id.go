package ids

import (
	"encoding/binary"
	"time"
)

const (
	deploymentResource = "dp"
	// DeploymentIDStringLen is the size of a "dp_1…" id.
	DeploymentIDStringLen = len(deploymentResource) + 2 + base62U128Width
)

// NewDeploymentID returns a fresh "dp_1…" id: a ULID in Restate's base62 form.
func NewDeploymentID() string {
	return FormatDeploymentID(newULID(time.Now()))
}

// FormatDeploymentID encodes a 16-byte deployment ULID, byte-swapped like invocation ids.
func FormatDeploymentID(u [16]byte) string {
	b := make([]byte, 0, DeploymentIDStringLen)
	b = append(b, deploymentResource...)
	b = append(b, '_', idSchemeVersion)
	b = appendBase62(b, binary.LittleEndian.Uint64(u[8:16]), binary.LittleEndian.Uint64(u[0:8]), base62U128Width)
	return string(b)
}

// ParseDeploymentID decodes a "dp_1…" id into its 16-byte ULID.
func ParseDeploymentID(s string) ([16]byte, error) {
	return parseULIDID(s, deploymentResource)
}

// parseULIDID decodes a "<resource>_1…" id that carries a 16-byte ULID (deployment and
// subscription ids).
func parseULIDID(s, resource string) ([16]byte, error) {
	var u [16]byte
	rest, err := splitPrefix(s, resource)
	if err != nil {
		return u, err
	}
	if len(rest) != base62U128Width {
		return u, ErrBadLength
	}
	hi, lo, err := parseBase62(rest)
	if err != nil {
		return u, err
	}
	binary.LittleEndian.PutUint64(u[0:8], lo)
	binary.LittleEndian.PutUint64(u[8:16], hi)
	return u, nil
}

// ValidDeploymentID reports whether s is a well-formed "dp_1…" id.
func ValidDeploymentID(s string) bool {
	_, err := ParseDeploymentID(s)
	return err == nil
}
