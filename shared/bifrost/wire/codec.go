package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"

	"gorestate.dev/shared/metadata"
)

// Encoding. A message is its type code (uvarint) followed by its fields in declaration order:
// unsigned integers (enums and bools too, one byte for every defined value) as minimal
// uvarints, TimeoutAt as a zig-zag varint, byte strings and lists as a uvarint length
// followed by the bytes or the items.
// Nothing else: no field tags, so a field is only ever added by adding a new message type.
//
// Decoding is strict so that whatever Unmarshal accepts re-encodes to the same bytes: varints
// must be minimal, bools 0 or 1, every length and count is checked against the bytes left
// before anything is allocated, and trailing bytes are an error.

// Limits of one message. Marshal refuses what Unmarshal would refuse.
const (
	// MaxPayloadBytes bounds the sum of the payload lengths of one message.
	MaxPayloadBytes = 64 << 20
	// MaxItems bounds the number of payloads, records or digest entries of one message: a
	// count is checked against the bytes left, but a tiny item still costs a slice header,
	// so the count needs its own bound.
	MaxItems = 1 << 16
	// MaxNameBytes bounds a node name.
	MaxNameBytes = 1024
	// MaxMessageBytes bounds an encoded message: the payload limit plus room for the
	// framing of MaxItems items.
	MaxMessageBytes = MaxPayloadBytes + 8<<20
)

// ErrMalformed is matched by every decoding error.
var ErrMalformed = errors.New("wire: malformed message")

// message is implemented by every message type: code describes its fields once, for sizing,
// encoding and decoding alike, so the three can never disagree.
type message interface{ code(*coder) }

// messageTypes maps each type code to its message. Codes are on the wire: only ever append,
// never reuse or renumber. Code 0 is invalid.
var messageTypes = [...]struct {
	name string
	new  func() message
}{
	1:  {"Store", func() message { return new(Store) }},
	2:  {"Stored", func() message { return new(Stored) }},
	3:  {"Seal", func() message { return new(Seal) }},
	4:  {"Sealed", func() message { return new(Sealed) }},
	5:  {"GetLogletInfo", func() message { return new(GetLogletInfo) }},
	6:  {"LogletInfo", func() message { return new(LogletInfo) }},
	7:  {"GetRecords", func() message { return new(GetRecords) }},
	8:  {"Records", func() message { return new(Records) }},
	9:  {"Trim", func() message { return new(Trim) }},
	10: {"Trimmed", func() message { return new(Trimmed) }},
	11: {"WaitForTail", func() message { return new(WaitForTail) }},
	12: {"TailUpdated", func() message { return new(TailUpdated) }},
	13: {"GetDigest", func() message { return new(GetDigest) }},
	14: {"Digest", func() message { return new(Digest) }},
	15: {"Append", func() message { return new(Append) }},
	16: {"Appended", func() message { return new(Appended) }},
	17: {"GetSequencerState", func() message { return new(GetSequencerState) }},
	18: {"SequencerState", func() message { return new(SequencerState) }},
}

// typeCodes is the inverse of messageTypes, keyed by the pointer type.
var typeCodes = func() map[reflect.Type]uint64 {
	m := make(map[reflect.Type]uint64, len(messageTypes))
	for code, t := range messageTypes {
		if t.new != nil {
			m[reflect.TypeOf(t.new())] = uint64(code)
		}
	}
	return m
}()

// Marshal encodes a message, given as a pointer (*Store, *Stored, …).
func Marshal(msg any) ([]byte, error) {
	code, ok := typeCodes[reflect.TypeOf(msg)]
	if !ok {
		return nil, fmt.Errorf("wire: cannot marshal %T: not a message pointer", msg)
	}
	m := msg.(message)
	if reflect.ValueOf(m).IsNil() {
		return nil, fmt.Errorf("wire: cannot marshal a nil %T", msg)
	}
	name := messageTypes[code].name
	// Size first, so that a message with large payloads is copied exactly once.
	sz := coder{mode: modeSize, msg: name}
	sz.uvarint("type", &code)
	m.code(&sz)
	if sz.err != nil {
		return nil, sz.err
	}
	if sz.pos > MaxMessageBytes {
		return nil, fmt.Errorf("wire: %s is %d bytes encoded, over the limit of %d", name, sz.pos, MaxMessageBytes)
	}
	enc := coder{mode: modeEncode, msg: name, buf: make([]byte, 0, sz.pos)}
	enc.uvarint("type", &code)
	m.code(&enc)
	if enc.err != nil {
		return nil, enc.err
	}
	return enc.buf, nil
}

