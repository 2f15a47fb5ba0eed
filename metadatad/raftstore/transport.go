package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"

	"gorestate.dev/shared/upgrade"
)

// Raft traffic is tunnelled through the node's HTTP fabric listener, so the metadata
// server needs no port of its own: the dialing member sends
//
//	GET /metadata/raft HTTP/1.1
//	Connection: Upgrade
//	Upgrade: gorestate-raft
//	X-Gorestate-Raft-From: <its advertised host:port>
//
// the serving member's handler hijacks the connection and answers 101 Switching Protocols,
// and from then on both ends speak raft's NetworkTransport protocol over the raw conn.
const (
	// RaftPath is where the raft tunnel is served (Store.Handler serves it).
	RaftPath     = "/metadata/raft"
	upgradeProto = "gorestate-raft"
	// fromHeader names the dialing member, so that Faults can cut accepted connections too.
	fromHeader = "X-Gorestate-Raft-From"
	// defaultDialTimeout bounds the upgrade handshake when raft passes no timeout.
	defaultDialTimeout = 10 * time.Second
)

// streamLayer is the raft.StreamLayer of the tunnel: Dial opens upgraded connections, and
// ServeHTTP feeds upgraded incoming ones to Accept. It remembers every connection so that
// Close can end them: NetworkTransport.Close only closes the listener, and connections
// blocked in a read would otherwise outlive the store.
type streamLayer struct {
	self   string // advertised host:port; also raft's LocalAddr
	faults *Faults
	// peerLost, if set, is told (on its own goroutine) the remote address of a tunnel that
	// broke while the layer was open: a member that died shows here at once.
	peerLost func(remote string)

	accept chan net.Conn
	done   chan struct{}
	// quit ends the redialing of members that are down (stopRedial), before raft's
	// shutdown, which waits for its replication goroutines and so for their dials.
	quit     chan struct{}
	quitOnce sync.Once

	mu     sync.Mutex
	closed bool
	conns  map[*trackedConn]struct{}
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func newStreamLayer(self string, faults *Faults) *streamLayer {
	return &streamLayer{
		self:   self,
		faults: faults,
		accept: make(chan net.Conn),
		done:   make(chan struct{}),
		quit:   make(chan struct{}),
		conns:  map[*trackedConn]struct{}{},
	}
}

// stopRedial makes dials to members that are down fail at once from now on.
func (l *streamLayer) stopRedial() { l.quitOnce.Do(func() { close(l.quit) }) }

func (l *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *streamLayer) Addr() net.Addr { return advertisedAddr(l.self) }

// Close stops Accept and closes every tunnelled connection, in both directions.
func (l *streamLayer) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
	return nil
}

// Dial opens a tunnel to the member whose fabric listener is at address.
func (l *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	target := string(address)
	if timeout <= 0 {
		timeout = defaultDialTimeout
	}
	if l.faults.Blocked(l.self, target) {
		return nil, fmt.Errorf("raftstore: dial %s: %w", target, errCut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// A member that is down (refused, or its name gone from DNS with its container) is
	// dialed again, every redialEvery, for the whole timeout raft gives the dial, before the
	// failure goes back to raft. Raft's replication to a member backs off exponentially per
	// failure (10 ms doubling up to 10.24 s, after 12 failures) and sleeps through its
	// backoff without looking at anything else, so failures that return at once pile up
	// while a member is down, and the leader would then contact the restarted member up to
	// 10 s after it is back (its start waits for that). With a window of one second a
	// member down for 20 s or more waited 8-10 s to start; with raft's 10 s a failure
	// costs 10 s, so a member down for a minute finds the backoff at 160 ms. The window
	// ends early when the store closes: raft's shutdown waits for these dials. The dials
	// come further apart after the first second (a candidate asks a member that is down for
	// its vote several times a second, each ask a dial of its own that now waits).
	retryUntil := time.Now().Add(timeout)
	every := redialEvery
	for {
		c, err := upgrade.Dial(ctx, target, RaftPath, upgradeProto, http.Header{fromHeader: {l.self}})
		if err == nil {
			return l.track(c, target)
		}
		if !peerDown(err) || time.Now().Add(every).After(retryUntil) {
			return nil, fmt.Errorf("raftstore: dial %s: %w", target, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("raftstore: dial %s: %w", target, err)
		case <-l.quit:
			return nil, fmt.Errorf("raftstore: dial %s: %w (the store is closing)", target, err)
		case <-l.done:
			return nil, fmt.Errorf("raftstore: dial %s: %w (the store is closed)", target, err)
		case <-time.After(every):
		}
		every = min(every+every/4, redialMax)
	}
}

// How often Dial tries again a member that is down: every 50 ms at first, 25 % less often
// each time (a second in, every 150 ms) up to every 250 ms.
const (
	redialEvery = 50 * time.Millisecond
	redialMax   = 250 * time.Millisecond
)

// peerDown reports whether a dial failed because nothing listens at the address (a process
// or container that is down), rather than for a reason waiting cannot fix.
func peerDown(err error) bool {
	var dnsErr *net.DNSError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		(errors.As(err, &dnsErr) && dnsErr.IsNotFound)
}

// ServeHTTP is the server half: it hijacks an upgrade request on /metadata/raft and hands
// the connection to raft.
func (l *streamLayer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !upgrade.Requested(r, upgradeProto) {
		w.Header().Set("Upgrade", upgradeProto)
		http.Error(w, "raft tunnel: want GET with Connection: Upgrade, Upgrade: "+upgradeProto, http.StatusUpgradeRequired)
		return
	}
	from := r.Header.Get(fromHeader)
	if l.faults.Blocked(from, l.self) {
		http.Error(w, "raft tunnel: "+errCut.Error(), http.StatusServiceUnavailable)
		return
	}
	select {
	case <-l.done:
		http.Error(w, "raft tunnel: metadata store closed", http.StatusServiceUnavailable)
		return
	default:
	}
	c, err := upgrade.Accept(w, r, upgradeProto)
	if err != nil {
		return // Accept answered
	}
	tc, err := l.track(c, from)
	if err != nil {
		return // track closed it
	}
	select {
	case l.accept <- tc:
	case <-l.done:
		_ = tc.Close()
	}
}

// track wraps c so that Close (and Faults) can find it.
func (l *streamLayer) track(c net.Conn, remote string) (net.Conn, error) {
	c = l.faults.wrap(c, l.self, remote)
	tc := &trackedConn{Conn: c, layer: l, remote: remote}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.conns[tc] = struct{}{}
	return tc, nil
}

type trackedConn struct {
	net.Conn
	layer    *streamLayer
	remote   string
	once     sync.Once
	lostOnce sync.Once
}

// Read reports a connection ended by the store's Close as io.EOF, which raft takes as a
// normal end instead of logging an error for every tunnel at shutdown.
func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		select {
		case <-c.layer.done:
			err = io.EOF
		default:
			if lost := c.layer.peerLost; lost != nil && c.remote != "" {
				c.lostOnce.Do(func() { go lost(c.remote) })
			}
		}
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.layer.mu.Lock()
		delete(c.layer.conns, c)
		c.layer.mu.Unlock()
	})
	return c.Conn.Close()
}

