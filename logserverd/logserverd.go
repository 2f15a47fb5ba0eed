// Package logserverd is the log-server role: it stores the records of replicated loglets
// for the sequencers, readers and sealers of the cluster (BIFROST.md §2). Start opens the
// node's log store, decides from its storage marker and the nodes configuration whether the
// node may serve (a read-write node that lost its disk must not), and adds the log-server
// endpoint to a fabric mux; Run is the logserverd daemon.
package logserverd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/logserverd/logstore"
	"gorestate.dev/logserverd/server"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/metadata"
)

// StoreDir is the log store's directory inside the node's data directory.
const StoreDir = "log-store"

// LogServer is a started log server.
type LogServer struct {
	store   *logstore.Store
	server  *server.Server
	handler *wire.Handler // nil without a mux
	storage string
}

// Server is the log server itself, for callers in the same process.
func (ls *LogServer) Server() wire.LogServer { return ls.server }

// StorageState is the log-storage state this node runs with (metadata.StorageReadWrite or
// metadata.StorageDataLoss), to register the node with.
func (ls *LogServer) StorageState() string { return ls.storage }

// Close stops serving requests (ending the streams of the mux) and closes the store.
func (ls *LogServer) Close() error {
	if ls.handler != nil {
		ls.handler.Close()
	}
	_ = ls.server.Close()
	return ls.store.Close()
}

// Start opens the log store in cfg.NodeDir(), settles the node's log-storage state in the
// nodes configuration and, if mux is not nil, serves the log server on wire.LogServerPath.
//
// The storage marker tells a new disk from a lost one. Without a marker, a node the
// configuration calls read-write (or data-loss) has lost its disk: it answers
// StatusDataLoss for the segments that existed then, so that it is never counted as an
// empty replica of them (which would let a tail be chosen without the records it held),
// records them as lost in the nodes configuration (the writers move them to new segments)
// and serves new segments as usual. Otherwise the node is new: it writes the marker and
// becomes read-write. The node may not be registered
// yet; its entry is then created with the state, which RegisterNode keeps.
func Start(ctx context.Context, cfg *config.Config, meta metadata.Store, mux *http.ServeMux, logger hclog.Logger) (*LogServer, error) {
	dir := filepath.Join(cfg.NodeDir(), StoreDir)
	store, err := logstore.Open(dir, logstore.Options{Logger: logger.Named("log-store")})
	if err != nil {
		return nil, fmt.Errorf("logserverd: %w", err)
	}
	ls := &LogServer{store: store}
	fail := func(err error) (*LogServer, error) {
		_ = store.Close()
		return nil, fmt.Errorf("logserverd: %w", err)
	}
	marker, hasMarker, err := store.Marker()
	if err != nil {
		return fail(err)
	}
	if hasMarker && marker != cfg.NodeName {
		return fail(fmt.Errorf("log store %s belongs to node %q, this is node %q", dir, marker, cfg.NodeName))
	}
	var state string
	err = retryUnavailable(ctx, logger, func() (err error) {
		state, _, err = metadata.LogStorageOf(ctx, meta, cfg.NodeName)
		return err
	})
	if err != nil {
		return fail(err)
	}
	lost := &logstore.Lost{}
	if hasMarker {
		if lost, err = store.ReadLost(); err != nil {
			return fail(err)
		}
	}
	switch {
	case !hasMarker && (state == metadata.StorageReadWrite || state == metadata.StorageDataLoss):
		// The disk was wiped or replaced. What this node stored for the segments that exist
		// now is gone: it answers data-loss for them, so that it is never counted as an
		// empty replica of them (which would let a tail be chosen without the records it
		// held), and the writers move them to new segments. Segments created from now on it
		// serves like any other server: it never acknowledged anything for them.
		var chainErr error
		err := retryUnavailable(ctx, logger, func() error {
			lost, chainErr = existingSegments(ctx, meta)
			return chainErr
		})
		if err != nil {
			return fail(err)
		}
		// Marker and lost segments first, as pending: a crash before the nodes
		// configuration lists them leaves a marked store that the next start finishes
		// (below), instead of one that looks like a disk that merely came back.
		lost.Pending = true
		if err := store.WriteMarker(cfg.NodeName, lost); err != nil {
			return fail(err)
		}
		if err := registerLost(ctx, logger, meta, store, cfg.NodeName, lost); err != nil {
			return fail(err)
		}
		ls.storage = metadata.StorageReadWrite
		logger.Warn("log store lost (the disk was wiped or replaced): serving data-loss for the segments that existed before, "+
			"and new segments as usual", "node", cfg.NodeName, "store", dir, "previous_state", state, "lost_segments", lost.Segments)
	case lost.Pending:
		if err := registerLost(ctx, logger, meta, store, cfg.NodeName, lost); err != nil {
			return fail(err)
		}
		ls.storage = metadata.StorageReadWrite
		logger.Warn("finished recording a lost log store (a crash had interrupted it): serving data-loss for the segments "+
			"that existed before, and new segments as usual", "node", cfg.NodeName, "store", dir, "lost_segments", lost.Segments)
	case !hasMarker:
		// Marker first: a crash between the two writes leaves a marked, provisioning
		// node, which the next start promotes.
		if err := store.WriteMarker(cfg.NodeName, nil); err != nil {
			return fail(err)
		}
		if err := setState(ctx, logger, meta, cfg.NodeName, metadata.StorageReadWrite); err != nil {
			return fail(err)
		}
		ls.storage = metadata.StorageReadWrite
		logger.Info("new log store", "store", dir)
	case state == metadata.StorageDataLoss:
		// Declared lost before: the others stopped counting it and may have repaired
		// around it, so its records are not authoritative any more even if the disk came
		// back. Only an operator can take it out of that state.
		ls.storage = metadata.StorageDataLoss
		logger.Error("this node is marked data-loss in the nodes configuration; it keeps answering data-loss "+
			"although its log store has a marker. Wipe its data directory and add it back under a new node name", "node", cfg.NodeName)
	default:
		if state != metadata.StorageReadWrite {
			if err := setState(ctx, logger, meta, cfg.NodeName, metadata.StorageReadWrite); err != nil {
				return fail(err)
			}
		}
		ls.storage = metadata.StorageReadWrite
	}
	ls.server = server.New(store, server.Options{
		Logger:   logger.Named("loglets"),
		DataLoss: ls.storage == metadata.StorageDataLoss,
		Lost:     lostSet(lost.Loglets),
	})
	if mux != nil {
		ls.handler = wire.LogServerHandler(ls.server)
		mux.Handle(wire.LogServerPath, ls.handler)
	}
	return ls, nil
}

