package raftstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"gorestate.dev/shared/fsync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/metrics"
)

// Options configure Open. Zero timing values take raft's production defaults.
type Options struct {
	// Dir is the node's metadata directory; raft keeps everything under Dir/raft (log and
	// stable store in Dir/raft/log, snapshots in Dir/raft/snapshots).
	Dir string
	// NodeName is the node's name, used as the raft ServerID.
	NodeName string
	// Address is the host:port of the node's fabric listener as other members reach it; it
	// is the raft ServerAddress, and the base of the URLs writes are forwarded to.
	Address string
	// Logger receives the store's and raft's logs; nil discards them.
	Logger hclog.Logger

	HeartbeatTimeout   time.Duration // default 1s
	ElectionTimeout    time.Duration // default 1s
	LeaderLeaseTimeout time.Duration // default half the heartbeat timeout
	// CommitTimeout is how soon a leader with no new entries tells followers the commit
	// index; it bounds how long a write forwarded by a follower waits to appear in that
	// follower's FSM. Raft's default of 50ms made a lone forwarded write take ~75ms; 10ms
	// costs an idle leader ~100 tiny RPCs per second and follower.
	CommitTimeout     time.Duration // default 10ms
	SnapshotInterval  time.Duration // default 120s
	SnapshotThreshold uint64        // default 8192 entries
	TrailingLogs      uint64        // default 10240 entries
	// LeaderWait bounds how long an operation keeps retrying while no leader is known or
	// reachable, within the caller's context. Default: 5 election timeouts, at least 2s.
	LeaderWait time.Duration
	// ForwardTimeout bounds a write a follower forwards to the leader, whatever the
	// caller's context: a leader that stopped answering (a frozen process) must not hang a
	// caller without a deadline. Default 10s.
	ForwardTimeout time.Duration

	// Faults, if set, cuts connections between members (tests only).
	Faults *Faults
}

const defaultCommitTimeout = 10 * time.Millisecond

// forwardTimeout bounds one request forwarded to the leader, so that a leader that went
// silent without closing the connection cannot hold a caller without a deadline forever.
const forwardTimeout = 10 * time.Second

// Store is a metadata.Store replicated by Raft across the metadata-server members. Every
// member holds the whole map in its FSM: Get and WaitNewer read the local copy (which may
// lag the leader; metadata.Client never goes backwards, so readers do not notice), Put is
// applied by the leader (forwarded there by followers), and GetConsistent is a
// linearizable read.
type Store struct {
	opts   Options
	id     raft.ServerID
	addr   raft.ServerAddress
	logger hclog.Logger

	fsm    *fsm
	logs   *logStore
	snaps  *raft.FileSnapshotStore
	stream *streamLayer
	trans  *raft.NetworkTransport
	votes  *voteGate
	raft   *raft.Raft

	fwdTransport *http.Transport
	fwd          *http.Client // requests forwarded to the leader
	api          http.Handler // metadata.NewHTTPHandler over this store

	leaderWait time.Duration
	// leaseTimeout is raft's leader lease, the shortest heartbeat timeout it accepts;
	// fastElecting is set while a dead leader's election is hurried (fastelect.go).
	leaseTimeout time.Duration
	fastElecting atomic.Bool
	// notAdded is the file that keeps the vote gate closed until the member is
	// bootstrapped or (re-)added (see voteGate).
	notAdded  string
	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
}

var _ metadata.Store = (*Store)(nil)

