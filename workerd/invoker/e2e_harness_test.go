package invoker

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/localloglet"
	"gorestate.dev/shared/h2c"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
	"gorestate.dev/workerd/processor"
	"gorestate.dev/workerd/store"
)

// harness: one partition processor leading, a real invoker, a fake SDK deployment over h2c.
type harness struct {
	t    *testing.T
	p    *processor.Processor
	inv  *Invoker
	db   *store.DB
	log  bifrost.Log
	url  string
	srv  *http.Server
	mu   sync.Mutex
	reqs int
	// reg is the registry the invoker sees; a test may replace it.
	reg atomic.Pointer[schema.Registry]
}

type sdkHandler func(h *harness, w http.ResponseWriter, r *http.Request, start *protocol.StartMessage, replay []protocol.Message, dec *protocol.Decoder)

func newHarness(t *testing.T, opts Options, mode string, handler sdkHandler) *harness {
	t.Helper()
	h := &harness{t: t}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	h.srv = &http.Server{Protocols: &protos, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.reqs++
		h.mu.Unlock()
		dec := protocol.NewDecoder(r.Body, 0)
		m, err := dec.Next()
		if err != nil || m.Type != protocol.StartMessageType {
			http.Error(w, "no start", 400)
			return
		}
		start := &protocol.StartMessage{}
		if err := start.Unmarshal(m.Payload); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var replay []protocol.Message
		for i := uint32(0); i < start.KnownEntries; i++ {
			e, err := dec.Next()
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			replay = append(replay, e)
		}
		w.Header().Set("content-type", r.Header.Get("content-type"))
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		handler(h, w, r, start, replay, dec)
	})}
	go h.srv.Serve(ln)
	t.Cleanup(func() { h.srv.Close() })
	h.url = "http://" + ln.Addr().String()

	reg := &schema.Registry{
		Deployments: []schema.Deployment{{ID: "dp_test", URI: h.url, ProtocolMode: mode, MinProtocolVersion: 5, MaxProtocolVersion: 6}},
		Services: map[string]*schema.Service{"Svc": {Name: "Svc", Type: schema.ServiceTypeService, DeploymentID: "dp_test",
			Handlers: []schema.Handler{{Name: "h"}}, RetryPolicy: schema.RetryPolicy{InitialInterval: 10 * time.Millisecond, ExponentiationFactor: 1, MaxAttempts: 1000}}},
	}
	h.reg.Store(reg)
	opts.Schema = func() *schema.Registry { return h.reg.Load() }
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Transport: h2c.NewTransport()}
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	h.inv = New(opts)

	logs, err := localloglet.Open(t.TempDir(), localloglet.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := metadata.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	chains, _ := json.Marshal(metadata.Logs{Chains: map[uint32][]metadata.Segment{0: {{BaseLSN: 1, Provider: bifrost.ProviderLocal}}}})
	if _, err := meta.Put(context.Background(), metadata.KeyLogs, chains, 0); err != nil {
		t.Fatal(err)
	}
	b := bifrost.New(bifrost.Options{Meta: meta, Registry: bifrost.Registry{bifrost.ProviderLocal: localloglet.NewProvider(logs, "n1")}})
	log := b.WriterLog(0)
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h.db, h.log = db, log
	p := processor.New(processor.Config{Partition: 0, NumPartitions: 1, Store: db.Partition(0), Log: log,
		Logs: func(uint32) (bifrost.Log, error) { return log, nil }, Invoker: h.inv, Logger: hclog.NewNullLogger(), Role: processor.RoleLeader})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		b.Close()
		db.Close()
		meta.Close()
		logs.Close()
	})
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("processor stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("processor not ready")
	}
	h.p = p
	return h
}

func (h *harness) requests() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reqs
}

// call invokes Svc/h and waits for the result.
func (h *harness) call(ctx context.Context) (*rpc.InvokeResponse, []byte, error) {
	id := ids.NewInvocationID(ids.PartitionKeyOf("")).Bytes()
	resp, err := h.p.Leader().Invoke(ctx, &rpc.InvokeRequest{InvocationID: id, Input: []byte("in"),
		Target: rpc.Target{Service: "Svc", Handler: "h", ServiceType: "SERVICE"}})
	return resp, id, err
}

func (h *harness) status(id []byte) *store.Status {
	snap, err := h.db.Partition(0).Snapshot()
	if err != nil {
		h.t.Fatal(err)
	}
	defer snap.Release()
	st, err := snap.Status(id)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *harness) journal(id []byte, n uint32) []store.JournalEntry {
	snap, err := h.db.Partition(0).Snapshot()
	if err != nil {
		h.t.Fatal(err)
	}
	defer snap.Release()
	j, err := snap.Journal(id, n)
	if err != nil {
		h.t.Fatal(err)
	}
	return j
}

func writeMsg(w http.ResponseWriter, m protocol.Message) {
	w.Write(protocol.AppendFrame(nil, m))
	w.(http.Flusher).Flush()
}

func outputEnd(w http.ResponseWriter, value string) {
	out := &protocol.OutputCommand{Value: protocol.NewValue([]byte(value))}
	writeMsg(w, protocol.Message{Type: protocol.OutputCommandType, Payload: out.Marshal()})
	writeMsg(w, protocol.Message{Type: protocol.EndMessageType})
}
