package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"gorestate.dev/shared/bincodec"
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
//	(string), protocol version (uvarint), last failure (string) | inboxed at, scheduled at,
//	running at (varints; absent in statuses written before they were kept, read as 0)
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
	b = logrecord.AppendTarget(b, s.Target)
	b = bincodec.AppendString(b, s.IdempotencyKey)
	b = bincodec.AppendString(b, s.InvokedBy)
	b = binary.AppendUvarint(b, uint64(len(s.Callers)))
	for _, c := range s.Callers {
		b = logrecord.AppendCaller(b, c)
	}
	b = binary.AppendVarint(b, s.CreatedAt)
	b = binary.AppendVarint(b, s.ModifiedAt)
	b = binary.AppendVarint(b, s.ExecutionTime)
	b = binary.AppendUvarint(b, s.InboxSeq)
	for _, v := range []uint32{s.Attempt, s.JournalLen, s.CommandCount} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	b = bincodec.AppendU32s(b, s.WaitingCompletions)
	b = bincodec.AppendU32s(b, s.WaitingSignals)
	b = bincodec.AppendStrings(b, s.WaitingNames)
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
		b = bincodec.AppendBytes(b, r.Value)
		b = binary.AppendUvarint(b, uint64(r.Code))
		b = bincodec.AppendString(b, r.Message)
	}
	b = bincodec.AppendString(b, s.DeploymentID)
	b = binary.AppendUvarint(b, uint64(s.ProtocolVersion))
	b = bincodec.AppendString(b, s.LastFailure)
	b = binary.AppendVarint(b, s.InboxedAt)
	b = binary.AppendVarint(b, s.ScheduledAt)
	b = binary.AppendVarint(b, s.RunningAt)
	return b, nil
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
	r := &bincodec.Reader{B: v[1:]}
	s := &Status{}
	if p := r.Byte(); int(p) < len(phaseCodes) && p > 0 {
		s.Phase = phaseCodes[p]
	} else {
		r.Fail()
	}
	s.Target = logrecord.ReadTarget(r)
	s.IdempotencyKey, s.InvokedBy = r.String(), r.String()
	if n := r.Count(); n > 0 {
		s.Callers = make([]logrecord.Caller, n)
		for i := range s.Callers {
			s.Callers[i] = logrecord.ReadCaller(r)
		}
	}
	s.CreatedAt, s.ModifiedAt, s.ExecutionTime = r.Varint(), r.Varint(), r.Varint()
	s.InboxSeq = r.Uvarint()
	s.Attempt, s.JournalLen, s.CommandCount = r.U32(), r.U32(), r.U32()
	s.WaitingCompletions, s.WaitingSignals, s.WaitingNames = r.U32s(), r.U32s(), r.Strings()
	s.CompletionRetentionMs, s.JournalRetentionMs, s.CompletedAt = r.Varint(), r.Varint(), r.Varint()
	switch flags := r.Byte(); {
	case flags == 0:
	case flags&^3 != 0 || flags&1 == 0:
		r.Fail()
	default:
		res := &Result{Failed: flags&2 != 0, Value: r.Bytes()}
		res.Code, res.Message = r.U32(), r.String()
		s.Result = res
	}
	s.DeploymentID, s.ProtocolVersion, s.LastFailure = r.String(), r.U32(), r.String()
	if len(r.B) > 0 {
		s.InboxedAt, s.ScheduledAt, s.RunningAt = r.Varint(), r.Varint(), r.Varint()
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("decode invocation status: %w: %v", errStatusEncoding, err)
	}
	return s, nil
}

// StatusHead is what the binary encoding of a status leads with: enough to filter a scan
// of retained invocations without decoding (and allocating) the rest. Service and Handler
// alias the stored value: they are valid only during the callback that receives them.
type StatusHead struct {
	Phase            Phase
	Service, Handler []byte
}

// Head returns the head of s, for the filters written against StatusHead.
func (s *Status) Head() StatusHead {
	return StatusHead{Phase: s.Phase, Service: []byte(s.Target.Service), Handler: []byte(s.Target.Handler)}
}

// decodeStatusHead reads the head of a binary status; false for a JSON status and for a
// malformed head, which the full decode then reports. Damage after the head goes unnoticed
// when the head is all a scan needs (a filter refuses the status).
func decodeStatusHead(v []byte) (StatusHead, bool) {
	if len(v) < 2 || v[0] != statusBinaryV1 || int(v[1]) >= len(phaseCodes) || v[1] == 0 {
		return StatusHead{}, false
	}
	r := &bincodec.Reader{B: v[2:]}
	h := StatusHead{Phase: phaseCodes[v[1]], Service: r.View(), Handler: r.View()}
	return h, r.Err == nil
}

func firstByte(v []byte) int {
	if len(v) == 0 {
		return -1
	}
	return int(v[0])
}

// DecodeStatus reads a stored status value in either encoding (tests and diagnostics).
func DecodeStatus(v []byte) (*Status, error) { return decodeStatus(v) }