// Unmarshal decodes one message and returns it as a pointer (*Store, *Stored, …). Payloads
// of the result share memory with b. Every error matches ErrMalformed and names the message
// and field that were wrong.
func Unmarshal(b []byte) (any, error) {
	if len(b) > MaxMessageBytes {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrMalformed, len(b), MaxMessageBytes)
	}
	c := coder{mode: modeDecode, msg: "message", buf: b}
	var code uint64
	c.uvarint("type", &code)
	if c.err != nil {
		return nil, c.err
	}
	if code >= uint64(len(messageTypes)) || messageTypes[code].new == nil {
		return nil, fmt.Errorf("%w: unknown message type %d", ErrMalformed, code)
	}
	t := messageTypes[code]
	m := t.new()
	c.msg = t.name
	m.code(&c)
	if c.err != nil {
		return nil, c.err
	}
	if c.pos != len(b) {
		return nil, fmt.Errorf("%w: %s: %d trailing bytes", ErrMalformed, t.name, len(b)-c.pos)
	}
	return m, nil
}

// MessageName is the name of a message's type as errors spell it ("Store"), or its Go type
// when it is not a message.
func MessageName(msg any) string {
	if code, ok := typeCodes[reflect.TypeOf(msg)]; ok {
		return messageTypes[code].name
	}
	return fmt.Sprintf("%T", msg)
}

type coderMode uint8

const (
	modeSize coderMode = iota
	modeEncode
	modeDecode
)

// coder runs a message's field list in one of three modes. In modeSize pos counts bytes; in
// modeEncode buf is the output; in modeDecode buf is the input and pos the read position.
// The first error sticks and turns every later step into a no-op.
type coder struct {
	mode         coderMode
	buf          []byte
	pos          int
	msg          string // message name, for errors
	list         string // list being coded, for errors ("" outside lists)
	idx          int    // item index inside list
	payloadBytes int    // payload bytes so far
	err          error
}

func (c *coder) fail(field, format string, args ...any) {
	if c.err != nil {
		return
	}
	path := field
	if c.list != "" {
		path = fmt.Sprintf("%s[%d]", c.list, c.idx)
		if field != "" {
			path += "." + field
		}
	}
	c.err = fmt.Errorf("%w: %s.%s: %s", ErrMalformed, c.msg, path, fmt.Sprintf(format, args...))
}

// failEncode reports a message Marshal must refuse; it does not match ErrMalformed, since
// the bytes were never malformed, the value was out of range.
func (c *coder) failEncode(field, format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("wire: cannot marshal %s.%s: %s", c.msg, field, fmt.Sprintf(format, args...))
	}
}

