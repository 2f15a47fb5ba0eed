package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"gorestate.dev/shared/metadata"
)

// HTTP API on the fabric listener of metadata nodes (what gorestatectl talks to):
//
//	GET   /cluster/v1/status     Status
//	GET   /cluster/v1/logs       LogsStatus
//	POST  /cluster/v1/provision  ProvisionRequest → 200 ClusterConfig; 409 if provisioned
//	GET   /cluster/v1/config     ClusterConfig; 503 {"message"} if not provisioned
//	PATCH /cluster/v1/config     ConfigChange → {"before":…, "after":…}
//	POST  /cluster/v1/snapshots  take snapshots (snapshots.go)
//	GET   /cluster/v1/snapshots  list snapshots
//
// Errors are {"message": "..."}.
const PathPrefix = "/cluster/v1/"

// ProvisionRequest is the body of a provision; zero fields take the answering node's
// defaults (default-num-partitions, default-replication, [bifrost] default-provider).
type ProvisionRequest struct {
	NumPartitions        uint32 `json:"num_partitions,omitempty"`
	PartitionReplication int    `json:"partition_replication,omitempty"`
	LogProvider          string `json:"log_provider,omitempty"`
	LogReplication       int    `json:"log_replication,omitempty"`
	NodesetSize          int    `json:"nodeset_size,omitempty"`
}

// ConfigDiff is the answer of a config change.
type ConfigDiff struct {
	Before metadata.ClusterConfig `json:"before"`
	After  metadata.ClusterConfig `json:"after"`
}

// Options wire the API.
type Options struct {
	Sources
	// Defaults fill the zero fields of a provision request.
	Defaults metadata.ClusterConfig
	// BeforeProvision runs before the configuration is written; a replicated metadata
	// server that belongs to no cluster yet bootstraps one here.
	BeforeProvision func(ctx context.Context) error
}

// NewHandler serves the cluster API.
func NewHandler(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathPrefix+"status", func(w http.ResponseWriter, r *http.Request) {
		st, err := Gather(r.Context(), o.Sources)
		if err != nil {
			writeError(w, storeStatus(err), err.Error())
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET "+PathPrefix+"logs", func(w http.ResponseWriter, r *http.Request) {
		st, err := GatherLogs(r.Context(), o.Sources)
		if err != nil {
			writeError(w, storeStatus(err), err.Error())
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST "+PathPrefix+"provision", func(w http.ResponseWriter, r *http.Request) {
		var req ProvisionRequest
		if !decode(w, r, &req) {
			return
		}
		c := o.Defaults
		if req.NumPartitions != 0 {
			c.NumPartitions = req.NumPartitions
		}
		if req.PartitionReplication != 0 {
			c.PartitionReplication = req.PartitionReplication
		}
		if req.LogProvider != "" {
			c.LogProvider = req.LogProvider
		}
		if req.LogReplication != 0 {
			c.LogReplication = req.LogReplication
		}
		if req.NodesetSize != 0 {
			c.NodesetSize = req.NodesetSize
		}
		if err := Validate(c); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if ok, err := Provisioned(r.Context(), o.Store); err == nil && ok {
			writeError(w, http.StatusConflict, ErrAlreadyProvisioned.Error()+": nothing to do")
			return
		}
		if o.BeforeProvision != nil {
			if err := o.BeforeProvision(r.Context()); errors.Is(err, ErrAlreadyProvisioned) {
				writeError(w, http.StatusConflict, err.Error())
				return
			} else if err != nil {
				writeError(w, http.StatusServiceUnavailable, "prepare the metadata store: "+err.Error())
				return
			}
		}
		c, err := Provision(r.Context(), o.Store, c)
		if errors.Is(err, ErrAlreadyProvisioned) {
			writeError(w, http.StatusConflict, err.Error()+": nothing to do")
			return
		} else if err != nil {
			writeWriteError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, c)
	})
	mux.HandleFunc("GET "+PathPrefix+"config", func(w http.ResponseWriter, r *http.Request) {
		c, _, err := ReadConfig(r.Context(), o.Store)
		if errors.Is(err, metadata.ErrNotFound) {
			writeError(w, http.StatusServiceUnavailable, "the cluster is not provisioned yet: run `gorestatectl provision`")
			return
		} else if err != nil {
			writeError(w, storeStatus(err), err.Error())
			return
		}
		writeJSON(w, http.StatusOK, c)
	})
	mux.HandleFunc("PATCH "+PathPrefix+"config", func(w http.ResponseWriter, r *http.Request) {
		var ch ConfigChange
		if !decode(w, r, &ch) {
			return
		}
		before, after, err := UpdateConfig(r.Context(), o.Store, ch)
		switch {
		case errors.Is(err, metadata.ErrNotFound):
			writeError(w, http.StatusServiceUnavailable, "the cluster is not provisioned yet: run `gorestatectl provision`")
		case errors.Is(err, ErrInvalidConfig):
			writeError(w, http.StatusBadRequest, err.Error())
		case err != nil:
			writeWriteError(w, err)
		default:
			writeJSON(w, http.StatusOK, ConfigDiff{Before: before, After: after})
		}
	})
	snapshotRoutes(mux, o)
	return mux
}

// storeStatus maps metadata store failures to 503 (try again, maybe elsewhere) and anything
// else to 500.
func storeStatus(err error) int {
	if errors.Is(err, metadata.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeWriteError answers a failed metadata write: 503 when the store says it was not
// applied (metadata.ErrUnavailable), else 500 saying that the outcome is unknown, since a
// write that timed out or lost its connection may still have committed.
func writeWriteError(w http.ResponseWriter, err error) {
	if errors.Is(err, metadata.ErrUnavailable) {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeError(w, http.StatusInternalServerError, "the outcome is unknown, read the configuration again: "+err.Error())
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		return false
	}
	if len(body) == 0 {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad request body: %v", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}
