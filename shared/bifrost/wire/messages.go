// Package wire owns the messages of the replicated loglet: what sequencers, readers and
// sealers send to log servers (Store, Seal, GetLogletInfo, GetRecords, Trim, WaitForTail,
// GetDigest), what writers on other nodes send to a loglet's sequencer (Append,
// GetSequencerState), their compact binary encoding, and the streams (frame.go) and
// paths that carry them over the fabric port.
//
// Every request names a loglet and carries the sender's known global tail; every response
// carries the server's local tail, its known global tail, the seal bit and a Status saying
// why a request was refused.
package wire

import (
	"context"
	"fmt"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
)

// Status is a log server's or sequencer's verdict on a request. Numeric values are stable
// (they are on the wire): only ever append.
type Status uint8

// Statuses.
const (
	StatusOK Status = iota
	// StatusDisabled: the server's storage failed or it is not serving (data loss).
	StatusDisabled
	// StatusDropped: the store's deadline passed before it could be written.
	StatusDropped
	// StatusSealed: the loglet is sealed; only repair stores are accepted.
	StatusSealed
	// StatusSealing: a seal is being written; a repair store should retry.
	StatusSealing
	// StatusSequencerMismatch: the store comes from another sequencer than the one pinned
	// for the loglet, or rewrites offsets it should not.
	StatusSequencerMismatch
	// StatusOutOfBounds: the store's first offset is ahead of what the server may accept
	// (above both its local tail and the known global tail).
	StatusOutOfBounds
	// StatusMalformed: the request is invalid (no payloads, offset 0, overflow, bad range).
	StatusMalformed
	// StatusDataLoss: the server lost its storage; it must not be counted as a replica.
	StatusDataLoss
	// StatusNotSequencer: an Append reached a node that is not the loglet's sequencer.
	StatusNotSequencer
)

