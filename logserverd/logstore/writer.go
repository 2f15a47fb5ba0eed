package logstore

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/syndtr/goleveldb/leveldb"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/metrics"
)

// Write is one durable change to one loglet; every part of it lands in the same batch, so
// a crash keeps all of it or none.
type Write struct {
	Loglet uint64
	// Payloads are stored at First, First+1, …
	First    bifrost.Offset
	Payloads [][]byte
	// Sequencer, if set, pins the loglet's sequencer.
	Sequencer *metadata.NodeID
	// Seal marks the loglet sealed.
	Seal bool
	// TrimPoint, if not 0, is the loglet's new trim point (the caller only ever raises
	// it). Once durable, records at or below it are deleted in the background.
	TrimPoint bifrost.Offset
	// GlobalTail, if not 0, is the loglet's last known global tail.
	GlobalTail bifrost.Offset
}

func (w *Write) size() int {
	n := 32
	for _, p := range w.Payloads {
		n += len(p) + 25 // what goleveldb counts: 17-byte key, 8 bytes of sequence and type
	}
	return n
}

func (w *Write) apply(b *leveldb.Batch) {
	for i, p := range w.Payloads {
		b.Put(dataKey(w.Loglet, w.First+bifrost.Offset(i)), p)
	}
	if w.Sequencer != nil {
		v := binary.BigEndian.AppendUint64(nil, w.Sequencer.Generation)
		b.Put(metaKey(metaSequencer, w.Loglet), append(v, w.Sequencer.Name...))
	}
	if w.Seal {
		b.Put(metaKey(metaSeal, w.Loglet), nil)
	}
	if w.TrimPoint > 0 {
		b.Put(metaKey(metaTrimPoint, w.Loglet), u64(uint64(w.TrimPoint)))
	}
	if w.GlobalTail > 0 {
		b.Put(metaKey(metaGlobalTail, w.Loglet), u64(uint64(w.GlobalTail)))
	}
}

// request is one queued change: apply adds it to the batch, done learns its fate.
type request struct {
	apply func(*leveldb.Batch)
	size  int
	// meta is set if apply writes keys of the metadata database.
	meta      bool
	done      func(error)
	trimmed   uint64 // loglet whose trim point this raises (with trimPoint)
	trimPoint bifrost.Offset
}

// Enqueue queues w behind every earlier write and returns at once; done is called on the
// committing goroutine once w is durable (nil) or failed, and must not block. Writes are
// made durable in the order they were enqueued. An error means w was not queued and done
// will not be called: the store failed or is closed.
func (s *Store) Enqueue(w Write, done func(error)) error {
	return s.enqueue(newRequest(w, done), true)
}

// EnqueueDeferred is Enqueue without waking the writer: the caller calls CommitQueued
// right after, once it holds no lock that any done callback of the queue takes (it may
// commit them all on its goroutine). A log server's stream reader does so, and answers a
// store it committed without handing it to another goroutine.
func (s *Store) EnqueueDeferred(w Write, done func(error)) error {
	return s.enqueue(newRequest(w, done), false)
}

func newRequest(w Write, done func(error)) request {
	r := request{apply: w.apply, size: w.size(), done: done,
		meta: w.Sequencer != nil || w.Seal || w.TrimPoint > 0 || w.GlobalTail > 0}
	if w.TrimPoint > 0 {
		r.trimmed, r.trimPoint = w.Loglet, w.TrimPoint
	}
	return r
}

func (s *Store) enqueue(r request, wake bool) error {
	s.qmu.Lock()
	switch {
	case s.failErr != nil:
		err := s.failErr
		s.qmu.Unlock()
		return err
	case s.closing:
		s.qmu.Unlock()
		return bifrost.ErrClosed
	}
	s.queue = append(s.queue, r)
	s.qmu.Unlock()
	if wake {
		s.wake()
	}
	return nil
}

// CommitQueued commits what is queued. With onCaller it commits on the calling goroutine,
// running the done callbacks of the batch here, unless another goroutine is committing (that
// one leaves what it did not take to the writer), and returns once its batch is durable and
// answered. Without, it wakes the writer and returns at once.
func (s *Store) CommitQueued(onCaller bool) {
	if !onCaller {
		s.wake()
		return
	}
	s.qmu.Lock()
	if s.busy || s.closing || len(s.queue) == 0 {
		s.qmu.Unlock()
		return
	}
	if s.takeTurn(true) {
		s.wake()
	}
}

// takeTurn commits one batch of the queue. Called with qmu held, the queue not empty and
// busy clear; returns with qmu released and busy clear again, and whether anything is left
// to commit (or the store is closing).
func (s *Store) takeTurn(onCaller bool) (more bool) {
	s.busy = true
	s.takeLocked()
	failErr := s.failErr
	s.qmu.Unlock()
	if onCaller && failErr == nil {
		s.callerBatches.Add(1)
	}
	s.commitTaken(failErr)
	s.qmu.Lock()
	s.busy = false
	more = len(s.queue) > 0 || s.closing
	s.qmu.Unlock()
	return more
}

