// Package bifrost owns the log abstraction: one virtual log per partition made of a chain
// of segments (kept in the metadata store), each stored by a loglet from a provider. Callers
// append batches and read from an LSN; every append returns only once its records are
// committed (fsynced locally, or stored on a write quorum of log servers).
//
// Two layers:
//   - Loglet: one segment's storage, addressed by Offset (1 is the oldest). Providers
//     (ProviderLocal, ProviderReplicated) open loglets from a segment's parameters.
//   - Log: the virtual log a partition processor uses, addressed by LSN. It maps LSNs to
//     (segment, offset), appends to the open tail segment, reads across segments and, on the
//     partition leader's node, seals and extends the chain (one compare-and-set on the logs
//     object, so exactly one successor per segment).
package bifrost

import (
	"context"
	"errors"
	"fmt"

	"gorestate.dev/shared/metadata"
)

// Provider names, as they appear in segment chains, the cluster configuration and
// [bifrost] default-provider. This is the only place they are spelled.
const (
	ProviderLocal      = "local"
	ProviderReplicated = "replicated"
)

// Providers lists every provider name.
func Providers() []string { return []string{ProviderLocal, ProviderReplicated} }

// LSN is a log sequence number, global to one virtual log. The first record of a log has
// LSN 1; 0 means "none".
type LSN uint64

// Offset is a record's position inside one loglet. The first record has offset 1; 0 means
// "none". lsn = segment base LSN + offset - 1.
type Offset uint64

// Entry is one record read back from a virtual log.
type Entry struct {
	LSN     LSN
	Payload []byte
}

// Record is one record read back from a loglet.
type Record struct {
	Offset  Offset
	Payload []byte
}

// TailState is a loglet's tail: every offset below Offset is committed; with Sealed, nothing
// at or above it ever will be.
type TailState struct {
	Offset Offset
	Sealed bool
}

func (t TailState) String() string {
	if t.Sealed {
		return fmt.Sprintf("sealed(%d)", t.Offset)
	}
	return fmt.Sprintf("open(%d)", t.Offset)
}

// ErrClosed is returned by operations on a closed loglet or store.
var ErrClosed = errors.New("bifrost: closed")

// ErrTrimmed is returned when reading at or below the trim point; the error is a
// *TrimmedError saying where readable records start.
var ErrTrimmed = errors.New("bifrost: trimmed")

// ErrSealed is returned by appends to a sealed loglet and by reads at or past a sealed
// loglet's tail. Appends fail with a *SealedError.
var ErrSealed = errors.New("bifrost: sealed")

// ErrReconfigurationNeeded is returned by appends that cannot proceed on this loglet (its
// sequencer is gone or unreachable, or too few log servers of its nodeset can take writes):
// the chain must be sealed and extended.
var ErrReconfigurationNeeded = errors.New("bifrost: loglet needs reconfiguration")

// TrimmedError is a read at or below the trim point. It matches ErrTrimmed.
type TrimmedError struct {
	TrimPoint Offset // highest trimmed offset: reads may start at TrimPoint+1
}

func (e *TrimmedError) Error() string {
	return fmt.Sprintf("bifrost: trimmed up to offset %d", e.TrimPoint)
}

// Is makes errors.Is(err, ErrTrimmed) true.
func (e *TrimmedError) Is(target error) bool { return target == ErrTrimmed }

// SealedError is an append that a sealed loglet refused. First is the offset the loglet had
// assigned to the batch (0 if none): once the sealed tail T is known, a batch with
// First+n-1 < T is committed after all (a sealer may include records stored on a log server
// whose acknowledgement never reached the writer), and one with First >= T is not. It
// matches ErrSealed.
type SealedError struct {
	First Offset
}

func (e *SealedError) Error() string {
	if e.First == 0 {
		return "bifrost: loglet sealed"
	}
	return fmt.Sprintf("bifrost: loglet sealed (batch was assigned offset %d)", e.First)
}

// Is makes errors.Is(err, ErrSealed) true.
func (e *SealedError) Is(target error) bool { return target == ErrSealed }

