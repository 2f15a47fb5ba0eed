package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gorestate.dev/shared/bifrost"
)

// fakeLogServer answers every call from its fields and records what reached it.
type fakeLogServer struct {
	calls atomic.Int32
	err   error
}

func (f *fakeLogServer) reply(h Header) ResponseHeader {
	f.calls.Add(1)
	return ResponseHeader{Status: StatusOK, LocalTail: h.KnownGlobalTail + 1, KnownGlobalTail: h.KnownGlobalTail}
}

func (f *fakeLogServer) Store(_ context.Context, r *Store) (*Stored, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &Stored{ResponseHeader: f.reply(r.Header)}, nil
}
func (f *fakeLogServer) Seal(_ context.Context, r *Seal) (*Sealed, error) {
	return &Sealed{ResponseHeader: f.reply(r.Header)}, nil
}
func (f *fakeLogServer) GetLogletInfo(_ context.Context, r *GetLogletInfo) (*LogletInfo, error) {
	return &LogletInfo{ResponseHeader: f.reply(r.Header), TrimPoint: 3}, nil
}
func (f *fakeLogServer) GetRecords(_ context.Context, r *GetRecords) (*Records, error) {
	return &Records{ResponseHeader: f.reply(r.Header), NextOffset: r.From + 1,
		Records: []LogRecord{{Offset: r.From, Payload: []byte("rec")}}}, nil
}
func (f *fakeLogServer) Trim(_ context.Context, r *Trim) (*Trimmed, error) {
	return &Trimmed{ResponseHeader: f.reply(r.Header)}, nil
}
func (f *fakeLogServer) WaitForTail(_ context.Context, r *WaitForTail) (*TailUpdated, error) {
	return &TailUpdated{ResponseHeader: f.reply(r.Header)}, nil
}
func (f *fakeLogServer) GetDigest(_ context.Context, r *GetDigest) (*Digest, error) {
	return &Digest{ResponseHeader: f.reply(r.Header), Entries: []DigestEntry{{From: r.From, To: r.To}}}, nil
}

type fakeSequencer struct{}

func (fakeSequencer) Append(_ context.Context, r *Append) (*Appended, error) {
	return &Appended{FirstOffset: bifrost.Offset(len(r.Payloads))}, nil
}
func (fakeSequencer) GetSequencerState(_ context.Context, r *GetSequencerState) (*SequencerState, error) {
	return &SequencerState{KnownGlobalTail: bifrost.Offset(r.LogletID)}, nil
}

// startFabric serves the handlers the way a fabric listener does (h2c and HTTP/1.1) and
// counts requests that did not arrive over HTTP/2.
func startFabric(t *testing.T, ls LogServer, seq Sequencer) (string, *atomic.Int32) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(LogServerPath, LogServerHandler(ls))
	mux.Handle(SequencerPath, SequencerHandler(seq))
	var notH2 atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			notH2.Add(1)
		}
		mux.ServeHTTP(w, r)
	}))
	srv.Config.Protocols = FabricProtocols()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL + "/", &notH2
}

func TestClientCallsEveryOperation(t *testing.T) {
	t.Parallel()
	ls := &fakeLogServer{}
	url, notH2 := startFabric(t, ls, fakeSequencer{})
	c := NewClient(url, NewH2CClient())
	ctx := context.Background()
	h := Header{LogletID: 1, KnownGlobalTail: 5}
	check := func(op string, got ResponseHeader, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		if got.LocalTail != 6 || got.KnownGlobalTail != 5 {
			t.Fatalf("%s: header %+v", op, got)
		}
	}
	st, err := c.Store(ctx, &Store{Header: h, FirstOffset: 5, Payloads: [][]byte{[]byte("x")}})
	check("store", st.ResponseHeader, err)
	se, err := c.Seal(ctx, &Seal{Header: h})
	check("seal", se.ResponseHeader, err)
	li, err := c.GetLogletInfo(ctx, &GetLogletInfo{Header: h})
	check("info", li.ResponseHeader, err)
	if li.TrimPoint != 3 {
		t.Fatalf("trim point %d", li.TrimPoint)
	}
	rs, err := c.GetRecords(ctx, &GetRecords{Header: h, From: 4, To: 9})
	check("records", rs.ResponseHeader, err)
	if len(rs.Records) != 1 || string(rs.Records[0].Payload) != "rec" || rs.NextOffset != 5 {
		t.Fatalf("records %+v", rs)
	}
	tr, err := c.Trim(ctx, &Trim{Header: h, TrimPoint: 2})
	check("trim", tr.ResponseHeader, err)
	wt, err := c.WaitForTail(ctx, &WaitForTail{Header: h, Offset: 3})
	check("wait", wt.ResponseHeader, err)
	dg, err := c.GetDigest(ctx, &GetDigest{Header: h, From: 1, To: 2})
	check("digest", dg.ResponseHeader, err)
	ap, err := c.Append(ctx, &Append{Payloads: [][]byte{[]byte("a"), []byte("b")}})
	if err != nil || ap.FirstOffset != 2 {
		t.Fatalf("append %+v, %v", ap, err)
	}
	ss, err := c.GetSequencerState(ctx, &GetSequencerState{LogletID: 9})
	if err != nil || ss.KnownGlobalTail != 9 {
		t.Fatalf("sequencer state %+v, %v", ss, err)
	}
	if n := ls.calls.Load(); n != 7 {
		t.Fatalf("log server saw %d calls, want 7", n)
	}
	if n := notH2.Load(); n != 0 {
		t.Fatalf("%d requests did not use HTTP/2", n)
	}
}

