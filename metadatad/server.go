package metadatad

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

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

	ready     atomic.Bool // Start finished: the metadata API serves
	migrating atomic.Bool // Start is importing a single-node store

	inConfig        atomic.Bool  // last answer of inConfiguration
	configCheckedAt atomic.Int64 // when it was computed (UnixNano)
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
		s, err := raftstore.Open(raftstore.Options{Dir: raftDir(cfg), NodeName: cfg.NodeName, Address: fabricAddr, Logger: m.log,
			HeartbeatTimeout: cfg.MetadataServer.RaftHeartbeatTimeout.Duration(), ElectionTimeout: cfg.MetadataServer.RaftElectionTimeout.Duration()})
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

// inConfiguration reports whether this node is in its raft configuration, checked at most
// once a second (reading the configuration goes through raft's main loop).
func (m *MetadataServer) inConfiguration() bool {
	now := time.Now().UnixNano()
	if now-m.configCheckedAt.Load() < int64(time.Second) {
		return m.inConfig.Load()
	}
	members, err := m.raft.Members()
	in := err != nil // unknown: keep serving rather than guess
	for _, mm := range members {
		if mm.Name == m.cfg.NodeName {
			in = true
		}
	}
	m.inConfig.Store(in)
	m.configCheckedAt.Store(now)
	return in
}

// Replicated reports whether the store is a Raft member.
func (m *MetadataServer) Replicated() bool { return m.raft != nil }

