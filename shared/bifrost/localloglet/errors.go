package localloglet

import "errors"

// ErrStoreFailed wraps the first write or fsync error of a store. Once it happens every
// pending and later append fails with it: after a failed fsync the kernel may have dropped
// dirty pages, so the only safe continuation is a restart that recovers from the files.
var ErrStoreFailed = errors.New("localloglet: store failed")

// ErrEmptyBatch is returned for an append without payloads: it would have no first offset.
var ErrEmptyBatch = errors.New("localloglet: empty batch")

// ErrTooLarge is returned for a payload larger than MaxPayloadSize or a batch whose encoded
// size exceeds MaxBatchSize.
var ErrTooLarge = errors.New("localloglet: record or batch too large")

// ErrCorrupt is wrapped by Open when a segment holds damage other than a torn tail, or when
// the records of a loglet are not contiguous.
var ErrCorrupt = errors.New("localloglet: corrupt log")
