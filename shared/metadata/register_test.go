package metadata

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// unknownPuts is a store whose next puts fail with ErrOutcomeUnknown, after committing the
// write (landed) or not: a replicated store's leader that lost its leadership while
// committing it, which happens when a cluster starts on a loaded host.
type unknownPuts struct {
	Store
	failures int
	landed   bool
}

func (s *unknownPuts) Put(ctx context.Context, key string, value []byte, expected uint64) (uint64, error) {
	if s.failures == 0 {
		return s.Store.Put(ctx, key, value, expected)
	}
	s.failures--
	if s.landed {
		if _, err := s.Store.Put(ctx, key, value, expected); err != nil {
			return 0, err
		}
	}
	return 0, ErrOutcomeUnknown
}

// A registration whose write's outcome is unknown learns it by reading again: it took
// effect (the same generation, not a second one), or it is written again. A node that
// gave up on it stopped at start-up (seen in the crash suite: "register node n2: ... outcome
// unknown: leadership lost while committing log").
func TestRegisterNodeAfterAnUnknownOutcome(t *testing.T) {
	t.Parallel()
	for _, landed := range []bool{true, false} {
		ctx := testCtx(t)
		s := &unknownPuts{Store: openLocal(t), failures: 2, landed: landed}
		if _, err := RegisterNode(ctx, s.Store, Node{Name: "n1", Address: "http://n1/"}); err != nil {
			t.Fatal(err)
		}
		n, err := RegisterNode(ctx, s, Node{Name: "n1", Roles: []string{"worker"}, Address: "http://n1/"})
		if err != nil {
			t.Fatalf("landed %v: %v", landed, err)
		}
		nodes, _, err := getNodes(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if n.Generation != 2 || nodes.Nodes["n1"].Generation != 2 {
			t.Fatalf("landed %v: registered %+v, stored %+v; want generation 2", landed, n, nodes.Nodes["n1"])
		}
	}
	// Unknown outcomes without end: an error that says so, not a loop.
	ctx := testCtx(t)
	s := &unknownPuts{Store: openLocal(t), failures: 1000}
	if _, err := RegisterNode(ctx, s, Node{Name: "n1"}); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("RegisterNode = %v, want ErrOutcomeUnknown", err)
	}
}

// A server's 500 to a put (its store failed the write: a replicated store's leader lost its
// leadership while committing it) is an unknown outcome to the client.
func TestClientPutAnswered500IsAnUnknownOutcome(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "raftstore: outcome unknown: leadership lost while committing log", http.StatusInternalServerError)
	}))
	defer srv.Close()
	_, err := NewClient([]string{srv.URL}, nil).Put(testCtx(t), "k", []byte("v"), 0)
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Put = %v, want ErrOutcomeUnknown", err)
	}
}
