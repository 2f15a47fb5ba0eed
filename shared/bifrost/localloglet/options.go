package localloglet

import "os"

// Size limits. Offsets inside a segment are stored as uint32 in the index, so a segment
// (at most MaxSegmentSize plus one batch of at most MaxBatchSize) must stay below 4 GiB.
const (
	// DefaultSegmentSize bounds what Open scans: older segments are read from their
	// summaries, only the last one record by record (see summary.go).
	DefaultSegmentSize = 16 << 20
	MaxSegmentSize     = 1 << 30
	DefaultCacheSize   = 64 << 20
	MaxPayloadSize     = 128 << 20
	MaxBatchSize       = 256 << 20
)

// Options tune a Store. The zero value is the production configuration.
type Options struct {
	// SegmentSize is the size at which the writer starts a new segment file
	// (default DefaultSegmentSize, at most MaxSegmentSize). One append's records always
	// land in one segment, so a segment may exceed it by one batch.
	SegmentSize int64
	// CacheSize bounds the bytes of recently written payloads kept in memory for tailing
	// readers (default DefaultCacheSize; negative disables the cache).
	CacheSize int64
	// NoSync skips fsync. Only for tests: appends are then not durable across a machine
	// crash.
	NoSync bool

	// syncFile replaces (*os.File).Sync in tests, to hold or fail an fsync.
	syncFile func(*os.File) error
}

func (o Options) withDefaults() Options {
	if o.SegmentSize <= 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.SegmentSize > MaxSegmentSize {
		o.SegmentSize = MaxSegmentSize
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.CacheSize < 0 {
		o.CacheSize = 0
	}
	return o
}
