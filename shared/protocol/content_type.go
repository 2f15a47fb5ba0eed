package protocol

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Protocol versions the runtime may negotiate.
const (
	Version5 = 5
	Version6 = 6 // adds StartMessage.random_seed and Failure.metadata
	Version7 = 7 // adds Future trees, AwaitingOn, run-proposal acks, scope/limit keys
)

const contentTypePrefix = "application/vnd.restate.invocation.v"

// ErrNotProtocolContentType reports a content type that is not a Restate invocation protocol
// media type.
var ErrNotProtocolContentType = errors.New("not a restate invocation protocol content type")

// ContentType returns the media type of protocol version v, used in content-type and accept.
func ContentType(version int) string {
	return contentTypePrefix + strconv.Itoa(version)
}

// ParseContentType extracts the protocol version from a content type; media-type parameters
// and letter case are ignored, as HTTP requires.
func ParseContentType(s string) (int, error) {
	mediaType, _, _ := strings.Cut(s, ";")
	mediaType = strings.ToLower(strings.TrimSpace(mediaType))
	digits, ok := strings.CutPrefix(mediaType, contentTypePrefix)
	if !ok || digits == "" || len(digits) > 4 {
		return 0, fmt.Errorf("content type %q: %w", s, ErrNotProtocolContentType)
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, fmt.Errorf("content type %q: %w", s, ErrNotProtocolContentType)
		}
	}
	v, _ := strconv.Atoi(digits)
	if v < 1 {
		return 0, fmt.Errorf("content type %q: version %d: %w", s, v, ErrNotProtocolContentType)
	}
	return v, nil
}
