package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// InvokePath is where a worker serves Invoke over HTTP.
const InvokePath = "/worker/v1/invoke"

// errorHeader marks answers whose body is an rpc error, and says which.
const errorHeader = "x-rpc-error"

// Paths of the other worker RPCs.
const (
	AttachPath = "/worker/v1/attach"
	SignalPath = "/worker/v1/signal"
	ManagePath = "/worker/v1/manage"
	// PatchStatePath replaces an object's state.
	PatchStatePath = "/worker/v1/patch-state"
	// RestartAsNewPath starts a completed invocation again as a new one.
	RestartAsNewPath = "/worker/v1/restart-as-new"
	// RestartAsNewV2Path takes the restarts whose From or Deployment is not at its default.
	// Workers of the versions before those fields lack the path (404) and so never restart
	// from the input, on the latest deployment, what was asked otherwise.
	RestartAsNewV2Path = "/worker/v2/restart-as-new"
	// PartitionsPath (GET) lists the worker's partition processors ([]PartitionState).
	PartitionsPath = "/worker/v1/partitions"
)

// Worker is everything a partition leader serves to ingress and admin nodes.
type Worker interface {
	Invoker
	Controller
}

// sentinels travel as the errorHeader value.
var sentinels = map[string]error{"not-leader": ErrNotLeader, "not-found": ErrNotFound, "not-completed": ErrNotCompleted, "invalid": ErrInvalidRequest, "outcome-unknown": ErrOutcomeUnknown}

// serveJSON adapts one RPC method to HTTP with JSON bodies.
func serveJSON[Req, Resp any](call func(context.Context, *Req) (Resp, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		req := new(Req)
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(req); err != nil {
			w.Header().Set(errorHeader, "bad-request")
			http.Error(w, "decode request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if v, ok := any(req).(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				w.Header().Set(errorHeader, "invalid")
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		resp, err := call(r.Context(), req)
		if err != nil {
			for name, s := range sentinels {
				if errors.Is(err, s) {
					w.Header().Set(errorHeader, name)
					http.Error(w, err.Error(), http.StatusServiceUnavailable)
					return
				}
			}
			w.Header().Set(errorHeader, "internal")
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("content-type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
}

// ServeInvoke returns an HTTP handler serving inv at InvokePath.
func ServeInvoke(inv Invoker) http.Handler { return serveJSON(inv.Invoke) }

// Routes adds every worker RPC to mux.
func Routes(mux *http.ServeMux, w Worker) {
	mux.Handle(InvokePath, serveJSON(w.Invoke))
	mux.Handle(AttachPath, serveJSON(w.Attach))
	mux.Handle(SignalPath, serveJSON(func(ctx context.Context, r *SignalRequest) (struct{}, error) {
		return struct{}{}, w.Signal(ctx, r)
	}))
	mux.Handle(ManagePath, serveJSON(w.Manage))
	mux.Handle(PatchStatePath, serveJSON(func(ctx context.Context, r *PatchStateRequest) (struct{}, error) {
		return struct{}{}, w.PatchState(ctx, r)
	}))
	mux.Handle(RestartAsNewPath, serveJSON(w.RestartAsNew))
	mux.Handle(RestartAsNewV2Path, serveJSON(w.RestartAsNew))
}

// HTTPInvoker calls a worker's Invoke over HTTP.
type HTTPInvoker struct {
	BaseURL string // fabric base URL of the worker, e.g. "http://10.0.0.5:5122"
	Client  *http.Client
	// Sender, if set, identifies the calling node's life ("name@generation") in the
	// X-Gorestate-Sender header, so that a worker can refuse requests of a superseded life.
	Sender string
}

// SenderHeader carries HTTPInvoker.Sender (see shared/membership, which checks it).
const SenderHeader = "X-Gorestate-Sender"

// Invoke implements Invoker.
func (c *HTTPInvoker) Invoke(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error) {
	out := &InvokeResponse{}
	return out, c.call(ctx, InvokePath, req, out)
}

// Attach implements Controller.
func (c *HTTPInvoker) Attach(ctx context.Context, req *AttachRequest) (*InvokeResponse, error) {
	out := &InvokeResponse{}
	return out, c.call(ctx, AttachPath, req, out)
}

// Signal implements Controller.
func (c *HTTPInvoker) Signal(ctx context.Context, req *SignalRequest) error {
	return c.call(ctx, SignalPath, req, &struct{}{})
}

// Manage implements Controller.
func (c *HTTPInvoker) Manage(ctx context.Context, req *ManageRequest) (ManageOutcome, error) {
	var out ManageOutcome
	return out, c.call(ctx, ManagePath, req, &out)
}

// PatchState implements Controller.
func (c *HTTPInvoker) PatchState(ctx context.Context, req *PatchStateRequest) error {
	return c.call(ctx, PatchStatePath, req, &struct{}{})
}

// RestartAsNew implements Controller.
func (c *HTTPInvoker) RestartAsNew(ctx context.Context, req *RestartAsNewRequest) (*RestartAsNewResponse, error) {
	out := &RestartAsNewResponse{}
	path := RestartAsNewPath
	if !req.atDefaults() {
		path = RestartAsNewV2Path
	}
	return out, c.call(ctx, path, req, out)
}

func (c *HTTPInvoker) call(ctx context.Context, path string, req, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("content-type", "application/json")
	if c.Sender != "" {
		hr.Header.Set(SenderHeader, c.Sender)
	}
	resp, err := c.Client.Do(hr)
	if err != nil {
		return fmt.Errorf("%s on %s: %w", path, c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if s, ok := sentinels[resp.Header.Get(errorHeader)]; ok {
			if s == ErrInvalidRequest {
				reason := strings.TrimPrefix(strings.TrimSpace(string(msg)), ErrInvalidRequest.Error()+": ")
				return fmt.Errorf("%s on %s: %w: %s", path, c.BaseURL, ErrInvalidRequest, reason)
			}
			return s
		}
		return fmt.Errorf("%s on %s: %s: %s", path, c.BaseURL, resp.Status, strings.TrimSpace(string(msg)))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s on %s: decode answer: %w", path, c.BaseURL, err)
	}
	return nil
}
