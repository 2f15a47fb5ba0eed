package ids

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestDeploymentIDKnownVector(t *testing.T) {
	t.Parallel()
	// From PROTOCOL.md; its ULID timestamp (first 6 bytes) decodes to 2026-11-21 only with the
	// byte-swap quirk applied.
	const s = "dp_16DGG3jQi6060887quRa5Ut"
	const raw = "01a1fff416e18bb29684003517882cda"
	u, err := ParseDeploymentID(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(u[:]); got != raw {
		t.Errorf("ParseDeploymentID = %s, want %s", got, raw)
	}
	if got := FormatDeploymentID(u); got != s {
		t.Errorf("FormatDeploymentID = %s, want %s", got, s)
	}
	if !ValidDeploymentID(s) {
		t.Error("ValidDeploymentID(example) = false")
	}
}

func TestNewDeploymentID(t *testing.T) {
	t.Parallel()
	a, b := NewDeploymentID(), NewDeploymentID()
	if a == b {
		t.Fatal("NewDeploymentID repeated")
	}
	for _, s := range []string{a, b} {
		if len(s) != 26 || !strings.HasPrefix(s, "dp_1") {
			t.Errorf("bad deployment id %q", s)
		}
		if !ValidDeploymentID(s) {
			t.Errorf("ValidDeploymentID(%q) = false", s)
		}
	}
}

func TestParseDeploymentIDErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want error
	}{
		{"", ErrBadLength},
		{"dp16DGG3jQi6060887quRa5Ut", ErrBadFormat},
		{"inv_16DGG3jQi6060887quRa5Ut", ErrTypeMismatch},
		{"dp_26DGG3jQi6060887quRa5Ut", ErrVersion},
		{"dp_16DGG3jQi6060887quRa5U", ErrBadLength},
		{"dp_16DGG3jQi6060887quRa5U!", ErrCodec},
		{"dp_1" + strings.Repeat("Z", 22), ErrCodec},
	}
	for _, tc := range tests {
		if _, err := ParseDeploymentID(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("ParseDeploymentID(%q) error = %v, want %v", tc.in, err, tc.want)
		}
		if ValidDeploymentID(tc.in) {
			t.Errorf("ValidDeploymentID(%q) = true", tc.in)
		}
	}
}
