package logcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/replicated"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metadata"
)

// Node ids of the providers the tests run. writer runs the sequencers; the others read,
// seal and find tails from other nodes.
var (
	writer = metadata.NodeID{Name: "writer", Generation: 1}
	sealer = metadata.NodeID{Name: "sealer", Generation: 1}
	reader = metadata.NodeID{Name: "reader", Generation: 1}
)

// Environment knobs for debugging a failure: LOGCLUSTER_SERVER_LOG is the log servers'
// log level (default info), LOGCLUSTER_CLIENT_LOG the providers' (default off).
const (
	envServerLog = "LOGCLUSTER_SERVER_LOG"
	envClientLog = "LOGCLUSTER_CLIENT_LOG"
)

// startCluster starts n log servers (r=2 loglets need 3) for one test and stops them when
// it ends. It fails the test if a server reported a data race, and prints the end of the
// servers' logs if the test failed.
func startCluster(t *testing.T, n int) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("logcluster: starts logserverd processes and kills them; skipped with -short")
	}
	level := os.Getenv(envServerLog)
	if level == "" {
		level = "info"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{
		Bin:     serverBin,
		Dir:     t.TempDir(),
		Servers: n,
		Env: []string{
			// A race-instrumented server should die at its first race, which the test then
			// reports, rather than only print it at an exit a SIGKILL never lets happen.
			"GORACE=halt_on_error=1",
			"RESTATE_LOG_LEVEL=" + level,
		},
	})
	if err != nil {
		t.Fatalf("start log servers: %v", err)
	}
	t.Cleanup(func() {
		_ = c.Close()
		if races := c.GrepLogs("WARNING: DATA RACE"); len(races) > 0 {
			t.Errorf("the log servers reported %d data race(s)", len(races))
			dumpLogs(t, c, 200)
		} else if t.Failed() {
			dumpLogs(t, c, 40)
		}
	})
	return c
}

// dumpLogs prints the last lines of every log server's log files.
func dumpLogs(t *testing.T, c *Cluster, lines int) {
	for i := range c.Servers {
		for _, path := range c.LogFiles(i) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Logf("%s: %v", path, err)
				continue
			}
			all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			t.Logf("--- last %d lines of %s ---\n%s", min(lines, len(all)), path, strings.Join(all[max(0, len(all)-lines):], "\n"))
		}
	}
}

// newProvider returns a replicated provider for node self, closed when the test ends.
// tweak adjusts the options (nil: production defaults).
func newProvider(t *testing.T, self metadata.NodeID, net wire.Network, tweak func(*replicated.Options)) *replicated.Provider {
	t.Helper()
	level := hclog.Off
	if v := os.Getenv(envClientLog); v != "" {
		level = hclog.LevelFromString(v)
	}
	o := replicated.Options{
		Self:    self,
		Network: net,
		Logger:  hclog.New(&hclog.LoggerOptions{Name: self.String(), Level: level}),
	}
	if tweak != nil {
		tweak(&o)
	}
	p := replicated.NewProvider(o)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// fastFailover shortens the find-tail timers of a provider that finds tails and seals
// for a dead sequencer, so that the tests do not wait the production grace periods.
func fastFailover(o *replicated.Options) {
	o.DeadSequencerGrace = 300 * time.Millisecond
	o.RepairRetryDelay = 100 * time.Millisecond
	o.SequencerQueryTimeout = 500 * time.Millisecond
	o.ReadRetryDelay = 20 * time.Millisecond
	o.RetryMax = 200 * time.Millisecond
}

func open(t *testing.T, p *replicated.Provider, seg metadata.Segment) bifrost.Loglet {
	t.Helper()
	l, err := p.Open(context.Background(), seg)
	if err != nil {
		t.Fatalf("open loglet %d: %v", seg.LogletID, err)
	}
	return l
}

// testCtx ends after d or with the test.
func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond every few milliseconds until it holds; it fails the test once ctx
// ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// appendAll appends the payloads one by one and returns what was acknowledged where.
func appendAll(t *testing.T, ctx context.Context, l bifrost.Loglet, acked map[bifrost.Offset]string, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		off, err := l.Append(ctx, [][]byte{[]byte(p)})
		if err != nil {
			t.Fatalf("append %q: %v", p, err)
		}
		if prev, dup := acked[off]; dup {
			t.Fatalf("offset %d acknowledged for %q and %q", off, prev, p)
		}
		acked[off] = p
	}
}

