package logstore

import (
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb/storage"

	"gorestate.dev/shared/bifrost"
)

// trackStor is goleveldb's file storage of the database in the store's subdirectory sub
// that remembers, per file created through it, how much was fsynced. The storages of a
// store's two databases share mu and synced.
type trackStor struct {
	storage.Storage
	sub    string
	mu     *sync.Mutex
	synced map[string]int64 // file path in the store's directory -> synced length
}

type trackW struct {
	storage.Writer
	t    *trackStor
	name string
	n    int64
}

func (w *trackW) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	w.n += int64(n)
	return n, err
}
func (w *trackW) Sync() error {
	if filepath.Ext(w.name) == ".ldb" {
		time.Sleep(30 * time.Millisecond) // tables sync slowly: compactions lag
	}
	err := w.Writer.Sync()
	if err == nil {
		w.t.mu.Lock()
		w.t.synced[w.name] = w.n
		w.t.mu.Unlock()
	}
	return err
}

func fdName(fd storage.FileDesc) string {
	switch fd.Type {
	case storage.TypeManifest:
		return fmt.Sprintf("MANIFEST-%06d", fd.Num)
	case storage.TypeJournal:
		return fmt.Sprintf("%06d.log", fd.Num)
	case storage.TypeTable:
		return fmt.Sprintf("%06d.ldb", fd.Num)
	case storage.TypeTemp:
		return fmt.Sprintf("%06d.tmp", fd.Num)
	}
	return "?"
}

func (t *trackStor) Create(fd storage.FileDesc) (storage.Writer, error) {
	w, err := t.Storage.Create(fd)
	if err != nil {
		return w, err
	}
	name := filepath.Join(t.sub, fdName(fd))
	t.mu.Lock()
	t.synced[name] = 0
	t.mu.Unlock()
	return &trackW{Writer: w, t: t, name: name}, nil
}

// snapshot copies dir to dst as a power loss would leave it: goleveldb files created in
// this life keep only their synced prefix; everything else (WAL, CURRENT, older files) as is.
func (t *trackStor) snapshot(tb testing.TB, dir, dst string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if rel == "LOCK" {
			return nil
		}
		src, err := os.Open(path)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		defer src.Close()
		out, err := os.Create(filepath.Join(dst, rel))
		if err != nil {
			return err
		}
		defer out.Close()
		if n, ok := t.synced[rel]; ok {
			_, err = io.CopyN(out, src, n)
			if err == io.EOF {
				err = nil
			}
			return err
		}
		_, err = io.Copy(out, src)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// TestPowerLoss models a machine crash at random points: every goleveldb file created in
// the store's life keeps only what was fsynced (the WAL and everything else stay as
// written, since the WAL is synced before each acknowledgement). A small write buffer makes
// goleveldb switch memtables and journals often, and slow table syncs let its
// compactions lag behind. Every acknowledged record must be there after each crash; it is
// what shows that the checkpoint needs goleveldb's journals synced when they are closed.
func TestPowerLoss(t *testing.T) {
	t.Parallel()
	for round := range 6 {
		rng := rand.New(rand.NewSource(int64(round)))
		dir := t.TempDir()
		next := 1
		var global bifrost.Offset // the last global tail written: the metadata database
		for life := range 4 {
			var ts *trackStor
			synced := map[string]int64{}
			var mu sync.Mutex
			opts := Options{WALFileSize: 4 << 10, writeBuffer: 16 << 10, wrapStorage: func(sub string, s storage.Storage) storage.Storage {
				t := &trackStor{Storage: s, sub: sub, mu: &mu, synced: synced}
				if sub == "" {
					ts = t
				}
				return t
			}}
			s, err := Open(dir, opts)
			if err != nil {
				t.Fatalf("round %d life %d: open: %v", round, life, err)
			}
			wantRecords(t, s, 1, next-1)
			wantGlobalTail(t, s, global)
			n := rng.Intn(400)
			for range n {
				k := 1
				if rng.Intn(30) == 0 {
					k = 200 + rng.Intn(400) // larger than a WAL file sometimes
				}
				w := Write{Loglet: 1, First: bifrost.Offset(next), Payloads: payloads(next, k)}
				if rng.Intn(10) == 0 {
					global = bifrost.Offset(next)
					w.GlobalTail = global
				}
				write(t, s, w)
				next += k
			}
			dst := t.TempDir()
			ts.snapshot(t, dir, dst)
			crash(t, s)
			dir = dst
		}
		s := open(t, dir, Options{WALFileSize: 4 << 10})
		wantRecords(t, s, 1, next-1)
		wantGlobalTail(t, s, global)
		s.Close()
	}
}

func wantGlobalTail(t *testing.T, s *Store, want bifrost.Offset) {
	t.Helper()
	st, err := s.LoadLoglet(1)
	if err != nil || st.GlobalTail != max(want, 1) {
		t.Fatalf("global tail %d %v, want %d", st.GlobalTail, err, max(want, 1))
	}
}
