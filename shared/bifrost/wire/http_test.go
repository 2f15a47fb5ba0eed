package wire

import (
	"bufio"
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
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/upgrade"
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

// startFabric serves the handlers the way a fabric listener does and counts the
// connections the server accepted.
func startFabric(t *testing.T, ls LogServer, seq Sequencer) (string, *atomic.Int32) {
	t.Helper()
	mux := http.NewServeMux()
	lh, sh := LogServerHandler(ls), SequencerHandler(seq)
	mux.Handle(LogServerPath, lh)
	mux.Handle(SequencerPath, sh)
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(func() {
		lh.Close()
		sh.Close()
		srv.Close()
	})
	return srv.URL + "/", &conns
}

func newClient(t *testing.T, url string) *Client {
	t.Helper()
	c, err := NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestClientCallsEveryOperation(t *testing.T) {
	t.Parallel()
	ls := &fakeLogServer{}
	url, conns := startFabric(t, ls, fakeSequencer{})
	c := newClient(t, url)
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
	// One stream per path carried all of it.
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestConcurrentCallsShareOneStream(t *testing.T) {
	t.Parallel()
	url, conns := startFabric(t, &fakeLogServer{}, nil)
	c := newClient(t, url)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i := range 1000 {
		wg.Go(func() {
			// Each answer names its call (LocalTail = KnownGlobalTail + 1), so answers
			// matched to the wrong call show.
			h := Header{LogletID: uint64(i), KnownGlobalTail: bifrost.Offset(i)}
			st, err := c.Store(context.Background(), &Store{Header: h, FirstOffset: 1, Payloads: [][]byte{[]byte("x")}})
			switch {
			case err != nil:
				errs <- err
			case st.LocalTail != bifrost.Offset(i)+1:
				errs <- fmt.Errorf("call %d got the answer of call %d", i, st.LocalTail-1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("1000 concurrent calls opened %d connections, want 1", n)
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
		body   []byte
		code   int
		want   string
	}{
		{"GET", http.MethodGet, nil, http.StatusMethodNotAllowed, "takes POST, or GET with Upgrade: gorestate-bifrost/1"},
		{"garbage", http.MethodPost, []byte{0xff}, http.StatusBadRequest, "decode request: wire: malformed message: message.type: truncated varint"},
		{"trailing", http.MethodPost, append(append([]byte(nil), stored...), 1), http.StatusBadRequest, "trailing"},
		{"response as request", http.MethodPost, stored, http.StatusBadRequest, "does not serve Stored requests"},
		{"sequencer message on log-server path", http.MethodPost, append_, http.StatusBadRequest, "does not serve Append requests"},
		{"too large", http.MethodPost, make([]byte, MaxMessageBytes+1), http.StatusRequestEntityTooLarge, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, url+strings.TrimPrefix(LogServerPath, "/"), bytes.NewReader(tt.body))
			resp, err := http.DefaultClient.Do(req)
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
	// The same refusals as fail frames on a stream, which stays usable after them.
	conn := dialStream(t, url, LogServerPath)
	br := bufio.NewReader(conn)
	for i, tt := range tests[1:5] {
		if _, err := conn.Write(appendFrame(nil, frameCall, uint64(i), tt.body)); err != nil {
			t.Fatal(err)
		}
		kind, id, body, err := readFrame(br)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		se, _ := parseFail(body)
		if kind != frameFail || id != uint64(i) || se == nil || se.Code != tt.code || !strings.Contains(se.Message, tt.want) {
			t.Fatalf("%s: %s frame %d %+v, want fail %d containing %q", tt.name, kind, id, se, tt.code, tt.want)
		}
	}
	if n := ls.calls.Load(); n != 0 {
		t.Fatalf("%d bad requests reached the server", n)
	}
	// A frame no client sends ends the stream.
	if _, err := conn.Write(appendFrame(nil, frameReply, 1, stored)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := readFrame(br); err == nil {
		t.Fatal("the server kept a stream that sent it a reply frame")
	}
}

// dialStream opens a raw stream to path.
func dialStream(t *testing.T, url, path string) net.Conn {
	t.Helper()
	conn, err := upgrade.Dial(context.Background(), strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"), path, StreamProtocol, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestNilSequencerHandlerSaysNotSequencer(t *testing.T) {
	t.Parallel()
	url, _ := startFabric(t, &fakeLogServer{}, nil)
	c := newClient(t, url)
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
	c := newClient(t, url)
	_, err := c.Store(context.Background(), &Store{})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
		t.Fatalf("err %v, want a 503 StatusError", err)
	}
	if !strings.Contains(err.Error(), "bifrost Store to "+strings.TrimSuffix(url, "/")) || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("err %q does not name operation, node and cause", err)
	}
	// An unreachable node.
	dead := newClient(t, "http://127.0.0.1:1")
	_, err = dead.Seal(context.Background(), &Seal{})
	if err == nil || !strings.Contains(err.Error(), "bifrost Seal to http://127.0.0.1:1: connect:") {
		t.Fatalf("err %v", err)
	}
	// A path that serves no streams.
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	_, err = newClient(t, srv.URL).GetLogletInfo(context.Background(), &GetLogletInfo{})
	if err == nil || !strings.Contains(err.Error(), "refused: 404") {
		t.Fatalf("err %v, want the refused upgrade", err)
	}
	for _, bad := range []string{"https://a:1", "a:1", "http://a:1/x", "http://"} {
		if _, err := NewClient(bad); err == nil {
			t.Fatalf("NewClient(%q) accepted", bad)
		}
	}
}

// blockingLogServer's WaitForTail waits until its caller gives up, and reports that.
type blockingLogServer struct {
	fakeLogServer
	gaveUp chan struct{}
}

func (b *blockingLogServer) WaitForTail(ctx context.Context, _ *WaitForTail) (*TailUpdated, error) {
	<-ctx.Done()
	b.gaveUp <- struct{}{}
	return nil, ctx.Err()
}

func TestCancelledCallEndsOnTheServer(t *testing.T) {
	t.Parallel()
	ls := &blockingLogServer{gaveUp: make(chan struct{}, 1)}
	url, _ := startFabric(t, ls, nil)
	c := newClient(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.WaitForTail(ctx, &WaitForTail{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the deadline", err)
	}
	select {
	case <-ls.gaveUp:
	case <-time.After(5 * time.Second):
		t.Fatal("the server kept waiting for a caller that gave up")
	}
	// The stream stays usable.
	if _, err := c.GetLogletInfo(context.Background(), &GetLogletInfo{}); err != nil {
		t.Fatal(err)
	}
}

// serveLogServer serves ls on its own test server and returns the handler (to close it)
// and a client of it.
func serveLogServer(t *testing.T, ls LogServer) (*Handler, *Client) {
	t.Helper()
	mux := http.NewServeMux()
	h := LogServerHandler(ls)
	mux.Handle(LogServerPath, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return h, newClient(t, srv.URL)
}

func TestHandlerCloseEndsStreams(t *testing.T) {
	t.Parallel()
	ls := &blockingLogServer{gaveUp: make(chan struct{}, 1)}
	h, c := serveLogServer(t, ls)
	errc := make(chan error, 1)
	go func() {
		_, err := c.WaitForTail(context.Background(), &WaitForTail{})
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond) // the call reaches the server
	h.Close()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "connection lost") {
			t.Fatalf("err %v, want the lost connection", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a call in flight outlived the handler's Close")
	}
	<-ls.gaveUp
	if _, err := c.GetLogletInfo(context.Background(), &GetLogletInfo{}); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err %v, want the closed handler's refusal", err)
	}
}

func TestSilentServerFailsTheStream(t *testing.T) {
	t.Parallel()
	// A server that upgrades and then never answers, not even pings: a frozen host.
	mux := http.NewServeMux()
	mux.HandleFunc(LogServerPath, func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrade.Accept(w, r, StreamProtocol)
		if err != nil {
			return
		}
		defer conn.Close()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL)
	c.logServer.timing = streamTiming{ping: 20 * time.Millisecond, dead: 200 * time.Millisecond}
	start := time.Now()
	_, err := c.GetLogletInfo(context.Background(), &GetLogletInfo{})
	if err == nil || !strings.Contains(err.Error(), "no answer from the server") {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v to give up", d)
	}
}

func TestFabricNetworkResolvesAndCaches(t *testing.T) {
	t.Parallel()
	url, _ := startFabric(t, &fakeLogServer{}, fakeSequencer{})
	n := NewFabricNetwork(func(node string) (string, error) {
		switch node {
		case "a", "b":
			return url, nil
		}
		return "", fmt.Errorf("no node %q", node)
	})
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
	n.Close()
	if _, err := ls.GetLogletInfo(context.Background(), &GetLogletInfo{}); !errors.Is(err, bifrost.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if _, err := n.Client("a"); !errors.Is(err, bifrost.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// orderedLogServer records the order in which its stores were started. Every third store
// is answered while it starts (ready), the others after a sleep on their own goroutine.
type orderedLogServer struct {
	fakeLogServer
	mu      sync.Mutex
	started []bifrost.Offset
}

func (o *orderedLogServer) StartStore(req *Store, _ bool) (func(context.Context) (*Stored, error), bool) {
	o.mu.Lock()
	o.started = append(o.started, req.FirstOffset)
	o.mu.Unlock()
	// The answer names its store, so that an answer delivered to another call shows.
	resp := &Stored{ResponseHeader: ResponseHeader{Status: StatusOK, LocalTail: req.FirstOffset + 1}}
	if req.FirstOffset%3 == 0 {
		return func(context.Context) (*Stored, error) { return resp, nil }, true
	}
	return func(ctx context.Context) (*Stored, error) {
		time.Sleep(time.Millisecond) // answers overtake each other; starts must not
		return resp, nil
	}, false
}

func TestStreamStartsStoresInTheOrderSent(t *testing.T) {
	t.Parallel()
	ls := &orderedLogServer{}
	url, _ := startFabric(t, ls, nil)
	c := newClient(t, url)
	type answer struct {
		first bifrost.Offset
		st    *Stored
		err   error
	}
	answers := make(chan answer, 500)
	for i := range 500 {
		first := bifrost.Offset(i + 1)
		c.SendStore(context.Background(), &Store{Header: Header{LogletID: 1}, FirstOffset: first, Payloads: [][]byte{[]byte("x")}},
			func(st *Stored, err error) { answers <- answer{first, st, err} })
	}
	seen := map[bifrost.Offset]bool{}
	for range 500 {
		a := <-answers
		if a.err != nil || a.st.Status != StatusOK || a.st.LocalTail != a.first+1 {
			t.Fatalf("store at %d: %+v, %v", a.first, a.st, a.err)
		}
		if seen[a.first] {
			t.Fatalf("store at %d answered twice", a.first)
		}
		seen[a.first] = true
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for i, first := range ls.started {
		if first != bifrost.Offset(i+1) {
			t.Fatalf("start %d was the store at %d", i, first)
		}
	}
	if len(ls.started) != 500 {
		t.Fatalf("%d stores started, want 500", len(ls.started))
	}
}

// heldStoreServer holds every store until the call ends.
type heldStoreServer struct{ fakeLogServer }

func (*heldStoreServer) Store(ctx context.Context, _ *Store) (*Stored, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// A store in flight when the stream fails is answered once, with the failure.
func TestSendStoreAnsweredOnceWhenTheStreamFails(t *testing.T) {
	t.Parallel()
	h, c := serveLogServer(t, &heldStoreServer{})
	answers := make(chan error, 2)
	c.SendStore(context.Background(), &Store{Header: Header{LogletID: 1}, FirstOffset: 1, Payloads: [][]byte{[]byte("x")}},
		func(_ *Stored, err error) { answers <- err })
	time.Sleep(50 * time.Millisecond) // the store reaches the server, which holds it
	h.Close()
	select {
	case err := <-answers:
		if err == nil || !strings.Contains(err.Error(), "connection lost") {
			t.Fatalf("err %v, want the lost connection", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the store was never answered")
	}
	select {
	case err := <-answers:
		t.Fatalf("answered twice, again with %v", err)
	case <-time.After(50 * time.Millisecond):
	}
}