func records(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}

// readRange reads [from, to) and fails unless exactly those offsets come back, in order.
func readRange(t *testing.T, ctx context.Context, l bifrost.Loglet, from, to bifrost.Offset) []bifrost.Record {
	t.Helper()
	var out []bifrost.Record
	for next := from; next < to; {
		recs, err := l.Read(ctx, next, int(min(to-next, 512)))
		if err != nil {
			t.Fatalf("read from %d (reading [%d, %d)): %v", next, from, to, err)
		}
		for _, r := range recs {
			if r.Offset != next {
				t.Fatalf("read from %d: offset %d, want %d (gap or reorder)", from, r.Offset, next)
			}
			if r.Offset >= to {
				t.Fatalf("read returned offset %d, at or above %d", r.Offset, to)
			}
			next++
		}
		out = append(out, recs...)
	}
	return out
}

// checkReadBack fails unless recs are exactly the acknowledged records (plus the ones in
// extra, records a sealer may keep although their append was not acknowledged), each
// payload once.
func checkReadBack(t *testing.T, acked map[bifrost.Offset]string, recs []bifrost.Record) {
	t.Helper()
	seen := map[string]bifrost.Offset{}
	for _, r := range recs {
		want, ok := acked[r.Offset]
		if !ok {
			t.Fatalf("offset %d: read %q, which was never acknowledged", r.Offset, r.Payload)
		}
		if !bytes.Equal(r.Payload, []byte(want)) {
			t.Fatalf("offset %d: read %q, acknowledged %q", r.Offset, r.Payload, want)
		}
		if prev, dup := seen[want]; dup {
			t.Fatalf("%q read at offsets %d and %d", want, prev, r.Offset)
		}
		seen[want] = r.Offset
	}
	if len(recs) != len(acked) {
		t.Fatalf("read %d records, %d were acknowledged", len(recs), len(acked))
	}
}

// expectSealedAppend fails unless an append to l is refused with a *bifrost.SealedError.
func expectSealedAppend(t *testing.T, ctx context.Context, l bifrost.Loglet, who string) {
	t.Helper()
	off, err := l.Append(ctx, [][]byte{[]byte("after seal")})
	var se *bifrost.SealedError
	if !errors.As(err, &se) {
		t.Fatalf("append on %s after the seal = %d, %v; want a *bifrost.SealedError", who, off, err)
	}
}

// expectReadSealed fails unless reading l at from returns bifrost.ErrSealed.
func expectReadSealed(t *testing.T, ctx context.Context, l bifrost.Loglet, from bifrost.Offset) {
	t.Helper()
	if recs, err := l.Read(ctx, from, 10); !errors.Is(err, bifrost.ErrSealed) {
		t.Fatalf("read at %d of the sealed loglet = %d records, %v; want ErrSealed", from, len(recs), err)
	}
}

// logletInfo asks log server i directly for its view of a loglet.
func logletInfo(ctx context.Context, c *Cluster, i int, id uint64) (*wire.LogletInfo, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return c.LogServer(i).GetLogletInfo(cctx, &wire.GetLogletInfo{Header: wire.Header{LogletID: id}})
}

// digest returns the runs of offsets in [from, to] log server i holds, as text.
func digest(ctx context.Context, c *Cluster, i int, id uint64, from, to bifrost.Offset) (string, []wire.DigestEntry, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d, err := c.LogServer(i).GetDigest(cctx, &wire.GetDigest{Header: wire.Header{LogletID: id}, From: from, To: to})
	if err != nil {
		return "", nil, err
	}
	if d.Status != wire.StatusOK && d.Status != wire.StatusSealed {
		return "", nil, fmt.Errorf("digest from %s: status %s", c.Servers[i].Name, d.Status)
	}
	var b strings.Builder
	for _, e := range d.Entries {
		fmt.Fprintf(&b, "[%d,%d]", e.From, e.To)
		if e.Status == wire.DigestTrimmed {
			b.WriteString("(trimmed)")
		}
		b.WriteString(" ")
	}
	return strings.TrimSpace(b.String()), d.Entries, nil
}

// holds reports whether log server i holds offset o of a loglet.
func holds(ctx context.Context, c *Cluster, i int, id uint64, o bifrost.Offset) (bool, error) {
	_, entries, err := digest(ctx, c, i, id, o, o)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.Status == wire.DigestExists && e.From <= o && o <= e.To {
			return true, nil
		}
	}
	return false, nil
}
