package ids

import (
	"errors"
	"testing"
)

// Errors as restate-server 1.7.12 reports them for GET /subscriptions/{id}.
func TestParseSubscriptionID(t *testing.T) {
	if _, err := ParseSubscriptionID("sub_10dcWFx8PYDagweFaxtvbBD"); err != nil {
		t.Fatalf("well-formed id: %v", err)
	}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"bogus", ErrBadFormat},
		{"sub_11111111111111111111111111", ErrBadLength},
		{"sub_1aaaaaaaaaaaaaaaaaaaaaa", ErrCodec},
		{"sub_2aaaaaaaaaaaaaaaaaaaaaa", ErrVersion},
		{"dp_10dcWFx8PYDagweFaxtvbBD", ErrTypeMismatch},
	} {
		if _, err := ParseSubscriptionID(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("ParseSubscriptionID(%q) error = %v, want %v", tc.in, err, tc.want)
		}
	}
}