// Open opens (creating if needed) the member's raft state under opts.Dir and starts raft.
// A member without state (see HasState) stays idle until Bootstrap or until a leader adds it
// (Join). Raft's connections arrive through Handler, which the caller must serve on the
// fabric listener at opts.Address.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" || opts.NodeName == "" || opts.Address == "" {
		return nil, errors.New("raftstore: Options need Dir, NodeName and Address")
	}
	if _, _, err := net.SplitHostPort(opts.Address); err != nil {
		return nil, fmt.Errorf("raftstore: Address %q is not host:port: %w", opts.Address, err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	conf, err := raftConfig(opts, logger)
	if err != nil {
		return nil, err
	}
	raftDir := filepath.Join(opts.Dir, "raft")
	if err := os.MkdirAll(raftDir, 0o755); err != nil {
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	s := &Store{
		opts:       opts,
		id:         raft.ServerID(opts.NodeName),
		addr:       raft.ServerAddress(opts.Address),
		logger:     logger.Named("raftstore"),
		fsm:        newFSM(),
		leaderWait: opts.LeaderWait,
		done:       make(chan struct{}),
	}
	if s.leaderWait <= 0 {
		s.leaderWait = max(5*conf.ElectionTimeout, 2*time.Second)
	}
	if s.logs, err = openLogStore(filepath.Join(raftDir, "log")); err != nil {
		return nil, err
	}
	if s.snaps, err = raft.NewFileSnapshotStoreWithLogger(filepath.Join(raftDir, "snapshots"), 2, logger.Named("snapshots")); err != nil {
		_ = s.logs.Close()
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	s.leaseTimeout = conf.LeaderLeaseTimeout
	s.stream = newStreamLayer(opts.Address, opts.Faults)
	s.stream.peerLost = s.peerLost
	s.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  s.stream,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  logger.Named("raft-net"),
	})
	// The log cache spares leveldb reads when replicating recent entries to followers.
	logs, err := raft.NewLogCache(512, s.logs)
	if err != nil {
		s.closeParts()
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	hasState, err := raft.HasExistingState(s.logs, s.logs, s.snaps)
	if err != nil {
		s.closeParts()
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	notAdded := filepath.Join(raftDir, notAddedFile)
	if !hasState {
		if err := writeSynced(notAdded); err != nil {
			s.closeParts()
			return nil, fmt.Errorf("raftstore: %w", err)
		}
	}
	s.notAdded = notAdded
	_, err = os.Stat(notAdded)
	s.votes = newVoteGate(s.trans, err == nil)
	if s.raft, err = raft.NewRaft(conf, s.fsm, logs, s.logs, s.snaps, s.votes); err != nil {
		s.closeParts()
		return nil, fmt.Errorf("raftstore: start raft: %w", err)
	}
	if hasState && s.AwaitsAdding() && s.aloneInConfiguration() {
		// It bootstrapped a cluster of its own and stopped before it noted that.
		if err := s.AllowVotes(); err != nil {
			s.stream.stopRedial()
			_ = s.raft.Shutdown().Error()
			s.closeParts()
			return nil, err
		}
	}
	s.fwdTransport = &http.Transport{
		Proxy:               nil, // members talk directly
		DialContext:         opts.Faults.dialContext(opts.Address),
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
	}
	s.fwd = &http.Client{Transport: forwardMarker{s.fwdTransport}}
	s.api = metadata.NewHTTPHandler(s)
	s.watchLeader(conf.LocalID)
	return s, nil
}

var (
	leaderChanges = promauto.With(metrics.Registry).NewCounter(prometheus.CounterOpts{
		Name: "restate_metadata_leader_changes_total",
		Help: "Changes of the metadata cluster's raft leader seen by this member (a new leader, or none).",
	})
	isLeader = promauto.With(metrics.Registry).NewGauge(prometheus.GaugeOpts{
		Name: "restate_metadata_is_leader",
		Help: "1 while this member is the metadata cluster's raft leader.",
	})
)

// watchLeader counts leader changes until the store closes.
func (s *Store) watchLeader(self raft.ServerID) {
	ch := make(chan raft.Observation, 8)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(obs)
	go func() {
		defer s.raft.DeregisterObserver(obs)
		for {
			select {
			case o := <-ch:
				leaderChanges.Inc()
				if o.Data.(raft.LeaderObservation).LeaderID == self {
					isLeader.Set(1)
				} else {
					isLeader.Set(0)
				}
			case <-s.done:
				return
			}
		}
	}()
}

func raftConfig(opts Options, logger hclog.Logger) (*raft.Config, error) {
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(opts.NodeName)
	conf.Logger = logger.Named("raft")
	conf.CommitTimeout = defaultCommitTimeout
	if opts.HeartbeatTimeout > 0 {
		conf.HeartbeatTimeout = opts.HeartbeatTimeout
		conf.LeaderLeaseTimeout = opts.HeartbeatTimeout / 2
	}
	if opts.ElectionTimeout > 0 {
		conf.ElectionTimeout = opts.ElectionTimeout
	}
	if opts.LeaderLeaseTimeout > 0 {
		conf.LeaderLeaseTimeout = opts.LeaderLeaseTimeout
	}
	if opts.CommitTimeout > 0 {
		conf.CommitTimeout = opts.CommitTimeout
	}
	if opts.SnapshotInterval > 0 {
		conf.SnapshotInterval = opts.SnapshotInterval
	}
	if opts.SnapshotThreshold > 0 {
		conf.SnapshotThreshold = opts.SnapshotThreshold
	}
	if opts.TrailingLogs > 0 {
		conf.TrailingLogs = opts.TrailingLogs
	}
	if err := raft.ValidateConfig(conf); err != nil {
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	return conf, nil
}

// Close shuts raft down, ends the tunnels and closes the log store. Waiters get ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.fsm.close()
		s.stream.stopRedial() // raft's shutdown waits for dials to members that are down
		if err := s.raft.Shutdown().Error(); err != nil {
			s.closeErr = fmt.Errorf("raftstore: shutdown raft: %w", err)
		}
		s.fwdTransport.CloseIdleConnections()
		s.closeParts()
	})
	return s.closeErr
}

// closeParts closes what Open created before raft.
func (s *Store) closeParts() {
	if s.votes != nil {
		_ = s.votes.Close() // and the transport
	} else {
		_ = s.trans.Close()
	}
	_ = s.stream.Close()
	if err := s.logs.Close(); err != nil && s.closeErr == nil {
		s.closeErr = fmt.Errorf("raftstore: close log store: %w", err)
	}
}

func (s *Store) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// notAddedFile, in the raft directory, says the member started without state and has not
// been bootstrapped or (re-)added since.
const notAddedFile = "not-added"

func writeSynced(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return fsync.Dir(filepath.Dir(path))
}

// AwaitsAdding reports whether this member started without raft state and has been neither
// bootstrapped nor (re-)added to a cluster since, even if a leader has replicated entries
// to it meanwhile: it must join (JoinCluster) before it votes.
func (s *Store) AwaitsAdding() bool { return s.votes.closed.Load() }

// aloneInConfiguration reports whether this member is the only server of its raft
// configuration: a cluster it founded (a member added by a leader knows the others).
func (s *Store) aloneInConfiguration() bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	servers := f.Configuration().Servers
	return len(servers) == 1 && servers[0].ID == s.id
}

