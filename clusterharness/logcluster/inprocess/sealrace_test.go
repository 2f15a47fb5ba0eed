package inprocess

import (
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/loglettest"
	"gorestate.dev/shared/bifrost/replicated"
	"gorestate.dev/shared/bifrost/replicated/faultnet"
	"gorestate.dev/shared/metadata"
)

// Knobs of TestAppendConcurrentWithSealUnderFaults, to tell which fault a failure needs.
const (
	// EnvChaos set to 0 turns off the kills (or partitions) of log servers.
	EnvChaos = "GORESTATE_LOGCLUSTER_CHAOS"
	// EnvLostResponses set to 0 keeps every answer of a request a log server handled: no
	// dropped responses, and servers are partitioned (calls in flight complete) rather
	// than killed (calls in flight cut off, the store reopened from disk).
	EnvLostResponses = "GORESTATE_LOGCLUSTER_LOST_RESPONSES"
)

var (
	writer = metadata.NodeID{Name: "writer", Generation: 1}
	other  = metadata.NodeID{Name: "other", Generation: 1}
)

// providerOptions are short timeouts, so that a lost message costs milliseconds.
func providerOptions(self metadata.NodeID) replicated.Options {
	level := hclog.Off
	if v := os.Getenv("LOGCLUSTER_CLIENT_LOG"); v != "" {
		level = hclog.LevelFromString(v)
	}
	return replicated.Options{
		Self:                  self,
		Logger:                hclog.New(&hclog.LoggerOptions{Name: self.String(), Level: level}),
		RPCTimeout:            500 * time.Millisecond,
		LongPollTimeout:       time.Second,
		RetryMin:              2 * time.Millisecond,
		RetryMax:              50 * time.Millisecond,
		DrainTimeout:          500 * time.Millisecond,
		TailPushDelay:         2 * time.Millisecond,
		DeadSequencerGrace:    300 * time.Millisecond,
		SequencerQueryTimeout: 500 * time.Millisecond,
		ReadRetryDelay:        10 * time.Millisecond,
		RepairRetryDelay:      50 * time.Millisecond,
	}
}

// The conformance suite's append-and-seal race (loglettest.AppendConcurrentWithSeal) on
// replicated loglets stored by three real log servers in this process (r=2), while every
// message to a log server may be lost (request or answer), duplicated, reordered or
// delayed, and one server at a time is killed and restarted from its disk (knobs:
// EnvChaos, EnvLostResponses). Rounds
// alternate between a loglet on the sequencer's node (local seal: drain, then seal) and
// one on another node (appends forwarded to the sequencer, remote seal). The rest of the
// suite runs once on the same cluster.
//
// It runs the suite's default 20 rounds in make test; make test-log-faults runs 1000
// with random delays (GORESTATE_LOGLETTEST_ROUNDS, GORESTATE_LOGLETTEST_MAX_DELAY).
func TestAppendConcurrentWithSealUnderFaults(t *testing.T) {
	var serverLog hclog.Logger
	if v := os.Getenv("LOGCLUSTER_SERVER_LOG"); v != "" {
		serverLog = hclog.New(&hclog.LoggerOptions{Name: "log-server", Level: hclog.LevelFromString(v)})
	}
	c, err := Start(t.TempDir(), 3, 4242, serverLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	lostResponses := os.Getenv(EnvLostResponses) != "0"
	faults := faultnet.Faults{DropRequest: 0.01, DropResponse: 0.01, Duplicate: 0.01, Reorder: 0.02, Jitter: 500 * time.Microsecond}
	if !lostResponses {
		faults.DropResponse = 0
	}
	for _, name := range c.Names() {
		c.Net.SetFaults(name, faults)
	}
	seqNode := c.Provider(providerOptions(writer))
	otherNode := c.Provider(providerOptions(other))

	stop := make(chan struct{})
	var chaos sync.WaitGroup
	var kills atomic.Int64
	if os.Getenv(EnvChaos) != "0" {
		chaos.Go(func() { killAndRestart(c, stop, &kills, lostResponses) })
	}
	t.Cleanup(func() {
		close(stop)
		chaos.Wait()
		t.Logf("network: %+v; %d kills or partitions", c.Net.Stats(), kills.Load())
	})

	var next atomic.Uint32
	loglettest.RunWith(t, loglettest.Options{Appenders: 50}, func(t *testing.T) bifrost.Loglet {
		n := next.Add(1)
		seg := c.Segment(n, 0, writer, 2)
		l, err := seqNode.Open(t.Context(), seg)
		if err != nil {
			t.Fatal(err)
		}
		if n%2 == 0 {
			if l, err = otherNode.Open(t.Context(), seg); err != nil {
				t.Fatal(err)
			}
		}
		return l
	})
}

// killAndRestart kills (or, without kill, partitions) a random log server for 5–50 ms
// every 20–100 ms, one at a time (an f-majority and a write quorum stay up), until stop
// is closed; every server is up when it returns.
func killAndRestart(c *Cluster, stop <-chan struct{}, kills *atomic.Int64, kill bool) {
	names := c.Names()
	pause := func(lo, hi time.Duration) bool {
		t := time.NewTimer(lo + rand.N(hi-lo))
		defer t.Stop()
		select {
		case <-stop:
			return false
		case <-t.C:
			return true
		}
	}
	for pause(20*time.Millisecond, 100*time.Millisecond) {
		victim := names[rand.IntN(len(names))]
		if kill {
			c.Net.Kill(victim)
		} else {
			c.Net.Partition(victim)
		}
		kills.Add(1)
		pause(5*time.Millisecond, 50*time.Millisecond)
		if kill {
			c.Net.Restart(victim)
		} else {
			c.Net.Heal(victim)
		}
	}
}
