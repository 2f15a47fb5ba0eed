package liveness

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorestate.dev/shared/upgrade"
)

func acceptForTest(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	return upgrade.Accept(w, r, protocol)
}

// node serves heartbeats on addr (or a free port) until killed.
type node struct {
	ln  net.Listener
	srv *http.Server

	mu    sync.Mutex
	conns []net.Conn // every connection, hijacked ones included
}

func startNode(t *testing.T, addr string, handler http.Handler) *node {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, handler)
	n := &node{ln: ln}
	n.srv = &http.Server{Handler: mux, ConnState: func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.mu.Lock()
			n.conns = append(n.conns, c)
			n.mu.Unlock()
		}
	}}
	go func() { _ = n.srv.Serve(ln) }()
	return n
}

// kill stops the node as a SIGKILL would: the port closes and so do all connections.
func (n *node) kill() {
	_ = n.srv.Close()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns {
		_ = c.Close()
	}
}

func (n *node) url() string { return "http://" + n.ln.Addr().String() }

// beatThenHang serves a heartbeat connection: beats beats 20ms apart (forever if beats < 0),
// then silence until the client goes away.
func beatThenHang(w http.ResponseWriter, r *http.Request, beats int) {
	conn, err := acceptForTest(w, r)
	if err != nil {
		return
	}
	defer conn.Close()
	for i := 0; beats < 0 || i < beats; i++ {
		if _, err := conn.Write([]byte{1}); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A hijacked request's context does not end with the client; the read does.
	var b [1]byte
	_, _ = conn.Read(b[:])
}

func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

func TestKilledNodeIsDeadAtOnceAndAliveWhenBack(t *testing.T) {
	n := startNode(t, "127.0.0.1:0", Handler(20*time.Millisecond))
	addr := n.ln.Addr().String()
	d := NewDetector(20*time.Millisecond, 200*time.Millisecond, nil)
	defer d.Close()
	changed := d.Changed()
	d.SetNodes(map[string]string{"a": n.url(), "never": "http://127.0.0.1:1"})
	time.Sleep(100 * time.Millisecond) // connected
	if d.Dead("a") || d.Dead("never") {
		t.Fatal("dead before anything happened (a node never reached is gossip's to judge)")
	}
	n.kill()
	took := waitFor(t, "the killed node to be dead", func() bool { return d.Dead("a") })
	t.Logf("killed node known dead after %v", took)
	if took > time.Second {
		t.Fatalf("took %v", took)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed not signalled")
	}
	back := startNode(t, addr, Handler(20*time.Millisecond))
	defer back.kill()
	waitFor(t, "the restarted node to be alive", func() bool { return !d.Dead("a") })
	// Watching it no more forgets it.
	d.SetNodes(map[string]string{})
	if d.Dead("a") {
		t.Fatal("a node not watched any more counts as dead")
	}
}

func TestSilentNodeIsDeadAfterThreeTimeouts(t *testing.T) {
	// A frozen process: its heartbeats stop without the connection closing, and probes
	// hang instead of being refused.
	var calls atomic.Int32
	n := startNode(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) > 1 {
			<-r.Context().Done()
			return
		}
		beatThenHang(w, r, 5)
	}))
	defer n.kill()
	d := NewDetector(20*time.Millisecond, 100*time.Millisecond, nil)
	defer d.Close()
	d.SetNodes(map[string]string{"a": n.url()})
	waitFor(t, "the first heartbeat", func() bool { return calls.Load() > 0 })
	took := waitFor(t, "the frozen node to be dead", func() bool { return d.Dead("a") })
	t.Logf("frozen node known dead after %v", took)
	if took < 300*time.Millisecond {
		t.Fatalf("dead after %v of silence, before three timeouts", took)
	}
}

func TestNodeWithoutHeartbeatsIsNotDead(t *testing.T) {
	n := startNode(t, "127.0.0.1:0", http.NotFoundHandler())
	defer n.kill()
	d := NewDetector(20*time.Millisecond, 100*time.Millisecond, nil)
	defer d.Close()
	d.SetNodes(map[string]string{"old": n.url()})
	time.Sleep(300 * time.Millisecond)
	if d.Dead("old") {
		t.Fatal("a node that refuses the upgrade (another version) counts as dead")
	}
}

func TestRecheckDropsAStaleVerdictAndProbesAtOnce(t *testing.T) {
	// A node cut off by the network: heartbeats stop and probes hang (as a black-holed
	// connect does) until it heals. The detector's probe under way when it heals would wait
	// out its timeout; Recheck (gossip saw the node again) must not.
	var healed atomic.Bool
	var served atomic.Int32
	hung := make(chan struct{}, 100) // a probe started hanging
	n := startNode(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Load() > 0 && !healed.Load() {
			hung <- struct{}{}
			<-r.Context().Done()
			return
		}
		beats := -1 // later connections beat
		if served.Add(1) == 1 {
			beats = 3 // the first one goes silent
		}
		beatThenHang(w, r, beats)
	}))
	defer n.kill()
	const timeout = 500 * time.Millisecond
	d := NewDetector(20*time.Millisecond, timeout, nil)
	defer d.Close()
	d.SetNodes(map[string]string{"a": n.url()})
	waitFor(t, "the cut-off node to be dead", func() bool { return d.Dead("a") })
	d.Recheck("never-watched") // no effect, no panic

	// Heal just as a probe starts hanging: that probe has its whole timeout to wait out.
	for len(hung) > 0 {
		<-hung
	}
	select {
	case <-hung:
	case <-time.After(10 * time.Second):
		t.Fatal("no probe came")
	}
	healed.Store(true)
	changed := d.Changed()
	start := time.Now()
	d.Recheck("a")
	if d.Dead("a") {
		t.Fatal("still dead right after Recheck")
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed not signalled by Recheck")
	}
	waitFor(t, "a heartbeat after the heal", func() bool { return served.Load() >= 2 })
	if took := time.Since(start); took >= timeout/2 {
		t.Fatalf("heard again %v after Recheck: the probe did not start at once", took)
	}
	time.Sleep(3 * timeout)
	if d.Dead("a") {
		t.Fatal("dead again although it beats")
	}
}

func TestRecheckedNodeThatIsGoneIsDeadAgainAtOnce(t *testing.T) {
	// Gossip vouches for a node the detector found dead, but its process is gone: the
	// fresh probe is refused, and that is a verdict at once (gossip's word counts as having
	// heard the node), not a wait for gossip to find it failed.
	n := startNode(t, "127.0.0.1:0", Handler(20*time.Millisecond))
	d := NewDetector(20*time.Millisecond, 200*time.Millisecond, nil)
	defer d.Close()
	d.SetNodes(map[string]string{"a": n.url()})
	waitFor(t, "the first heartbeat", func() bool { return !d.Dead("a") })
	time.Sleep(100 * time.Millisecond)
	n.kill()
	waitFor(t, "the killed node to be dead", func() bool { return d.Dead("a") })
	d.Recheck("a")
	took := waitFor(t, "the rechecked node to be dead again", func() bool { return d.Dead("a") })
	t.Logf("dead again %v after Recheck", took)
	if took > time.Second {
		t.Fatalf("took %v", took)
	}
}
