package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"gorestate.dev/shared/logrecord"
)

// The binary encoding of an invocation status. Statuses are read and rewritten on every
// step of an invocation and retained for a day after it, so their size and their decoding
// cost show in throughput and in compaction. Layout, after the version byte:
//
//	phase u8 | target: service, handler, key, service type, handler type (strings)
//	idempotency key, invoked by (strings) | callers: count, then id (bytes), completion id,
//	notification type (uvarints) | created, modified, execution time (varints) | inbox seq,
//	attempt, journal length, command count (uvarints) | waiting completions, waiting
//	signals (count, uvarints), waiting names (count, strings) | completion retention,
//	journal retention, completed at (varints) | result: flags u8 (1 present, 2 failed),
//	then if present value (bytes), code (uvarint), message (string) | deployment id
//	(string), protocol version (uvarint), last failure (string)
//
// Strings and bytes are a uvarint length and the bytes. Stores written before this
// encoding hold JSON, which starts with '{'; both are read, and a status is written in the
// binary form the next time it changes.
const statusBinaryV1 = 1

var phaseCodes = []Phase{"", PhaseScheduled, PhaseInboxed, PhaseInvoked, PhaseSuspended, PhasePaused, PhaseCompleted}

func phaseCode(p Phase) (byte, error) {
	for i, q := range phaseCodes {
		if q == p && i > 0 {
			return byte(i), nil
		}
	}
	return 0, fmt.Errorf("unknown invocation phase %q", p)
}

// encodeStatus renders s in the binary encoding.
func encodeStatus(s *Status) ([]byte, error) {
	phase, err := phaseCode(s.Phase)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 96+len(s.Target.Service)+len(s.Target.Handler)+len(s.Target.Key)+len(s.IdempotencyKey))
	b = append(b, statusBinaryV1, phase)
	for _, str := range []string{s.Target.Service, s.Target.Handler, s.Target.Key, s.Target.ServiceType, s.Target.HandlerType, s.IdempotencyKey, s.InvokedBy} {
		b = appendString(b, str)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Callers)))
	for _, c := range s.Callers {
		b = appendString(b, string(c.InvocationID))
		b = binary.AppendUvarint(b, uint64(c.CompletionID))
		b = binary.AppendUvarint(b, uint64(c.NotificationType))
	}
	b = binary.AppendVarint(b, s.CreatedAt)
	b = binary.AppendVarint(b, s.ModifiedAt)
	b = binary.AppendVarint(b, s.ExecutionTime)
	b = binary.AppendUvarint(b, s.InboxSeq)
	for _, v := range []uint32{s.Attempt, s.JournalLen, s.CommandCount} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	for _, list := range [][]uint32{s.WaitingCompletions, s.WaitingSignals} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, v := range list {
			b = binary.AppendUvarint(b, uint64(v))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(s.WaitingNames)))
	for _, n := range s.WaitingNames {
		b = appendString(b, n)
	}
	b = binary.AppendVarint(b, s.CompletionRetentionMs)
	b = binary.AppendVarint(b, s.JournalRetentionMs)
	b = binary.AppendVarint(b, s.CompletedAt)
	if r := s.Result; r == nil {
		b = append(b, 0)
	} else {
		flags := byte(1)
		if r.Failed {
			flags |= 2
		}
		b = append(b, flags)
		b = appendString(b, string(r.Value))
		b = binary.AppendUvarint(b, uint64(r.Code))
		b = appendString(b, r.Message)
	}
	b = appendString(b, s.DeploymentID)
	b = binary.AppendUvarint(b, uint64(s.ProtocolVersion))
	b = appendString(b, s.LastFailure)
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errStatusEncoding = errors.New("malformed invocation status")

// decodeStatus reads a status in either encoding.
func decodeStatus(v []byte) (*Status, error) {
	if len(v) > 0 && v[0] == '{' {
		s := &Status{}
		if err := json.Unmarshal(v, s); err != nil {
			return nil, fmt.Errorf("decode invocation status: %w", err)
		}
		return s, nil
	}
	if len(v) == 0 || v[0] != statusBinaryV1 {
		return nil, fmt.Errorf("decode invocation status: %w: unknown encoding %d", errStatusEncoding, firstByte(v))
	}
	r := statusReader{b: v[1:]}
	s := &Status{}
	if p := r.byte(); int(p) < len(phaseCodes) && p > 0 {
		s.Phase = phaseCodes[p]
	} else {
		r.fail()
	}
	s.Target = logrecord.Target{Service: r.string(), Handler: r.string(), Key: r.string(), ServiceType: r.string(), HandlerType: r.string()}
	s.IdempotencyKey, s.InvokedBy = r.string(), r.string()
	if n := r.count(); n > 0 {
		s.Callers = make([]logrecord.Caller, n)
		for i := range s.Callers {
			s.Callers[i] = logrecord.Caller{InvocationID: r.bytes(), CompletionID: r.u32(), NotificationType: uint16(r.u32())}
		}
	}
	s.CreatedAt, s.ModifiedAt, s.ExecutionTime = r.varint(), r.varint(), r.varint()
	s.InboxSeq = r.uvarint()
	s.Attempt, s.JournalLen, s.CommandCount = r.u32(), r.u32(), r.u32()
	s.WaitingCompletions, s.WaitingSignals = r.u32s(), r.u32s()
	if n := r.count(); n > 0 {
		s.WaitingNames = make([]string, n)
		for i := range s.WaitingNames {
			s.WaitingNames[i] = r.string()
		}
	}
	s.CompletionRetentionMs, s.JournalRetentionMs, s.CompletedAt = r.varint(), r.varint(), r.varint()
	switch flags := r.byte(); {
	case flags == 0:
	case flags&^3 != 0 || flags&1 == 0:
		r.fail()
	default:
		res := &Result{Failed: flags&2 != 0, Value: r.bytes()}
		res.Code, res.Message = r.u32(), r.string()
		s.Result = res
	}
	s.DeploymentID, s.ProtocolVersion, s.LastFailure = r.string(), r.u32(), r.string()
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode invocation status: %w", r.err)
	}
	return s, nil
}

func firstByte(v []byte) int {
	if len(v) == 0 {
		return -1
	}
	return int(v[0])
}

// statusReader reads the binary encoding; after the first error every read returns a zero
// value and err stays set.
type statusReader struct {
	b   []byte
	err error
}

func (r *statusReader) fail() {
	if r.err == nil {
		r.err = errStatusEncoding
	}
	r.b = nil
}

func (r *statusReader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *statusReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *statusReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *statusReader) u32() uint32 {
	v := r.uvarint()
	if v > 1<<32-1 {
		r.fail()
		return 0
	}
	return uint32(v)
}

// count reads a list length, which cannot exceed the bytes left (every element takes one).
func (r *statusReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	return int(n)
}

func (r *statusReader) bytes() []byte {
	n := r.count()
	if r.err != nil || n == 0 {
		return nil
	}
	out := append([]byte(nil), r.b[:n]...)
	r.b = r.b[n:]
	return out
}

func (r *statusReader) string() string {
	n := r.count()
	if r.err != nil {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *statusReader) u32s() []uint32 {
	n := r.count()
	if n == 0 {
		return nil
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = r.u32()
	}
	return out
}

// DecodeStatus reads a stored status value in either encoding (tests and diagnostics).
func DecodeStatus(v []byte) (*Status, error) { return decodeStatus(v) }
