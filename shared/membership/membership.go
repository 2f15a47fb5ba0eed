// Package membership owns the cluster's gossip: which nodes are alive, which failed or left,
// and which generation of each node name is the current one.
//
// The metadata store's nodes configuration stays the source of truth for node identity
// (metadata.RegisterNode bumps a node's generation on every start); gossip (serf over
// memberlist) only carries liveness. Every life of a node joins the gossip under its own serf
// name "<name>@<generation>", so a restarted node never conflicts with its previous life: the
// old life is detected as failed, then reaped as soon as a newer generation is known, and
// Members collapses lives to the highest generation of each name.
//
// Clusters are kept apart three times over: the memberlist label "gorestate/<cluster>" makes
// memberlist drop another cluster's packets and streams before decoding them (so a join across
// clusters fails); a serf merge check refuses a push/pull or alive message that carries a
// member of another cluster; and the view ignores any member whose cluster tag differs. No
// encryption keyring is configured: it would need a key distribution story, and the label
// alone already separates clusters that share a network.
//
// Lock order: Membership.mu may be held while taking genMu, never the reverse, and neither
// is held while calling into serf, because serf calls back into this package (the reaper and
// the merge check) while holding its own locks.
package membership

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// Serf tags of a member. Memberlist caps the encoded tags at 512 bytes; Start fails when a
// node's tags do not fit.
const (
	tagCluster = "cluster"
	tagName    = "name"
	tagGen     = "gen"
	tagRoles   = "roles" // comma separated
	tagAddr    = "addr"  // fabric URL
)

// serfEventBuffer is large enough that serf's event forwarder, which sends without watching
// for shutdown, never blocks on this package after Close stopped reading (serf buffers at most
// 1024 events before the forwarder).
const serfEventBuffer = 4096

// State is the liveness of one member as seen by this node.
type State int

// States of a member.
const (
	StateAlive   State = iota + 1
	StateSuspect       // missed probes; failed unless it refutes within the suspicion timeout
	StateFailed        // declared dead without leaving: crashed, partitioned or hung
	StateLeft          // left gracefully (or is leaving)
)

func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateFailed:
		return "failed"
	case StateLeft:
		return "left"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Member is one life of a node: a node name at one generation.
type Member struct {
	Name       string
	Generation uint64
	Roles      []string
	Address    string // fabric base URL
	GossipAddr string // host:port of the member's gossip
	State      State
	// Since is when this node first saw the member in State. A suspicion that started and
	// ended between two calls of Members is never seen.
	Since time.Time
}

// Membership is this node's view of the gossip. Its methods are safe for concurrent use.
type Membership struct {
	cfg    Config
	logger hclog.Logger
	// stopFollow ends the nodes-configuration watch RegisterAndJoin started, if any.
	stopFollow context.CancelFunc
	serf       *serf.Serf
	serfEvents chan serf.Event

	stop      chan struct{} // closed by Close; stops the rejoin loop
	wg        sync.WaitGroup
	leaving   sync.WaitGroup // a Leave's serf.Leave, which Close waits for before shutting serf down
	closeOnce sync.Once
	left      atomic.Bool

	genMu sync.RWMutex
	gens  map[string]uint64 // highest generation known per node name; entries are never removed

	mu      sync.Mutex
	closing bool
	lives   map[string]life // by serf name
	subs    map[*subscriber]struct{}
}

// life remembers since when a serf member has been in its state.
type life struct {
	state State
	since time.Time
}

// Start joins this node to the gossip: it binds cfg.BindAddr, makes one attempt to join
// cfg.Seeds (a failure is logged, not returned: the seeds may not be up yet; call Join for the
// outcome, or set RejoinInterval) and, if configured, starts the rejoin loop. ctx bounds the
// start, including the initial join. The caller must Close the Membership.
func Start(ctx context.Context, cfg Config) (*Membership, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Timing = cfg.Timing.withDefaults()
	cfg.Roles = slices.Clone(cfg.Roles)
	cfg.Seeds = slices.Clone(cfg.Seeds)
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.Default().Named("membership")
	}
	m := &Membership{
		cfg:        cfg,
		logger:     logger,
		serfEvents: make(chan serf.Event, serfEventBuffer),
		stop:       make(chan struct{}),
		gens:       map[string]uint64{cfg.NodeName: cfg.Generation},
		lives:      map[string]life{},
		subs:       map[*subscriber]struct{}{},
	}
	sc, err := m.serfConfig(ctx)
	if err != nil {
		return nil, err
	}
	s, err := serf.Create(sc)
	if err != nil {
		return nil, fmt.Errorf("start gossip of %s@%d on %s: %w", cfg.NodeName, cfg.Generation, cfg.BindAddr, err)
	}
	m.serf = s
	m.wg.Add(1)
	go m.runEvents()
	logger.Info("gossip started", "node", cfg.NodeName, "generation", cfg.Generation,
		"gossip_addr", m.LocalAddr(), "cluster", cfg.ClusterName)

	if len(cfg.Seeds) > 0 {
		if err := m.initialJoin(ctx); err != nil {
			_ = m.Close()
			return nil, err
		}
		if cfg.RejoinInterval > 0 {
			m.wg.Add(1)
			go m.rejoinLoop()
		}
	}
	return m, nil
}

