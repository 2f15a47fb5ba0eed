package store

import (
	"reflect"
	"strings"
	"testing"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
)

func patchOf(service, key string, version *string, kv ...string) *logrecord.PatchState {
	p := &logrecord.PatchState{Service: service, Key: key, Version: version}
	for i := 0; i+1 < len(kv); i += 2 {
		p.State = append(p.State, logrecord.StateEntry{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return p
}

// An inbox entry holding a state patch is never taken for an invocation id, whatever its
// size, and reads back as the patch.
func TestInboxPatchIsNeverAnID(t *testing.T) {
	v := "v1"
	for n := range 40 {
		p := patchOf("S", strings.Repeat("k", n), nil)
		if n%2 == 0 {
			p.Version = &v
		}
		b := encodeInboxPatch(p)
		if len(b) == ids.InvocationIDLen {
			t.Fatalf("a patch encoded in %d bytes, the size of an id", len(b))
		}
		got, err := InboxPatch(b)
		if err != nil || !reflect.DeepEqual(got, p) {
			t.Fatalf("patch with a key of %d bytes: %+v, %v", n, got, err)
		}
	}
	if got, err := InboxPatch(make([]byte, ids.InvocationIDLen)); got != nil || err != nil {
		t.Fatalf("an id read as a patch: %+v, %v", got, err)
	}
}

// Inbox values from disk never panic the decoder; a patch that decodes encodes to one that
// decodes the same.
func FuzzInboxPatch(f *testing.F) {
	v := "version"
	f.Add(encodeInboxPatch(patchOf("Counter", "k", &v, "count", "7")))
	f.Add(encodeInboxPatch(patchOf("S", "", nil)))
	f.Add(make([]byte, ids.InvocationIDLen))
	f.Add([]byte{inboxPatchMark, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := InboxPatch(b)
		if err != nil || p == nil {
			return
		}
		again, err := InboxPatch(encodeInboxPatch(p))
		if err != nil || !reflect.DeepEqual(p, again) {
			t.Fatalf("re-decode differs: %+v, %v", again, err)
		}
	})
}
