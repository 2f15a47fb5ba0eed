package protocol

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrMalformed reports a payload that is not a valid protobuf encoding of the expected message.
var ErrMalformed = errors.New("malformed protocol message")

// maxNestingDepth bounds recursion through Future trees so that a hostile payload cannot
// exhaust the stack.
const maxNestingDepth = 100

var errTooDeep = fmt.Errorf("futures nested deeper than %d", maxNestingDepth)

// fieldReader walks the fields of one protobuf message. Accessors consume the current field's
// value; the first error sticks and ends the walk.
type fieldReader struct {
	b   []byte
	num protowire.Number
	typ protowire.Type
	err error
}

func newFieldReader(b []byte) *fieldReader { return &fieldReader{b: b} }

// next advances to the next field tag; it returns false at the end or after an error.
func (r *fieldReader) next() bool {
	if r.err != nil || len(r.b) == 0 {
		return false
	}
	num, typ, n := protowire.ConsumeTag(r.b)
	if n < 0 {
		r.fail(n)
		return false
	}
	r.num, r.typ = num, typ
	// ConsumeTag only rejects numbers below 1; protobuf parsers also reject those above the
	// 29-bit maximum.
	if num > protowire.MaxValidNumber {
		r.failf("field number out of range")
		return false
	}
	r.b = r.b[n:]
	return true
}

func (r *fieldReader) fail(code int) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: field %d: %v", ErrMalformed, r.num, protowire.ParseError(code))
	}
}

func (r *fieldReader) failf(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: field %d: %s", ErrMalformed, r.num, fmt.Sprintf(format, args...))
	}
}

// is reports whether the current field has number num and wire type typ. A field whose wire
// type does not match its declaration is treated as unknown and skipped, as protobuf-go does.
func (r *fieldReader) is(num protowire.Number, typ protowire.Type) bool {
	return r.num == num && r.typ == typ
}

func (r *fieldReader) skip() {
	n := protowire.ConsumeFieldValue(r.num, r.typ, r.b)
	if n < 0 {
		r.fail(n)
		return
	}
	r.b = r.b[n:]
}

func (r *fieldReader) varint() uint64 {
	v, n := protowire.ConsumeVarint(r.b)
	if n < 0 {
		r.fail(n)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// uint32 truncates like protobuf does for a uint32 field carrying a wider varint.
func (r *fieldReader) uint32() uint32 { return uint32(r.varint()) }
func (r *fieldReader) uint64() uint64 { return r.varint() }
func (r *fieldReader) bool() bool     { return r.varint() != 0 }

// raw returns the current length-delimited value without copying (for sub-messages).
func (r *fieldReader) raw() []byte {
	v, n := protowire.ConsumeBytes(r.b)
	if n < 0 {
		r.fail(n)
		return nil
	}
	r.b = r.b[n:]
	return v
}

// bytes returns a copy of the current length-delimited value; empty values decode as nil.
func (r *fieldReader) bytes() []byte {
	v := r.raw()
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

// string enforces proto3's UTF-8 rule, as Restate's and the SDKs' decoders do.
func (r *fieldReader) string() string {
	v := r.raw()
	if r.err != nil {
		return ""
	}
	if !utf8.Valid(v) {
		r.failf("string is not valid UTF-8")
		return ""
	}
	return string(v)
}

// packedUint32s appends the elements of a packed repeated uint32 field.
func (r *fieldReader) packedUint32s(dst []uint32) []uint32 {
	v := r.raw()
	for len(v) > 0 && r.err == nil {
		x, n := protowire.ConsumeVarint(v)
		if n < 0 {
			r.fail(n)
			return dst
		}
		v = v[n:]
		dst = append(dst, uint32(x))
	}
	return dst
}

// repeatedUint32 handles both the packed (proto3 default) and unpacked encodings, which a
// parser must accept interchangeably.
func (r *fieldReader) repeatedUint32(num protowire.Number, dst []uint32) ([]uint32, bool) {
	switch {
	case r.is(num, protowire.VarintType):
		return append(dst, r.uint32()), true
	case r.is(num, protowire.BytesType):
		return r.packedUint32s(dst), true
	}
	return dst, false
}

// message decodes the current field as a sub-message with merge (which must not reset the
// target, so that repeated occurrences merge as protobuf requires).
func (r *fieldReader) message(merge func([]byte) error) {
	v := r.raw()
	if r.err != nil {
		return
	}
	if err := merge(v); err != nil {
		r.err = fmt.Errorf("field %d: %w", r.num, err)
	}
}

func (r *fieldReader) ptrString() *string {
	s := r.string()
	return &s
}

func (r *fieldReader) ptrUint32() *uint32 {
	v := r.uint32()
	return &v
}

func (r *fieldReader) ptrUint64() *uint64 {
	v := r.uint64()
	return &v
}

// Encoding helpers. Implicit-presence scalars are omitted when zero; the "opt"/"msg" variants
// always write the field.

func appendUint32(b []byte, num protowire.Number, v uint32) []byte {
	if v == 0 {
		return b
	}
	return appendVarintField(b, num, uint64(v))
}

func appendUint64(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return appendVarintField(b, num, v)
}

func appendBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return appendVarintField(b, num, 1)
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return appendBytesField(b, num, v)
}

func appendString(b []byte, num protowire.Number, v string) []byte {
	if v == "" {
		return b
	}
	return appendStringField(b, num, v)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendStringField(b []byte, num protowire.Number, v string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

func appendOptString(b []byte, num protowire.Number, v *string) []byte {
	if v == nil {
		return b
	}
	return appendStringField(b, num, *v)
}

func appendOptUint32(b []byte, num protowire.Number, v *uint32) []byte {
	if v == nil {
		return b
	}
	return appendVarintField(b, num, uint64(*v))
}

func appendOptUint64(b []byte, num protowire.Number, v *uint64) []byte {
	if v == nil {
		return b
	}
	return appendVarintField(b, num, *v)
}

// appendMessage writes a sub-message produced by appendBody; the body is built in a scratch
// buffer because its length prefix must be known first.
func appendMessage(b []byte, num protowire.Number, appendBody func([]byte) []byte) []byte {
	return appendBytesField(b, num, appendBody(nil))
}

// appendEmptyMessage writes a present-but-empty sub-message (Void, an empty Value).
func appendEmptyMessage(b []byte, num protowire.Number) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendVarint(b, 0)
}

func appendPackedUint32(b []byte, num protowire.Number, vs []uint32) []byte {
	if len(vs) == 0 {
		return b
	}
	size := 0
	for _, v := range vs {
		size += protowire.SizeVarint(uint64(v))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	for _, v := range vs {
		b = protowire.AppendVarint(b, uint64(v))
	}
	return b
}

func appendRepeatedString(b []byte, num protowire.Number, vs []string) []byte {
	for _, v := range vs {
		b = appendStringField(b, num, v)
	}
	return b
}

// Ptr returns a pointer to v, for filling optional fields.
func Ptr[T any](v T) *T { return &v }
