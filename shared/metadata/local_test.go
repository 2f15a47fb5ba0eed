package metadata

import (
	"errors"
	"testing"
)

func TestLocalStoreDurableAcrossReopen(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dir := t.TempDir()
	s, err := OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		key, value string
		expected   uint64
	}{
		{KeySchema, "schema v1", 0},
		{KeySchema, "schema v2", 1},
		{KeyPartitionTable, `{"num_partitions":8}`, 0},
	}
	for _, w := range writes {
		if _, err := s.Put(ctx, w.key, []byte(w.value), w.expected); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := map[string]Versioned{
		KeySchema:         {2, []byte("schema v2")},
		KeyPartitionTable: {1, []byte(`{"num_partitions":8}`)},
	}
	for key, w := range want {
		v, err := s.Get(ctx, key)
		if err != nil || v.Version != w.Version || string(v.Value) != string(w.Value) {
			t.Errorf("after reopen Get(%s) = %d %q, %v; want %d %q", key, v.Version, v.Value, err, w.Version, w.Value)
		}
	}
	if _, err := s.Put(ctx, KeySchema, []byte("stale"), 1); !errors.Is(err, ErrVersionMismatch) {
		t.Errorf("Put with the pre-reopen version: %v, want ErrVersionMismatch", err)
	}
	if v, err := s.Put(ctx, KeySchema, []byte("schema v3"), 2); err != nil || v != 3 {
		t.Errorf("Put continuing the version chain = %d, %v; want 3", v, err)
	}
}

func TestLocalStoreClose(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() {
		_, err := s.WaitNewer(ctx, "k", 0)
		waitErr <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waitErr; !errors.Is(err, ErrClosed) {
		t.Errorf("waiter after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Put(ctx, "k", nil, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestOpenLocalFailsOnLockedDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s2, err := OpenLocal(dir); err == nil {
		s2.Close()
		t.Error("second OpenLocal of the same directory succeeded; two writers would break CAS")
	}
}
