package localloglet

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"gorestate.dev/shared/bifrost"
)

// maxIdleBuf is the largest write buffer the writer keeps between batches; a larger one
// (from a burst) is dropped so one burst does not pin its memory forever.
const maxIdleBuf = 4 << 20

// appendReq is one AppendAsync call waiting in the queue. A request with n == 0 and no
// error is a Seal's barrier: it writes nothing, and its done runs once every request
// before it is durable.
type appendReq struct {
	l     *Loglet
	first bifrost.Offset
	n     int
	frame []byte // the encoded records
	done  func(bifrost.Offset, error)
	err   error     // set when the request was rejected at enqueue time
	at    time.Time // when it was enqueued, for bifrost.AppendSeconds

	// Where the writer put frame.
	seg *segment
	off int64
}

// enqueue queues r behind every earlier request. A rejected request still goes through the
// queue while the writer runs, so its done is called in order with the others; it returns
// the rejection error and whether the caller must call done itself (the writer is gone).
func (s *Store) enqueue(r appendReq) (rejected error, callDone bool) {
	s.qmu.Lock()
	switch {
	case s.failErr != nil:
		rejected = s.failErr
	case s.closing:
		rejected = bifrost.ErrClosed
	}
	if rejected != nil {
		if s.writerExited {
			s.qmu.Unlock()
			return rejected, true
		}
		r.err, r.frame = rejected, nil
	}
	s.queue = append(s.queue, r)
	wake := s.writerIdle
	s.writerIdle = false
	s.qmu.Unlock()
	if wake {
		s.wakeWriter()
	}
	return rejected, false
}

// reject completes done with err in enqueue order.
func (s *Store) reject(done func(bifrost.Offset, error), err error) {
	if _, callDone := s.enqueue(appendReq{done: done, err: err}); callDone {
		done(0, err)
	}
}

func (s *Store) wakeWriter() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// runWriter is the writer goroutine: it commits the queue batch by batch until Close.
func (s *Store) runWriter() {
	defer close(s.writerDone)
	for {
		s.qmu.Lock()
		for len(s.queue) == 0 && !s.closing {
			s.writerIdle = true
			s.qmu.Unlock()
			<-s.kick
			s.qmu.Lock()
		}
		if len(s.queue) == 0 {
			s.writerExited = true
			s.qmu.Unlock()
			return
		}
		batch := s.queue
		s.queue = s.spare[:0]
		failErr := s.failErr
		s.qmu.Unlock()

		s.commit(batch, failErr)
		clear(batch) // drop frames and callbacks before the slice is reused
		s.spare = batch[:0]
	}
}

// commit writes batch with one write call and one fsync, publishes it to readers and then
// completes the callbacks in enqueue order.
func (s *Store) commit(batch []appendReq, failErr error) {
	durable := 0
	start := time.Now()
	if failErr == nil {
		var err error
		durable, err = s.writeBatch(batch)
		s.publish(batch[:durable])
		if err != nil {
			failErr = s.fail(err)
		}
		s.summarizeRolled()
	}
	now := time.Now()
	if durable > 0 {
		localCommit.Observe(now.Sub(start).Seconds())
	}
	// Counted before any callback runs: a caller answered through one must find its
	// records in the metrics.
	var records, size int
	for i := range batch[:durable] {
		if r := &batch[i]; r.err == nil && r.n > 0 {
			records += r.n
			size += len(r.frame)
			localAppend.Observe(now.Sub(r.at).Seconds())
		}
	}
	if records > 0 {
		localRecords.Add(float64(records))
		localBytes.Add(float64(size))
	}
	for i := range batch {
		r := &batch[i]
		switch {
		case r.err != nil:
			r.done(0, r.err)
		case i < durable:
			r.done(r.first, nil)
		default:
			r.done(0, failErr)
		}
	}
}

// The provider's series of the bifrost metrics, resolved once: commit runs per batch.
var (
	localAppend  = bifrost.AppendSeconds.WithLabelValues(bifrost.ProviderLocal)
	localCommit  = bifrost.CommitSeconds.WithLabelValues(bifrost.ProviderLocal)
	localRecords = bifrost.RecordsAppended.WithLabelValues(bifrost.ProviderLocal)
	localBytes   = bifrost.BytesAppended.WithLabelValues(bifrost.ProviderLocal)
)

// fail makes the store unusable and returns the error every later append gets.
func (s *Store) fail(err error) error {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.failErr == nil {
		s.failErr = err
		close(s.failed)
	}
	return s.failErr
}

