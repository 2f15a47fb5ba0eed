package raftstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"gorestate.dev/shared/metadata"
)

// fsm is the replicated state: every key's newest Versioned, in memory (metadata is small,
// and the raft log plus snapshots are its durable form). Apply is a single switch over the
// command types. Waiters are woken through per-key channels closed by the change, as in
// metadata.LocalStore, so WaitNewer never polls.
type fsm struct {
	mu      sync.Mutex
	objs    map[string]metadata.Versioned // values are never modified in place, only replaced
	changed map[string]chan struct{}      // closed and removed by the next change of the key
	closed  bool
	done    chan struct{} // closed by close, to release waiters

	restores atomic.Uint64 // snapshots restored (at start or installed by a leader)
}

func newFSM() *fsm {
	return &fsm{objs: map[string]metadata.Versioned{}, changed: map[string]chan struct{}{}, done: make(chan struct{})}
}

// applyResult is what Apply returns to the leader's ApplyFuture.
type applyResult struct {
	version uint64
	err     error
}

var _ raft.FSM = (*fsm)(nil)

// Apply applies one committed command. It must be deterministic: every member decides the
// compare-and-set the same way because it sees the same sequence of commands. A command
// that does not decode changes nothing on any member and reports the error to the leader.
func (f *fsm) Apply(l *raft.Log) any {
	cmd, err := decodeCommand(l.Data)
	if err != nil {
		return applyResult{err: fmt.Errorf("raftstore: log entry %d: %w", l.Index, err)}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch cmd.typ {
	case cmdPut:
		cur := f.objs[cmd.key]
		if cur.Version != cmd.expected {
			return applyResult{err: fmt.Errorf("%w: key %q is at version %d, not %d", metadata.ErrVersionMismatch, cmd.key, cur.Version, cmd.expected)}
		}
		next := cmd.expected + 1
		// The log entry's buffer belongs to raft (and its log cache): keep a copy.
		f.objs[cmd.key] = metadata.Versioned{Version: next, Value: bytes.Clone(cmd.value)}
		f.notifyLocked(cmd.key)
		return applyResult{version: next}
	case cmdImport:
		// Only newer versions replace: an import never moves a key backwards, which also
		// makes a repeated import harmless.
		for k, v := range cmd.objects {
			if v.Version > f.objs[k].Version {
				f.objs[k] = metadata.Versioned{Version: v.Version, Value: bytes.Clone(v.Value)}
				f.notifyLocked(k)
			}
		}
		return applyResult{}
	default:
		return applyResult{err: fmt.Errorf("raftstore: log entry %d: unhandled command type %d", l.Index, cmd.typ)}
	}
}

// Snapshot captures the map; Persist encodes it later without holding the lock. Sharing the
// value slices is safe because they are never modified, only replaced.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	objs := make(map[string]metadata.Versioned, len(f.objs))
	for k, v := range f.objs {
		objs[k] = v
	}
	return fsmSnapshot{objs: objs}, nil
}

// Restore replaces the whole state with a snapshot and wakes every waiter, since any key
// may have moved.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("raftstore: read snapshot: %w", err)
	}
	objs, err := decodeSnapshot(b)
	if err != nil {
		return fmt.Errorf("raftstore: restore: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objs = objs
	for k, ch := range f.changed {
		close(ch)
		delete(f.changed, k)
	}
	f.restores.Add(1)
	return nil
}

// get returns a copy of key's object, with version 0 when absent.
func (f *fsm) get(key string) (metadata.Versioned, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return metadata.Versioned{}, metadata.ErrClosed
	}
	v := f.objs[key]
	return metadata.Versioned{Version: v.Version, Value: bytes.Clone(v.Value)}, nil
}

// waitNewer blocks until key is newer than version, ctx is done or the FSM is closed.
func (f *fsm) waitNewer(ctx context.Context, key string, version uint64) (metadata.Versioned, error) {
	for {
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return metadata.Versioned{}, metadata.ErrClosed
		}
		if v := f.objs[key]; v.Version > version {
			f.mu.Unlock()
			return metadata.Versioned{Version: v.Version, Value: bytes.Clone(v.Value)}, nil
		}
		// Taking the channel under the lock of the read means no change can slip between
		// the read and the wait.
		ch, ok := f.changed[key]
		if !ok {
			ch = make(chan struct{})
			f.changed[key] = ch
		}
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return metadata.Versioned{}, ctx.Err()
		case <-f.done:
			return metadata.Versioned{}, metadata.ErrClosed
		}
	}
}

func (f *fsm) notifyLocked(key string) {
	if ch, ok := f.changed[key]; ok {
		close(ch)
		delete(f.changed, key)
	}
}

// close wakes every waiter with ErrClosed.
func (f *fsm) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.done)
	}
}

type fsmSnapshot struct{ objs map[string]metadata.Versioned }

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(encodeSnapshot(s.objs)); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raftstore: write snapshot: %w", err)
	}
	return sink.Close()
}

func (fsmSnapshot) Release() {}
