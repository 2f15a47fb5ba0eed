package rpc

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"gorestate.dev/shared/ids"
)

// TestWorkerRefusesMalformedRequests: requests that could never be applied are answered 400
// before the worker sees them, so nothing malformed can reach a partition log.
func TestWorkerRefusesMalformedRequests(t *testing.T) {
	t.Parallel()
	id := ids.NewInvocationID(ids.PartitionKeyOf("k")).Bytes()
	tests := []struct {
		name, path, body string
		ok               bool
	}{
		{"invoke without id", InvokePath, `{}`, false},
		{"invoke without target", InvokePath, `{"invocation_id":"` + b64(id) + `"}`, false},
		{"invoke", InvokePath, `{"invocation_id":"` + b64(id) + `","target":{"service":"S","handler":"h"}}`, true},
		{"attach with short id", AttachPath, `{"invocation_id":"AAAA"}`, false},
		{"signal without id", SignalPath, `{"signal_id":17}`, false},
		{"manage with unknown op", ManagePath, `{"invocation_id":"` + b64(id) + `","op":"explode"}`, false},
		{"manage", ManagePath, `{"invocation_id":"` + b64(id) + `","op":"kill"}`, true},
		{"manage purge-journal", ManagePath, `{"invocation_id":"` + b64(id) + `","op":"purge-journal"}`, true},
		{"restart-as-new without id", RestartAsNewPath, `{}`, false},
		{"restart-as-new", RestartAsNewPath, `{"invocation_id":"` + b64(id) + `"}`, true},
		{"restart-as-new from a prefix", RestartAsNewV2Path, `{"invocation_id":"` + b64(id) + `","from":3,"deployment":"keep"}`, true},
		{"restart-as-new on a deployment", RestartAsNewV2Path, `{"invocation_id":"` + b64(id) + `","deployment":"` + ids.NewDeploymentID() + `"}`, true},
		{"restart-as-new on a bad deployment", RestartAsNewV2Path, `{"invocation_id":"` + b64(id) + `","deployment":"dp_bad"}`, false},
	}
	w := &countingWorker{}
	mux := http.NewServeMux()
	Routes(mux, w)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := w.calls.Load()
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body)))
			reached := w.calls.Load() > before
			if tt.ok != reached || (!tt.ok && (rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "invalid request"))) {
				t.Errorf("%s %s: %d %q, worker reached: %v", tt.path, tt.body, rec.Code, rec.Body.String(), reached)
			}
		})
	}
	// The client side turns the answer back into ErrInvalidRequest with the reason.
	srv := httptest.NewServer(mux)
	defer srv.Close()
	_, err := (&HTTPInvoker{BaseURL: srv.URL, Client: srv.Client()}).Invoke(t.Context(), &InvokeRequest{})
	if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "invocation id") {
		t.Errorf("client error %v, want ErrInvalidRequest naming the invocation id", err)
	}
	// A restart's answer carries the new invocation's id back.
	resp, err := (&HTTPInvoker{BaseURL: srv.URL, Client: srv.Client()}).RestartAsNew(t.Context(), &RestartAsNewRequest{InvocationID: id})
	if err != nil || resp.Outcome != RestartDone || string(resp.NewInvocationID) != string(restartedID) {
		t.Errorf("restart-as-new over HTTP: %+v, %v", resp, err)
	}
}

// A restart with From or Deployment away from their defaults goes to its own path, which
// workers of versions that would ignore the two fields (and restart from the input) lack;
// one at the defaults goes where every version serves it.
func TestRestartAsNewPaths(t *testing.T) {
	t.Parallel()
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		w.Header().Set("content-type", "application/json")
		w.Write([]byte(`{"outcome":"done"}`))
	}))
	defer srv.Close()
	c := &HTTPInvoker{BaseURL: srv.URL, Client: srv.Client()}
	id := ids.NewInvocationID(1).Bytes()
	for _, req := range []*RestartAsNewRequest{
		{InvocationID: id},
		{InvocationID: id, Deployment: RestartDeploymentLatest},
		{InvocationID: id, From: 1},
		{InvocationID: id, Deployment: RestartDeploymentKeep},
		{InvocationID: id, Deployment: ids.NewDeploymentID()},
	} {
		if _, err := c.RestartAsNew(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{RestartAsNewPath, RestartAsNewPath, RestartAsNewV2Path, RestartAsNewV2Path, RestartAsNewV2Path}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Fatalf("paths %v, want %v", paths, want)
	}
}

// restartedID is the new invocation id countingWorker answers a restart with.
var restartedID = ids.NewInvocationID(ids.PartitionKeyOf("k")).Bytes()

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// countingWorker counts the requests that reach it.
type countingWorker struct{ calls atomic.Int32 }

func (w *countingWorker) Invoke(context.Context, *InvokeRequest) (*InvokeResponse, error) {
	w.calls.Add(1)
	return &InvokeResponse{}, nil
}

func (w *countingWorker) Attach(context.Context, *AttachRequest) (*InvokeResponse, error) {
	w.calls.Add(1)
	return &InvokeResponse{}, nil
}

func (w *countingWorker) Signal(context.Context, *SignalRequest) error {
	w.calls.Add(1)
	return nil
}

func (w *countingWorker) Manage(context.Context, *ManageRequest) (ManageOutcome, error) {
	w.calls.Add(1)
	return ManageDone, nil
}

func (w *countingWorker) PatchState(context.Context, *PatchStateRequest) error {
	w.calls.Add(1)
	return nil
}

func (w *countingWorker) RestartAsNew(context.Context, *RestartAsNewRequest) (*RestartAsNewResponse, error) {
	w.calls.Add(1)
	return &RestartAsNewResponse{Outcome: RestartDone, NewInvocationID: restartedID}, nil
}
