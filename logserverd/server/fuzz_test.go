package server

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"gorestate.dev/logserverd/logstore"
	"gorestate.dev/shared/bifrost/wire"
)

// FuzzRequests sends arbitrary request bodies through the HTTP handler to one server: no
// input may crash it, and its loglets' invariants hold after every request.
func FuzzRequests(f *testing.F) {
	hdr := wire.Header{LogletID: 3, KnownGlobalTail: 2}
	for _, m := range []any{
		&wire.Store{Header: hdr, FirstOffset: 1, Sequencer: seqA, Payloads: [][]byte{[]byte("a"), []byte("b")}},
		&wire.Store{Header: hdr, FirstOffset: 2, Flags: wire.FlagIgnoreSeal, Sequencer: seqA, Payloads: [][]byte{[]byte("c")}},
		&wire.Store{Header: wire.Header{LogletID: 3, KnownGlobalTail: 10}, FirstOffset: 10, TimeoutAt: 1, Sequencer: seqB, Payloads: [][]byte{{}}},
		&wire.Seal{Header: hdr, Sequencer: seqA},
		&wire.GetLogletInfo{Header: hdr},
		&wire.GetRecords{Header: hdr, From: 1, To: 100, LimitBytes: 10},
		&wire.Trim{Header: hdr, TrimPoint: 1},
		&wire.WaitForTail{Header: hdr, Query: wire.WaitLocalOrGlobalTail, Offset: 2},
		&wire.GetDigest{Header: hdr, From: 1, To: 9},
	} {
		b, err := wire.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	st, err := logstore.Open(f.TempDir(), logstore.Options{})
	if err != nil {
		f.Fatal(err)
	}
	srv := New(st, Options{})
	f.Cleanup(func() { srv.Close(); st.Close() })
	h := wire.LogServerHandler(srv)
	f.Fuzz(func(t *testing.T, body []byte) {
		// Requests that legitimately wait (WaitForTail, stores behind a seal) are cut short.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, wire.LogServerPath, bytes.NewReader(body))
		rec := httptest.NewRecorder()
		// A request that ignores its context would hang the fuzzer silently; fail with the
		// stacks instead.
		served := make(chan struct{})
		go func() { h.ServeHTTP(rec, req); close(served) }()
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("hung on %x\n%s", body, buf[:n])
		}
		if rec.Code == http.StatusOK {
			if _, err := wire.Unmarshal(rec.Body.Bytes()); err != nil {
				t.Fatalf("undecodable answer: %v", err)
			}
		}
		srv.mu.Lock()
		ls := make([]*loglet, 0, len(srv.loglets))
		for _, l := range srv.loglets {
			ls = append(ls, l)
		}
		srv.mu.Unlock()
		for _, l := range ls {
			l.mu.Lock()
			if l.loaded && (l.localTail > l.staging || l.trimPoint >= l.localTail || l.trimDurable > l.trimPoint || l.localTail == 0) {
				t.Errorf("loglet %d: local tail %d, staging %d, trim point %d (durable %d)", l.id, l.localTail, l.staging, l.trimPoint, l.trimDurable)
			}
			l.mu.Unlock()
		}
	})
}
