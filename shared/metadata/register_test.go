package metadata

import (
	"context"
	"errors"
	"fmt"
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

// failingPuts is a store whose puts fail with err, counting them.
type failingPuts struct {
	Store
	err  error
	puts int
}

func (s *failingPuts) Put(context.Context, string, []byte, uint64) (uint64, error) {
	s.puts++
	return 0, s.err
}

// Only a write the server says may have landed is an unknown outcome to the client: a
// store that failed the write otherwise (a full disk) is an error, which RegisterNode (and
// so a daemon starting) reports at once instead of taking it for a lost leadership and
// trying again, without end in RegisterAndJoin. The server marks unknown outcomes; a
// server of an earlier version is recognised by its message.
func TestClientPutTellsUnknownOutcomesFromFailures(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		err     error
		unknown bool
	}{
		{"unknown", fmt.Errorf("%w: leadership lost while committing log", ErrOutcomeUnknown), true},
		{"failed", errors.New("write /data/metadata/nodes: no space left on device"), false},
	} {
		store := &failingPuts{Store: openLocal(t), err: c.err}
		srv := serve(t, store)
		req, _ := http.NewRequest(http.MethodPut, srv.URL+objectPath+"k?expected=0", nil)
		if resp, err := http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		} else if resp.Body.Close(); (resp.Header.Get(OutcomeHeader) == "unknown") != c.unknown {
			t.Errorf("%s: %d with %s %q", c.name, resp.StatusCode, OutcomeHeader, resp.Header.Get(OutcomeHeader))
		}
		client := NewClient([]string{srv.URL}, nil)
		_, err := client.Put(testCtx(t), "k", []byte("v"), 0)
		if got := errors.Is(err, ErrOutcomeUnknown); got != c.unknown {
			t.Errorf("%s: Put = %v: an unknown outcome %v, want %v", c.name, err, got, c.unknown)
		}
		if c.unknown {
			continue
		}
		store.puts = 0
		if _, err := RegisterNode(testCtx(t), client, Node{Name: "n1"}); err == nil || errors.Is(err, ErrOutcomeUnknown) || store.puts != 1 {
			t.Errorf("%s: RegisterNode = %v after %d puts, want the server's error after one", c.name, err, store.puts)
		}
	}
}