// advertisedAddr is the listener address raft reports as its own: the advertised
// host:port, which may differ from the socket's (e.g. behind NAT or with 0.0.0.0 binds).
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

// errCut is the error of a connection that Faults cut.
var errCut = errors.New("connection cut by fault injection")

// Faults cuts the connections between chosen members, to simulate network partitions in
// one process. Give the same Faults to the stores of a test cluster (Options.Faults); it
// acts on raft's tunnels and on the HTTP requests stores forward to one another
// (writes, joins, consistent reads). Members are named by their advertised host:port.
// A nil *Faults cuts nothing, which is what production uses.
type Faults struct {
	mu    sync.Mutex
	cut   map[[2]string]bool
	conns map[*faultConn]struct{}
}

// NewFaults returns a Faults that cuts nothing yet.
func NewFaults() *Faults {
	return &Faults{cut: map[[2]string]bool{}, conns: map[*faultConn]struct{}{}}
}

// Cut blocks traffic between a and b in both directions and closes their open connections.
func (f *Faults) Cut(a, b string) {
	f.mu.Lock()
	f.cut[[2]string{a, b}] = true
	f.cut[[2]string{b, a}] = true
	var victims []*faultConn
	for c := range f.conns {
		if f.cut[[2]string{c.local, c.remote}] {
			victims = append(victims, c)
		}
	}
	f.mu.Unlock()
	for _, c := range victims {
		_ = c.Close()
	}
}

// Isolate cuts a from each of others.
func (f *Faults) Isolate(a string, others ...string) {
	for _, o := range others {
		f.Cut(a, o)
	}
}

// Heal removes every cut. Raft reconnects by itself.
func (f *Faults) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.cut)
}

// Blocked reports whether traffic from a to b is cut.
func (f *Faults) Blocked(a, b string) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cut[[2]string{a, b}]
}

// wrap returns c, registered so that a later Cut between local and remote closes it.
func (f *Faults) wrap(c net.Conn, local, remote string) net.Conn {
	if f == nil {
		return c
	}
	fc := &faultConn{Conn: c, f: f, local: local, remote: remote}
	f.mu.Lock()
	f.conns[fc] = struct{}{}
	f.mu.Unlock()
	return fc
}

// dialContext is a DialContext for http.Transport that honours the cuts, failing like a
// refused dial so that metadata.Client knows the request never left.
func (f *Faults) dialContext(self string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: defaultDialTimeout, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if f.Blocked(self, addr) {
			return nil, &net.OpError{Op: "dial", Net: network, Err: errCut}
		}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return f.wrap(c, self, addr), nil
	}
}

// faultConn fails reads and writes once its pair is cut, even if they raced with Cut.
type faultConn struct {
	net.Conn
	f             *Faults
	local, remote string
}

func (c *faultConn) Read(p []byte) (int, error) {
	if c.f.Blocked(c.local, c.remote) {
		_ = c.Close()
		return 0, errCut
	}
	return c.Conn.Read(p)
}

func (c *faultConn) Write(p []byte) (int, error) {
	if c.f.Blocked(c.local, c.remote) {
		_ = c.Close()
		return 0, errCut
	}
	return c.Conn.Write(p)
}

func (c *faultConn) Close() error {
	c.f.mu.Lock()
	delete(c.f.conns, c)
	c.f.mu.Unlock()
	return c.Conn.Close()
}
