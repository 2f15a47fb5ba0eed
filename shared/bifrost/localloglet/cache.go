package localloglet

import "gorestate.dev/shared/bifrost"

// cacheRef records that payloads of l up to last (size encoded bytes) were cached by one
// append, so the oldest can be dropped first once the store's budget is exceeded.
type cacheRef struct {
	l    *Loglet
	last bifrost.Offset
	size int64
}

// cacheFIFO is the store-wide eviction order of cached payloads, oldest first. Only the
// writer goroutine touches it; the payloads themselves live in each Loglet.cache.
type cacheFIFO struct {
	refs  []cacheRef
	head  int
	bytes int64
}

func (c *cacheFIFO) push(r cacheRef) {
	c.refs = append(c.refs, r)
	c.bytes += r.size
}

// evict drops the oldest cached payloads until at most limit bytes remain.
func (c *cacheFIFO) evict(limit int64) {
	for c.bytes > limit && c.head < len(c.refs) {
		r := c.refs[c.head]
		c.refs[c.head] = cacheRef{}
		c.head++
		c.bytes -= r.size
		r.l.mu.Lock()
		r.l.dropCached(r.last)
		r.l.mu.Unlock()
	}
	// Compact so the slice does not grow without bound.
	if c.head > 1024 && c.head > len(c.refs)/2 {
		n := copy(c.refs, c.refs[c.head:])
		clear(c.refs[n:])
		c.refs = c.refs[:n]
		c.head = 0
	}
}

// dropCached removes cached payloads with offset <= upTo. Callers hold l.mu.
func (l *Loglet) dropCached(upTo bifrost.Offset) {
	start := l.durable - bifrost.Offset(len(l.cache))
	if upTo < start {
		return
	}
	k := int(min(upTo-start+1, bifrost.Offset(len(l.cache))))
	clear(l.cache[:k]) // release the frames they alias
	l.cache = l.cache[k:]
}
