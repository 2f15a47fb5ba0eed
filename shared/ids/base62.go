package ids

import "math/bits"

const base62Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

const (
	// base62U64Width is the fixed width of a base62 u64: 62^11 > 2^64.
	base62U64Width = 11
	// base62U128Width is the fixed width of a base62 u128: 62^22 > 2^128.
	base62U128Width = 22
)

// base62Digit maps an ASCII byte to its digit value, or 0xFF.
var base62Digit = func() [256]byte {
	var t [256]byte
	for i := range t {
		t[i] = 0xFF
	}
	for i := 0; i < len(base62Alphabet); i++ {
		t[base62Alphabet[i]] = byte(i)
	}
	return t
}()

// appendBase62 writes the 128-bit number hi:lo as exactly width digits, most significant first,
// left-padded with '0'. width must be large enough for the value.
func appendBase62(dst []byte, hi, lo uint64, width int) []byte {
	start := len(dst)
	for range width {
		dst = append(dst, '0')
	}
	for i := start + width - 1; i >= start && (hi != 0 || lo != 0); i-- {
		var r uint64
		hi, r = hi/62, hi%62
		lo, r = bits.Div64(r, lo, 62)
		dst[i] = base62Alphabet[r]
	}
	return dst
}

// parseBase62 decodes s as a 128-bit number, failing with ErrCodec on a foreign character or
// overflow.
func parseBase62(s string) (hi, lo uint64, err error) {
	for i := 0; i < len(s); i++ {
		d := base62Digit[s[i]]
		if d == 0xFF {
			return 0, 0, ErrCodec
		}
		// hi:lo = hi:lo*62 + d, watching every carry.
		carry, newLo := bits.Mul64(lo, 62)
		hiHi, newHi := bits.Mul64(hi, 62)
		if hiHi != 0 {
			return 0, 0, ErrCodec
		}
		newHi, c := bits.Add64(newHi, carry, 0)
		if c != 0 {
			return 0, 0, ErrCodec
		}
		newLo, c = bits.Add64(newLo, uint64(d), 0)
		newHi, c = bits.Add64(newHi, 0, c)
		if c != 0 {
			return 0, 0, ErrCodec
		}
		hi, lo = newHi, newLo
	}
	return hi, lo, nil
}
