package raftstore

import (
	"bytes"
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
	"strconv"
	"strings"
	"time"

	"gorestate.dev/shared/fsync"

	"github.com/hashicorp/raft"

	"gorestate.dev/shared/metadata"
)

// ClusterPath prefixes the membership endpoints served by Handler:
//
//	POST   /metadata/cluster/join            {"name":…, "address":…}: add a voter (idempotent)
//	GET    /metadata/cluster/members         the raft configuration, as JSON []Member
//	DELETE /metadata/cluster/members/{name}  remove a member (idempotent)
//	GET    /metadata/cluster/status          this member's Status as JSON
//
// Changes are forwarded to the leader by whichever member receives them.
const ClusterPath = metadata.PathPrefix + "cluster/"

// Member is one server of the raft configuration.
type Member struct {
	Name     string `json:"name"`
	Address  string `json:"address"`  // fabric host:port
	Suffrage string `json:"suffrage"` // "voter", "nonvoter" or "staging"
	Leader   bool   `json:"leader"`
}

// Status is one member's view of the cluster, for a status command.
type Status struct {
	Node          string   `json:"node"`
	Address       string   `json:"address"`
	State         string   `json:"state"` // "Follower", "Candidate", "Leader" or "Shutdown"
	Term          uint64   `json:"term"`
	LastIndex     uint64   `json:"last_index"`
	CommitIndex   uint64   `json:"commit_index"`
	AppliedIndex  uint64   `json:"applied_index"`
	LeaderName    string   `json:"leader_name,omitempty"`
	LeaderAddress string   `json:"leader_address,omitempty"`
	Members       []Member `json:"members,omitempty"`
}

type joinRequest struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// Fresh says the joining node has no raft state. If the configuration already lists
	// its name, that entry belongs to a previous life whose log and vote are gone (a wiped
	// disk): it is removed and added anew rather than trusted as an up-to-date voter.
	Fresh bool `json:"fresh,omitempty"`
}

// Bootstrap makes this fresh member a cluster of one and waits until it leads. It fails
// (wrapping raft.ErrCantBootstrap) if the member already has state.
func (s *Store) Bootstrap(ctx context.Context) error {
	cfg := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: s.id, Address: s.addr}}}
	if err := s.raft.BootstrapCluster(cfg).Error(); err != nil {
		return fmt.Errorf("raftstore: bootstrap %s: %w", s.id, err)
	}
	if err := s.AllowVotes(); err != nil {
		return err
	}
	return s.WaitReady(ctx)
}

// WaitReady waits until this member knows a leader and has applied everything that was
// committed when it asked. A leader knows it only once its own log is applied (raft sets
// the leader at the election, before replaying), so the leader waits for a barrier; a
// follower asks the leader for a linearizable read, which makes the leader apply
// everything, then waits until its own FSM reached the leader's commit index.
func (s *Store) WaitReady(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.caughtUp(ctx) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("raftstore: %s waiting for a leader: %w", s.id, ctx.Err())
		case <-s.done:
			return metadata.ErrClosed
		case <-tick.C:
		}
	}
}

// caughtUp makes one attempt of WaitReady's check.
func (s *Store) caughtUp(ctx context.Context) bool {
	leader, id := s.raft.LeaderWithID()
	switch {
	case id == "":
		return false
	case id == s.id:
		return s.wait(ctx, s.raft.Barrier(applyTimeout(ctx))) == nil
	}
	if _, err := s.forwardConsistentGet(ctx, leader, readyProbeKey); err != nil {
		return false
	}
	st, err := s.leaderStatus(ctx, leader)
	if err != nil {
		return false
	}
	for s.raft.AppliedIndex() < st.CommitIndex {
		select {
		case <-ctx.Done():
			return false
		case <-s.done:
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}

// readyProbeKey is read (and never written) to make the leader apply its whole log.
const readyProbeKey = "_gorestate_ready_probe"

// leaderStatus asks the leader for its status (its commit index).
func (s *Store) leaderStatus(ctx context.Context, leader raft.ServerAddress) (Status, error) {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+string(leader)+ClusterPath+"status", nil)
	if err != nil {
		return Status{}, err
	}
	res, err := s.fwd.Do(req)
	if err != nil {
		return Status{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return Status{}, fmt.Errorf("leader %s status: %s", leader, res.Status)
	}
	var st Status
	return st, json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&st)
}

// Leader returns the name and address of the leader this member knows, or empty strings.
func (s *Store) Leader() (name, addr string) {
	a, id := s.raft.LeaderWithID()
	return string(id), string(a)
}

// Members returns the raft configuration as this member knows it.
func (s *Store) Members() ([]Member, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raftstore: configuration: %w", err)
	}
	_, leader := s.raft.LeaderWithID()
	var out []Member
	for _, srv := range f.Configuration().Servers {
		out = append(out, Member{
			Name:     string(srv.ID),
			Address:  string(srv.Address),
			Suffrage: strings.ToLower(srv.Suffrage.String()),
			Leader:   srv.ID == leader,
		})
	}
	return out, nil
}