// HasState reports whether this member has raft state (a term, log entries or a
// snapshot): false means a fresh member that must be bootstrapped or join a cluster.
func (s *Store) HasState() (bool, error) {
	ok, err := raft.HasExistingState(s.logs, s.logs, s.snaps)
	if err != nil {
		return false, fmt.Errorf("raftstore: %w", err)
	}
	return ok, nil
}

// Get returns key from this member's FSM, which may lag the leader.
func (s *Store) Get(ctx context.Context, key string) (_ metadata.Versioned, err error) {
	defer metadata.ObserveOp("get", time.Now(), &err)
	if err := ctx.Err(); err != nil {
		return metadata.Versioned{}, err
	}
	v, err := s.fsm.get(key)
	if err != nil {
		return metadata.Versioned{}, err
	}
	if v.Version == 0 {
		return metadata.Versioned{}, fmt.Errorf("%w: key %q", metadata.ErrNotFound, key)
	}
	return v, nil
}

// WaitNewer blocks until this member's FSM holds key newer than version.
func (s *Store) WaitNewer(ctx context.Context, key string, version uint64) (_ metadata.Versioned, err error) {
	defer metadata.ObserveOp("watch", time.Time{}, &err)
	return s.fsm.waitNewer(ctx, key, version)
}

// Put compare-and-sets key through the leader. It returns once the write is committed by
// a majority and applied to this member's FSM, so a following Get here sees it.
//
// Errors wrapping metadata.ErrUnavailable mean the write was not applied (no leader could
// be reached within ctx and Options.LeaderWait); other errors but ErrVersionMismatch and
// ErrClosed mean its outcome is unknown (most wrap ErrOutcomeUnknown) and the caller
// should re-read.
func (s *Store) Put(ctx context.Context, key string, value []byte, expected uint64) (_ uint64, err error) {
	defer metadata.ObserveOp("put", time.Now(), &err)
	cmd := encodePut(key, value, expected)
	var version uint64
	err = s.withLeader(ctx, fmt.Sprintf("put %q", key), func(leader raft.ServerAddress) error {
		if leader == s.addr {
			res, err := s.apply(ctx, cmd)
			version = res.version
			if err == nil {
				err = res.err
			}
			return err
		}
		timeout := s.opts.ForwardTimeout
		if timeout <= 0 {
			timeout = forwardTimeout
		}
		fctx, cancel := context.WithTimeout(ctx, timeout)
		v, err := metadata.NewClient([]string{"http://" + string(leader)}, s.fwd).Put(fctx, key, value, expected)
		expired := errors.Is(fctx.Err(), context.DeadlineExceeded)
		cancel()
		if errors.Is(err, metadata.ErrUnavailable) {
			return retryable(err)
		}
		if err != nil && ctx.Err() == nil && expired {
			return fmt.Errorf("%w: the leader %s did not answer the forwarded write within %v", ErrOutcomeUnknown, leader, timeout)
		}
		if err != nil {
			return err
		}
		if v == 0 {
			return fmt.Errorf("%w: leader %s acknowledged version 0", ErrOutcomeUnknown, leader)
		}
		version = v
		// Wait for the local FSM so that this member's Get sees the write it acknowledged.
		// The write is committed whatever happens here: if this member closes or ctx ends
		// first, report success rather than an error a caller could take for "not applied".
		if _, err := s.fsm.waitNewer(ctx, key, v-1); err != nil {
			s.logger.Debug("forwarded write committed but not applied here yet", "key", key, "version", v, "error", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return version, nil
}

var _ metadata.ConsistentReader = (*Store)(nil)

// GetConsistent is a linearizable read: it reflects every write that completed before it
// was called. The leader reads after a barrier (committing a barrier entry proves it is
// still the leader and applies everything before it); a follower asks the leader.
func (s *Store) GetConsistent(ctx context.Context, key string) (_ metadata.Versioned, err error) {
	defer metadata.ObserveOp("get-consistent", time.Now(), &err)
	var out metadata.Versioned
	err = s.withLeader(ctx, fmt.Sprintf("consistent get %q", key), func(leader raft.ServerAddress) error {
		if leader == s.addr {
			// A read has no effect, so whatever stopped the barrier, retrying is safe.
			if err := s.wait(ctx, s.raft.Barrier(applyTimeout(ctx))); err != nil {
				return retryable(fmt.Errorf("%w: barrier: %w", metadata.ErrUnavailable, err))
			}
			v, err := s.fsm.get(key)
			out = v
			return err
		}
		v, err := s.forwardConsistentGet(ctx, leader, key)
		out = v
		return err
	})
	if err != nil {
		return metadata.Versioned{}, err
	}
	if out.Version == 0 {
		return metadata.Versioned{}, fmt.Errorf("%w: key %q", metadata.ErrNotFound, key)
	}
	return out, nil
}

// Import loads objs into the replicated map keeping their versions; a key already at the
// same or a newer version is left alone. It is meant for migrating a LocalStore (see
// LocalObjects) right after Bootstrap, and must run on the leader.
func (s *Store) Import(ctx context.Context, objs map[string]metadata.Versioned) error {
	for k, v := range objs {
		if v.Version == 0 {
			return fmt.Errorf("raftstore: import: key %q has version 0 (absent)", k)
		}
	}
	cmd := encodeImport(objs)
	return s.withLeader(ctx, "import", func(leader raft.ServerAddress) error {
		if leader != s.addr {
			return retryable(fmt.Errorf("%w: import must run on the leader, which is %s", metadata.ErrUnavailable, leader))
		}
		res, err := s.apply(ctx, cmd)
		if err == nil {
			err = res.err
		}
		return err
	})
}

// apply runs cmd through raft on the leader.
func (s *Store) apply(ctx context.Context, cmd []byte) (applyResult, error) {
	f := s.raft.Apply(cmd, applyTimeout(ctx))
	if err := s.wait(ctx, f); err != nil {
		return applyResult{}, classifyRaftErr(err)
	}
	res, ok := f.Response().(applyResult)
	if !ok {
		return applyResult{}, fmt.Errorf("raftstore: unexpected apply response %T", f.Response())
	}
	return res, nil
}

// wait waits for a raft future or ctx. Raft futures know no context; the goroutine ends
// when raft answers, which it always does (commit, lost leadership or shutdown).
func (s *Store) wait(ctx context.Context, f raft.Future) error {
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
	}
}

// ErrOutcomeUnknown marks a write that may or may not have been committed (for example the
// leader lost its leadership while committing it); the caller should re-read. It is a
// metadata.ErrOutcomeUnknown, which callers of any Store test for.
var ErrOutcomeUnknown error = outcomeUnknown{}

type outcomeUnknown struct{}

func (outcomeUnknown) Error() string { return "raftstore: outcome unknown" }
func (outcomeUnknown) Unwrap() error { return metadata.ErrOutcomeUnknown }

// classifyRaftErr tells apart raft errors after which the command certainly did not enter
// the log (retrying is safe) from those after which it may still commit. ErrRaftShutdown
// is among the latter: the entry may already be on a majority that commits it later.
func classifyRaftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout):
		return retryable(fmt.Errorf("%w: %w", metadata.ErrUnavailable, err))
	case errors.Is(err, ErrOutcomeUnknown):
		return err
	default:
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
}

// applyTimeout is how long raft may wait to enqueue a command: the caller's deadline, or
// a default when it has none.
func applyTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return forwardTimeout
}