func (m *Membership) serfConfig(ctx context.Context) (*serf.Config, error) {
	cfg, t := m.cfg, m.cfg.Timing
	host, port, _ := splitHostPort(cfg.BindAddr) // validated
	if host == "" {
		host = "0.0.0.0"
	}
	std := m.logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})

	mc := memberlist.DefaultLANConfig()
	mc.BindAddr = host
	mc.BindPort = port
	mc.AdvertisePort = port
	if cfg.AdvertiseAddr != "" {
		ahost, aport, err := splitHostPort(cfg.AdvertiseAddr)
		if err != nil { // host without a port
			ahost, aport = cfg.AdvertiseAddr, 0
		}
		ip, err := resolveIP(ctx, ahost)
		if err != nil {
			return nil, fmt.Errorf("%w: advertise address %q: %v", ErrInvalidConfig, cfg.AdvertiseAddr, err)
		}
		mc.AdvertiseAddr = ip
		if aport != 0 {
			mc.AdvertisePort = aport
		}
	}
	if !cfg.noIsolation {
		mc.Label = "gorestate/" + cfg.ClusterName
		if len(mc.Label) > memberlist.LabelMaxSize {
			return nil, fmt.Errorf("%w: cluster name %q too long", ErrInvalidConfig, cfg.ClusterName)
		}
	}
	mc.ProbeInterval = t.ProbeInterval
	mc.ProbeTimeout = t.ProbeTimeout
	mc.SuspicionMult = t.SuspicionMult
	mc.GossipInterval = t.GossipInterval
	mc.PushPullInterval = t.PushPullInterval
	mc.TCPTimeout = t.TCPTimeout
	mc.Logger = std

	sc := serf.DefaultConfig()
	sc.NodeName = lifeName(cfg.NodeName, cfg.Generation)
	sc.Tags = map[string]string{
		tagCluster: cfg.ClusterName,
		tagName:    cfg.NodeName,
		tagGen:     strconv.FormatUint(cfg.Generation, 10),
		tagRoles:   strings.Join(cfg.Roles, ","),
		tagAddr:    cfg.Address,
	}
	sc.EventCh = m.serfEvents
	sc.MemberlistConfig = mc
	sc.LogOutput = nil // serf refuses both LogOutput and Logger
	sc.Logger = std
	sc.ReapInterval = t.ReapInterval
	sc.ReconnectInterval = t.ReconnectInterval
	sc.ReconnectTimeout = t.ReconnectTimeout
	sc.TombstoneTimeout = t.TombstoneTimeout
	sc.BroadcastTimeout = t.BroadcastTimeout
	sc.LeavePropagateDelay = t.LeavePropagateDelay
	sc.DisableCoordinates = true // nobody reads round-trip estimates; they cost bytes in every ping
	sc.ReconnectTimeoutOverride = reaper{m}
	if !cfg.noIsolation {
		sc.Merge = clusterCheck{cluster: cfg.ClusterName}
	}
	return sc, nil
}

func resolveIP(ctx context.Context, host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return "", err
	}
	for _, a := range addrs { // prefer IPv4, as memberlist does for its own guesses
		if a.IP.To4() != nil {
			return a.IP.String(), nil
		}
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("no address for %q", host)
	}
	return addrs[0].IP.String(), nil
}

func lifeName(name string, gen uint64) string { return name + "@" + strconv.FormatUint(gen, 10) }

