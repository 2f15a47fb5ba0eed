package metadatad

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/metadatad/cluster"
	"gorestate.dev/metadatad/raftstore"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/metadata"
)

// MetadataServer is a node's metadata-server role: the single-node local store
// ([metadata-server] type = "local") or a member of the Raft-replicated store ("replicated").
type MetadataServer struct {
	cfg   *config.Config
	log   hclog.Logger
	local *metadata.LocalStore
	raft  *raftstore.Store
	// addr is the fabric host:port other members reach this node on (the raft address).
	addr string

	mu         sync.Mutex
	member     bool          // bootstrapped, joined or restarted with raft state
	memberCh   chan struct{} // closed once member
	joinCancel context.CancelFunc
}

// localDir is where the single-node store keeps its data; raftDir where a replicated member
// keeps its raft state. Different directories, so that a migration keeps the local data
// until it is safely imported.
func localDir(cfg *config.Config) string { return filepath.Join(cfg.NodeDir(), "metadata") }
func raftDir(cfg *config.Config) string  { return filepath.Join(cfg.NodeDir(), "metadata-raft") }

// OpenMetadataServer opens the node's metadata store. fabricAddr is the host:port the node's
// fabric listener is reachable on by other members; a replicated member's Handler must be
// served there before Start.
func OpenMetadataServer(cfg *config.Config, fabricAddr string, logger hclog.Logger) (*MetadataServer, error) {
	m := &MetadataServer{cfg: cfg, log: logger.Named("metadata-server"), addr: fabricAddr, memberCh: make(chan struct{})}
	switch cfg.MetadataServer.Type {
	case "", "local":
		s, err := metadata.OpenLocal(localDir(cfg))
		if err != nil {
			return nil, fmt.Errorf("metadatad: %w", err)
		}
		m.local = s
		m.setMember()
	case "replicated":
		s, err := raftstore.Open(raftstore.Options{Dir: raftDir(cfg), NodeName: cfg.NodeName, Address: fabricAddr, Logger: m.log})
		if err != nil {
			return nil, fmt.Errorf("metadatad: %w", err)
		}
		m.raft = s
	default:
		return nil, fmt.Errorf("metadatad: [metadata-server] type = %q: want \"local\" or \"replicated\"", cfg.MetadataServer.Type)
	}
	return m, nil
}

// Store is the metadata store every role of this node reads and writes through.
func (m *MetadataServer) Store() metadata.Store {
	if m.raft != nil {
		return m.raft
	}
	return m.local
}

// Replicated reports whether the store is a Raft member.
func (m *MetadataServer) Replicated() bool { return m.raft != nil }

// Handler serves the metadata API (and, when replicated, the raft tunnel and membership
// endpoints); mount it at metadata.PathPrefix on the fabric listener.
func (m *MetadataServer) Handler() http.Handler {
	if m.raft != nil {
		return m.raft.Handler()
	}
	return metadata.NewHTTPHandler(m.local)
}

func (m *MetadataServer) setMember() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.member {
		m.member = true
		close(m.memberCh)
	}
}

// Start makes the store usable and returns once it is. A replicated member:
//   - with raft state (a restart) rejoins its cluster;
//   - with data of a single-node store in its directory migrates it: it bootstraps a cluster
//     of one and imports every object with its version;
//   - with auto-provision = true bootstraps a new cluster of one;
//   - otherwise joins the cluster through the other metadata servers in [metadata-client]
//     addresses, or waits until a provision request makes it the first member.
func (m *MetadataServer) Start(ctx context.Context) error {
	if m.raft == nil {
		return nil
	}
	has, err := m.raft.HasState()
	if err != nil {
		return err
	}
	switch {
	case has:
		m.setMember()
		if err := m.raft.WaitReady(ctx); err != nil {
			return err
		}
		return m.finishMigration(ctx) // a migration interrupted after its bootstrap
	case hasLocalData(localDir(m.cfg)):
		m.log.Info("migrating the single-node metadata store into a new replicated cluster", "from", localDir(m.cfg))
		if err := m.Bootstrap(ctx); err != nil {
			return err
		}
		return m.finishMigration(ctx)
	case m.cfg.AutoProvision:
		return m.Bootstrap(ctx)
	}
	seeds := m.seeds()
	if len(seeds) > 0 {
		joinCtx, cancel := context.WithCancel(ctx)
		m.mu.Lock()
		m.joinCancel = cancel
		m.mu.Unlock()
		m.log.Info("joining the metadata cluster", "seeds", seeds)
		go func() {
			if err := raftstore.Join(joinCtx, seeds, m.cfg.NodeName, m.addr); err == nil {
				m.setMember()
			} else if joinCtx.Err() == nil {
				m.log.Error("join the metadata cluster", "error", err)
			}
		}()
	} else {
		m.log.Info("waiting to be provisioned (gorestatectl provision) before the metadata store can start")
	}
	select {
	case <-m.memberCh:
	case <-ctx.Done():
		return fmt.Errorf("metadatad: waiting to join the metadata cluster: %w", ctx.Err())
	}
	return m.raft.WaitReady(ctx)
}

