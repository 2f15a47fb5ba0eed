package logserverd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/logserverd/logstore"
	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/metadata"
)

var seq = metadata.NodeID{Name: "w1", Generation: 1}

func testConfig(t *testing.T, base, name string, env ...string) *config.Config {
	t.Helper()
	env = append(env, "RESTATE_BASE_DIR="+base, "RESTATE_NODE_NAME="+name, "RESTATE_ROLES=[log-server]")
	if !strings.Contains(strings.Join(env, " "), "RESTATE_METADATA_CLIENT__ADDRESSES") {
		// Start takes the metadata store as an argument; the configuration only needs some.
		env = append(env, "RESTATE_METADATA_CLIENT__ADDRESSES=[http://127.0.0.1:1]")
	}
	cfg, err := config.Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func localMeta(t *testing.T) *metadata.LocalStore {
	t.Helper()
	s, err := metadata.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: testWriter{t}})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// serve starts ls's mux on a fabric-like listener and returns a client of it.
func serve(t *testing.T, mux *http.ServeMux) *wire.Client {
	t.Helper()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return newClient(t, srv.URL)
}

func newClient(t *testing.T, url string) *wire.Client {
	t.Helper()
	c, err := wire.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// nodeOf returns node name's entry in the nodes configuration.
func nodeOf(t *testing.T, meta metadata.Store, name string) metadata.Node {
	t.Helper()
	v, err := meta.Get(context.Background(), metadata.KeyNodes)
	if err != nil {
		t.Fatal(err)
	}
	var ns metadata.Nodes
	if err := json.Unmarshal(v.Value, &ns); err != nil {
		t.Fatal(err)
	}
	return ns.Nodes[name]
}

func storageOf(t *testing.T, meta metadata.Store, name string) string {
	t.Helper()
	st, _, err := metadata.LogStorageOf(context.Background(), meta, name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestNewNodeBecomesReadWriteAndKeepsItsRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta, base := localMeta(t), t.TempDir()
	cfg := testConfig(t, base, "ls1")
	mux := http.NewServeMux()
	ls, err := Start(ctx, cfg, meta, mux, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if ls.StorageState() != metadata.StorageReadWrite || storageOf(t, meta, "ls1") != metadata.StorageReadWrite {
		t.Fatalf("state %q / %q", ls.StorageState(), storageOf(t, meta, "ls1"))
	}
	// The node registers after Start; the state survives the registration.
	n, err := metadata.RegisterNode(ctx, meta, metadata.Node{Name: "ls1", Roles: []string{config.RoleLogServer}, Address: "http://ls1/"})
	if err != nil || n.LogStorage != metadata.StorageReadWrite {
		t.Fatalf("registered %+v, %v", n, err)
	}
	c := serve(t, mux)
	r, err := c.Store(ctx, &wire.Store{Header: wire.Header{LogletID: 1}, FirstOffset: 1, Sequencer: seq, Payloads: [][]byte{[]byte("one")}})
	if err != nil || r.Status != wire.StatusOK || r.LocalTail != 2 {
		t.Fatalf("store %+v, %v", r, err)
	}
	if err := ls.Close(); err != nil {
		t.Fatal(err)
	}

	mux = http.NewServeMux()
	ls, err = Start(ctx, cfg, meta, mux, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	if ls.StorageState() != metadata.StorageReadWrite {
		t.Fatalf("state after restart %q", ls.StorageState())
	}
	c = serve(t, mux)
	recs, err := c.GetRecords(ctx, &wire.GetRecords{Header: wire.Header{LogletID: 1}, From: 1, To: 10, LimitBytes: 1 << 20})
	if err != nil || recs.Status != wire.StatusOK || len(recs.Records) != 1 || string(recs.Records[0].Payload) != "one" {
		t.Fatalf("records %+v, %v", recs, err)
	}
}

// A log server whose disk was wiped comes back by itself: it answers data-loss for the
// segments that existed while it lost them (never an open, empty replica of them), serves
// segments created afterwards as usual, and the nodes configuration says what it lost.
func TestWipedDiskServesDataLossForTheSegmentsItLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta, base := localMeta(t), t.TempDir()
	cfg := testConfig(t, base, "ls1")
	ls, err := Start(ctx, cfg, meta, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	lostLoglet := bifrost.LogletID(0, 1)
	if _, err := ls.Server().Store(ctx, &wire.Store{Header: wire.Header{LogletID: lostLoglet}, FirstOffset: 1, Sequencer: seq, Payloads: [][]byte{[]byte("x")}}); err != nil {
		t.Fatal(err)
	}
	ls.Close()
	// Log 0 has segments 0 and 1 when the disk is lost.
	chains, _ := json.Marshal(metadata.Logs{Chains: map[uint32][]metadata.Segment{0: {{Index: 0, LogletID: bifrost.LogletID(0, 0)}, {Index: 1, BaseLSN: 5, LogletID: lostLoglet}}}})
	if _, err := meta.Put(ctx, metadata.KeyLogs, chains, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(cfg.NodeDir(), StoreDir)); err != nil {
		t.Fatal(err)
	}

	for restart := range 2 { // and it stays so across restarts
		mux := http.NewServeMux()
		ls, err = Start(ctx, cfg, meta, mux, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if ls.StorageState() != metadata.StorageReadWrite || storageOf(t, meta, "ls1") != metadata.StorageReadWrite {
			t.Fatalf("restart %d: state %q / %q", restart, ls.StorageState(), storageOf(t, meta, "ls1"))
		}
		c := serve(t, mux)
		for _, loglet := range []uint64{bifrost.LogletID(0, 0), lostLoglet} {
			info, err := c.GetLogletInfo(ctx, &wire.GetLogletInfo{Header: wire.Header{LogletID: loglet}})
			if err != nil || info.Status != wire.StatusDataLoss {
				t.Fatalf("restart %d: info of lost loglet %x: %+v, %v", restart, loglet, info, err)
			}
			st, err := c.Store(ctx, &wire.Store{Header: wire.Header{LogletID: loglet}, FirstOffset: 1, Sequencer: seq, Payloads: [][]byte{[]byte("x")}})
			if err != nil || st.Status != wire.StatusDataLoss {
				t.Fatalf("restart %d: store to lost loglet %x: %+v, %v", restart, loglet, st, err)
			}
		}
		// A segment created after the loss, and another log, are served.
		for _, loglet := range []uint64{bifrost.LogletID(0, 2), bifrost.LogletID(1, 0)} {
			st, err := c.Store(ctx, &wire.Store{Header: wire.Header{LogletID: loglet}, FirstOffset: 1, Sequencer: seq, Payloads: [][]byte{[]byte("x")}})
			if err != nil || st.Status != wire.StatusOK {
				t.Fatalf("restart %d: store to new loglet %x: %+v, %v", restart, loglet, st, err)
			}
		}
		if n := nodeOf(t, meta, "ls1"); !n.Lost(0, 1) || n.Lost(0, 2) || n.Lost(1, 0) {
			t.Fatalf("restart %d: lost segments in the nodes configuration %v", restart, n.LostSegments)
		}
		ls.Close()
	}
}

func TestProvisioningNodeWithMarkerBecomesReadWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta, base := localMeta(t), t.TempDir()
	cfg := testConfig(t, base, "ls1")
	// A crash between the marker and the state change.
	st, err := logstore.Open(filepath.Join(cfg.NodeDir(), StoreDir), logstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.WriteMarker("ls1", nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := metadata.SetLogStorage(ctx, meta, "ls1", metadata.StorageProvisioning); err != nil {
		t.Fatal(err)
	}
	ls, err := Start(ctx, cfg, meta, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	if ls.StorageState() != metadata.StorageReadWrite || storageOf(t, meta, "ls1") != metadata.StorageReadWrite {
		t.Fatalf("state %q / %q", ls.StorageState(), storageOf(t, meta, "ls1"))
	}
}

func TestStoreOfAnotherNodeIsRefused(t *testing.T) {
	t.Parallel()
	meta, base := localMeta(t), t.TempDir()
	cfg := testConfig(t, base, "ls1")
	st, err := logstore.Open(filepath.Join(cfg.NodeDir(), StoreDir), logstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = st.WriteMarker("ls0", nil)
	st.Close()
	_, err = Start(context.Background(), cfg, meta, nil, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), `belongs to node "ls0", this is node "ls1"`) {
		t.Fatalf("Start = %v", err)
	}
}

// TestRun starts the daemon against a metadata server over HTTP: it registers as a
// read-write log server and serves the log-server protocol on its advertised address.
func TestRun(t *testing.T) {
	t.Parallel()
	meta := localMeta(t)
	mmux := http.NewServeMux()
	mmux.Handle(metadata.PathPrefix, metadata.NewHTTPHandler(meta))
	msrv := httptest.NewServer(mmux)
	defer msrv.Close()
	cfg := testConfig(t, t.TempDir(), "ls1", "RESTATE_BIND_ADDRESS=127.0.0.1:0", "RESTATE_GOSSIP__BIND_ADDRESS=127.0.0.1:0",
		"RESTATE_METADATA_CLIENT__ADDRESSES=["+msrv.URL+"]", "RESTATE_GOSSIP__SEEDS=[]")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, testLogger(t)) }()

	var node metadata.Node
	deadline := time.Now().Add(20 * time.Second)
	for node.Generation == 0 {
		if time.Now().After(deadline) {
			t.Fatal("logserverd did not register")
		}
		time.Sleep(10 * time.Millisecond)
		v, err := meta.Get(ctx, metadata.KeyNodes)
		if err == nil {
			var nodes metadata.Nodes
			if err := json.Unmarshal(v.Value, &nodes); err != nil {
				t.Fatal(err)
			}
			node = nodes.Nodes["ls1"]
		}
	}
	if node.LogStorage != metadata.StorageReadWrite || node.Address == "" {
		t.Fatalf("registered %+v", node)
	}
	c := newClient(t, node.Address)
	info, err := c.GetLogletInfo(ctx, &wire.GetLogletInfo{Header: wire.Header{LogletID: 5}})
	if err != nil || info.Status != wire.StatusOK || info.LocalTail != 1 {
		t.Fatalf("info %+v, %v", info, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// failNodesPut fails the next Put of the nodes configuration once armed: the process dies
// between writing its storage marker and recording the loss.
type failNodesPut struct {
	metadata.Store
	armed atomic.Bool
}

func (f *failNodesPut) Put(ctx context.Context, key string, value []byte, expected uint64) (uint64, error) {
	if key == metadata.KeyNodes && f.armed.CompareAndSwap(true, false) {
		return 0, errors.New("injected: the process died")
	}
	return f.Store.Put(ctx, key, value, expected)
}

// A start after a wipe that dies between the storage marker and the nodes configuration
// leaves a marked store; the next start must finish the recovery rather than take the
// store for a disk that merely came back: the lost segments are recorded (or the writers
// would never move them off this node), and a node marked data-loss before its disk was
// replaced becomes read-write as without the crash.
func TestWipedDiskRecoveryCutShortIsFinishedByTheNextStart(t *testing.T) {
	for _, dataLoss := range []bool{false, true} {
		t.Run(fmt.Sprintf("data-loss before the wipe %v", dataLoss), func(t *testing.T) {
			ctx := context.Background()
			meta := &failNodesPut{Store: localMeta(t)}
			cfg := testConfig(t, t.TempDir(), "ls1")
			ls, err := Start(ctx, cfg, meta, nil, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			ls.Close()
			lostLoglet := bifrost.LogletID(0, 1)
			chains, _ := json.Marshal(metadata.Logs{Chains: map[uint32][]metadata.Segment{0: {{Index: 0, LogletID: bifrost.LogletID(0, 0)}, {Index: 1, BaseLSN: 5, LogletID: lostLoglet}}}})
			if _, err := meta.Put(ctx, metadata.KeyLogs, chains, 0); err != nil {
				t.Fatal(err)
			}
			if dataLoss {
				if err := metadata.SetLogStorage(ctx, meta, "ls1", metadata.StorageDataLoss); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.RemoveAll(filepath.Join(cfg.NodeDir(), StoreDir)); err != nil {
				t.Fatal(err)
			}
			meta.armed.Store(true)
			if _, err := Start(ctx, cfg, meta, nil, testLogger(t)); err == nil {
				t.Fatal("the start with the injected failure succeeded")
			}
			for restart := range 2 {
				mux := http.NewServeMux()
				ls, err := Start(ctx, cfg, meta, mux, testLogger(t))
				if err != nil {
					t.Fatal(err)
				}
				if ls.StorageState() != metadata.StorageReadWrite || storageOf(t, meta, "ls1") != metadata.StorageReadWrite {
					t.Fatalf("restart %d: state %q / %q, want read-write", restart, ls.StorageState(), storageOf(t, meta, "ls1"))
				}
				if n := nodeOf(t, meta, "ls1"); !n.Lost(0, 1) {
					t.Fatalf("restart %d: the nodes configuration lists no lost segments (%v)", restart, n.LostSegments)
				}
				c := serve(t, mux)
				info, err := c.GetLogletInfo(ctx, &wire.GetLogletInfo{Header: wire.Header{LogletID: lostLoglet}})
				if err != nil || info.Status != wire.StatusDataLoss {
					t.Fatalf("restart %d: info of the lost loglet: %+v, %v", restart, info, err)
				}
				ls.Close()
			}
		})
	}
}
