package inprocess

import (
	"context"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/replicated/faultnet"
	"gorestate.dev/shared/bifrost/wire"
)

// A store whose answer was lost is retried from the server's last acknowledged offset,
// merged with the records enqueued since: the retry starts below the server's next_ok and
// ends past its staging tail. The server must take it (it comes from the pinned
// sequencer and repeats what it holds) rather than answer SequencerMismatch, which the
// sequencer would get on every retry: with two of three servers in that state the loglet
// was write-unavailable although every server was up (fixed in logserverd/server, found by
// TestAppendConcurrentWithSealUnderFaults).
func TestStoreRetryAfterLostResponse(t *testing.T) {
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
		waitLocalTail(t, ctx, c, name, 1<<32, 4) // the merged retry [2, 3], answer lost too
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
