// Package inprocess runs log servers inside the calling process for fault-injection tests
// of the replicated loglet: real logserverd servers (logserverd/server over a
// logstore.Store with fsync, each in its own directory) behind a faultnet network, which
// drops, delays, duplicates and reorders their messages, partitions them, and kills and
// restarts them (a restart reopens the store from disk). The sequencers, readers and
// sealers are replicated.Providers on the same network; logcluster runs the same servers
// as processes instead.
package inprocess

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/logserverd/logstore"
	"gorestate.dev/logserverd/server"
	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/replicated"
	"gorestate.dev/shared/bifrost/replicated/faultnet"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metadata"
)

// Cluster is a set of in-process log servers on a faultnet network.
type Cluster struct {
	Net     *faultnet.Network
	servers []*logServer

	mu    sync.Mutex
	provs []*replicated.Provider
}

// logServer is one log server: its store and server, replaced on every restart.
type logServer struct {
	name   string
	dir    string
	logger hclog.Logger

	mu    sync.Mutex
	store *logstore.Store
	srv   *server.Server
}

// Start opens n log servers, ls1..lsn, with stores below dir. Faults derive from seed.
func Start(dir string, n int, seed uint64, logger hclog.Logger) (*Cluster, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	c := &Cluster{Net: faultnet.New(seed)}
	for i := range n {
		name := fmt.Sprintf("ls%d", i+1)
		s := &logServer{name: name, dir: filepath.Join(dir, name), logger: logger.Named(name)}
		srv, err := s.open()
		if err != nil {
			c.Close()
			return nil, err
		}
		c.servers = append(c.servers, s)
		c.Net.AddNode(name, srv, nil)
		c.Net.SetHooks(name, faultnet.Hooks{
			OnKill: s.close,
			OnRestart: func() (wire.LogServer, wire.Sequencer) {
				srv, err := s.open()
				if err != nil {
					// The node stays unreachable (a nil service), like a server that
					// fails to start; the test sees it as down.
					s.logger.Error("restart failed", "error", err)
					return nil, nil
				}
				return srv, nil
			},
		})
	}
	return c, nil
}

func (s *logServer) open() (*server.Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := logstore.Open(s.dir, logstore.Options{Logger: s.logger.Named("log-store")})
	if err != nil {
		return nil, fmt.Errorf("open log server %s: %w", s.name, err)
	}
	s.store, s.srv = st, server.New(st, server.Options{Logger: s.logger.Named("loglets")})
	return s.srv, nil
}

// close stops the server and closes its store (writes already queued complete: a crash
// after the last fsync).
func (s *logServer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return
	}
	_ = s.srv.Close()
	_ = s.store.Close()
	s.srv, s.store = nil, nil
}

// Names returns the log servers' node names.
func (c *Cluster) Names() []string {
	out := make([]string, len(c.servers))
	for i, s := range c.servers {
		out[i] = s.name
	}
	return out
}

// LogServer returns the current life of a log server, bypassing the network and its
// faults (nil while it is killed), to look at its state directly.
func (c *Cluster) LogServer(name string) wire.LogServer {
	for _, s := range c.servers {
		if s.name == name {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.srv == nil {
				return nil
			}
			return s.srv
		}
	}
	return nil
}

// Segment returns the parameters of a replicated loglet on every log server, written by
// sequencer.
func (c *Cluster) Segment(logID, index uint32, sequencer metadata.NodeID, replication int) metadata.Segment {
	return metadata.Segment{
		BaseLSN: 1, Provider: bifrost.ProviderReplicated, LogletID: bifrost.LogletID(logID, index), Index: index,
		Replicated: &metadata.ReplicatedParams{Sequencer: sequencer, Replication: replication, Nodeset: c.Names()},
	}
}

// Provider starts a replicated provider for node opts.Self on the cluster's network (as
// seen from that node) and makes its sequencer service reachable under the node's name.
// Close closes it.
func (c *Cluster) Provider(opts replicated.Options) *replicated.Provider {
	opts.Network = c.Net.From(opts.Self.Name)
	p := replicated.NewProvider(opts)
	c.Net.SetSequencer(opts.Self.Name, p.SequencerService())
	c.mu.Lock()
	c.provs = append(c.provs, p)
	c.mu.Unlock()
	return p
}

// Close closes the providers, the network and the log servers.
func (c *Cluster) Close() error {
	c.mu.Lock()
	provs := c.provs
	c.provs = nil
	c.mu.Unlock()
	var errs []error
	for _, p := range provs {
		errs = append(errs, p.Close())
	}
	c.Net.Close()
	for _, s := range c.servers {
		s.close()
	}
	return errors.Join(errs...)
}
