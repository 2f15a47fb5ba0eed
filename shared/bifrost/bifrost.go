// Package bifrost owns the log abstraction: one virtual log per partition made of a chain
// of segments, each stored by a loglet. Callers append batches and read from an LSN; every
// append returns only once its records are durable.
package bifrost

import (
	"context"
	"errors"
)

// LSN is a log sequence number, global to one virtual log. The first record of a log has
// LSN 1; 0 means "none".
type LSN uint64

// Entry is one record read back from a log.
type Entry struct {
	LSN     LSN
	Payload []byte
}

// ErrClosed is returned by operations on a closed loglet or store.
var ErrClosed = errors.New("bifrost: closed")

// ErrTrimmed is returned when reading below the trim point.
var ErrTrimmed = errors.New("bifrost: trimmed")

// Loglet is the storage of one log segment. All LSNs handed out by a loglet are contiguous.
type Loglet interface {
	// Append stores payloads durably (fsynced or on a write quorum) and returns the LSN of
	// the first one; the others follow contiguously. Appends are group-committed: many
	// concurrent calls share one fsync.
	Append(ctx context.Context, payloads [][]byte) (LSN, error)
	// AppendAsync enqueues payloads and calls done once they are durable (or failed).
	// Batches enqueued from one goroutine are stored, and done is called, in enqueue order.
	// done must not block.
	AppendAsync(payloads [][]byte, done func(first LSN, err error))
	// Read returns up to max entries with LSN >= from, in order. It blocks until at least one
	// durable entry is available or ctx is done.
	Read(ctx context.Context, from LSN, max int) ([]Entry, error)
	// Tail is the LSN the next append will get; every LSN below it is durable.
	Tail() LSN
	// TrimPrefix allows the loglet to drop entries with LSN <= upTo.
	TrimPrefix(ctx context.Context, upTo LSN) error
}
