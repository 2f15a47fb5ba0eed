package replicated

import "gorestate.dev/shared/bifrost"

// recordCache holds the payloads of a contiguous run of offsets [base, base+len(recs)).
// The sequencer keeps every uncommitted record here (senders read their stores from it)
// plus the newest committed ones for local readers; a remote loglet keeps its readers'
// read-ahead here. Callers serialize access.
type recordCache struct {
	base  bifrost.Offset
	recs  [][]byte
	head  int // recs[:head] are evicted (kept to avoid copying on every eviction)
	bytes int64
}

func (c *recordCache) start() bifrost.Offset { return c.base + bifrost.Offset(c.head) }
func (c *recordCache) end() bifrost.Offset   { return c.base + bifrost.Offset(len(c.recs)) }

// put adds records at first. A run that does not continue the cached one replaces it.
func (c *recordCache) put(first bifrost.Offset, payloads [][]byte) {
	if len(payloads) == 0 {
		return
	}
	if c.head == len(c.recs) || first < c.start() || first > c.end() {
		c.reset(first)
	}
	if skip := int(c.end() - first); skip > 0 {
		// Overlap with what is cached: same offsets, same records.
		if skip >= len(payloads) {
			return
		}
		payloads = payloads[skip:]
	}
	for _, p := range payloads {
		c.recs = append(c.recs, p)
		c.bytes += int64(len(p))
	}
}

func (c *recordCache) reset(base bifrost.Offset) {
	c.base, c.recs, c.head, c.bytes = base, nil, 0, 0
}

// get returns the payload at o.
func (c *recordCache) get(o bifrost.Offset) ([]byte, bool) {
	if o < c.start() || o >= c.end() {
		return nil, false
	}
	return c.recs[o-c.base], true
}

// slice returns the cached payloads of [from, to), shortened to what is cached; nothing if
// the range is empty (a caller may bound to by a tail below from: a sequencer that has not
// heard of commits a seal by another node found).
func (c *recordCache) slice(from, to bifrost.Offset) [][]byte {
	if from < c.start() || from >= c.end() || to <= from {
		return nil
	}
	to = min(to, c.end())
	return c.recs[from-c.base : to-c.base]
}

// evictBelow drops the records below o.
func (c *recordCache) evictBelow(o bifrost.Offset) {
	for c.head < len(c.recs) && c.start() < o {
		c.bytes -= int64(len(c.recs[c.head]))
		c.recs[c.head] = nil
		c.head++
	}
	c.compact()
}

// evictOver drops the oldest records below keepFrom while the cache holds more than limit
// bytes. Records at or above keepFrom (uncommitted ones) are never dropped.
func (c *recordCache) evictOver(limit int64, keepFrom bifrost.Offset) {
	for c.bytes > limit && c.head < len(c.recs) && c.start() < keepFrom {
		c.bytes -= int64(len(c.recs[c.head]))
		c.recs[c.head] = nil
		c.head++
	}
	c.compact()
}

// compact reclaims the evicted prefix once it is at least half of the slice.
func (c *recordCache) compact() {
	if c.head == len(c.recs) {
		c.base += bifrost.Offset(c.head)
		c.recs, c.head = c.recs[:0], 0
		return
	}
	if c.head > 64 && c.head*2 >= len(c.recs) {
		n := copy(c.recs, c.recs[c.head:])
		clear(c.recs[n:])
		c.recs = c.recs[:n]
		c.base += bifrost.Offset(c.head)
		c.head = 0
	}
}
