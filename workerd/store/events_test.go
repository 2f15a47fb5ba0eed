package store

import (
	"reflect"
	"testing"

	"gorestate.dev/shared/logrecord"
)

// Bytes from disk never panic the event decoder; what decodes encodes and decodes the same
// again.
func FuzzJournalEvent(f *testing.F) {
	idx, name, typ := uint32(1), "myrun", uint32(0x0411)
	for _, e := range []JournalEvent{
		{Type: logrecord.EventTransientError, AppendedAt: 1_796_666_321_768, AfterEntryIndex: 2, Commands: 1,
			Failure: &logrecord.EventFailure{Code: 500, Message: "run boom", DocCode: "RT0007", RelatedIndex: &idx, RelatedName: &name, RelatedType: &typ}},
		{Type: logrecord.EventPaused, AppendedAt: 1},
		{Type: logrecord.EventPaused, Failure: &logrecord.EventFailure{Code: 500, Message: "x", Stacktrace: "goroutine 1"}},
	} {
		f.Add(encodeEvent(e))
	}
	f.Add([]byte{eventFormat})
	f.Add([]byte{eventFormat, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEvent(b)
		if err != nil {
			return
		}
		again, err := decodeEvent(encodeEvent(e))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(e, again) {
			t.Fatalf("re-decode differs:\n got %+v\nwant %+v", again, e)
		}
	})
}