func (c *coder) uvarint(field string, v *uint64) {
	if c.err != nil {
		return
	}
	switch c.mode {
	case modeSize:
		c.pos += uvarintLen(*v)
	case modeEncode:
		c.buf = binary.AppendUvarint(c.buf, *v)
	case modeDecode:
		x, n := binary.Uvarint(c.buf[c.pos:])
		switch {
		case n == 0:
			c.fail(field, "truncated varint at byte %d", c.pos)
			return
		case n < 0:
			c.fail(field, "varint at byte %d overflows 64 bits", c.pos)
			return
		case n > 1 && c.buf[c.pos+n-1] == 0:
			c.fail(field, "non-minimal varint at byte %d", c.pos)
			return
		}
		c.pos += n
		*v = x
	}
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// num codes an unsigned integer of any width as a uvarint; decoding rejects values that do
// not fit the field.
func num[T ~uint8 | ~uint32 | ~uint64](c *coder, field string, v *T) {
	x := uint64(*v)
	c.uvarint(field, &x)
	if c.mode == modeDecode && c.err == nil {
		if limit := uint64(^T(0)); x > limit {
			c.fail(field, "value %d exceeds %d", x, limit)
			return
		}
		*v = T(x)
	}
}

// varint codes a signed integer zig-zag encoded.
func (c *coder) varint(field string, v *int64) {
	u := uint64(*v<<1) ^ uint64(*v>>63)
	c.uvarint(field, &u)
	if c.mode == modeDecode && c.err == nil {
		*v = int64(u>>1) ^ -int64(u&1)
	}
}

func (c *coder) boolean(field string, v *bool) {
	var b uint8
	if *v {
		b = 1
	}
	num(c, field, &b)
	if c.mode == modeDecode && c.err == nil {
		if b > 1 {
			c.fail(field, "bool is %d, want 0 or 1", b)
			return
		}
		*v = b == 1
	}
}

// length codes the length of a byte string, checking it against the bytes left and limit.
func (c *coder) length(field string, n int, limit int) int {
	x := uint64(n)
	if c.mode != modeDecode && n > limit {
		c.failEncode(field, "%d bytes exceed the limit of %d", n, limit)
		return 0
	}
	c.uvarint(field, &x)
	if c.mode != modeDecode || c.err != nil {
		return n
	}
	if left := uint64(len(c.buf) - c.pos); x > left {
		c.fail(field, "length %d exceeds the %d bytes left", x, left)
		return 0
	}
	if x > uint64(limit) {
		c.fail(field, "length %d exceeds the limit of %d", x, limit)
		return 0
	}
	return int(x)
}

// raw codes n bytes that follow a length.
func (c *coder) raw(v *[]byte, n int) {
	if c.err != nil {
		return
	}
	switch c.mode {
	case modeSize:
		c.pos += n
	case modeEncode:
		c.buf = append(c.buf, *v...)
	case modeDecode:
		if n == 0 {
			*v = nil // empty is nil, so that a decoded message re-decodes equal to itself
			return
		}
		*v = c.buf[c.pos : c.pos+n : c.pos+n]
		c.pos += n
	}
}

// payload codes one record payload; all payloads of a message share MaxPayloadBytes.
func (c *coder) payload(field string, v *[]byte) {
	n := c.length(field, len(*v), MaxPayloadBytes)
	if c.err != nil {
		return
	}
	if c.payloadBytes += n; c.payloadBytes > MaxPayloadBytes {
		if c.mode == modeDecode {
			c.fail(field, "payloads add up to more than the limit of %d bytes", MaxPayloadBytes)
		} else {
			c.failEncode(field, "payloads add up to more than the limit of %d bytes", MaxPayloadBytes)
		}
		return
	}
	c.raw(v, n)
}

func (c *coder) str(field string, v *string) {
	n := c.length(field, len(*v), MaxNameBytes)
	if c.err != nil {
		return
	}
	switch c.mode {
	case modeSize:
		c.pos += n
	case modeEncode:
		c.buf = append(c.buf, *v...)
	case modeDecode:
		*v = string(c.buf[c.pos : c.pos+n])
		c.pos += n
	}
}

// count codes the number of items of a list, each taking at least minSize encoded bytes,
// and on decoding checks it against the bytes left before the caller allocates.
func (c *coder) count(field string, n int, minSize int) int {
	if c.mode != modeDecode && n > MaxItems {
		c.failEncode(field, "%d items exceed the limit of %d", n, MaxItems)
		return 0
	}
	x := uint64(n)
	c.uvarint(field, &x)
	if c.mode != modeDecode || c.err != nil {
		return n
	}
	if x > MaxItems {
		c.fail(field, "%d items exceed the limit of %d", x, MaxItems)
		return 0
	}
	if left := uint64(len(c.buf) - c.pos); x*uint64(minSize) > left {
		c.fail(field, "%d items need at least %d bytes, %d left", x, x*uint64(minSize), left)
		return 0
	}
	return int(x)
}

// list codes a slice whose items take at least minSize bytes each, calling item for each.
func list[T any](c *coder, field string, v *[]T, minSize int, item func(*coder, *T)) {
	n := c.count(field, len(*v), minSize)
	if c.err != nil {
		return
	}
	if c.mode == modeDecode {
		*v = nil
		if n > 0 {
			*v = make([]T, n)
		}
	}
	outer, outerIdx := c.list, c.idx
	c.list = field
	for i := range n {
		c.idx = i
		item(c, &(*v)[i])
		if c.err != nil {
			break
		}
	}
	c.list, c.idx = outer, outerIdx
}

func (c *coder) header(h *Header) {
	num(c, "loglet_id", &h.LogletID)
	num(c, "known_global_tail", &h.KnownGlobalTail)
}

func (c *coder) responseHeader(h *ResponseHeader) {
	num(c, "status", &h.Status)
	num(c, "local_tail", &h.LocalTail)
	num(c, "known_global_tail", &h.KnownGlobalTail)
	c.boolean("sealed", &h.Sealed)
}

func (c *coder) nodeID(field string, n *metadata.NodeID) {
	c.str(field+".name", &n.Name)
	num(c, field+".generation", &n.Generation)
}

func (c *coder) payloads(field string, v *[][]byte) {
	list(c, field, v, 1, func(c *coder, p *[]byte) { c.payload("", p) })
}

// The field lists, one per message.

func (m *Store) code(c *coder) {
	c.header(&m.Header)
	c.varint("timeout_at", &m.TimeoutAt)
	num(c, "flags", &m.Flags)
	num(c, "first_offset", &m.FirstOffset)
	c.nodeID("sequencer", &m.Sequencer)
	c.payloads("payloads", &m.Payloads)
}

func (m *Stored) code(c *coder) { c.responseHeader(&m.ResponseHeader) }

func (m *Seal) code(c *coder) {
	c.header(&m.Header)
	c.nodeID("sequencer", &m.Sequencer)
}

func (m *Sealed) code(c *coder) { c.responseHeader(&m.ResponseHeader) }

func (m *GetLogletInfo) code(c *coder) { c.header(&m.Header) }

func (m *LogletInfo) code(c *coder) {
	c.responseHeader(&m.ResponseHeader)
	num(c, "trim_point", &m.TrimPoint)
}

func (m *GetRecords) code(c *coder) {
	c.header(&m.Header)
	num(c, "from", &m.From)
	num(c, "to", &m.To)
	num(c, "limit_bytes", &m.LimitBytes)
}

func (m *Records) code(c *coder) {
	c.responseHeader(&m.ResponseHeader)
	num(c, "next_offset", &m.NextOffset)
	list(c, "records", &m.Records, 4, func(c *coder, r *LogRecord) {
		num(c, "offset", &r.Offset)
		num(c, "kind", &r.Kind)
		num(c, "gap_to", &r.GapTo)
		c.payload("payload", &r.Payload)
	})
}

func (m *Trim) code(c *coder) {
	c.header(&m.Header)
	num(c, "trim_point", &m.TrimPoint)
}

func (m *Trimmed) code(c *coder) { c.responseHeader(&m.ResponseHeader) }

func (m *WaitForTail) code(c *coder) {
	c.header(&m.Header)
	num(c, "query", &m.Query)
	num(c, "offset", &m.Offset)
}

func (m *TailUpdated) code(c *coder) { c.responseHeader(&m.ResponseHeader) }

func (m *GetDigest) code(c *coder) {
	c.header(&m.Header)
	num(c, "from", &m.From)
	num(c, "to", &m.To)
}

func (m *Digest) code(c *coder) {
	c.responseHeader(&m.ResponseHeader)
	list(c, "entries", &m.Entries, 3, func(c *coder, e *DigestEntry) {
		num(c, "from", &e.From)
		num(c, "to", &e.To)
		num(c, "status", &e.Status)
	})
}

func (m *Append) code(c *coder) {
	num(c, "log_id", &m.LogID)
	num(c, "segment_index", &m.SegmentIndex)
	num(c, "loglet_id", &m.LogletID)
	c.payloads("payloads", &m.Payloads)
}

func (m *Appended) code(c *coder) {
	num(c, "status", &m.Status)
	num(c, "known_global_tail", &m.KnownGlobalTail)
	c.boolean("sealed", &m.Sealed)
	num(c, "first_offset", &m.FirstOffset)
}

func (m *GetSequencerState) code(c *coder) { num(c, "loglet_id", &m.LogletID) }

func (m *SequencerState) code(c *coder) {
	num(c, "status", &m.Status)
	num(c, "known_global_tail", &m.KnownGlobalTail)
	c.boolean("sealed", &m.Sealed)
}
