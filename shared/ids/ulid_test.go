package ids

import (
	"strings"
	"testing"
	"time"
)

func TestFormatULID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		u    [16]byte
		want string
	}{
		{"zero", [16]byte{}, "00000000000000000000000000"},
		{"all ones", [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"},
		{"lowest bit", [16]byte{15: 1}, "00000000000000000000000001"},
		{"bit 5", [16]byte{15: 0x20}, "00000000000000000000000010"},
		// The time part of the ULID specification's example: 1469918176385 ms is 01ARYZ6S41.
		{"spec time", [16]byte{0x01, 0x56, 0x3d, 0xf3, 0x64, 0x81}, "01ARYZ6S410000000000000000"},
	}
	for _, tt := range tests {
		if got := formatULID(tt.u); got != tt.want {
			t.Errorf("%s: formatULID = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestNewULIDString(t *testing.T) {
	t.Parallel()
	at := time.UnixMilli(1469918176385)
	a, b := NewULIDString(at), NewULIDString(at)
	if !strings.HasPrefix(a, "01ARYZ6S41") || len(a) != 26 {
		t.Fatalf("NewULIDString = %s, want 26 characters starting with the time 01ARYZ6S41", a)
	}
	if a == b {
		t.Fatalf("two ULIDs of the same millisecond are equal: %s", a)
	}
}
