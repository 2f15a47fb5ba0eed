package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// HeaderSize is the size of a frame header: type u16, flags u16, payload length u32, all
// big-endian.
const HeaderSize = 8

// RequestedAckFlag is the REQUESTED_ACK bit in the 16-bit flags half of the header. The other
// 15 flag bits are reserved and must be zero since V5.
const RequestedAckFlag uint16 = 0x8000

// DefaultMaxMessageSize caps one message when the caller gives no limit (Restate's default
// message size limit is 32 MiB).
const DefaultMaxMessageSize uint32 = 32 << 20

var (
	// ErrMessageTooLarge reports a frame whose declared payload exceeds the decoder's limit.
	ErrMessageTooLarge = errors.New("protocol message too large")
	// ErrShortBuffer reports an in-memory buffer that does not hold a whole frame yet.
	ErrShortBuffer = errors.New("incomplete protocol frame")
	// ErrReservedFlags reports a header with reserved flag bits set.
	ErrReservedFlags = errors.New("reserved protocol header flags set")
)

// Message is one frame: the header's type and flags plus the raw protobuf payload. Journal
// entries are stored and replayed in this form, byte for byte.
type Message struct {
	Type    MessageType
	Flags   uint16
	Payload []byte
}

// RequestsAck reports whether the REQUESTED_ACK flag is set.
func (m Message) RequestsAck() bool { return m.Flags&RequestedAckFlag != 0 }

// AppendFrame appends m's header and payload to dst. It panics if the payload does not fit the
// 32-bit length field, which no caller can produce under any message size limit.
func AppendFrame(dst []byte, m Message) []byte {
	if uint64(len(m.Payload)) > math.MaxUint32 {
		panic("protocol.AppendFrame: payload exceeds 4 GiB")
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(m.Type))
	dst = binary.BigEndian.AppendUint16(dst, m.Flags)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Payload)))
	return append(dst, m.Payload...)
}

// header is the parsed fixed part of a frame.
type header struct {
	typ    MessageType
	flags  uint16
	length uint32
}

func parseHeader(b []byte) (header, error) {
	h := header{
		typ:    MessageType(binary.BigEndian.Uint16(b[0:2])),
		flags:  binary.BigEndian.Uint16(b[2:4]),
		length: binary.BigEndian.Uint32(b[4:8]),
	}
	if h.flags&^RequestedAckFlag != 0 {
		return h, fmt.Errorf("frame %s flags %#04x: %w", h.typ, h.flags, ErrReservedFlags)
	}
	return h, nil
}

// DecodeFrame decodes the first frame in b and returns it with the number of bytes it used.
// The payload aliases b. It returns ErrShortBuffer while b holds less than a whole frame.
func DecodeFrame(b []byte) (Message, int, error) {
	if len(b) < HeaderSize {
		return Message{}, 0, ErrShortBuffer
	}
	h, err := parseHeader(b)
	if err != nil {
		return Message{}, 0, err
	}
	end := uint64(HeaderSize) + uint64(h.length)
	if uint64(len(b)) < end {
		return Message{}, 0, ErrShortBuffer
	}
	return Message{Type: h.typ, Flags: h.flags, Payload: b[HeaderSize:end:end]}, int(end), nil
}

// Decoder reads frames from a byte stream, such as an SDK's HTTP/2 response body.
type Decoder struct {
	r       io.Reader
	max     uint32
	scratch [HeaderSize]byte
}

// NewDecoder returns a decoder that rejects frames whose payload exceeds maxMessageSize bytes;
// 0 selects DefaultMaxMessageSize.
func NewDecoder(r io.Reader, maxMessageSize uint32) *Decoder {
	if maxMessageSize == 0 {
		maxMessageSize = DefaultMaxMessageSize
	}
	return &Decoder{r: r, max: maxMessageSize}
}

// Next returns the next frame. It returns io.EOF when the stream ends cleanly between frames,
// io.ErrUnexpectedEOF when it ends inside one, and ErrMessageTooLarge or ErrReservedFlags for
// a bad header. Each returned payload is freshly allocated.
func (d *Decoder) Next() (Message, error) {
	if _, err := io.ReadFull(d.r, d.scratch[:]); err != nil {
		// io.ReadFull already distinguishes a clean EOF from a partial header.
		return Message{}, err
	}
	h, err := parseHeader(d.scratch[:])
	if err != nil {
		return Message{}, err
	}
	if h.length > d.max {
		return Message{}, fmt.Errorf("frame %s of %d bytes over limit %d: %w", h.typ, h.length, d.max, ErrMessageTooLarge)
	}
	payload := make([]byte, h.length)
	if _, err := io.ReadFull(d.r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Message{}, fmt.Errorf("frame %s payload: %w", h.typ, err)
	}
	return Message{Type: h.typ, Flags: h.flags, Payload: payload}, nil
}