// Status returns this member's raft state; Members is empty once the store is closed.
func (s *Store) Status() Status {
	leaderAddr, leaderID := s.raft.LeaderWithID()
	st := Status{
		Node:          string(s.id),
		Address:       string(s.addr),
		State:         s.raft.State().String(),
		Term:          s.raft.CurrentTerm(),
		LastIndex:     s.raft.LastIndex(),
		CommitIndex:   s.raft.CommitIndex(),
		AppliedIndex:  s.raft.AppliedIndex(),
		LeaderName:    string(leaderID),
		LeaderAddress: string(leaderAddr),
	}
	st.Members, _ = s.Members()
	return st
}

// AddVoter adds name at addr (fabric host:port) as a voting member; it is a no-op if the
// member is already a voter at that address. Any member may be asked: it forwards to the
// leader.
func (s *Store) AddVoter(ctx context.Context, name, addr string) error {
	return s.addVoter(ctx, joinRequest{Name: name, Address: addr})
}

func (s *Store) addVoter(ctx context.Context, req joinRequest) error {
	name, addr := req.Name, req.Address
	if name == "" {
		return errors.New("raftstore: add voter: empty name")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("raftstore: add voter %s: address %q is not host:port", name, addr)
	}
	body, _ := json.Marshal(req)
	return s.withLeader(ctx, "add voter "+name, func(leader raft.ServerAddress) error {
		if leader != s.addr {
			return s.forward(ctx, leader, http.MethodPost, ClusterPath+"join", body)
		}
		cfg := s.raft.GetConfiguration()
		if err := s.wait(ctx, cfg); err != nil {
			return classifyRaftErr(err)
		}
		for _, srv := range cfg.Configuration().Servers {
			if srv.ID != raft.ServerID(name) {
				continue
			}
			if !req.Fresh && srv.Address == raft.ServerAddress(addr) && srv.Suffrage == raft.Voter {
				return nil
			}
			if req.Fresh {
				if srv.ID == s.id {
					return fmt.Errorf("a fresh node cannot take the name of the leader %s", name)
				}
				s.logger.Warn("a member rejoins without raft state (wiped disk?): re-adding it", "name", name, "address", addr)
				if err := s.wait(ctx, s.raft.RemoveServer(srv.ID, 0, applyTimeout(ctx))); err != nil {
					return classifyRaftErr(err)
				}
			}
		}
		s.logger.Info("adding voter", "name", name, "address", addr)
		return classifyRaftErr(s.wait(ctx, s.raft.AddVoter(raft.ServerID(name), raft.ServerAddress(addr), 0, applyTimeout(ctx))))
	})
}

// AllowVotes lets a member that started without raft state vote. Call it only once the
// member has been added by a join (JoinCluster does): a member that merely received the
// log from a leader that still counts its wiped former self must not vote yet.
func (s *Store) AllowVotes() error {
	if err := os.Remove(s.notAdded); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("raftstore: %w", err)
	}
	if err := fsync.Dir(filepath.Dir(s.notAdded)); err != nil {
		return fmt.Errorf("raftstore: %w", err)
	}
	s.votes.open()
	return nil
}

// JoinCluster is Join for this member's own name and address; once the cluster has
// (re-)added it, the member votes.
func (s *Store) JoinCluster(ctx context.Context, seeds []string) error {
	if err := Join(ctx, seeds, string(s.id), string(s.addr)); err != nil {
		return err
	}
	return s.AllowVotes()
}