// seeds are the other metadata servers named in [metadata-client] addresses.
func (m *MetadataServer) seeds() []string {
	var out []string
	for _, a := range m.cfg.MetadataClient.Addresses {
		u, err := url.Parse(a)
		if err != nil || u.Host == m.addr || strings.TrimRight(a, "/") == strings.TrimRight(m.cfg.AdvertisedAddress, "/") {
			continue
		}
		out = append(out, a)
	}
	return out
}

// Bootstrap makes this member the first of a new cluster, unless it already belongs to one.
// A provision request calls it on a cluster without auto-provision.
func (m *MetadataServer) Bootstrap(ctx context.Context) error {
	if m.raft == nil {
		return nil
	}
	m.mu.Lock()
	if m.member {
		m.mu.Unlock()
		return m.raft.WaitReady(ctx)
	}
	if m.joinCancel != nil {
		m.joinCancel() // provisioning this node: it founds the cluster instead of joining one
	}
	m.mu.Unlock()
	if err := m.raft.Bootstrap(ctx); err != nil {
		return err
	}
	m.log.Info("bootstrapped a new metadata cluster", "member", m.cfg.NodeName, "address", m.addr)
	m.setMember()
	return nil
}

// finishMigration imports the single-node store's objects if the replicated store does not
// have them yet, then moves the old directory aside. Import is one raft command, so it is
// either complete or absent: checking for the partition table (or schema) is enough.
func (m *MetadataServer) finishMigration(ctx context.Context) error {
	dir := localDir(m.cfg)
	if !hasLocalData(dir) {
		return nil
	}
	objs, err := raftstore.LocalObjects(dir)
	if err != nil {
		return err
	}
	imported := false
	for _, k := range []string{metadata.KeyPartitionTable, metadata.KeySchema} {
		if _, err := m.raft.Get(ctx, k); err == nil {
			imported = true
		} else if !errors.Is(err, metadata.ErrNotFound) {
			return err
		}
	}
	if !imported {
		if err := m.raft.Import(ctx, objs); err != nil {
			return fmt.Errorf("metadatad: import the single-node metadata store: %w", err)
		}
		m.log.Info("imported the single-node metadata store", "objects", len(objs))
	}
	aside := fmt.Sprintf("%s.migrated-%s", dir, time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Rename(dir, aside); err != nil {
		return fmt.Errorf("metadatad: move the migrated store aside: %w", err)
	}
	m.log.Info("the single-node metadata store was migrated; its old directory is kept", "path", aside)
	return nil
}

// hasLocalData reports whether dir holds a single-node store (goleveldb writes CURRENT).
func hasLocalData(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "CURRENT"))
	return err == nil
}

// Status describes the metadata cluster for the cluster status.
func (m *MetadataServer) Status(context.Context) (cluster.MetadataStatus, error) {
	if m.raft == nil {
		return cluster.MetadataStatus{Type: "local", Leader: m.cfg.NodeName, Members: []cluster.MetadataMember{
			{Name: m.cfg.NodeName, Address: m.addr, Voter: true, Leader: true},
		}}, nil
	}
	st := m.raft.Status()
	out := cluster.MetadataStatus{Type: "replicated", Leader: st.LeaderName, Term: st.Term}
	for _, mm := range st.Members {
		out.Members = append(out.Members, cluster.MetadataMember{Name: mm.Name, Address: mm.Address, Voter: mm.Suffrage == "voter", Leader: mm.Leader})
	}
	if len(out.Members) == 0 {
		return out, errors.New("this node is not a member of a metadata cluster yet")
	}
	return out, nil
}

// Close closes the store; stop serving its Handler first.
func (m *MetadataServer) Close() error {
	m.mu.Lock()
	if m.joinCancel != nil {
		m.joinCancel()
	}
	m.mu.Unlock()
	if m.raft != nil {
		return m.raft.Close()
	}
	return m.local.Close()
}

// FabricHostPort returns the host:port of an advertised fabric URL, or of the bound listener
// when none is configured (random ports): the address other members reach this node on.
func FabricHostPort(advertised string, bound net.Addr) string {
	if u, err := url.Parse(advertised); err == nil && u.Host != "" {
		return u.Host
	}
	return bound.String()
}