// initialJoin makes Start's one join attempt; only ctx ending makes it fail.
func (m *Membership) initialJoin(ctx context.Context) error {
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		n, err := m.Join(m.cfg.Seeds)
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			m.logger.Warn("no seed answered; running alone until a seed or a peer joins",
				"seeds", m.cfg.Seeds, "error", r.err)
		} else {
			m.logger.Info("joined gossip", "seeds", m.cfg.Seeds, "contacted", r.n)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("join seeds %v: %w", m.cfg.Seeds, ctx.Err())
	}
}

// rejoinLoop joins the seeds again for as long as no other member is alive. Once alone it
// tries soon and then less often, up to RejoinInterval: daemons started together find each
// other within a second rather than an interval, and a node cut off for long does not
// hammer its seeds.
func (m *Membership) rejoinLoop() {
	defer m.wg.Done()
	first := min(m.cfg.RejoinInterval, 250*time.Millisecond)
	wait := first
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		if m.left.Load() {
			return
		}
		if m.serf.Memberlist().NumMembers() > 1 {
			wait = first
			t.Reset(wait)
			continue
		}
		wait = min(2*wait, m.cfg.RejoinInterval)
		t.Reset(wait)
		if n, err := m.Join(m.cfg.Seeds); err != nil {
			m.logger.Debug("rejoin failed", "seeds", m.cfg.Seeds, "error", err)
		} else if n > 0 {
			m.logger.Info("rejoined gossip", "seeds", m.cfg.Seeds, "contacted", n)
		}
	}
}

// Join contacts the given gossip host:port addresses and merges state with them. It returns
// how many answered, and an error only when none did. This node's own address is skipped, so
// every node may be given the same seed list.
func (m *Membership) Join(seeds []string) (int, error) {
	own := m.LocalAddr()
	targets := make([]string, 0, len(seeds))
	for _, s := range seeds {
		if s != "" && s != own {
			targets = append(targets, s)
		}
	}
	if len(targets) == 0 {
		return 0, nil
	}
	n, err := m.serf.Join(targets, true)
	if err != nil {
		return n, fmt.Errorf("join %s: %w", strings.Join(targets, ","), err)
	}
	return n, nil
}

