package ids

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzParseInvocationID(f *testing.F) {
	for _, s := range []string{
		"inv_1iHLUz0JfQwr0g3903tBTvJLIPSGwxDRjX", "inv_10000000000000000000000000000000000",
		"inv_", "inv_abc", "dp_16DGG3jQi6060887quRa5Ut", "inv_1zzzzzzzzzzzZZZZZZZZZZZZZZZZZZZZZZ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseInvocationID(s)
		if err != nil {
			return
		}
		// Only the canonical spelling parses, so the round trip is exact.
		if got := id.String(); got != s {
			t.Fatalf("ParseInvocationID(%q).String() = %q", s, got)
		}
		back, err := InvocationIDFromBytes(id.Bytes())
		if err != nil || back != id {
			t.Fatalf("bytes round trip: %v, %v", back, err)
		}
	})
}

func FuzzParseAwakeableID(f *testing.F) {
	id := NewInvocationID(99)
	for _, s := range []string{
		AwakeableID(id.Bytes(), 17), AwakeableID(id.Bytes(), 17) + "==",
		LegacyAwakeableID(id.Bytes(), 3), "sign_1", "sign_1====", "prom_1AAAA",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, parse := range []func(string) (InvocationID, uint32, error){ParseAwakeableID, ParseLegacyAwakeableID} {
			got, idx, err := parse(s)
			if err != nil {
				continue
			}
			canonical := AwakeableID(got.Bytes(), idx)
			if strings.HasPrefix(s, "prom_1") {
				canonical = LegacyAwakeableID(got.Bytes(), idx)
			}
			if strings.TrimRight(s, "=") != canonical {
				t.Fatalf("%q parsed to %v/%d which formats as %q", s, got, idx, canonical)
			}
			again, idx2, err := parse(canonical)
			if err != nil || again != got || idx2 != idx {
				t.Fatalf("reparse of %q: %v, %d, %v", canonical, again, idx2, err)
			}
			if !bytes.Equal(again.Bytes(), got.Bytes()) {
				t.Fatal("bytes differ")
			}
		}
	})
}