var statusNames = [...]string{"ok", "disabled", "dropped", "sealed", "sealing", "sequencer-mismatch", "out-of-bounds", "malformed", "data-loss", "not-sequencer"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Header starts every request to a log server.
type Header struct {
	LogletID uint64
	// KnownGlobalTail is the sender's committed tail: every offset below it is committed.
	// The server raises its own known global tail to it.
	KnownGlobalTail bifrost.Offset
}

// ResponseHeader starts every response of a log server.
type ResponseHeader struct {
	Status          Status
	LocalTail       bifrost.Offset // 1 + highest offset the server holds durably
	KnownGlobalTail bifrost.Offset
	Sealed          bool
}

// StoreFlags modify a Store.
type StoreFlags uint8

// FlagIgnoreSeal marks a repair store: accepted even when the loglet is sealed.
const FlagIgnoreSeal StoreFlags = 1

// Store asks a server to store payloads at FirstOffset, FirstOffset+1, …
type Store struct {
	Header
	// TimeoutAt is a deadline in Unix milliseconds after which the server drops the store
	// instead of writing it (0: none).
	TimeoutAt   int64
	Flags       StoreFlags
	FirstOffset bifrost.Offset
	Sequencer   metadata.NodeID
	Payloads    [][]byte
}

// Stored answers a Store once the records are durable (or refused).
type Stored struct{ ResponseHeader }

// Seal asks a server to seal a loglet.
type Seal struct {
	Header
	Sequencer metadata.NodeID
}

// Sealed answers a Seal once the seal is durable; LocalTail is the sealed local tail.
type Sealed struct{ ResponseHeader }

// GetLogletInfo asks for a server's view of a loglet.
type GetLogletInfo struct{ Header }

// LogletInfo is a server's view of a loglet.
type LogletInfo struct {
	ResponseHeader
	TrimPoint bifrost.Offset
}

// GetRecords asks for the records a server holds in [From, To] (To clipped to the server's
// local tail - 1), up to about LimitBytes of payload (at least one record is returned).
type GetRecords struct {
	Header
	From, To   bifrost.Offset
	LimitBytes uint32
}

// RecordKind says what a returned record is.
type RecordKind uint8

// Record kinds.
const (
	RecordData    RecordKind = iota
	RecordTrimGap            // offsets [Offset, GapTo] were trimmed
)

// LogRecord is one item of a Records answer.
type LogRecord struct {
	Offset  bifrost.Offset
	Kind    RecordKind
	GapTo   bifrost.Offset // for RecordTrimGap: last trimmed offset
	Payload []byte         // for RecordData
}

// Records answers GetRecords: every record the server holds in the range (holes skipped),
// a leading trim gap if From is at or below the trim point, and where to continue.
type Records struct {
	ResponseHeader
	NextOffset bifrost.Offset
	Records    []LogRecord
}

// Trim asks a server to drop records with offset <= TrimPoint.
type Trim struct {
	Header
	TrimPoint bifrost.Offset
}

// Trimmed answers a Trim once the new trim point is durable.
type Trimmed struct{ ResponseHeader }

// TailQuery says which tail WaitForTail waits for.
type TailQuery uint8

// Tail queries.
const (
	WaitLocalTail         TailQuery = iota // local tail >= Offset
	WaitGlobalTail                         // known global tail >= Offset
	WaitLocalOrGlobalTail                  // either
)

// WaitForTail blocks until the chosen tail reaches Offset, or the loglet is sealed.
type WaitForTail struct {
	Header
	Query  TailQuery
	Offset bifrost.Offset
}

// TailUpdated answers WaitForTail.
type TailUpdated struct{ ResponseHeader }

// GetDigest asks which offsets in [From, To] a server holds (for repair).
type GetDigest struct {
	Header
	From, To bifrost.Offset
}

// DigestStatus says what a server holds in a digest range.
type DigestStatus uint8

// Digest statuses.
const (
	DigestExists DigestStatus = iota
	DigestTrimmed
)

// DigestEntry is one run of a digest: offsets [From, To] all have Status.
type DigestEntry struct {
	From, To bifrost.Offset
	Status   DigestStatus
}

// Digest answers GetDigest with runs in increasing order; offsets in no run are missing.
type Digest struct {
	ResponseHeader
	Entries []DigestEntry
}

// Append asks a loglet's sequencer (on another node) to append payloads.
type Append struct {
	LogID        uint32
	SegmentIndex uint32
	LogletID     uint64
	Payloads     [][]byte
}

// Appended answers an Append once the payloads are committed (or refused): FirstOffset is
// the first payload's offset.
type Appended struct {
	Status          Status
	KnownGlobalTail bifrost.Offset
	Sealed          bool
	FirstOffset     bifrost.Offset
}

// GetSequencerState asks a loglet's sequencer for its committed tail.
type GetSequencerState struct {
	LogletID uint64
}

// SequencerState answers GetSequencerState.
type SequencerState struct {
	Status          Status
	KnownGlobalTail bifrost.Offset
	Sealed          bool
}

// LogServer is the API of one log server: logserverd's server implements it in process,
// and Client over the network. Errors are transport failures; refusals are Statuses.
type LogServer interface {
	Store(ctx context.Context, req *Store) (*Stored, error)
	Seal(ctx context.Context, req *Seal) (*Sealed, error)
	GetLogletInfo(ctx context.Context, req *GetLogletInfo) (*LogletInfo, error)
	GetRecords(ctx context.Context, req *GetRecords) (*Records, error)
	Trim(ctx context.Context, req *Trim) (*Trimmed, error)
	WaitForTail(ctx context.Context, req *WaitForTail) (*TailUpdated, error)
	GetDigest(ctx context.Context, req *GetDigest) (*Digest, error)
}

// StoreStarter is a LogServer that takes a Store in two steps: StartStore applies the
// acceptance rules and queues the records at once; wait waits for the answer, and ready
// says the answer is known already (the store was refused, or made durable while it
// started), so wait returns without blocking. With commit the caller lends its goroutine
// for the group commit (a stream's reader does when it has no further request at hand);
// otherwise the server's writer commits. A stream starts the stores it carries in the
// order they came, so a sequencer may keep several stores to one server in flight without
// them overtaking each other; it answers a ready store at once, on its reader.
type StoreStarter interface {
	StartStore(req *Store, commit bool) (wait func(context.Context) (*Stored, error), ready bool)
}

// StoreSender is a LogServer that sends a Store at once and delivers its answer to a
// callback: stores that one goroutine sends reach the server in that order. done is called
// exactly once, possibly on a goroutine that reads the network for other calls too, so it
// must not block.
type StoreSender interface {
	SendStore(ctx context.Context, req *Store, done func(*Stored, error))
}

// Sequencer is the API a node running sequencers offers to writers on other nodes.
type Sequencer interface {
	Append(ctx context.Context, req *Append) (*Appended, error)
	GetSequencerState(ctx context.Context, req *GetSequencerState) (*SequencerState, error)
}

// Network finds the log servers and sequencers of the cluster by node name.
type Network interface {
	LogServer(node string) (LogServer, error)
	Sequencer(node string) (Sequencer, error)
}
