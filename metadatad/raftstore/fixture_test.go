package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorestate.dev/shared/metadata"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// testTimeout bounds every blocking call so that a bug fails a test instead of hanging it.
const testTimeout = 20 * time.Second

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testOptions are timings short enough for tests yet long enough that a loaded 2-core
// machine under -race does not see spurious elections.
func testOptions() Options {
	return Options{
		HeartbeatTimeout:   300 * time.Millisecond,
		ElectionTimeout:    300 * time.Millisecond,
		LeaderLeaseTimeout: 150 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		LeaderWait:         5 * time.Second,
	}
}

// member is one in-process node: an HTTP fabric listener on 127.0.0.1 that outlives the
// store behind it, so that a member can be closed and reopened at the same address.
type member struct {
	name string
	addr string // host:port, the raft address
	url  string // fabric base URL
	dir  string
	opts Options
	srv  *httptest.Server
	cur  atomic.Pointer[Store] // nil while down: the listener answers 503
	// hangObjects makes requests to the metadata objects wait while it is set (a frozen
	// process) or until the client gives up, while raft's tunnel keeps working.
	hangObjects atomic.Bool
}

func (m *member) store() *Store { return m.cur.Load() }

// cluster is a set of members sharing one Faults and one log buffer.
type cluster struct {
	t       testing.TB
	faults  *Faults
	logs    *syncBuffer
	members []*member
}

// newCluster starts n members: the first bootstraps, the others join through it.
func newCluster(t testing.TB, n int, tweak func(*Options)) *cluster {
	t.Helper()
	c := newEmptyCluster(t)
	for i := range n {
		m := c.addMember(fmt.Sprintf("n%d", i+1), tweak)
		c.open(m)
		ctx := testCtx(t)
		if i == 0 {
			if err := m.store().Bootstrap(ctx); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := m.store().JoinCluster(ctx, []string{c.members[0].url}); err != nil {
			t.Fatal(err)
		}
		if err := m.store().WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func newEmptyCluster(t testing.TB) *cluster {
	c := &cluster{t: t, faults: NewFaults(), logs: &syncBuffer{}}
	// Registered first, so it runs last: after the stores closed, nothing logs any more.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("raft logs (tail):\n%s", c.logs.tail(150))
		}
	})
	return c
}

// addMember starts a member's listener without a store.
func (c *cluster) addMember(name string, tweak func(*Options)) *member {
	m := &member{name: name, dir: c.t.TempDir()}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := m.cur.Load()
		if s == nil {
			http.Error(w, "member down", http.StatusServiceUnavailable)
			return
		}
		for m.hangObjects.Load() && strings.HasPrefix(r.URL.Path, metadata.PathPrefix+"v1/") {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		s.Handler().ServeHTTP(w, r)
	}))
	m.url = m.srv.URL
	m.addr = strings.TrimPrefix(m.srv.URL, "http://")
	m.opts = testOptions()
	if tweak != nil {
		tweak(&m.opts)
	}
	m.opts.Dir, m.opts.NodeName, m.opts.Address, m.opts.Faults = m.dir, name, m.addr, c.faults
	m.opts.Logger = hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Info, Output: c.logs})
	c.t.Cleanup(func() {
		c.stop(m)
		m.srv.Close()
	})
	c.members = append(c.members, m)
	return m
}

// open opens m's store and serves it.
func (c *cluster) open(m *member) {
	c.t.Helper()
	s, err := Open(m.opts)
	if err != nil {
		c.t.Fatal(err)
	}
	m.cur.Store(s)
}

// stop closes m's store; its listener keeps answering 503.
func (c *cluster) stop(m *member) {
	if s := m.cur.Swap(nil); s != nil {
		if err := s.Close(); err != nil {
			c.t.Errorf("close %s: %v", m.name, err)
		}
	}
}

func (c *cluster) running() []*member {
	var out []*member
	for _, m := range c.members {
		if m.store() != nil {
			out = append(out, m)
		}
	}
	return out
}

// waitLeader waits until one of among leads and all of among agree on it.
func (c *cluster) waitLeader(among ...*member) *member {
	c.t.Helper()
	if len(among) == 0 {
		among = c.running()
	}
	var leader *member
	eventually(c.t, func() error {
		leader = nil
		for _, m := range among {
			if m.store().raft.State() == raft.Leader {
				leader = m
			}
		}
		if leader == nil {
			return errors.New("no leader")
		}
		for _, m := range among {
			if name, _ := m.store().Leader(); name != leader.name {
				return fmt.Errorf("%s follows %q, not %s", m.name, name, leader.name)
			}
		}
		return nil
	})
	return leader
}

func (c *cluster) followers(leader *member) []*member {
	var out []*member
	for _, m := range c.running() {
		if m != leader {
			out = append(out, m)
		}
	}
	return out
}

// eventually polls cond until it holds or testTimeout passes.
func eventually(t testing.TB, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not reached in %v: %v", testTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer collects the logs of all members.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) tail(lines int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := strings.Split(b.b.String(), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
