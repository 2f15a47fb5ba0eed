package metadata_test

import (
	"net/http/httptest"
	"testing"

	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/metadata/storetest"
)

// storeImpls are the Store implementations of this package that run the conformance suite
// (the Raft store runs it in metadatad/raftstore).
var storeImpls = []struct {
	name string
	open func(t *testing.T) metadata.Store
}{
	{"local", func(t *testing.T) metadata.Store { return openLocal(t) }},
	{"http", func(t *testing.T) metadata.Store {
		srv := httptest.NewServer(metadata.NewHTTPHandler(openLocal(t)))
		t.Cleanup(srv.Close)
		return metadata.NewClient([]string{srv.URL}, srv.Client())
	}},
}

func openLocal(t *testing.T) *metadata.LocalStore {
	t.Helper()
	s, err := metadata.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStoreConformance(t *testing.T) {
	t.Parallel()
	for _, impl := range storeImpls {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			s := impl.open(t)
			t.Run("compare and set", func(t *testing.T) { storetest.CompareAndSet(t, s, "k") })
			t.Run("concurrent writers", func(t *testing.T) { storetest.ConcurrentWritersOneWins(t, s, "c") })
			t.Run("wait newer", func(t *testing.T) { storetest.WaitNewer(t, s, "w") })
		})
	}
}
