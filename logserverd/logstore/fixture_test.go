package logstore

import (
	"os"
	"testing"

	"gorestate.dev/shared/metadata"
)

// TestMakeV3Fixture wrote testdata/v3store with the format 3 code (commit 7f651dd):
//
//	MAKE_FIXTURE=$PWD/testdata/v3store go test -run TestMakeV3Fixture
//
// It is kept to show how the fixture was made; run with today's code it writes format 4.
func TestMakeV3Fixture(t *testing.T) {
	dir := os.Getenv("MAKE_FIXTURE")
	if dir == "" {
		t.Skip()
	}
	opts := Options{WALFileSize: 32 << 10}
	s := open(t, dir, opts)
	if err := s.WriteMarker("n1", &Lost{Loglets: []uint64{9}, Segments: map[uint32]uint32{4: 2}}); err != nil {
		t.Fatal(err)
	}
	write(t, s, Write{Loglet: 1, First: 1, Payloads: payloads(1, 5), Sequencer: &metadata.NodeID{Name: "n1", Generation: 3}})
	writeSingles(t, s, 1, 6, 15)
	write(t, s, Write{Loglet: 2, First: 1, Payloads: payloads(1, 3), Sequencer: &metadata.NodeID{Name: "n2", Generation: 1}})
	write(t, s, Write{Loglet: 2, Seal: true, GlobalTail: 4})
	write(t, s, Write{Loglet: 3, First: 1, Payloads: payloads(1, 10)})
	write(t, s, Write{Loglet: 3, TrimPoint: 4, GlobalTail: 11})
	waitFor(t, "trim", func() bool { return !s.trims.pending() })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Records 21..30 of loglet 1 and a raised global tail reach the WAL only.
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.dropApplies = true
	writeSingles(t, s, 1, 21, 10)
	write(t, s, Write{Loglet: 1, GlobalTail: 25})
	crash(t, s)
}