// retryableError marks an attempt that certainly had no effect and may be retried once a
// leader is (again) known.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

func retryable(err error) error { return &retryableError{err: err} }

// withLeader calls attempt with the current leader's address until it succeeds or fails
// for good, retrying with backoff while no leader is known or the attempt was retryable,
// for at most LeaderWait within ctx. A request that was itself forwarded by another member
// is not retried here: the forwarding member retries with its own view of the leader,
// which avoids chains of forwards between members that disagree.
func (s *Store) withLeader(ctx context.Context, what string, attempt func(leader raft.ServerAddress) error) error {
	deadline := time.Now().Add(s.leaderWait)
	backoff := 5 * time.Millisecond
	for {
		if s.isClosed() {
			return metadata.ErrClosed
		}
		var err error
		leader, _ := s.raft.LeaderWithID()
		switch {
		case leader == "":
			err = retryable(fmt.Errorf("%w: no raft leader known to %s", metadata.ErrUnavailable, s.id))
		case leader != s.addr && isForwarded(ctx):
			err = retryable(fmt.Errorf("%w: %s is not the leader (%s is)", metadata.ErrUnavailable, s.id, leader))
		default:
			err = attempt(leader)
		}
		var rerr *retryableError
		if !errors.As(err, &rerr) {
			if err != nil {
				return fmt.Errorf("raftstore: %s: %w", what, err)
			}
			return nil
		}
		if isForwarded(ctx) || time.Now().After(deadline) {
			return fmt.Errorf("raftstore: %s: %w", what, rerr.err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("raftstore: %s: %w: %w", what, rerr.err, ctx.Err())
		case <-s.done:
			return metadata.ErrClosed
		case <-time.After(backoff):
		}
		// Short: an election takes a few hundred milliseconds, and every write waiting
		// for it (a partition takeover among them) should go out as soon as it is over.
		backoff = min(2*backoff, 25*time.Millisecond)
	}
}

// Forwarded requests carry forwardedHeader; Handler turns it into a context value that
// withLeader reads.
const forwardedHeader = "X-Gorestate-Forwarded"

type forwardedKey struct{}

func isForwarded(ctx context.Context) bool { return ctx.Value(forwardedKey{}) != nil }

// forwardMarker sets forwardedHeader on every request a store forwards.
type forwardMarker struct{ rt http.RoundTripper }

func (m forwardMarker) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(forwardedHeader, "1")
	return m.rt.RoundTrip(r)
}