// LocalAddr returns the gossip host:port others reach this node at (the bound port when
// BindAddr asked for port 0).
func (m *Membership) LocalAddr() string {
	n := m.serf.Memberlist().LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Members returns one Member per node name, the life with the highest generation, sorted by
// name. It includes this node, and failed and left nodes until they are reaped.
func (m *Membership) Members() []Member {
	sms := m.serf.Members()
	suspect := map[string]bool{}
	for _, n := range m.serf.Memberlist().Members() {
		if n.State == memberlist.StateSuspect {
			suspect[n.Name] = true
		}
	}
	now := time.Now()
	best := map[string]Member{}
	m.mu.Lock()
	for _, sm := range sms {
		mem, ok := m.toMember(sm)
		if !ok {
			continue
		}
		if mem.State == StateAlive && suspect[sm.Name] {
			mem.State = StateSuspect
		}
		m.observe(mem.Name, mem.Generation)
		l, ok := m.lives[sm.Name]
		if !ok || l.state != mem.State {
			l = life{state: mem.State, since: now}
			m.lives[sm.Name] = l
		}
		mem.Since = l.since
		if cur, ok := best[mem.Name]; !ok || mem.Generation > cur.Generation {
			best[mem.Name] = mem
		}
	}
	m.mu.Unlock()
	out := make([]Member, 0, len(best))
	for _, mem := range best {
		out = append(out, mem)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// toMember converts a serf member of this cluster; ok is false for anything else.
func (m *Membership) toMember(sm serf.Member) (Member, bool) {
	if sm.Tags[tagCluster] != m.cfg.ClusterName {
		return Member{}, false
	}
	name := sm.Tags[tagName]
	gen, err := strconv.ParseUint(sm.Tags[tagGen], 10, 64)
	if err != nil || gen == 0 || checkNodeName(name) != nil || sm.Name != lifeName(name, gen) {
		return Member{}, false
	}
	var state State
	switch sm.Status {
	case serf.StatusAlive:
		state = StateAlive
	case serf.StatusFailed:
		state = StateFailed
	case serf.StatusLeaving, serf.StatusLeft:
		state = StateLeft
	default:
		return Member{}, false
	}
	var roles []string
	if r := sm.Tags[tagRoles]; r != "" {
		roles = strings.Split(r, ",")
	}
	return Member{
		Name:       name,
		Generation: gen,
		Roles:      roles,
		Address:    sm.Tags[tagAddr],
		GossipAddr: net.JoinHostPort(sm.Addr.String(), strconv.Itoa(int(sm.Port))),
		State:      state,
	}, true
}

// observe raises the known generation of name.
func (m *Membership) observe(name string, gen uint64) {
	m.genMu.Lock()
	if gen > m.gens[name] {
		m.gens[name] = gen
	}
	m.genMu.Unlock()
}

// ObserveGeneration tells the Membership about a generation learned elsewhere, typically from
// the metadata store's nodes configuration, so that IsCurrent and RejectStale fence a previous
// life before the gossip about the new one arrives. Generations only ever go up.
func (m *Membership) ObserveGeneration(name string, gen uint64) { m.observe(name, gen) }

// NewestGeneration returns the highest generation known for name, from gossip (including
// members since reaped) or ObserveGeneration.
func (m *Membership) NewestGeneration(name string) (uint64, bool) {
	m.genMu.RLock()
	defer m.genMu.RUnlock()
	g, ok := m.gens[name]
	return g, ok
}

// IsCurrent reports whether gen is the newest known generation of name: false when a higher
// generation of that name is known, true for a name never heard of.
func (m *Membership) IsCurrent(name string, gen uint64) bool {
	newest, _ := m.NewestGeneration(name)
	return gen >= newest
}

// ErrLeaveTimeout is returned by Leave when the leave did not complete in time.
var ErrLeaveTimeout = errors.New("membership: leave timed out")

// Leave announces a graceful departure, so that others show this node as left rather than
// failed, and waits up to timeout for it to propagate. The node keeps answering gossip until
// Close; it does not rejoin.
func (m *Membership) Leave(timeout time.Duration) error {
	m.left.Store(true)
	done := make(chan error, 1)
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return errors.New("membership: leave after close")
	}
	m.leaving.Add(1) // under mu, so it cannot race with Close's Wait
	m.mu.Unlock()
	go func() {
		defer m.leaving.Done()
		done <- m.serf.Leave()
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("leave cluster %s: %w", m.cfg.ClusterName, err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("leave cluster %s after %s: %w", m.cfg.ClusterName, timeout, ErrLeaveTimeout)
	}
}

// Close stops the gossip and every goroutine the Membership started, and closes the
// subscribers' channels. Without a Leave before it, others see this node fail, as after a
// crash. It is idempotent.
func (m *Membership) Close() error {
	var err error
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closing = true
		m.mu.Unlock()
		// A leave that outlived its caller's timeout must end first: memberlist panics on
		// a leave after its shutdown. serf bounds it (two broadcast timeouts and the
		// propagation delay), and our goroutines keep draining serf's events meanwhile.
		m.leaving.Wait()
		close(m.stop)
		err = m.serf.Shutdown()
		m.wg.Wait()
		m.mu.Lock()
		for sub := range m.subs {
			close(sub.ch)
		}
		m.subs = map[*subscriber]struct{}{}
		m.mu.Unlock()
		m.logger.Info("gossip stopped", "node", m.cfg.NodeName, "generation", m.cfg.Generation)
	})
	if err != nil {
		return fmt.Errorf("stop gossip: %w", err)
	}
	return nil
}

// reaper makes serf reap a failed or left life as soon as a newer generation of its node name
// is known (and members of other clusters at once), instead of keeping it for the reconnect
// or tombstone timeout. Serf calls it with its member lock held: it must not call serf.
type reaper struct{ m *Membership }

func (r reaper) ReconnectTimeout(sm *serf.Member, timeout time.Duration) time.Duration {
	if sm.Tags[tagCluster] != r.m.cfg.ClusterName {
		return 0
	}
	gen, err := strconv.ParseUint(sm.Tags[tagGen], 10, 64)
	if err != nil || !r.m.IsCurrent(sm.Tags[tagName], gen) {
		return 0
	}
	return timeout
}

// clusterCheck refuses to merge state that contains a member of another cluster.
type clusterCheck struct{ cluster string }

func (c clusterCheck) NotifyMerge(members []*serf.Member) error {
	for _, sm := range members {
		if got := sm.Tags[tagCluster]; got != c.cluster {
			return fmt.Errorf("member %s belongs to cluster %q, not %q", sm.Name, got, c.cluster)
		}
	}
	return nil
}
