package logstore

import (
	"sync"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"

	"gorestate.dev/shared/bifrost"
)

// trimmer deletes the records of trimmed prefixes in the background. goleveldb has no range
// delete, so a trim only persists the trim point synchronously (reads clamp to it, so
// correctness rests on that key) and this goroutine removes the records below it in chunks,
// through the writer like every other change. Jobs lost to a restart are scheduled again
// when the loglet is loaded.
type trimmer struct {
	s    *Store
	mu   sync.Mutex // guards jobs
	jobs map[uint64]bifrost.Offset
	kick chan struct{}
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

func (t *trimmer) init(s *Store) {
	t.s = s
	t.jobs = map[uint64]bifrost.Offset{}
	t.kick = make(chan struct{}, 1)
	t.quit = make(chan struct{})
	t.done = make(chan struct{})
}

// schedule asks for the records of loglet at or below upTo to be deleted.
func (t *trimmer) schedule(loglet uint64, upTo bifrost.Offset) {
	t.mu.Lock()
	if upTo > t.jobs[loglet] {
		t.jobs[loglet] = upTo
	}
	t.mu.Unlock()
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

func (t *trimmer) stop() {
	t.once.Do(func() { close(t.quit) })
	<-t.done
}

// pending reports whether a deletion is scheduled or running (for tests).
func (t *trimmer) pending() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.jobs) > 0
}

func (t *trimmer) run() {
	defer close(t.done)
	for {
		t.mu.Lock()
		var (
			loglet uint64
			upTo   bifrost.Offset
			found  bool
		)
		for l, o := range t.jobs {
			loglet, upTo, found = l, o, true
			break
		}
		t.mu.Unlock()
		if !found {
			select {
			case <-t.kick:
				continue
			case <-t.quit:
				return
			}
		}
		select {
		case <-t.quit:
			return
		default:
		}
		n, err := t.deleteChunk(loglet, upTo)
		if err != nil {
			t.s.logger.Warn("delete trimmed records", "loglet", loglet, "trim_point", upTo, "error", err)
		}
		if err != nil || n < t.s.opts.TrimChunk {
			t.mu.Lock()
			if t.jobs[loglet] == upTo { // not raised meanwhile
				delete(t.jobs, loglet)
			}
			t.mu.Unlock()
		}
	}
}

// deleteChunk deletes up to TrimChunk records of loglet at or below upTo and returns how
// many it deleted.
func (t *trimmer) deleteChunk(loglet uint64, upTo bifrost.Offset) (int, error) {
	it := t.s.db.NewIterator(dataRange(loglet, 0, upTo), nil)
	var keys [][]byte
	for it.Next() && len(keys) < t.s.opts.TrimChunk {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	it.Release()
	if err := it.Error(); err != nil {
		return 0, err
	}
	if len(keys) == 0 {
		return 0, nil
	}
	err := t.s.write(func(b *leveldb.Batch) {
		for _, k := range keys {
			b.Delete(k)
		}
	}, 17*len(keys), false)
	return len(keys), err
}

// dataRange is the key range of loglet's records [from, to].
func dataRange(loglet uint64, from, to bifrost.Offset) *util.Range {
	r := &util.Range{Start: dataKey(loglet, from)}
	if to == ^bifrost.Offset(0) {
		r.Limit = dataKey(loglet+1, 0)
		if loglet == ^uint64(0) {
			r.Limit = []byte{prefixData + 1}
		}
	} else {
		r.Limit = dataKey(loglet, to+1)
	}
	return r
}