func TestConcurrentCallsShareConnections(t *testing.T) {
	t.Parallel()
	ls := &fakeLogServer{}
	mux := http.NewServeMux()
	mux.Handle(LogServerPath, LogServerHandler(ls))
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = FabricProtocols()
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := NewClient(srv.URL, NewH2CClient())
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i := range 1000 {
		wg.Go(func() {
			_, err := c.Store(context.Background(), &Store{Header: Header{LogletID: uint64(i)}, FirstOffset: 1, Payloads: [][]byte{[]byte("x")}})
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Go's HTTP/2 server allows 250 concurrent streams per connection by default, so a
	// handful of connections carry them; HTTP/1.1 would have needed one per call.
	t.Logf("1000 concurrent calls used %d connections", conns.Load())
	if n := conns.Load(); n > 50 {
		t.Fatalf("1000 concurrent calls opened %d connections", n)
	}
}

func TestHandlerRejectsBadRequests(t *testing.T) {
	t.Parallel()
	ls := &fakeLogServer{}
	url, _ := startFabric(t, ls, nil)
	append_, _ := Marshal(&Append{})
	stored, _ := Marshal(&Stored{})
	tests := []struct {
		name   string
		method string
		path   string
		body   []byte
		code   int
		want   string
	}{
		{"GET", http.MethodGet, LogServerPath, nil, http.StatusMethodNotAllowed, "takes POST"},
		{"garbage", http.MethodPost, LogServerPath, []byte{0xff}, http.StatusBadRequest, "decode request: wire: malformed message: message.type: truncated varint"},
		{"trailing", http.MethodPost, LogServerPath, append(append([]byte(nil), stored...), 1), http.StatusBadRequest, "trailing"},
		{"response as request", http.MethodPost, LogServerPath, stored, http.StatusBadRequest, "does not serve Stored requests"},
		{"sequencer message on log-server path", http.MethodPost, LogServerPath, append_, http.StatusBadRequest, "does not serve Append requests"},
		{"too large", http.MethodPost, LogServerPath, make([]byte, MaxMessageBytes+1), http.StatusRequestEntityTooLarge, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, url+strings.TrimPrefix(tt.path, "/"), bytes.NewReader(tt.body))
			resp, err := NewH2CClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code || !strings.Contains(string(body), tt.want) {
				t.Fatalf("%d %q, want %d containing %q", resp.StatusCode, body, tt.code, tt.want)
			}
		})
	}
	if n := ls.calls.Load(); n != 0 {
		t.Fatalf("%d bad requests reached the server", n)
	}
}

func TestNilSequencerHandlerSaysNotSequencer(t *testing.T) {
	t.Parallel()
	url, _ := startFabric(t, &fakeLogServer{}, nil)
	c := NewClient(url, nil)
	ap, err := c.Append(context.Background(), &Append{Payloads: [][]byte{[]byte("x")}})
	if err != nil || ap.Status != StatusNotSequencer {
		t.Fatalf("append %+v, %v", ap, err)
	}
	ss, err := c.GetSequencerState(context.Background(), &GetSequencerState{})
	if err != nil || ss.Status != StatusNotSequencer {
		t.Fatalf("state %+v, %v", ss, err)
	}
}

func TestClientErrorsNameNodeAndOperation(t *testing.T) {
	t.Parallel()
	url, _ := startFabric(t, &fakeLogServer{err: bifrost.ErrClosed}, nil)
	c := NewClient(url, nil)
	_, err := c.Store(context.Background(), &Store{})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
		t.Fatalf("err %v, want a 503 StatusError", err)
	}
	if !strings.Contains(err.Error(), "bifrost Store to "+strings.TrimSuffix(url, "/")) || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("err %q does not name operation, node and cause", err)
	}
	// An unreachable node.
	dead := NewClient("http://127.0.0.1:1", nil)
	_, err = dead.Seal(context.Background(), &Seal{})
	if err == nil || !strings.Contains(err.Error(), "bifrost Seal to http://127.0.0.1:1") {
		t.Fatalf("err %v", err)
	}
}

func TestHTTPNetworkResolvesAndCaches(t *testing.T) {
	t.Parallel()
	url, _ := startFabric(t, &fakeLogServer{}, fakeSequencer{})
	n := NewHTTPNetwork(func(node string) (string, error) {
		switch node {
		case "a", "b":
			return url, nil
		}
		return "", fmt.Errorf("no node %q", node)
	}, nil)
	a, err := n.Client("a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := n.Client("b")
	if a != b {
		t.Fatal("two nodes at one URL got two clients")
	}
	ls, err := n.LogServer("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.GetLogletInfo(context.Background(), &GetLogletInfo{}); err != nil {
		t.Fatal(err)
	}
	if s, err := n.Sequencer("zz"); err == nil || s != nil || !strings.Contains(err.Error(), `find node zz: no node "zz"`) {
		t.Fatalf("unknown node: %v, %v", s, err)
	}
}