// Handler serves the metadata API (and, when replicated, the raft tunnel and membership
// endpoints); mount it at metadata.PathPrefix on the fabric listener.
func (m *MetadataServer) Handler() http.Handler {
	if m.raft == nil {
		return metadata.NewHTTPHandler(m.local)
	}
	h := m.raft.Handler()
	objects := metadata.PathPrefix + "v1/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Raft traffic and membership must flow while joining; objects wait for Start, and
		// a member that was removed from the cluster stops serving its frozen copy.
		if strings.HasPrefix(r.URL.Path, objects) {
			if !m.ready.Load() {
				http.Error(w, "metadata server "+m.cfg.NodeName+" is starting (joining or migrating)", http.StatusServiceUnavailable)
				return
			}
			if !m.inConfiguration() {
				http.Error(w, "metadata server "+m.cfg.NodeName+" is not a member of the metadata cluster (removed?)", http.StatusServiceUnavailable)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
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
//   - without state, first asks the other metadata servers in [metadata-client] addresses
//     whether a cluster exists; if one does it joins it (and refuses to start if it also
//     holds single-node data, which a join would silently drop);
//   - otherwise, with data of a single-node store in its directory, migrates it: it founds a
//     cluster of one and imports every object with its version;
//   - otherwise, with auto-provision = true, founds a new cluster of one if it is the first
//     of the [metadata-client] addresses (or the only metadata server), so that nodes that
//     all keep the default cannot found a cluster each;
//   - otherwise joins the cluster once one exists, or waits until a provision request makes
//     it the founder.
//
// Until Start returns, the metadata API (/metadata/v1/) answers 503, so that no client reads
// or writes a store that is still joining or migrating.
func (m *MetadataServer) Start(ctx context.Context) error {
	if m.raft == nil {
		m.ready.Store(true)
		return nil
	}
	if err := m.start(ctx); err != nil {
		return err
	}
	m.ready.Store(true)
	return nil
}

func (m *MetadataServer) start(ctx context.Context) error {
	has, err := m.raft.HasState()
	if err != nil {
		return err
	}
	if has && m.raft.AwaitsAdding() {
		// Restarted after a wipe before the cluster re-added it: the leader had
		// replicated entries to it meanwhile, but it must finish its join before it votes.
		m.log.Info("this member's data was wiped and it has not been re-added yet: joining again")
		m.startJoining(ctx, m.seeds())
		m.setMember()
		return m.raft.WaitReady(ctx)
	}
	if has {
		m.setMember()
		stop := m.warnWhileRemoved(ctx)
		err := m.raft.WaitReady(ctx)
		stop()
		if err != nil {
			return err
		}
		return m.finishMigration(ctx) // a migration interrupted after its bootstrap
	}
	seeds := m.seeds()
	leader := m.findCluster(ctx, seeds)
	local := hasLocalData(localDir(m.cfg))
	switch {
	case leader != "" && local:
		return fmt.Errorf("metadatad: %s holds single-node metadata, but a metadata cluster (led by %s) exists already: "+
			"joining it would drop that data; move %s aside to join, or start this node without seeds to migrate it",
			localDir(m.cfg), leader, localDir(m.cfg))
	case leader != "":
		// Join below.
	case local:
		m.log.Info("migrating the single-node metadata store into a new replicated cluster", "from", localDir(m.cfg))
		m.migrating.Store(true)
		defer m.migrating.Store(false)
		if err := m.found(ctx); err != nil {
			return err
		}
		return m.finishMigration(ctx)
	case m.cfg.AutoProvision && m.founder():
		return m.found(ctx)
	case m.cfg.AutoProvision:
		m.log.Info("auto-provision is on, but the first of [metadata-client] addresses founds the cluster: joining it",
			"founder", m.cfg.MetadataClient.Addresses[0])
	}
	if len(seeds) > 0 {
		m.startJoining(ctx, seeds)
	} else {
		m.log.Info("waiting to be provisioned (gorestatectl provision) before the metadata store can start")
	}
	// Wait to be a member: by the join, by a provision request, or by a join whose answer
	// was lost (the raft state appears when the leader starts replicating to us).
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-m.memberCh:
			return m.raft.WaitReady(ctx)
		case <-ctx.Done():
			return fmt.Errorf("metadatad: waiting to join the metadata cluster: %w", ctx.Err())
		case <-tick.C:
			if has, _ := m.raft.HasState(); has {
				m.setMember()
			}
		}
	}
}

// startJoining joins the cluster through seeds in the background, logging every failed
// round so that a wrong seed does not go unnoticed.
func (m *MetadataServer) startJoining(ctx context.Context, seeds []string) {
	joinCtx, cancel := context.WithCancel(ctx)
	m.mu.Lock()
	m.joinCancel = cancel
	m.mu.Unlock()
	m.log.Info("joining the metadata cluster", "seeds", seeds)
	go func() {
		for joinCtx.Err() == nil {
			attempt, stop := context.WithTimeout(joinCtx, 15*time.Second)
			err := m.raft.JoinCluster(attempt, seeds)
			stop()
			if err == nil {
				m.log.Info("joined the metadata cluster")
				m.setMember()
				return
			}
			if joinCtx.Err() == nil {
				m.log.Warn("not joined the metadata cluster yet; retrying", "seeds", seeds, "error", err)
			}
		}
	}()
}

// founder reports whether this node may found a cluster on auto-provision: it is the only
// metadata server it knows of, or the first of [metadata-client] addresses.
func (m *MetadataServer) founder() bool {
	addrs := m.cfg.MetadataClient.Addresses
	return len(addrs) == 0 || len(m.seeds()) == 0 || m.isSelf(addrs[0])
}

func (m *MetadataServer) isSelf(address string) bool {
	u, err := url.Parse(address)
	return err == nil && (u.Host == m.addr || strings.TrimRight(address, "/") == strings.TrimRight(m.cfg.AdvertisedAddress, "/"))
}

// seeds are the other metadata servers named in [metadata-client] addresses.
func (m *MetadataServer) seeds() []string {
	var out []string
	for _, a := range m.cfg.MetadataClient.Addresses {
		if !m.isSelf(a) {
			out = append(out, a)
		}
	}
	return out
}

// findCluster asks the seeds whether a metadata cluster exists and returns its leader (or
// any member's name when no leader is known); "" when no seed knows of one. Unreachable
// seeds count as knowing nothing: a node must not wait for every peer before it can found.
func (m *MetadataServer) findCluster(ctx context.Context, seeds []string) string {
	for _, seed := range seeds {
		st, ok := seedStatus(ctx, seed)
		if !ok {
			continue
		}
		if st.LeaderName != "" {
			return st.LeaderName
		}
		if len(st.Members) > 0 {
			return st.Members[0].Name
		}
	}
	return ""
}

// seedStatus asks one seed for its view of the metadata cluster.
func seedStatus(ctx context.Context, seed string) (raftstore.Status, bool) {
	var st raftstore.Status
	hc := &http.Client{Timeout: 2 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(seed, "/")+raftstore.ClusterPath+"status", nil)
	if err != nil {
		return st, false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st)
	return st, err == nil && resp.StatusCode == http.StatusOK
}

// removedCheckEvery is how often a member that is not ready yet asks its seeds whether the
// cluster still counts it as a member.
var removedCheckEvery = 10 * time.Second

// warnWhileRemoved logs an error, every removedCheckEvery until stop is called, while a
// seed's cluster has a leader and no member of this node's name: the node was removed
// (gorestatectl metadata remove-server) while it was down. Raft then never lets it back
// (the members ignore a removed node's votes), and without this it would only log failed
// elections, several times a second.
func (m *MetadataServer) warnWhileRemoved(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(removedCheckEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if leader, members, ok := m.removedBy(ctx); ok {
				m.log.Error("this node is not a member of the metadata cluster any more (removed with gorestatectl metadata remove-server?): "+
					"it cannot rejoin with its old Raft state. To bring it back, stop it, delete "+raftDir(m.cfg)+" and start it: it joins as a new member",
					"leader", leader, "members", members)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// removedBy reports a seed's view of a cluster, with a leader, that has no member named
// like this node.
func (m *MetadataServer) removedBy(ctx context.Context) (leader string, members []string, ok bool) {
	for _, seed := range m.seeds() {
		st, answered := seedStatus(ctx, seed)
		if !answered || st.LeaderName == "" || len(st.Members) == 0 {
			continue
		}
		for _, mb := range st.Members {
			if mb.Name == m.cfg.NodeName {
				return "", nil, false
			}
			members = append(members, mb.Name)
		}
		return st.LeaderName, members, true
	}
	return "", nil, false
}

// errStarting refuses a provision while the node migrates its single-node store.
var errStarting = errors.New("this node is still starting (migrating its single-node metadata); try again shortly")

// Bootstrap is what a provision request does first: it makes this node the founder of a new
// cluster unless it already belongs to one. It refuses (cluster.ErrAlreadyProvisioned) when
// another metadata server already belongs to a cluster, as founding a second one would split
// the cluster in two.
func (m *MetadataServer) Bootstrap(ctx context.Context) error {
	if m.raft == nil {
		return nil
	}
	if m.migrating.Load() {
		return errStarting
	}
	if member, err := m.isMember(); err != nil {
		return err
	} else if member {
		return m.raft.WaitReady(ctx)
	}
	if leader := m.findCluster(ctx, m.seeds()); leader != "" {
		return fmt.Errorf("%w: the metadata cluster led by %s exists, and this node is joining it", cluster.ErrAlreadyProvisioned, leader)
	}
	return m.found(ctx)
}

// isMember reports whether this node belongs to a cluster: it founded or joined one, or
// raft state appeared (a join whose answer has not arrived yet).
func (m *MetadataServer) isMember() (bool, error) {
	m.mu.Lock()
	member := m.member
	m.mu.Unlock()
	if member {
		return true, nil
	}
	has, err := m.raft.HasState()
	if err != nil {
		return false, err
	}
	if has {
		m.setMember()
	}
	return has, nil
}

// found bootstraps a cluster of one with this node.
func (m *MetadataServer) found(ctx context.Context) error {
	m.mu.Lock()
	if m.joinCancel != nil {
		m.joinCancel() // it founds the cluster instead of joining one
	}
	m.mu.Unlock()
	if err := m.raft.Bootstrap(ctx); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return err
	}
	// Bootstrapped (or, on ErrCantBootstrap, state appeared meanwhile): a member either way,
	// even if the wait for the leadership below is cut short.
	m.setMember()
	m.log.Info("founded a new metadata cluster", "member", m.cfg.NodeName, "address", m.addr)
	return m.raft.WaitReady(ctx)
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
