package membership

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/serf/serf"
)

// Bounds for conditions that depend on failure detection under FastTiming. Detection takes one
// to three seconds; the margin is for the race detector on a busy 2-core machine.
const (
	convergeTimeout = 10 * time.Second
	detectTimeout   = 15 * time.Second
)

// testLogger is silent unless MEMBERSHIP_TEST_LOG names a level (e.g. debug). It never writes
// through t.Log: memberlist may log from a connection handler after a test returned.
func testLogger(t *testing.T) hclog.Logger {
	if lvl := os.Getenv("MEMBERSHIP_TEST_LOG"); lvl != "" {
		return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.LevelFromString(lvl), Output: os.Stderr})
	}
	return hclog.NewNullLogger()
}

type nodeSpec struct {
	cluster string
	name    string
	gen     uint64
	roles   []string
	bind    string // default 127.0.0.1:0
	seeds   []string
	rejoin  time.Duration
	noIso   bool
}

func fabricAddr(name string, gen uint64) string {
	return fmt.Sprintf("http://127.0.0.1:%d/", 15000+100*gen+uint64(len(name)))
}

func startNode(t *testing.T, s nodeSpec) *Membership {
	t.Helper()
	if s.cluster == "" {
		s.cluster = "test"
	}
	if s.gen == 0 {
		s.gen = 1
	}
	if s.bind == "" {
		s.bind = "127.0.0.1:0"
	}
	cfg := Config{
		ClusterName:    s.cluster,
		NodeName:       s.name,
		Generation:     s.gen,
		Roles:          s.roles,
		Address:        fabricAddr(s.name, s.gen),
		BindAddr:       s.bind,
		Seeds:          s.seeds,
		RejoinInterval: s.rejoin,
		Logger:         testLogger(t),
		Timing:         FastTiming(),
		noIsolation:    s.noIso,
	}
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	m, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start %s@%d: %v", s.name, s.gen, err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// startCluster starts n1..nN (roles from roles[i]) joined through n1.
func startCluster(t *testing.T, roles ...[]string) []*Membership {
	t.Helper()
	var ms []*Membership
	for i, r := range roles {
		s := nodeSpec{name: fmt.Sprintf("n%d", i+1), roles: r}
		if i > 0 {
			s.seeds = []string{ms[0].LocalAddr()}
		}
		ms = append(ms, startNode(t, s))
	}
	for _, m := range ms {
		waitFor(t, convergeTimeout, m.cfg.NodeName+" sees everyone alive", func() bool {
			return countState(m.Members(), StateAlive) == len(ms)
		})
	}
	return ms
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitEvent reads ch until an event matches.
func waitEvent(t *testing.T, ch <-chan Event, timeout time.Duration, what string, match func(Event) bool) Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("subscription closed while waiting for %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-timer.C:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

func isEvent(kind EventKind, name string, gen uint64) func(Event) bool {
	return func(ev Event) bool {
		return ev.Kind == kind && ev.Member.Name == name && ev.Member.Generation == gen
	}
}

func memberNamed(m *Membership, name string) (Member, bool) {
	for _, mem := range m.Members() {
		if mem.Name == name {
			return mem, true
		}
	}
	return Member{}, false
}

func countState(ms []Member, s State) int {
	n := 0
	for _, m := range ms {
		if m.State == s {
			n++
		}
	}
	return n
}

func TestThreeMembersSeeEachOther(t *testing.T) {
	t.Parallel()
	roles := [][]string{{"metadata-server", "admin"}, {"worker"}, {"http-ingress", "log-server"}}
	ms := startCluster(t, roles...)
	for _, m := range ms {
		got := m.Members()
		if len(got) != 3 {
			t.Fatalf("%s sees %d members, want 3: %+v", m.cfg.NodeName, len(got), got)
		}
		for i, mem := range got {
			want := ms[i]
			if mem.Name != want.cfg.NodeName || mem.Generation != 1 || mem.State != StateAlive ||
				!slices.Equal(mem.Roles, roles[i]) || mem.Address != fabricAddr(mem.Name, 1) ||
				mem.GossipAddr != want.LocalAddr() || mem.Since.IsZero() {
				t.Errorf("%s sees %+v, want %s@1 alive roles %v fabric %s gossip %s",
					m.cfg.NodeName, mem, want.cfg.NodeName, roles[i], fabricAddr(mem.Name, 1), want.LocalAddr())
			}
			if !m.IsCurrent(mem.Name, 1) {
				t.Errorf("%s: IsCurrent(%s, 1) is false", m.cfg.NodeName, mem.Name)
			}
		}
		if host, _, _ := net.SplitHostPort(m.LocalAddr()); host != "127.0.0.1" {
			t.Errorf("LocalAddr %s is not on loopback", m.LocalAddr())
		}
	}
}

func TestCrashIsDetectedAsFailed(t *testing.T) {
	t.Parallel()
	ms := startCluster(t, []string{"admin"}, []string{"worker"}, []string{"worker"})
	ev1, cancel1 := ms[0].Subscribe()
	defer cancel1()
	ev2, cancel2 := ms[1].Subscribe()
	defer cancel2()

	crashed := time.Now()
	if err := ms[2].Close(); err != nil { // no Leave: others must detect the failure
		t.Fatal(err)
	}
	for i, ch := range []<-chan Event{ev1, ev2} {
		ev := waitEvent(t, ch, detectTimeout, "n3@1 failed", isEvent(EventFailed, "n3", 1))
		if ev.Member.State != StateFailed {
			t.Errorf("n%d: failed event carries state %s", i+1, ev.Member.State)
		}
		t.Logf("n%d saw n3 fail after %s", i+1, time.Since(crashed).Round(time.Millisecond))
	}
	for _, m := range ms[:2] {
		mem, ok := memberNamed(m, "n3")
		if !ok || mem.State != StateFailed || mem.Generation != 1 {
			t.Errorf("%s: n3 is %+v (known %v), want failed at generation 1", m.cfg.NodeName, mem, ok)
		}
		if !m.IsCurrent("n3", 1) {
			t.Errorf("%s: a failed node without a newer life must stay current", m.cfg.NodeName)
		}
	}
}

func TestLeaveShowsAsLeft(t *testing.T) {
	t.Parallel()
	ms := startCluster(t, []string{"admin"}, []string{"worker"}, []string{"http-ingress"})
	events, cancel := ms[0].Subscribe()
	defer cancel()
	if err := ms[2].Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := ms[2].Close(); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, convergeTimeout, "n3@1 left", isEvent(EventLeft, "n3", 1))
	for _, m := range ms[:2] {
		waitFor(t, convergeTimeout, m.cfg.NodeName+" shows n3 left", func() bool {
			mem, ok := memberNamed(m, "n3")
			return ok && mem.State == StateLeft
		})
	}
}

// A Leave that times out leaves serf's leave running; a Close right after must wait for it
// instead of shutting memberlist down under it (memberlist panics on a leave after its
// shutdown: this crashed a daemon stopping within a Leave timeout in CI).
func TestCloseAfterLeaveTimedOut(t *testing.T) {
	t.Parallel()
	ms := startCluster(t, []string{"admin"}, []string{"worker"})
	err := ms[1].Leave(10 * time.Millisecond) // serf's leave is then waiting for its broadcast
	if err != nil && !errors.Is(err, ErrLeaveTimeout) {
		t.Fatalf("leave: %v", err)
	}
	if err := ms[1].Close(); err != nil {
		t.Fatal(err)
	}
	// Without the wait in Close, serf's leave stops waiting for its broadcast (which the
	// shutdown cut off) after BroadcastTimeout, reaches memberlist's leave and panics,
	// taking the test binary down.
	time.Sleep(ms[1].cfg.Timing.BroadcastTimeout + 300*time.Millisecond)
}

func TestRestartWithNewGeneration(t *testing.T) {
	t.Parallel()
	ms := startCluster(t, []string{"admin"}, []string{"worker"}, []string{"worker"})
	n1, n3 := ms[0], ms[2]
	events, cancel := n1.Subscribe()
	defer cancel()

	oldAddr := ms[1].LocalAddr()
	if err := ms[1].Close(); err != nil { // crash
		t.Fatal(err)
	}
	n2 := startNode(t, nodeSpec{name: "n2", gen: 2, roles: []string{"worker"}, seeds: []string{n3.LocalAddr()}})
	if n2.LocalAddr() == oldAddr {
		t.Logf("new life reuses gossip address %s", oldAddr)
	}
	for _, m := range []*Membership{n1, n2, n3} {
		waitFor(t, convergeTimeout, m.cfg.NodeName+" sees n2@2 alive", func() bool {
			mem, ok := memberNamed(m, "n2")
			return ok && mem.Generation == 2 && mem.State == StateAlive && mem.GossipAddr == n2.LocalAddr()
		})
		if m.IsCurrent("n2", 1) || !m.IsCurrent("n2", 2) {
			t.Errorf("%s: IsCurrent(n2, 1)=%v IsCurrent(n2, 2)=%v, want false, true",
				m.cfg.NodeName, m.IsCurrent("n2", 1), m.IsCurrent("n2", 2))
		}
	}
	// The previous life is declared failed, then reaped because a newer generation is known.
	waitEvent(t, events, detectTimeout, "n2@1 failed", isEvent(EventFailed, "n2", 1))
	waitEvent(t, events, detectTimeout, "n2@1 reaped", isEvent(EventReaped, "n2", 1))
	if mem, _ := memberNamed(n1, "n2"); mem.Generation != 2 || mem.State != StateAlive {
		t.Errorf("after reaping n2@1, n1 sees n2 as %+v", mem)
	}
	if !n1.IsCurrent("n2", 2) || n1.IsCurrent("n2", 1) {
		t.Error("reaping the old life must not forget its successor's generation")
	}

	// Fencing: a request from the previous life is rejected, one from the new life passes.
	handler := RejectStale(n1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	for _, tc := range []struct {
		gen      uint64
		wantCode int
		wantBody string
	}{
		{1, http.StatusConflict, "stale sender n2@1: node n2 is at generation 2\n"},
		{2, http.StatusOK, "ok"},
	} {
		req := httptest.NewRequest(http.MethodPost, "/fabric/append", nil)
		SetSender(req, "n2", tc.gen)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != tc.wantCode || rec.Body.String() != tc.wantBody {
			t.Errorf("sender n2@%d: got %d %q, want %d %q", tc.gen, rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
		}
	}
}

func TestOtherClusterIsNotReported(t *testing.T) {
	t.Parallel()
	a := startCluster(t, []string{"admin"}, []string{"worker"})
	b := startNode(t, nodeSpec{cluster: "other", name: "b1", roles: []string{"worker"}})

	// The memberlist label drops the other cluster's streams: the join fails outright.
	if n, err := b.Join([]string{a[0].LocalAddr()}); err == nil {
		t.Errorf("join across clusters contacted %d nodes, want an error", n)
	}
	if n, err := a[1].Join([]string{b.LocalAddr()}); err == nil {
		t.Errorf("join across clusters contacted %d nodes, want an error", n)
	}
	for _, m := range a {
		if got := m.Members(); len(got) != 2 || got[0].Name != "n1" || got[1].Name != "n2" {
			t.Errorf("%s reports %+v, want n1 and n2 only", m.cfg.NodeName, got)
		}
	}
	if got := b.Members(); len(got) != 1 || got[0].Name != "b1" {
		t.Errorf("b1 reports %+v, want itself only", got)
	}
}

// TestOtherClusterFilteredWithoutIsolation lets two clusters' nodes gossip (no label, no merge
// check) to show that the view and the events themselves ignore foreign members.
func TestOtherClusterFilteredWithoutIsolation(t *testing.T) {
	t.Parallel()
	a1 := startNode(t, nodeSpec{cluster: "a", name: "a1", noIso: true})
	events, cancel := a1.Subscribe()
	defer cancel()
	b1 := startNode(t, nodeSpec{cluster: "b", name: "b1", noIso: true, seeds: []string{a1.LocalAddr()}})
	waitFor(t, convergeTimeout, "the nodes gossip with each other", func() bool {
		return len(a1.serf.Members()) == 2 && len(b1.serf.Members()) == 2
	})
	for _, m := range []*Membership{a1, b1} {
		if got := m.Members(); len(got) != 1 || got[0].GossipAddr != m.LocalAddr() {
			t.Errorf("cluster %s reports %+v, want only itself", m.cfg.ClusterName, got)
		}
	}
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, detectTimeout, "serf in a1 declares b1 failed", func() bool {
		for _, sm := range a1.serf.Members() {
			if sm.Name == "b1@1" {
				return sm.Status == serf.StatusFailed
			}
		}
		return false
	})
	// Serf queued b1's join and failure before a2's join: the first event reported about
	// another node must be a2's (a1 may still see its own join, queued when it started).
	startNode(t, nodeSpec{cluster: "a", name: "a2", noIso: true, seeds: []string{a1.LocalAddr()}})
	notSelf := func(ev Event) bool { return ev.Member.Name != "a1" }
	if ev := waitEvent(t, events, convergeTimeout, "an event about another node", notSelf); !isEvent(EventJoined, "a2", 1)(ev) {
		t.Errorf("first event is %s %s@%d, want joined a2@1", ev.Kind, ev.Member.Name, ev.Member.Generation)
	}
}

func TestRejoinLoopJoinsSeedStartedLater(t *testing.T) {
	t.Parallel()
	seed := freeAddr(t)
	early := startNode(t, nodeSpec{name: "n1", seeds: []string{seed}, rejoin: 100 * time.Millisecond})
	if got := early.Members(); len(got) != 1 {
		t.Fatalf("n1 sees %+v before its seed started", got)
	}
	late := startNode(t, nodeSpec{name: "n2", bind: seed})
	for _, m := range []*Membership{early, late} {
		waitFor(t, convergeTimeout, m.cfg.NodeName+" sees both alive", func() bool {
			return countState(m.Members(), StateAlive) == 2
		})
	}
}

// freeAddr returns a loopback host:port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestStartRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	valid := Config{ClusterName: "c", NodeName: "n1", Generation: 1, BindAddr: "127.0.0.1:0", Logger: testLogger(t)}
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no cluster", func(c *Config) { c.ClusterName = "" }},
		{"no name", func(c *Config) { c.NodeName = "" }},
		{"name with @", func(c *Config) { c.NodeName = "n@1" }},
		{"name with space", func(c *Config) { c.NodeName = "n 1" }},
		{"generation 0", func(c *Config) { c.Generation = 0 }},
		{"role with comma", func(c *Config) { c.Roles = []string{"worker,admin"} }},
		{"no bind address", func(c *Config) { c.BindAddr = "" }},
		{"bind without port", func(c *Config) { c.BindAddr = "127.0.0.1" }},
		{"cluster name too long", func(c *Config) { c.ClusterName = strings.Repeat("c", 300) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.edit(&cfg)
			m, err := Start(context.Background(), cfg)
			if err == nil {
				_ = m.Close()
				t.Fatal("Start accepted the config")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
		})
	}
}

// TestCloseStopsEverything is not parallel: it counts the process's goroutines.
func TestCloseStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	a := startNode(t, nodeSpec{name: "n1"})
	b := startNode(t, nodeSpec{name: "n2", seeds: []string{a.LocalAddr()}, rejoin: 50 * time.Millisecond})
	waitFor(t, convergeTimeout, "n1 sees n2", func() bool { return countState(a.Members(), StateAlive) == 2 })
	events, _ := a.Subscribe()
	if err := b.Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Membership{b, a} {
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	for range events { // Close closes subscriptions
	}
	if ch, _ := a.Subscribe(); ch != nil {
		if _, ok := <-ch; ok {
			t.Error("Subscribe after Close returned an open channel")
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s",
				runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// With a daemon's long rejoin interval, a seed started a moment after the node is found
// within about a second, not after an interval: the loop tries soon once alone.
func TestRejoinLoopTriesSoonOnceAlone(t *testing.T) {
	t.Parallel()
	seed := freeAddr(t)
	early := startNode(t, nodeSpec{name: "n1", seeds: []string{seed}, rejoin: DaemonRejoinInterval})
	started := time.Now()
	startNode(t, nodeSpec{name: "n2", bind: seed})
	waitFor(t, convergeTimeout, "n1 sees both alive", func() bool {
		return countState(early.Members(), StateAlive) == 2
	})
	if took := time.Since(started); took > DaemonRejoinInterval/2 {
		t.Fatalf("n1 found its seed %v after the seed started; want well within the %v interval", took, DaemonRejoinInterval)
	}
}
