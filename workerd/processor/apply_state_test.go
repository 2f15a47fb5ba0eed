package processor

import (
	"testing"

	"gorestate.dev/shared/logrecord"
	"gorestate.dev/workerd/store"
)

func patchRec(key string, version *string, kv ...string) *logrecord.Record {
	p := &logrecord.PatchState{Service: "Counter", Key: key, Version: version}
	for i := 0; i+1 < len(kv); i += 2 {
		p.State = append(p.State, logrecord.StateEntry{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return &logrecord.Record{Kind: logrecord.KindPatchState, PatchState: p}
}

func (f *fixture) setState(key string, kv ...string) {
	f.t.Helper()
	txn := f.part.Begin()
	for i := 0; i+1 < len(kv); i += 2 {
		txn.SetState("Counter", key, []byte(kv[i]), []byte(kv[i+1]))
	}
	if err := txn.Commit(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) state(key string) map[string]string {
	f.t.Helper()
	entries, err := f.part.Begin().StateEntries("Counter", key)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		out[string(e.Key)] = string(e.Value)
	}
	return out
}

func wantState(t *testing.T, got map[string]string, want ...string) {
	t.Helper()
	w := map[string]string{}
	for i := 0; i+1 < len(want); i += 2 {
		w[want[i]] = want[i+1]
	}
	if len(got) != len(w) {
		t.Fatalf("state %v, want %v", got, w)
	}
	for k, v := range w {
		if got[k] != v {
			t.Fatalf("state %v, want %v", got, w)
		}
	}
}

// TestStateVersionMatchesRestate: the versions of Restate's own test vectors, so that the
// version the restate CLI sends with an edit matches the state it read.
func TestStateVersionMatchesRestate(t *testing.T) {
	for _, c := range []struct {
		state []store.StateEntry
		want  string
	}{
		{[]store.StateEntry{{Key: []byte("name"), Value: []byte("bob")}}, "tDqA04Lj3_qJ-PgNPTecXDGZgpwy6jm2Ni2BYqJIthM"},
		{[]store.StateEntry{{Key: []byte("a"), Value: []byte("aaa")}, {Key: []byte("b"), Value: []byte("bbb")}}, "RVM17P6x18Wp-JnzQ01BzmqCvhAunTOQI_az6Px3Zyk"},
		{nil, "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"},
	} {
		if got := StateVersion(c.state); got != c.want {
			t.Errorf("StateVersion(%v) = %s, want %s", c.state, got, c.want)
		}
	}
}

func TestPatchStateReplacesTheWholeState(t *testing.T) {
	f := newFixture(t)
	f.setState("k", "a", "1", "b", "2")
	f.setState("other", "a", "x")
	f.apply(patchRec("k", nil, "b", "20", "c", "30", "e", ""))
	wantState(t, f.state("k"), "b", "20", "c", "30", "e", "")
	wantState(t, f.state("other"), "a", "x")
	// An empty patch clears the state.
	f.apply(patchRec("k", nil))
	wantState(t, f.state("k"))
}

func TestPatchStateWithAVersion(t *testing.T) {
	f := newFixture(t)
	f.setState("k", "a", "1")
	stale := StateVersion([]store.StateEntry{{Key: []byte("a"), Value: []byte("0")}})
	f.apply(patchRec("k", &stale, "a", "2"))
	wantState(t, f.state("k"), "a", "1") // the state changed since that version: dropped
	cur := StateVersion([]store.StateEntry{{Key: []byte("a"), Value: []byte("1")}})
	f.apply(patchRec("k", &cur, "a", "2"))
	wantState(t, f.state("k"), "a", "2")
}

// TestPatchStateWaitsForTheLock: a patch to an object whose lock an invocation holds waits
// in the object's inbox, in order with the invocations queued there, and applies when the
// lock is released; the version is checked then, against the state the holder left.
func TestPatchStateWaitsForTheLock(t *testing.T) {
	f := newFixture(t)
	f.setState("k", "a", "1")
	holder, queued := newID("k"), newID("k")
	f.apply(invokeRec(holder, "EXCLUSIVE", "k", 1))
	f.apply(patchRec("k", nil, "a", "patched"))
	wantState(t, f.state("k"), "a", "1") // not under the running handler
	f.apply(invokeRec(queued, "EXCLUSIVE", "k", 2))
	v := StateVersion([]store.StateEntry{{Key: []byte("a"), Value: []byte("patched")}})
	f.apply(patchRec("k", &v, "a", "second"))

	// The inbox, as introspection lists it, still shows only the invocation.
	snap, err := f.part.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := snap.Inboxes()
	snap.Release()
	if err != nil || len(entries) != 1 || string(entries[0].ID) != string(queued) {
		t.Fatalf("inbox entries %v (%v)", entries, err)
	}

	recs := outputEnd(holder, `"done"`)
	f.apply(recs[0])
	acts := f.apply(recs[1])
	// The first patch applied, then the queued invocation took the lock; the second patch
	// waits behind it.
	wantState(t, f.state("k"), "a", "patched")
	if inv, ok := has[ActInvoke](acts); !ok || string(inv.ID) != string(queued) {
		t.Fatalf("queued invocation not started: %v", acts)
	}
	// The queued invocation changes the state before it ends: the second patch's version no
	// longer matches and it is dropped.
	txn := f.part.Begin()
	txn.SetState("Counter", "k", []byte("a"), []byte("by-handler"))
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	recs = outputEnd(queued, `"done"`)
	f.apply(recs[0])
	f.apply(recs[1])
	wantState(t, f.state("k"), "a", "by-handler")
	if lock, _ := f.part.Begin().Lock("Counter", "k"); lock != nil {
		t.Fatalf("lock still held by %x", lock)
	}
	// Free again: a patch applies at once.
	f.apply(patchRec("k", nil, "a", "last"))
	wantState(t, f.state("k"), "a", "last")
}