// RemoveServer removes name from the cluster; removing a non-member is a no-op. Any member
// may be asked: it forwards to the leader.
func (s *Store) RemoveServer(ctx context.Context, name string) error {
	return s.withLeader(ctx, "remove "+name, func(leader raft.ServerAddress) error {
		if leader != s.addr {
			return s.forward(ctx, leader, http.MethodDelete, ClusterPath+"members/"+url.PathEscape(name), nil)
		}
		cfg := s.raft.GetConfiguration()
		if err := s.wait(ctx, cfg); err != nil {
			return classifyRaftErr(err)
		}
		found := false
		for _, srv := range cfg.Configuration().Servers {
			found = found || srv.ID == raft.ServerID(name)
		}
		if !found {
			return nil
		}
		s.logger.Info("removing member", "name", name)
		return classifyRaftErr(s.wait(ctx, s.raft.RemoveServer(raft.ServerID(name), 0, applyTimeout(ctx))))
	})
}

// Join asks the cluster to add this node (name, fabric host:port addr) as a voter,
// trying each seed (fabric base URLs of existing members, e.g. "http://10.0.0.5:5122") in
// turn until one accepts or ctx ends. The node's own URL may be among the seeds (such as
// the metadata-client addresses, which list every server); it is skipped. The node's
// store must already be open and its Handler served, because the leader starts
// replicating to it at once.
func Join(ctx context.Context, seeds []string, name, addr string) error {
	var others []string
	for _, s := range seeds {
		if u := baseURL(s); u != "http://"+addr {
			others = append(others, u)
		}
	}
	seeds = others
	if len(seeds) == 0 {
		return fmt.Errorf("raftstore: join %s: no seeds other than itself", name)
	}
	// Join is for nodes without raft state (a node with state rejoins by itself).
	body, _ := json.Marshal(joinRequest{Name: name, Address: addr, Fresh: true})
	hc := &http.Client{}
	backoff := 50 * time.Millisecond
	var lastErr error
	for i := 0; ; i++ {
		seed := seeds[i%len(seeds)]
		attempt, cancel := context.WithTimeout(ctx, forwardTimeout)
		err := postJSON(attempt, hc, seed+ClusterPath+"join", body)
		cancel()
		if err == nil {
			return nil
		}
		lastErr = fmt.Errorf("via %s: %w", seed, err)
		if i%len(seeds) < len(seeds)-1 {
			continue // try the next seed at once
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("raftstore: join %s: %w (last error %w)", name, ctx.Err(), lastErr)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func baseURL(a string) string {
	a = strings.TrimRight(strings.TrimSpace(a), "/")
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	return a
}

func postJSON(ctx context.Context, hc *http.Client, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", res.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// forward sends a membership change to the leader. Refused dials and 503s are retryable:
// the leader did not act on them.
func (s *Store) forward(ctx context.Context, leader raft.ServerAddress, method, path string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+string(leader)+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	res, err := s.fwd.Do(req)
	if err != nil {
		if isDialError(err) {
			return retryable(fmt.Errorf("%w: %w", metadata.ErrUnavailable, err))
		}
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	switch res.StatusCode {
	case http.StatusOK, http.StatusNoContent:
		return nil
	case http.StatusServiceUnavailable:
		return retryable(fmt.Errorf("%w: leader %s: %s", metadata.ErrUnavailable, leader, strings.TrimSpace(string(msg))))
	default:
		return fmt.Errorf("leader %s answered %s: %s", leader, res.Status, strings.TrimSpace(string(msg)))
	}
}

// forwardConsistentGet asks the leader for a linearizable read; version 0 means absent.
func (s *Store) forwardConsistentGet(ctx context.Context, leader raft.ServerAddress, key string) (metadata.Versioned, error) {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	u := "http://" + string(leader) + metadata.PathPrefix + "v1/" + url.PathEscape(key) + "?consistent=1"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return metadata.Versioned{}, err
	}
	res, err := s.fwd.Do(req)
	if err != nil {
		// A read has no effect, so any failure may be retried.
		return metadata.Versioned{}, retryable(fmt.Errorf("%w: %w", metadata.ErrUnavailable, err))
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return metadata.Versioned{}, retryable(fmt.Errorf("%w: read from leader %s: %w", metadata.ErrUnavailable, leader, err))
	}
	switch res.StatusCode {
	case http.StatusOK:
		version, err := strconv.ParseUint(res.Header.Get(metadata.VersionHeader), 10, 64)
		if err != nil || version == 0 {
			return metadata.Versioned{}, fmt.Errorf("leader %s sent bad %s header %q", leader, metadata.VersionHeader, res.Header.Get(metadata.VersionHeader))
		}
		return metadata.Versioned{Version: version, Value: body}, nil
	case http.StatusNotFound:
		return metadata.Versioned{}, nil
	case http.StatusServiceUnavailable:
		return metadata.Versioned{}, retryable(fmt.Errorf("%w: leader %s: %s", metadata.ErrUnavailable, leader, strings.TrimSpace(string(body))))
	default:
		return metadata.Versioned{}, fmt.Errorf("leader %s answered %s: %s", leader, res.Status, strings.TrimSpace(string(body)))
	}
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// Handler serves the whole metadata server under /metadata/ (mount it there on the
// fabric listener, in place of metadata.NewHTTPHandler):
//
//	/metadata/raft       the raft tunnel (see RaftPath)
//	/metadata/cluster/…  membership (see ClusterPath)
//	/metadata/v1/{key}   the metadata HTTP API over this store; GET with ?consistent is
//	                     a linearizable read (GetConsistent)
func (s *Store) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Store) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(forwardedHeader) != "" {
		r = r.WithContext(context.WithValue(r.Context(), forwardedKey{}, true))
	}
	path := r.URL.Path
	switch {
	case path == RaftPath:
		s.stream.ServeHTTP(w, r)
	case path == ClusterPath+"join":
		s.serveJoin(w, r)
	case path == ClusterPath+"status":
		if !allow(w, r, http.MethodGet) {
			return
		}
		writeJSON(w, s.Status())
	case path == ClusterPath+"members":
		if !allow(w, r, http.MethodGet) {
			return
		}
		members, err := s.Members()
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, members)
	case strings.HasPrefix(path, ClusterPath+"members/"):
		if !allow(w, r, http.MethodDelete) {
			return
		}
		name := strings.TrimPrefix(path, ClusterPath+"members/")
		if err := s.RemoveServer(r.Context(), name); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	case strings.HasPrefix(path, ClusterPath):
		http.Error(w, fmt.Sprintf("unknown path %q", path), http.StatusNotFound)
	case r.Method == http.MethodGet && r.URL.Query().Has("consistent") && strings.HasPrefix(path, metadata.PathPrefix+"v1/"):
		s.serveConsistentGet(w, r)
	default:
		s.api.ServeHTTP(w, r)
	}
}

func (s *Store) serveJoin(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	var req joinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		http.Error(w, "bad join request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if req.Name == "" {
		http.Error(w, "bad join request: empty name", http.StatusBadRequest)
		return
	}
	if _, _, err := net.SplitHostPort(req.Address); err != nil {
		http.Error(w, fmt.Sprintf("bad join request: address %q is not host:port", req.Address), http.StatusBadRequest)
		return
	}
	if err := s.addVoter(r.Context(), req); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, map[string]string{"joined": req.Name})
}

func (s *Store) serveConsistentGet(w http.ResponseWriter, r *http.Request) {
	key, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), metadata.PathPrefix+"v1/"))
	if err != nil || key == "" {
		http.Error(w, "bad key", http.StatusBadRequest)
		return
	}
	v, err := s.GetConsistent(r.Context(), key)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set(metadata.VersionHeader, strconv.FormatUint(v.Version, 10))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(v.Value)))
	_, _ = w.Write(v.Value)
}

func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	http.Error(w, fmt.Sprintf("method %s not allowed: want %s", r.Method, method), http.StatusMethodNotAllowed)
	return false
}

// writeError maps errors to the statuses metadata.Client and forward understand: 503 only
// for "certainly not done, try elsewhere".
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, metadata.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, metadata.ErrUnavailable), errors.Is(err, metadata.ErrClosed):
		status = http.StatusServiceUnavailable
	}
	http.Error(w, err.Error(), status)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
