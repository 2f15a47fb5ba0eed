package membership

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config says who this node is and where its gossip listens.
type Config struct {
	// ClusterName keeps clusters apart: it becomes the memberlist label (packets and streams of
	// another cluster are dropped before they are decoded) and a serf tag checked on every merge.
	ClusterName string
	// NodeName, Generation, Roles and Address are the node's identity as registered in the
	// metadata store (metadata.Node); Generation must be the one RegisterNode assigned to this
	// process.
	NodeName   string
	Generation uint64
	Roles      []string
	// Address is the node's advertised fabric base URL, e.g. "http://10.0.0.5:5122/".
	Address string
	// BindAddr is the gossip host:port (TCP and UDP); port 0 picks a free port, see LocalAddr.
	BindAddr string
	// AdvertiseAddr is the gossip host[:port] others should use, when it differs from BindAddr
	// (NAT, container networks, binding 0.0.0.0). A missing or zero port means the bound port.
	AdvertiseAddr string
	// Seeds are gossip host:port addresses of other nodes. Start makes one attempt to join them.
	Seeds []string
	// RejoinInterval, when positive, starts a loop that joins Seeds again every interval for as
	// long as this node sees no other live member, so a node started before its seeds, or cut
	// off from all of its peers, eventually joins. Zero disables the loop.
	RejoinInterval time.Duration
	// Logger receives the component's logs and those of serf and memberlist (their
	// "[LEVEL]" prefixes are mapped onto hclog levels). Nil means hclog.Default().
	Logger hclog.Logger
	// Timing tunes failure detection and gossip; zero fields take LANTiming's values.
	Timing Timing

	// noIsolation turns off the memberlist label and the merge check, so that tests can show that
	// the view still ignores a member of another cluster that got into the gossip.
	noIsolation bool
}

// Timing holds the intervals of failure detection, gossip and reaping.
type Timing struct {
	// ProbeInterval is the time between two failure probes of this node; ProbeTimeout is how
	// long a probe waits for its ack before asking others to probe indirectly.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	// SuspicionMult scales the time a suspect node has to refute before it is declared failed:
	// SuspicionMult * max(1, log10(nodes)) * ProbeInterval, up to 6 times longer when nobody
	// confirms the suspicion.
	SuspicionMult int
	// GossipInterval is the time between gossip rounds; PushPullInterval between full state
	// exchanges with a random member.
	GossipInterval   time.Duration
	PushPullInterval time.Duration
	// TCPTimeout bounds a join attempt and a push/pull exchange with one node.
	TCPTimeout time.Duration
	// ReapInterval is how often failed and left members are checked for removal.
	// ReconnectTimeout is how long a failed member is kept (and reconnected to every
	// ReconnectInterval) before it is reaped; TombstoneTimeout is the same for a member that
	// left. A life superseded by a newer generation of the same name is reaped at the next
	// reap round after it failed or left, whatever these timeouts say.
	ReapInterval      time.Duration
	ReconnectInterval time.Duration
	ReconnectTimeout  time.Duration
	TombstoneTimeout  time.Duration
	// BroadcastTimeout bounds the wait for a leave message to go out; LeavePropagateDelay is
	// how long a leaving node keeps answering probes afterwards.
	BroadcastTimeout    time.Duration
	LeavePropagateDelay time.Duration
}

// LANTiming returns memberlist's and serf's LAN defaults: a crashed node is declared failed
// after a few seconds.
func LANTiming() Timing {
	return Timing{
		ProbeInterval:       time.Second,
		ProbeTimeout:        500 * time.Millisecond,
		SuspicionMult:       4,
		GossipInterval:      200 * time.Millisecond,
		PushPullInterval:    30 * time.Second,
		TCPTimeout:          10 * time.Second,
		ReapInterval:        15 * time.Second,
		ReconnectInterval:   30 * time.Second,
		ReconnectTimeout:    24 * time.Hour,
		TombstoneTimeout:    24 * time.Hour,
		BroadcastTimeout:    5 * time.Second,
		LeavePropagateDelay: time.Second,
	}
}

// FastTiming returns intervals for tests on loopback: a crashed node is declared failed in
// about one to three seconds. The probe timeout stays generous because tests run under the race
// detector on shared machines, where a tight timeout makes healthy nodes look suspect.
func FastTiming() Timing {
	return Timing{
		ProbeInterval:       250 * time.Millisecond,
		ProbeTimeout:        200 * time.Millisecond,
		SuspicionMult:       3,
		GossipInterval:      50 * time.Millisecond,
		PushPullInterval:    2 * time.Second,
		TCPTimeout:          2 * time.Second,
		ReapInterval:        300 * time.Millisecond,
		ReconnectInterval:   time.Second,
		ReconnectTimeout:    time.Minute,
		TombstoneTimeout:    time.Minute,
		BroadcastTimeout:    time.Second,
		LeavePropagateDelay: 100 * time.Millisecond,
	}
}

func (t Timing) withDefaults() Timing {
	d := LANTiming()
	setDur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	setDur(&t.ProbeInterval, d.ProbeInterval)
	setDur(&t.ProbeTimeout, d.ProbeTimeout)
	if t.SuspicionMult <= 0 {
		t.SuspicionMult = d.SuspicionMult
	}
	setDur(&t.GossipInterval, d.GossipInterval)
	setDur(&t.PushPullInterval, d.PushPullInterval)
	setDur(&t.TCPTimeout, d.TCPTimeout)
	setDur(&t.ReapInterval, d.ReapInterval)
	setDur(&t.ReconnectInterval, d.ReconnectInterval)
	setDur(&t.ReconnectTimeout, d.ReconnectTimeout)
	setDur(&t.TombstoneTimeout, d.TombstoneTimeout)
	setDur(&t.BroadcastTimeout, d.BroadcastTimeout)
	setDur(&t.LeavePropagateDelay, d.LeavePropagateDelay)
	return t
}

// ErrInvalidConfig is wrapped by the errors Start returns for a config it cannot use.
var ErrInvalidConfig = errors.New("membership: invalid config")

func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if c.ClusterName == "" {
		return bad("empty cluster name")
	}
	if err := checkNodeName(c.NodeName); err != nil {
		return bad("%v", err)
	}
	if c.Generation == 0 {
		return bad("node %s: generation 0 (register the node in the metadata store first)", c.NodeName)
	}
	for _, r := range c.Roles {
		if r == "" || strings.ContainsAny(r, ", \t\n") {
			return bad("role %q: empty or contains a comma or white space", r)
		}
	}
	if c.BindAddr == "" {
		return bad("empty bind address")
	}
	if _, _, err := splitHostPort(c.BindAddr); err != nil {
		return bad("bind address %q: %v", c.BindAddr, err)
	}
	return nil
}

// checkNodeName rejects names that would make "<name>@<generation>" ambiguous.
func checkNodeName(name string) error {
	if name == "" {
		return errors.New("empty node name")
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r == '@' || r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("node name %q contains '@', white space or a control character", name)
	}
	return nil
}

func splitHostPort(hostport string) (string, int, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	return host, int(port), nil
}
