package ids

import "time"

// crockford is the alphabet of ULIDs' text form (Crockford's base32: no I, L, O, U).
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewULIDString returns a new ULID in its 26-character text form (48 bits of milliseconds
// since the epoch, then 80 random bits), as Restate's ingress generates the idempotency key
// it gives a request that has none.
func NewULIDString(now time.Time) string {
	return formatULID(newULID(now))
}

// formatULID writes the 128 bits of u as 26 base32 digits, most significant first (the
// first digit carries the top 3 bits).
func formatULID(u [16]byte) string {
	var out [26]byte
	// Take 5 bits at a time from the right: bit position p counts from the least
	// significant bit of u.
	for i := 25; i >= 0; i-- {
		p := (25 - i) * 5
		var v uint16
		for b := 0; b < 5; b++ {
			bit := p + b
			if bit >= 128 {
				break
			}
			if u[15-bit/8]>>(bit%8)&1 == 1 {
				v |= 1 << b
			}
		}
		out[i] = crockford[v]
	}
	return string(out[:])
}
