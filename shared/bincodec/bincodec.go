// Package bincodec has the primitives of the compact binary encodings of records that are
// written often and kept long (log records, invocation statuses): varints, and strings and
// byte slices as a uvarint length and the bytes. A Reader never panics on bad input: the
// first malformed read sets Err, and every read after it returns a zero value.
package bincodec

import (
	"encoding/binary"
	"errors"
)

// ErrMalformed is the error of a Reader that met bytes it cannot decode.
var ErrMalformed = errors.New("malformed binary encoding")

// AppendString appends s as a uvarint length and its bytes.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendBytes appends p as AppendString does.
func AppendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// AppendBool appends v as one byte.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendU32s appends a count and the values.
func AppendU32s(b []byte, vs []uint32) []byte {
	b = binary.AppendUvarint(b, uint64(len(vs)))
	for _, v := range vs {
		b = binary.AppendUvarint(b, uint64(v))
	}
	return b
}

// AppendStrings appends a count and the strings.
func AppendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = AppendString(b, s)
	}
	return b
}

// Reader decodes from B.
type Reader struct {
	B   []byte
	Err error
}

// Fail marks the input malformed.
func (r *Reader) Fail() {
	if r.Err == nil {
		r.Err = ErrMalformed
	}
	r.B = nil
}

// Done fails the reader if bytes are left over, and returns its error.
func (r *Reader) Done() error {
	if r.Err == nil && len(r.B) != 0 {
		r.Fail()
	}
	return r.Err
}

func (r *Reader) Byte() byte {
	if len(r.B) == 0 {
		r.Fail()
		return 0
	}
	c := r.B[0]
	r.B = r.B[1:]
	return c
}

// Bool reads a byte that must be 0 or 1.
func (r *Reader) Bool() bool {
	switch r.Byte() {
	case 0:
		return false
	case 1:
		return true
	}
	r.Fail()
	return false
}

func (r *Reader) Uvarint() uint64 {
	v, n := binary.Uvarint(r.B)
	if n <= 0 {
		r.Fail()
		return 0
	}
	r.B = r.B[n:]
	return v
}

func (r *Reader) Varint() int64 {
	v, n := binary.Varint(r.B)
	if n <= 0 {
		r.Fail()
		return 0
	}
	r.B = r.B[n:]
	return v
}

// U32 reads a uvarint that must fit 32 bits.
func (r *Reader) U32() uint32 {
	v := r.Uvarint()
	if v > 1<<32-1 {
		r.Fail()
		return 0
	}
	return uint32(v)
}

// U16 reads a uvarint that must fit 16 bits.
func (r *Reader) U16() uint16 {
	v := r.Uvarint()
	if v > 1<<16-1 {
		r.Fail()
		return 0
	}
	return uint16(v)
}

// Count reads a length, which cannot exceed the bytes left (every element takes one).
func (r *Reader) Count() int {
	n := r.Uvarint()
	if n > uint64(len(r.B)) {
		r.Fail()
		return 0
	}
	return int(n)
}

// Bytes reads a byte slice (a copy; nil if empty).
func (r *Reader) Bytes() []byte {
	n := r.Count()
	if r.Err != nil || n == 0 {
		return nil
	}
	out := append([]byte(nil), r.B[:n]...)
	r.B = r.B[n:]
	return out
}

// View reads a byte slice without copying it: it aliases the reader's buffer.
func (r *Reader) View() []byte {
	n := r.Count()
	if r.Err != nil {
		return nil
	}
	out := r.B[:n:n]
	r.B = r.B[n:]
	return out
}

func (r *Reader) String() string {
	n := r.Count()
	if r.Err != nil {
		return ""
	}
	s := string(r.B[:n])
	r.B = r.B[n:]
	return s
}

// U32s reads what AppendU32s wrote (nil if empty).
func (r *Reader) U32s() []uint32 {
	n := r.Count()
	if n == 0 {
		return nil
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = r.U32()
	}
	return out
}

// Strings reads what AppendStrings wrote (nil if empty).
func (r *Reader) Strings() []string {
	n := r.Count()
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.String()
	}
	return out
}
