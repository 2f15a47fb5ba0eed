package processor

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"

	"gorestate.dev/shared/logrecord"
	"gorestate.dev/workerd/store"
)

// PatchState records: an operator replaces an object's state (admin API).

// patchState applies a state patch now, or queues it behind the invocation holding the
// object's lock, so that a running handler never sees its state change under it.
func (a *applier) patchState(p *logrecord.PatchState) error {
	holder, err := a.txn.Lock(p.Service, p.Key)
	if err != nil {
		return err
	}
	if holder != nil {
		waits, err := a.patchWaitsFor(holder)
		if err != nil {
			return err
		}
		if waits {
			return a.txn.PushInboxPatch(p)
		}
	}
	return a.applyPatch(p)
}

// patchWaitsFor reports whether a state patch waits for the lock's holder. A workflow's run
// holds its key's lock here, but in Restate it holds none (a workflow run is unique by its
// id), so by rulesManage a patch of a workflow's state applies while the run is in flight,
// as Restate applies it. Patches queued behind a run before the marker still apply when the
// run ends.
func (a *applier) patchWaitsFor(holder []byte) (bool, error) {
	newer, err := a.rules(rulesManage)
	if err != nil || !newer {
		return true, err
	}
	st, err := a.status(holder)
	if err != nil {
		return false, err
	}
	return st == nil || st.Target.HandlerType != "WORKFLOW", nil
}

// applyPatch makes p.State the object's whole state, unless p names a version that the
// current state no longer has (it changed since the operator read it): then nothing changes.
func (a *applier) applyPatch(p *logrecord.PatchState) error {
	cur, err := a.txn.StateEntries(p.Service, p.Key)
	if err != nil {
		return err
	}
	if p.Version != nil && *p.Version != StateVersion(cur) {
		return nil
	}
	keep := make(map[string]bool, len(p.State))
	for _, e := range p.State {
		keep[string(e.Key)] = true
	}
	for _, e := range cur {
		if !keep[string(e.Key)] {
			a.txn.ClearState(p.Service, p.Key, e.Key)
		}
	}
	for _, e := range p.State {
		a.txn.SetState(p.Service, p.Key, e.Key, e.Value)
	}
	return nil
}

// StateVersion is the version of an object's state as Restate computes it, so that the
// version a client (the restate CLI's state editing) derives from the state it read matches
// ours: SHA-256 over the entries ordered by key, each as its index (8 bytes, big-endian),
// 0x01, key, 0x02, value, 0x03; in unpadded URL-safe base64.
func StateVersion(state []store.StateEntry) string {
	// StateEntries returns the entries ordered by key already; callers with other sources
	// must sort them the same way.
	h := sha256.New()
	var idx [8]byte
	for i, e := range state {
		binary.BigEndian.PutUint64(idx[:], uint64(i))
		h.Write(idx[:])
		h.Write([]byte{1})
		h.Write(e.Key)
		h.Write([]byte{2})
		h.Write(e.Value)
		h.Write([]byte{3})
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
