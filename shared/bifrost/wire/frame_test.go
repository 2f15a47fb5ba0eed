package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	t.Parallel()
	var b []byte
	b = appendFrame(b, frameCall, 7, []byte("abc"))
	b = appendFrame(b, framePing, 1<<60)
	b = appendFrame(b, frameFail, 9, failBody(503, "closed"))
	big := bytes.Repeat([]byte{1}, 3<<20) // read in pieces, past smallFrame
	b = appendFrame(b, frameReply, 8, big[:1<<20], big[1<<20:])
	r := bufio.NewReader(bytes.NewReader(b))
	want := []struct {
		kind frameKind
		id   uint64
		body []byte
	}{{frameCall, 7, []byte("abc")}, {framePing, 1 << 60, []byte{}}, {frameFail, 9, failBody(503, "closed")}, {frameReply, 8, big}}
	for _, w := range want {
		kind, id, body, err := readFrame(r)
		if err != nil || kind != w.kind || id != w.id || !bytes.Equal(body, w.body) {
			t.Fatalf("got %s %d (%d bytes), %v; want %s %d (%d bytes)", kind, id, len(body), err, w.kind, w.id, len(w.body))
		}
	}
	if _, _, _, err := readFrame(r); err != io.EOF {
		t.Fatalf("after the last frame: %v", err)
	}
	se, err := parseFail(failBody(503, strings.Repeat("x", 2*maxFailReason)))
	if err != nil || se.Code != 503 || len(se.Message) != maxFailReason {
		t.Fatalf("long reason: %+v, %v", se, err)
	}
}

func TestReadFrameRefusesBadFrames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"unknown kind", appendFrame(nil, 9, 1), "unknown frame kind 9"},
		{"kind zero", appendFrame(nil, 0, 1), "unknown frame kind 0"},
		{"ping with a body", appendFrame(nil, framePing, 1, []byte("x")), "a ping frame carries no body"},
		{"too long", []byte{0xff, 0xff, 0xff, 0xff, byte(frameCall), 0, 0, 0, 0, 0, 0, 0, 1}, "over the limit"},
	}
	for _, tt := range tests {
		_, _, _, err := readFrame(bufio.NewReader(bytes.NewReader(tt.frame)))
		if !errors.Is(err, errProtocol) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	// Cut short, in the header or in a body of either size.
	for _, frame := range [][]byte{appendFrame(nil, frameCall, 1, []byte("abc")), appendFrame(nil, frameCall, 1, make([]byte, 2<<20))} {
		for _, n := range []int{5, len(frame) - 1} {
			_, _, _, err := readFrame(bufio.NewReader(bytes.NewReader(frame[:n])))
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("frame cut at %d of %d bytes: %v", n, len(frame), err)
			}
		}
	}
}

// FuzzReadFrame: any bytes from the network either decode into frames that encode back to
// the same bytes, or fail with an error; never a panic, and a header alone never makes the
// reader allocate what it announces.
func FuzzReadFrame(f *testing.F) {
	f.Add(appendFrame(nil, frameCall, 1, []byte("abc")))
	f.Add(appendFrame(appendFrame(nil, framePing, 2), frameFail, 3, failBody(400, "bad")))
	f.Add([]byte{0, 0, 0, 0, 0})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, byte(frameReply), 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		consumed := 0
		for {
			kind, id, body, err := readFrame(r)
			if err != nil {
				return
			}
			enc := appendFrame(nil, kind, id, body)
			if !bytes.Equal(enc, data[consumed:consumed+len(enc)]) {
				t.Fatalf("frame %s %d re-encodes differently", kind, id)
			}
			consumed += len(enc)
			if kind == frameFail {
				_, _ = parseFail(body)
			}
		}
	})
}
