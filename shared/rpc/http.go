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

// ServeInvoke returns an HTTP handler serving inv at InvokePath.
func ServeInvoke(inv Invoker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		req := &InvokeRequest{}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(req); err != nil {
			w.Header().Set(errorHeader, "bad-request")
			http.Error(w, "decode invoke request: "+err.Error(), http.StatusBadRequest)
			return
		}
		resp, err := inv.Invoke(r.Context(), req)
		if err != nil {
			if errors.Is(err, ErrNotLeader) {
				w.Header().Set(errorHeader, "not-leader")
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			w.Header().Set(errorHeader, "internal")
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("content-type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
}

// HTTPInvoker calls a worker's Invoke over HTTP.
type HTTPInvoker struct {
	BaseURL string // fabric base URL of the worker, e.g. "http://10.0.0.5:5122"
	Client  *http.Client
}

// Invoke implements Invoker.
func (c *HTTPInvoker) Invoke(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.BaseURL, "/")+InvokePath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("content-type", "application/json")
	resp, err := c.Client.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("invoke on %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.Header.Get(errorHeader) == "not-leader" {
			return nil, ErrNotLeader
		}
		return nil, fmt.Errorf("invoke on %s: %s: %s", c.BaseURL, resp.Status, strings.TrimSpace(string(msg)))
	}
	out := &InvokeResponse{}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return nil, fmt.Errorf("invoke on %s: decode answer: %w", c.BaseURL, err)
	}
	return out, nil
}
