package protocol

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestAppendFrameGolden(t *testing.T) {
	t.Parallel()
	got := AppendFrame([]byte{0xAA}, Message{Type: ProposeRunCompletionMessageType, Flags: RequestedAckFlag, Payload: []byte{1, 2, 3}})
	want := []byte{0xAA, 0x00, 0x05, 0x80, 0x00, 0x00, 0x00, 0x00, 0x03, 1, 2, 3}
	if !bytes.Equal(got, want) {
		t.Errorf("AppendFrame = % x, want % x", got, want)
	}
	got = AppendFrame(nil, Message{Type: SignalNotificationType})
	want = []byte{0xFB, 0xFF, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(got, want) {
		t.Errorf("empty frame = % x, want % x", got, want)
	}
}

func sampleStream() ([]Message, []byte) {
	msgs := []Message{
		{Type: StartMessageType, Payload: (&StartMessage{DebugID: "inv_1x", KnownEntries: 1}).Marshal()},
		{Type: InputCommandType, Payload: (&InputCommand{Value: NewValue([]byte("hello"))}).Marshal()},
		{Type: EndMessageType, Payload: []byte{}},
		{Type: ProposeRunCompletionMessageType, Flags: RequestedAckFlag, Payload: bytes.Repeat([]byte{0x7}, 300)},
		{Type: 0xFC01, Payload: []byte("custom")},
	}
	var stream []byte
	for _, m := range msgs {
		stream = AppendFrame(stream, m)
	}
	return msgs, stream
}

func TestDecoderReaders(t *testing.T) {
	t.Parallel()
	msgs, stream := sampleStream()
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(stream) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) },
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := NewDecoder(mk(), 1024)
			for i, want := range msgs {
				got, err := d.Next()
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if got.Type != want.Type || got.Flags != want.Flags || !bytes.Equal(got.Payload, want.Payload) {
					t.Fatalf("message %d = %+v, want %+v", i, got, want)
				}
			}
			if _, err := d.Next(); err != io.EOF {
				t.Fatalf("after last message: %v, want io.EOF", err)
			}
		})
	}
}

func TestDecoderErrors(t *testing.T) {
	t.Parallel()
	_, stream := sampleStream()
	big := AppendFrame(nil, Message{Type: OutputCommandType, Payload: make([]byte, 101)})
	tests := []struct {
		name  string
		input []byte
		max   uint32
		want  error
	}{
		{"empty stream", nil, 0, io.EOF},
		{"partial header", stream[:5], 0, io.ErrUnexpectedEOF},
		{"partial payload", stream[:10], 0, io.ErrUnexpectedEOF},
		{"header without payload", big[:8], 1000, io.ErrUnexpectedEOF},
		{"over limit", big, 100, ErrMessageTooLarge},
		{"reserved flag", []byte{0x04, 0x01, 0x00, 0x80, 0, 0, 0, 0}, 0, ErrReservedFlags},
		{"reserved high flag", []byte{0x04, 0x01, 0x40, 0x00, 0, 0, 0, 0}, 0, ErrReservedFlags},
		{"legacy completed flag", []byte{0x04, 0x01, 0x00, 0x01, 0, 0, 0, 0}, 0, ErrReservedFlags},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewDecoder(bytes.NewReader(tc.input), tc.max).Next()
			if !errors.Is(err, tc.want) {
				t.Fatalf("Next() error = %v, want %v", err, tc.want)
			}
		})
	}
	// Exactly at the limit is allowed.
	if _, err := NewDecoder(bytes.NewReader(big), 101).Next(); err != nil {
		t.Errorf("message at the limit: %v", err)
	}
}

func TestDecoderPropagatesReadErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	d := NewDecoder(iotest.ErrReader(boom), 0)
	if _, err := d.Next(); !errors.Is(err, boom) {
		t.Errorf("Next() error = %v, want %v", err, boom)
	}
	_, stream := sampleStream()
	d = NewDecoder(io.MultiReader(bytes.NewReader(stream[:12]), iotest.ErrReader(boom)), 0)
	if _, err := d.Next(); !errors.Is(err, boom) {
		t.Errorf("mid-payload: Next() error = %v, want %v", err, boom)
	}
}

func TestDecodeFrame(t *testing.T) {
	t.Parallel()
	msgs, stream := sampleStream()
	rest := stream
	for i, want := range msgs {
		// Every proper prefix of the frame is reported as short.
		frameLen := HeaderSize + len(want.Payload)
		for _, cut := range []int{0, 1, HeaderSize - 1, HeaderSize, frameLen - 1} {
			if cut >= frameLen {
				continue
			}
			if _, _, err := DecodeFrame(rest[:cut]); !errors.Is(err, ErrShortBuffer) {
				t.Fatalf("message %d cut at %d: error %v, want ErrShortBuffer", i, cut, err)
			}
		}
		got, n, err := DecodeFrame(rest)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if n != frameLen || got.Type != want.Type || got.Flags != want.Flags || !bytes.Equal(got.Payload, want.Payload) {
			t.Fatalf("message %d = %+v (%d bytes), want %+v (%d bytes)", i, got, n, want, frameLen)
		}
		if got.RequestsAck() != (want.Flags&RequestedAckFlag != 0) {
			t.Fatalf("message %d RequestsAck = %v", i, got.RequestsAck())
		}
		rest = rest[n:]
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left", len(rest))
	}
	if _, _, err := DecodeFrame([]byte{0, 0, 0x00, 0x02, 0, 0, 0, 0}); !errors.Is(err, ErrReservedFlags) {
		t.Errorf("reserved flags: %v", err)
	}
	// A huge declared length must not overflow on 32-bit arithmetic.
	if _, _, err := DecodeFrame([]byte{0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 1}); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("huge length: %v", err)
	}
}