// writeBatch writes the batch's frames to the active segment, rolling over to a new one
// when it is full, and fsyncs. It returns how many leading requests are durable.
//
// Every write ends with a commit record carrying the next write sequence number, and every
// segment starts with one repeating the last committed number: recovery uses them to tell
// the one write a crash may have torn from damage to committed writes.
func (s *Store) writeBatch(batch []appendReq) (int, error) {
	seg := s.active
	buf := s.buf[:0]
	hasData := false
	if seg.size == 0 {
		buf = appendCommit(buf, s.writeSeq)
	}
	durable := 0
	flush := func(upTo int) error {
		if !hasData {
			// Everything before is already synced: batches are always synced whole.
			buf = buf[:0]
			durable = upTo
			return nil
		}
		s.writeSeq++
		buf = appendCommit(buf, s.writeSeq)
		if _, err := seg.f.WriteAt(buf, seg.size); err != nil {
			return fmt.Errorf("%w: write %s at %d: %w", ErrStoreFailed, seg.path, seg.size, err)
		}
		seg.size += int64(len(buf))
		s.batches.Add(1)
		s.bytes.Add(uint64(len(buf)))
		buf, hasData = buf[:0], false
		if err := s.syncSegment(seg); err != nil {
			return err
		}
		durable = upTo
		return nil
	}
	for i := range batch {
		r := &batch[i]
		if r.err != nil || r.n == 0 {
			continue
		}
		end := seg.size + int64(len(buf))
		// More than the segment's leading commit record is in it: a frame larger than a
		// segment gets a segment of its own instead of rolling forever.
		if end > headerSize && end+int64(len(r.frame)) > s.opts.SegmentSize {
			// The old segment is synced before the new one exists, so after a crash only
			// the last segment can hold a torn write.
			if err := flush(i); err != nil {
				return durable, err
			}
			next, err := s.roll()
			if err != nil {
				return durable, err
			}
			seg = next
			buf = appendCommit(buf[:0], s.writeSeq)
			end = int64(len(buf))
		}
		r.seg, r.off = seg, end
		// Recorded before the segment can be superseded by a roll: from then on trims read
		// the map to decide whether the segment may be deleted.
		seg.maxLSN[r.l.id] = r.first + bifrost.Offset(r.n) - 1
		buf = append(buf, r.frame...)
		hasData = true
	}
	err := flush(len(batch))
	if cap(buf) <= maxIdleBuf {
		s.buf = buf[:0]
	} else {
		s.buf = nil
	}
	return durable, err
}

func (s *Store) syncSegment(seg *segment) error {
	if s.opts.NoSync {
		return nil
	}
	sync := s.opts.syncFile
	if sync == nil {
		sync = (*os.File).Sync
	}
	s.syncs.Add(1)
	bifrost.Fsyncs.Inc()
	if err := sync(seg.f); err != nil {
		return fmt.Errorf("%w: fsync %s: %w", ErrStoreFailed, seg.path, err)
	}
	return nil
}

// roll starts the next segment file and makes it the active one. The old one is complete
// and synced; its summary is written once its records are published (summarizeRolled).
func (s *Store) roll() (*segment, error) {
	next, err := createSegment(s.dir, s.active.id+1, s.opts.NoSync)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStoreFailed, err)
	}
	s.active.lastSeq = s.writeSeq
	s.rolled = append(s.rolled, s.active)
	s.segMu.Lock()
	s.segs[next.id] = next
	s.active = next
	s.segMu.Unlock()
	return next, nil
}

// publish makes durable requests visible to readers: index entries, cached payloads and
// the durable tail, then wakes blocked readers.
func (s *Store) publish(batch []appendReq) {
	caching := s.opts.CacheSize > 0
	for i := range batch {
		r := &batch[i]
		if r.err != nil || r.n == 0 {
			continue
		}
		l := r.l
		last := r.first + bifrost.Offset(r.n) - 1
		l.mu.Lock()
		for off := 0; off < len(r.frame); {
			n := int(binary.LittleEndian.Uint32(r.frame[off+8:]))
			end := off + recordSize(n)
			l.idx = append(l.idx, pos{seg: r.seg.id, off: uint32(r.off) + uint32(off), n: uint32(n)})
			if caching {
				l.cache = append(l.cache, r.frame[off+headerSize:end:end])
			}
			off = end
		}
		l.setDurable(last + 1)
		l.mu.Unlock()
		s.records.Add(uint64(r.n))
		if caching {
			s.cache.push(cacheRef{l: l, last: last, size: int64(len(r.frame))})
		}
	}
	s.cache.evict(s.opts.CacheSize)
}

// summarizeRolled writes the summaries of the segments rolled away from in the last batch.
// A failure only costs the next Open a scan of the segment, so it does not fail the store.
func (s *Store) summarizeRolled() {
	for _, sg := range s.rolled {
		if err := s.writeSummary(sg); err != nil {
			s.summaryErrors.Add(1)
		}
	}
	clear(s.rolled)
	s.rolled = s.rolled[:0]
}
