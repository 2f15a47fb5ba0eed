package metadatad

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/metadatad/raftstore"
	"gorestate.dev/shared/config"
)

// A member restarted with its Raft state after it was removed from the cluster never
// becomes ready (the members ignore its votes): while it waits, it says so in an error that
// names the way back, once a seed's cluster has a leader and no member of its name. It says
// nothing while the cluster still counts it, or no seed answers.
func TestRemovedMemberSaysSo(t *testing.T) {
	var mu sync.Mutex
	status := `{"leader_name":"m1","members":[{"name":"m1","leader":true},{"name":"m2"},{"name":"m3"}]}`
	seed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != raftstore.ClusterPath+"status" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		_, _ = w.Write([]byte(status))
	}))
	defer seed.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	cfg := config.Default()
	cfg.NodeName = "m3"
	cfg.BaseDir = t.TempDir()
	cfg.MetadataClient.Addresses = []string{down.URL, seed.URL}
	var logged strings.Builder
	var logMu sync.Mutex
	m := &MetadataServer{cfg: cfg, addr: "127.0.0.1:1", log: hclog.New(&hclog.LoggerOptions{Output: lockedWriter{&logMu, &logged}})}
	if _, _, removed := m.removedBy(context.Background()); removed {
		t.Fatal("a member the cluster lists counts as removed")
	}
	mu.Lock()
	status = `{"leader_name":"m1","members":[{"name":"m1","leader":true},{"name":"m2"}]}`
	mu.Unlock()
	leader, members, removed := m.removedBy(context.Background())
	if !removed || leader != "m1" || !slices.Equal(members, []string{"m1", "m2"}) {
		t.Fatalf("removedBy = %q %v %v; want m1, [m1 m2], true", leader, members, removed)
	}

	defer func(d time.Duration) { removedCheckEvery = d }(removedCheckEvery)
	removedCheckEvery = 10 * time.Millisecond
	stop := m.warnWhileRemoved(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for {
		logMu.Lock()
		out := logged.String()
		logMu.Unlock()
		if strings.Contains(out, "not a member of the metadata cluster") && strings.Contains(out, raftDir(cfg)) {
			break
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("no error naming the way back logged: %q", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
