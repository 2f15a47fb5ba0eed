// Package liveness is the fast failure detector of the cluster controller. Gossip (serf)
// stays the source of membership, but it declares a node failed only after seconds of
// missed probes. Here the controller keeps one heartbeat connection to each node: the node
// writes a byte every Interval on it. A node whose connection ends (a killed process: its
// kernel resets the connection at once) or that stays silent for Timeout is probed by
// connecting again. A refused probe (nothing listens: the process died) makes it dead at
// once; probes that time out (a frozen or overloaded host) make it dead after three Timeouts
// of silence. It stays dead until a heartbeat is heard again. A SIGKILLed node is thus known
// dead within milliseconds.
package liveness

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/upgrade"
)

// Path is where a node serves heartbeats on its fabric port.
const Path = "/liveness/v1/heartbeat"

const protocol = "gorestate-heartbeat/1"

// Defaults of the detector's keys ([admin] heartbeat-interval, heartbeat-timeout).
const (
	DefaultInterval = 100 * time.Millisecond
	DefaultTimeout  = time.Second
)

// Handler serves heartbeats: the connection is upgraded and gets one byte every interval
// until either side closes it.
func Handler(interval time.Duration) http.Handler {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !upgrade.Requested(r, protocol) {
			http.Error(w, "heartbeat: want GET with Upgrade: "+protocol, http.StatusUpgradeRequired)
			return
		}
		conn, err := upgrade.Accept(w, r, protocol)
		if err != nil {
			return
		}
		defer conn.Close()
		// The client sends nothing; a read returns when it goes away.
		gone := make(chan struct{})
		go func() {
			var b [1]byte
			_, _ = conn.Read(b[:])
			close(gone)
		}()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			_ = conn.SetWriteDeadline(time.Now().Add(DefaultTimeout))
			if _, err := conn.Write([]byte{1}); err != nil {
				return
			}
			select {
			case <-gone:
				return
			case <-t.C:
			}
		}
	})
}

// Detector watches nodes through heartbeat connections.
type Detector struct {
	interval, timeout time.Duration
	log               hclog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	watches map[string]*watch // by node name
	changed chan struct{}     // closed and replaced when a node's verdict changes
}

type watch struct {
	addr   string // host:port
	cancel context.CancelFunc
	dead   bool
}

// silentDeadAfter is how many heartbeat timeouts of silence make a node dead when probes
// time out rather than being refused: an overloaded node answers late, a killed one's port
// refuses at once.
const silentDeadAfter = 3

// NewDetector returns a detector; zero durations take the defaults.
func NewDetector(interval, timeout time.Duration, logger hclog.Logger) *Detector {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Detector{interval: interval, timeout: timeout, log: logger, ctx: ctx, cancel: cancel,
		watches: map[string]*watch{}, changed: make(chan struct{})}
}

// SetNodes sets the nodes to watch, by name, with their fabric base URLs; watches of nodes
// not named any more stop, and a node whose address changed is watched anew.
func (d *Detector) SetNodes(addrs map[string]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, w := range d.watches {
		if hostPort(addrs[name]) != w.addr {
			w.cancel()
			delete(d.watches, name)
		}
	}
	for name, base := range addrs {
		addr := hostPort(base)
		if addr == "" || d.watches[name] != nil || d.ctx.Err() != nil {
			continue
		}
		d.startLocked(name, addr, time.Time{})
	}
}

// startLocked starts a watch of name at addr, replacing any; heard is when the node was
// last known alive (zero: never). Called with d.mu held.
func (d *Detector) startLocked(name, addr string, heard time.Time) {
	ctx, cancel := context.WithCancel(d.ctx)
	w := &watch{addr: addr, cancel: cancel}
	d.watches[name] = w
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.run(ctx, name, w, heard)
	}()
}

// Recheck drops a dead verdict on node and probes it again at once, for when gossip reports
// that the node (re)joined: that is newer evidence than a verdict this detector may have
// reached while its own node was cut off. After a network partition heals, the probes of
// the other side can still be waiting out their timeout, and a controller acting on the
// stale verdicts would move every partition to the side that was cut off. Until a probe
// decides again the node is not known dead; gossip's word counts as hearing it, so a probe
// refused right away, or silence for three timeouts from now, makes it dead again.
func (d *Detector) Recheck(node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.watches[node]
	if w == nil || !w.dead || d.ctx.Err() != nil {
		return
	}
	w.cancel()
	d.startLocked(node, w.addr, time.Now())
	d.log.Info("node is back in the gossip: probing it again", "node", node)
	d.notifyLocked()
}

// notifyLocked wakes the waiters on Changed. Called with d.mu held.
func (d *Detector) notifyLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

func hostPort(base string) string {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return ""
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "80")
	}
	return u.Host
}

// Dead reports whether node is known dead: its heartbeats stopped and a probe failed, and
// none was heard since. Nodes never reached count as not dead (gossip decides for them).
func (d *Detector) Dead(node string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.watches[node]
	return w != nil && w.dead
}

// Changed returns a channel that is closed when a verdict changes.
func (d *Detector) Changed() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

// Close stops every watch.
func (d *Detector) Close() {
	d.mu.Lock() // no watch starts after this: SetNodes and Recheck check d.ctx under d.mu
	d.cancel()
	d.mu.Unlock()
	d.wg.Wait()
}

func (d *Detector) set(name string, w *watch, dead bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w.dead == dead || d.watches[name] != w {
		return
	}
	w.dead = dead
	if dead {
		d.log.Warn("node stopped answering heartbeats and probes", "node", name)
	} else {
		d.log.Info("node answers heartbeats", "node", name)
	}
	d.notifyLocked()
}

// run keeps a heartbeat connection to one node: connecting is the probe, reading is the
// heartbeat; heard is when the node was last known alive (zero: never). A node is found
// dead only once it was reached before, or vouched for by gossip (a wrong address or a
// node not up yet is gossip's to judge): at once when the probe is refused (nothing listens
// on its port: the process died), or after silentDeadAfter timeouts without a heartbeat when
// probes time out (a frozen or overloaded host).
func (d *Detector) run(ctx context.Context, name string, w *watch, heard time.Time) {
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, d.timeout)
		conn, err := upgrade.Dial(dctx, w.addr, Path, protocol, nil)
		cancel()
		if err != nil {
			wait := d.interval
			switch {
			case errors.Is(err, upgrade.ErrRefused):
				// Up, but serving no heartbeats (another version, or a daemon without
				// them): gossip judges it.
				d.set(name, w, false)
				wait = 5 * time.Second
			case ctx.Err() != nil || heard.IsZero():
			case errors.Is(err, syscall.ECONNREFUSED) || time.Since(heard) >= silentDeadAfter*d.timeout:
				d.set(name, w, true)
			}
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			continue
		}
		heard = time.Now()
		d.set(name, w, false)
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		var b [64]byte
		for {
			_ = conn.SetReadDeadline(time.Now().Add(d.timeout))
			if _, err := conn.Read(b[:]); err != nil {
				break // gone or silent: probe by connecting again
			}
			heard = time.Now()
		}
		stop()
		_ = conn.Close()
	}
}