// Loglet is the storage of one log segment. Offsets are contiguous from 1.
type Loglet interface {
	// Append stores payloads and returns the offset of the first one once all of them are
	// committed; the others follow contiguously. A sealed loglet refuses with a
	// *SealedError.
	Append(ctx context.Context, payloads [][]byte) (Offset, error)
	// AppendAsync enqueues payloads and calls done once they are committed (or failed).
	// Batches enqueued from one goroutine get increasing offsets and their done calls run in
	// enqueue order. AppendAsync may block while too much is in flight (backpressure); done
	// must not block. A loglet that refuses a batch (sealed, or needing reconfiguration)
	// refuses every batch enqueued after it, so none of them commits ahead of the refused
	// one's re-append (until ResumeAppends, for a Resumer).
	AppendAsync(payloads [][]byte, done func(first Offset, err error))
	// Read returns up to max committed records with offset >= from, in order, without gaps.
	// It blocks until at least one is available or ctx ends. Reading at or below the trim
	// point returns a *TrimmedError; reading at or past the tail of a sealed loglet returns
	// ErrSealed.
	Read(ctx context.Context, from Offset, max int) ([]Record, error)
	// FindTail returns the committed tail and whether the loglet is sealed.
	FindTail(ctx context.Context) (TailState, error)
	// Seal stops the loglet from accepting appends and returns the sealed tail: every
	// offset below it is committed and readable, nothing at or above it ever will be.
	// Sealing a sealed loglet returns the same tail.
	Seal(ctx context.Context) (Offset, error)
	// Trim allows the loglet to drop records with offset <= upTo (clipped to the tail).
	Trim(ctx context.Context, upTo Offset) error
	// TrimPoint returns the highest trimmed offset (0 if none).
	TrimPoint(ctx context.Context) (Offset, error)
}

// A Resumer is a loglet whose refusals for want of reconfiguration can be transient (a
// sequencer on another node that was unreachable for a moment): after one, it refuses
// every batch until ResumeAppends. The virtual log calls it once every batch handed to
// the loglet before has resolved, right before it hands the refused ones over again.
type Resumer interface {
	ResumeAppends()
}

// Provider opens the loglets of one provider kind.
type Provider interface {
	// Kind is the provider's name (ProviderLocal, ProviderReplicated).
	Kind() string
	// Open returns the loglet of a segment. Opening the same segment twice returns the same
	// loglet.
	Open(ctx context.Context, seg metadata.Segment) (Loglet, error)
}

// Registry maps provider names to providers.
type Registry map[string]Provider

// Open opens a segment's loglet with the provider the segment names.
func (r Registry) Open(ctx context.Context, seg metadata.Segment) (Loglet, error) {
	p, ok := r[seg.Provider]
	if !ok {
		return nil, fmt.Errorf("bifrost: segment %d (loglet %d) needs provider %q, which this node does not run", seg.Index, seg.LogletID, seg.Provider)
	}
	return p.Open(ctx, seg)
}

// LogletID is the id of the loglet of a log's segment: log id in the high 32 bits, segment
// index in the low ones. Never reused.
func LogletID(logID uint32, index uint32) uint64 { return uint64(logID)<<32 | uint64(index) }

// Log is a virtual log as its users (partition processors, the shuffler) see it: LSNs across
// every segment of the chain.
type Log interface {
	// Append stores payloads and returns the LSN of the first one once all are committed.
	Append(ctx context.Context, payloads [][]byte) (LSN, error)
	// AppendAsync enqueues payloads and calls done once they are committed (or failed).
	// Batches enqueued from one goroutine keep their order. It may block for backpressure;
	// done must not block.
	AppendAsync(payloads [][]byte, done func(first LSN, err error))
	// Read returns up to max committed entries with LSN >= from, in order, blocking until at
	// least one is available or ctx ends. Reading at or below the trim point returns an
	// error matching ErrTrimmed.
	Read(ctx context.Context, from LSN, max int) ([]Entry, error)
	// Tail is the LSN after the last record known to be committed. It may be stale, never
	// too high.
	Tail() LSN
	// FindTail asks the storage for the committed tail (the LSN the next record will get).
	FindTail(ctx context.Context) (LSN, error)
	// TrimPrefix allows the log to drop entries with LSN <= upTo.
	TrimPrefix(ctx context.Context, upTo LSN) error
}