// write applies one change durably and waits for it; meta says whether it writes keys of
// the metadata database.
func (s *Store) write(apply func(*leveldb.Batch), size int, meta bool) error {
	done := make(chan error, 1)
	if err := s.enqueue(request{apply: apply, size: size, meta: meta, done: func(err error) { done <- err }}, true); err != nil {
		return err
	}
	return <-done
}

func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// runWriter commits the queue batch by batch until Close has drained it, taking turns
// with the callers of CommitQueued.
func (s *Store) runWriter() {
	defer close(s.writerDone)
	for {
		s.qmu.Lock()
		for s.busy || (len(s.queue) == 0 && !s.closing) {
			s.qmu.Unlock()
			<-s.kick
			s.qmu.Lock()
		}
		if len(s.queue) == 0 {
			s.qmu.Unlock()
			return
		}
		s.takeTurn(false) // loops to look at the queue again either way
	}
}

// takeLocked moves a bounded prefix of the queue into s.taken; the rest waits for the next
// batch. Called with qmu held by the goroutine that set busy.
func (s *Store) takeLocked() {
	n, bytes := 0, 0
	for n < len(s.queue) && n < s.opts.MaxBatchWrites && (n == 0 || bytes+s.queue[n].size <= s.opts.MaxBatchBytes) {
		bytes += s.queue[n].size
		n++
	}
	s.taken = append(s.taken[:0], s.queue[:n]...)
	clear(s.queue[:n])
	s.queue = s.queue[n:]
	if len(s.queue) == 0 {
		s.queue = nil // let a burst's backing array go
	}
}

// commitTaken commits s.taken, then drops its payloads and callbacks.
func (s *Store) commitTaken(failErr error) {
	s.commit(&s.batch, s.taken, failErr)
	clear(s.taken)
}

// commit makes one batch durable in the WAL, applies it to goleveldb and completes its
// requests in order.
func (s *Store) commit(batch *leveldb.Batch, reqs []request, failErr error) {
	if failErr == nil {
		batch.Reset()
		meta := false
		for i := range reqs {
			reqs[i].apply(batch)
			meta = meta || reqs[i].meta
		}
		start := time.Now()
		if err := s.writeBatch(batch, meta); err != nil {
			failErr = s.fail(fmt.Errorf("%w: write %d requests: %v", ErrFailed, len(reqs), err))
		} else {
			commitSeconds.Observe(metrics.Since(start))
			commitRequests.Add(float64(len(reqs)))
			s.batches.Add(1)
			s.writes.Add(uint64(len(reqs)))
			s.bytes.Add(uint64(len(batch.Dump())))
		}
	}
	for i := range reqs {
		r := &reqs[i]
		if failErr == nil && r.trimPoint > 0 {
			s.trims.schedule(r.trimmed, r.trimPoint)
		}
		if r.done != nil {
			r.done(failErr)
		}
	}
}

// writeBatch appends batch to the WAL (durable when it returns) and applies it to
// goleveldb; meta says whether it has keys of the metadata database. Before the WAL starts
// another file, the records of the full one are checkpointed.
func (s *Store) writeBatch(batch *leveldb.Batch, meta bool) error {
	data := batch.Dump()
	if s.wal.inUse() && !s.wal.fits(len(data)) {
		if err := s.checkpoint(); err != nil {
			return err
		}
		if err := s.wal.recycle(); err != nil {
			return err
		}
	}
	start := time.Now()
	seq, err := s.wal.append(data)
	if err != nil {
		return err
	}
	walAppendSeconds.Observe(metrics.Since(start))
	if !s.dropApplies {
		if err := s.apply(batch, meta); err != nil {
			return err
		}
	}
	s.walLast = seq
	return nil
}

// apply writes batch, made durable by the WAL, to goleveldb without a sync. Without meta
// every key is a record's; with it the batch is split between the two databases.
func (s *Store) apply(batch *leveldb.Batch, meta bool) error {
	if !meta {
		return s.db.Write(batch, nil)
	}
	s.split.data.Reset()
	s.split.meta.Reset()
	if err := batch.Replay(&s.split); err != nil {
		return err
	}
	if s.split.data.Len() > 0 {
		if err := s.db.Write(&s.split.data, nil); err != nil {
			return err
		}
	}
	if s.split.meta.Len() > 0 {
		return s.meta.Write(&s.split.meta, nil)
	}
	return nil
}

// splitter sorts the changes of a batch by database.
type splitter struct{ data, meta leveldb.Batch }

func (sp *splitter) target(key []byte) *leveldb.Batch {
	if len(key) > 0 && key[0] == prefixData {
		return &sp.data
	}
	return &sp.meta
}

func (sp *splitter) Put(key, value []byte) { sp.target(key).Put(key, value) }
func (sp *splitter) Delete(key []byte)     { sp.target(key).Delete(key) }

// Fail puts the store in fail-safe mode, as a failed write does: for callers that find
// damage outside the writer (and for tests of what a server does then).
func (s *Store) Fail(err error) {
	s.fail(fmt.Errorf("%w: %v", ErrFailed, err))
}

// fail puts the store in fail-safe mode and returns the error every later write gets.
func (s *Store) fail(err error) error {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.failErr == nil {
		s.failErr = err
		close(s.failed)
		s.logger.Error("log store write failed: refusing every write until restart", "error", err)
	}
	return s.failErr
}
