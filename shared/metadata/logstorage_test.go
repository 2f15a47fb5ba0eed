package metadata

import (
	"context"
	"testing"
)

func TestSetLogStorage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, found, err := LogStorageOf(ctx, s, "ls1"); found || err != nil {
		t.Fatalf("found %v, err %v before any write", found, err)
	}
	// Before the node registers: an entry with only the state.
	if err := SetLogStorage(ctx, s, "ls1", StorageReadWrite); err != nil {
		t.Fatal(err)
	}
	if st, found, _ := LogStorageOf(ctx, s, "ls1"); !found || st != StorageReadWrite {
		t.Fatalf("state %q found %v", st, found)
	}
	// Registering keeps it.
	n, err := RegisterNode(ctx, s, Node{Name: "ls1", Roles: []string{"log-server"}, Address: "http://x/"})
	if err != nil {
		t.Fatal(err)
	}
	if n.LogStorage != StorageReadWrite || n.Generation != 1 {
		t.Fatalf("registered %+v", n)
	}
	// Setting the same state again writes nothing.
	before, _ := s.Get(ctx, KeyNodes)
	if err := SetLogStorage(ctx, s, "ls1", StorageReadWrite); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Get(ctx, KeyNodes); after.Version != before.Version {
		t.Fatalf("version %d -> %d for an unchanged state", before.Version, after.Version)
	}
	if err := SetLogStorage(ctx, s, "ls1", StorageDataLoss); err != nil {
		t.Fatal(err)
	}
	v, _ := s.Get(ctx, KeyNodes)
	nodes, _, _ := getNodes(ctx, s)
	if got := nodes.Nodes["ls1"]; got.LogStorage != StorageDataLoss || got.Address != "http://x/" || got.Generation != 1 || v.Version != before.Version+1 {
		t.Fatalf("after data loss: %+v (version %d)", got, v.Version)
	}
}
