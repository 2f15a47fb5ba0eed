package ids

import (
	"errors"
	"strings"
	"testing"
)

func TestAwakeableIDKnownShape(t *testing.T) {
	t.Parallel()
	id := NewInvocationID(PartitionKeyOf("k"))
	s := AwakeableID(id.Bytes(), 17)
	if len(s) != 44 || !strings.HasPrefix(s, "sign_1") || !strings.HasSuffix(s, "AAAAEQ") {
		t.Fatalf("AwakeableID = %q: want 44 chars, sign_1…AAAAEQ", s)
	}
	// Hand-computed: 24 zero bytes then index 17 → 32 'A's then "AAAAEQ".
	zero := AwakeableID(make([]byte, 24), 17)
	if want := "sign_1" + strings.Repeat("A", 32) + "AAAAEQ"; zero != want {
		t.Errorf("AwakeableID(zero, 17) = %q, want %q", zero, want)
	}
}

func TestAwakeableIDRoundTrip(t *testing.T) {
	t.Parallel()
	id := NewInvocationID(0xDEADBEEFCAFEBABE)
	for _, idx := range []uint32{0, 1, 17, 1 << 31, ^uint32(0)} {
		s := AwakeableID(id.Bytes(), idx)
		gotID, gotIdx, err := ParseAwakeableID(s)
		if err != nil || gotID != id || gotIdx != idx {
			t.Errorf("ParseAwakeableID(%q) = %v, %d, %v; want %v, %d", s, gotID, gotIdx, err, id, idx)
		}
		// Padded form: 28 bytes → 38 chars + "==". Restate's decoder also takes partial
		// padding (DecodePaddingMode::Indifferent), and so do we.
		for _, pad := range []string{"=", "=="} {
			gotID, gotIdx, err = ParseAwakeableID(s + pad)
			if err != nil || gotID != id || gotIdx != idx {
				t.Errorf("padded %q: ParseAwakeableID = %v, %d, %v", pad, gotID, gotIdx, err)
			}
		}
		legacy := LegacyAwakeableID(id.Bytes(), idx)
		if !strings.HasPrefix(legacy, "prom_1") {
			t.Errorf("legacy id %q lacks prom_1", legacy)
		}
		if _, _, err := ParseAwakeableID(legacy); !errors.Is(err, ErrLegacyAwakeableID) {
			t.Errorf("ParseAwakeableID(legacy) error = %v, want ErrLegacyAwakeableID", err)
		}
		gotID, gotIdx, err = ParseLegacyAwakeableID(legacy)
		if err != nil || gotID != id || gotIdx != idx {
			t.Errorf("ParseLegacyAwakeableID = %v, %d, %v", gotID, gotIdx, err)
		}
	}
}

func TestParseAwakeableIDErrors(t *testing.T) {
	t.Parallel()
	good := AwakeableID(make([]byte, 24), 17)
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrBadLength},
		{"no prefix", "AAAA", ErrBadFormat},
		{"invocation id", "inv_1iHLUz0JfQwr0g3903tBTvJLIPSGwxDRjX", ErrTypeMismatch},
		{"bad version", "sign_2" + good[6:], ErrVersion},
		{"short", good[:40], ErrBadLength},
		{"bad alphabet", good[:10] + "+" + good[11:], ErrCodec},
		{"line break", good[:10] + "\n" + good[10:], ErrCodec},
		{"too much padding", good + "===", ErrCodec},
		{"padding inside", good[:40] + "=" + good[40:], ErrCodec},
		{"padding after a whole quantum", good[:42] + "=", ErrCodec},
		{"trailing bits", good[:43] + "R", ErrCodec},
		{"legacy via sign parser is flagged", "prom_1" + good[6:], ErrLegacyAwakeableID},
	}
	for _, tc := range tests {
		if _, _, err := ParseAwakeableID(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%s: ParseAwakeableID(%q) error = %v, want %v", tc.name, tc.in, err, tc.want)
		}
	}
	if _, _, err := ParseLegacyAwakeableID(good); !errors.Is(err, ErrTypeMismatch) {
		t.Errorf("ParseLegacyAwakeableID(sign id) error = %v, want ErrTypeMismatch", err)
	}
}

// TestParseAwakeableIDMessages checks the error texts, which the ingress answers as Restate.
func TestParseAwakeableIDMessages(t *testing.T) {
	t.Parallel()
	good := AwakeableID(make([]byte, 24), 17)
	for in, want := range map[string]string{
		good[:40]:           "bad length",
		good + "===":        "base62 decode error",
		good[:10] + "+x":    "base62 decode error",
		"sign_2" + good[6:]: "unrecognized codec version",
	} {
		if _, _, err := ParseAwakeableID(in); err == nil || err.Error() != want {
			t.Errorf("ParseAwakeableID(%q) error = %v, want %q", in, err, want)
		}
	}
}
