package inprocess

import (
	"context"
	"os"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/replicated/faultnet"
	"gorestate.dev/shared/bifrost/wire"
)

// EnvKnownBugs set to 1 runs the tests that reproduce open bugs (they fail until fixed).
const EnvKnownBugs = "GORESTATE_LOGCLUSTER_KNOWN_BUGS"

func knownBug(t *testing.T, what string) {
	t.Helper()
	if os.Getenv(EnvKnownBugs) != "1" {
		t.Skipf("reproduces an open bug (%s); run with %s=1", what, EnvKnownBugs)
	}
}

// A store whose answer was lost is retried from the server's last acknowledged offset,
// merged with the records enqueued since. The server accepted the first store, so the
// retry starts below its next_ok and ends past its staging tail: it answers
// SequencerMismatch, and the sequencer retries the same merged range forever. Once two of
// three servers are in that state the loglet is write-unavailable although every server
// is up and every message now arrives: the appends fail with ErrReconfigurationNeeded.
// Expected: the retry commits once the messages arrive (the server accepts a retry that
// overlaps what it holds from the pinned sequencer and continues past it, or the
// sequencer resumes from the local tail the refusal reports).
func TestStoreRetryAfterLostResponse(t *testing.T) {
	knownBug(t, "a retried store merged past the server's staging tail is refused forever")
	c, err := Start(t.TempDir(), 3, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	o := providerOptions(writer)
	o.WriteUnavailableTimeout = 3 * time.Second
	l, err := c.Provider(o).Open(t.Context(), c.Segment(1, 0, writer, 2))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := l.Append(ctx, [][]byte{[]byte("r1")}); err != nil {
		t.Fatal(err)
	}

	// ls2 and ls3 store record 2 but their answers are lost.
	lost := faultnet.Faults{DropResponse: 1, Methods: []string{"Store"}}
	c.Net.SetFaults("ls2", lost)
	c.Net.SetFaults("ls3", lost)
	done := make(chan error, 2)
	appendAsync := func(p string) {
		l.AppendAsync([][]byte{[]byte(p)}, func(_ bifrost.Offset, err error) { done <- err })
	}
	appendAsync("r2")
	for _, name := range []string{"ls2", "ls3"} {
		waitLocalTail(t, ctx, c, name, 1<<32, 3)
	}
	// Record 3 joins the retries, which now cover [2, 3].
	appendAsync("r3")
	for _, name := range []string{"ls2", "ls3"} {
		waitLocalTail(t, ctx, c, name, 1<<32, 3) // still 3: the merged retry is refused
	}
	c.Net.ClearFaults("ls2")
	c.Net.ClearFaults("ls3")
	for range 2 {
		if err := <-done; err != nil {
			t.Fatalf("append after the network healed: %v", err)
		}
	}
}

// waitLocalTail polls a log server directly until its local tail of a loglet reaches tail.
func waitLocalTail(t *testing.T, ctx context.Context, c *Cluster, name string, loglet uint64, tail bifrost.Offset) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if srv := c.LogServer(name); srv != nil {
			info, err := srv.GetLogletInfo(ctx, &wire.GetLogletInfo{Header: wire.Header{LogletID: loglet}})
			if err == nil && info.LocalTail >= tail {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never reached local tail %d", name, tail)
		case <-tick.C:
		}
	}
}