// registerLost records in the nodes configuration that node lost lost.Segments and is
// read-write again, then clears lost.Pending in the store.
func registerLost(ctx context.Context, logger hclog.Logger, meta metadata.Store, store *logstore.Store, node string, lost *logstore.Lost) error {
	err := retryUnavailable(ctx, logger, func() error { return metadata.SetLostLogStorage(ctx, meta, node, lost.Segments) })
	if err != nil {
		return err
	}
	lost.Pending = false
	return store.WriteMarker(node, lost)
}

func setState(ctx context.Context, logger hclog.Logger, meta metadata.Store, node, state string) error {
	return retryUnavailable(ctx, logger, func() error { return metadata.SetLogStorage(ctx, meta, node, state) })
}

// retryUnavailable retries f while the metadata servers are unavailable (still starting or
// electing a leader), as RegisterAndJoin does.
func retryUnavailable(ctx context.Context, logger hclog.Logger, f func() error) error {
	backoff := 100 * time.Millisecond
	var lastLog time.Time
	for {
		err := f()
		// setLogStorage reads the state again first: a write whose outcome is unknown (the
		// metadata leader lost its leadership while committing it) is safe to repeat.
		if err == nil || !(errors.Is(err, metadata.ErrUnavailable) || errors.Is(err, metadata.ErrOutcomeUnknown)) {
			return err
		}
		if time.Since(lastLog) > 5*time.Second {
			logger.Warn("waiting for the metadata servers", "error", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (while waiting for the metadata servers: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// existingSegments names the loglets of every segment in the chains now, and per log the
// highest segment index.
func existingSegments(ctx context.Context, meta metadata.Store) (*logstore.Lost, error) {
	lost := &logstore.Lost{Segments: map[uint32]uint32{}}
	v, err := meta.Get(ctx, metadata.KeyLogs)
	if errors.Is(err, metadata.ErrNotFound) {
		return lost, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the log chains: %w", err)
	}
	var logs metadata.Logs
	if err := json.Unmarshal(v.Value, &logs); err != nil {
		return nil, fmt.Errorf("decode the log chains: %w", err)
	}
	for id, chain := range logs.Chains {
		for _, seg := range chain {
			lost.Loglets = append(lost.Loglets, seg.LogletID)
			lost.Segments[id] = max(lost.Segments[id], seg.Index)
		}
	}
	slices.Sort(lost.Loglets)
	return lost, nil
}

// lostSet answers whether a loglet is among lost, in constant time: it is asked on every
// request.
func lostSet(lost []uint64) func(uint64) bool {
	if len(lost) == 0 {
		return nil
	}
	set := make(map[uint64]bool, len(lost))
	for _, id := range lost {
		set[id] = true
	}
	return func(loglet uint64) bool { return set[loglet] }
}
