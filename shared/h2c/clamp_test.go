package h2c

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
)

func frame(typ, flags byte, payload []byte) []byte {
	f := []byte{byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)), typ, flags, 0, 0, 0, 0}
	return append(f, payload...)
}

func setting(id uint16, v uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, id), v)
}

// readThrough sends server bytes to a clampConn whose client wrote first, and returns what
// the client reads.
func readThrough(t testing.TB, clientFirst string, server []byte) []byte {
	client, srv := net.Pipe()
	c := &clampConn{Conn: client}
	go func() {
		buf := make([]byte, len(clientFirst))
		_, _ = io.ReadFull(srv, buf)
		_, _ = srv.Write(server)
		srv.Close()
	}()
	if _, err := c.Write([]byte(clientFirst)); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	c.Close()
	return got
}

// The server's SETTINGS_MAX_FRAME_SIZE reaches an h2c client as at most 16 KiB; every other
// byte passes unchanged, including frame payloads that look like SETTINGS frames and a
// SETTINGS ack. A TLS connection passes unchanged.
func TestClampMaxFrameSize(t *testing.T) {
	settings := append(append(setting(0x3, 250), setting(settingFrameSize, 1<<20)...), setting(0x4, 1<<20)...)
	fake := frame(frameSettings, 0, setting(settingFrameSize, 1<<20)) // inside a DATA frame
	server := bytes.Join([][]byte{
		frame(frameSettings, 0, settings),
		frame(0x0, 0, fake),
		frame(frameSettings, flagAck, nil),
		frame(frameSettings, 0, setting(settingFrameSize, 8<<10)), // already small
	}, nil)
	want := bytes.Clone(server)
	binary.BigEndian.PutUint32(want[frameHeaderLen+6+2:], minFrameSize)

	if got := readThrough(t, clientPreface+"more", server); !bytes.Equal(got, want) {
		t.Fatalf("h2c client read\n%x\nwant\n%x", got, want)
	}
	if got := readThrough(t, "\x16\x03\x01 a TLS client hello", server); !bytes.Equal(got, server) {
		t.Fatal("a TLS connection's bytes were changed")
	}
}

// Whatever a server sends, the client reads the same number of bytes and the wrapper does
// not panic.
func FuzzClampConn(f *testing.F) {
	f.Add(frame(frameSettings, 0, setting(settingFrameSize, 1<<20)))
	f.Add(append(frame(0x0, 0, []byte("data")), 0x00, 0x00))
	f.Fuzz(func(t *testing.T, server []byte) {
		got := readThrough(t, clientPreface, server)
		if len(got) != len(server) {
			t.Fatalf("read %d bytes of %d", len(got), len(server))
		}
	})
}
