package replicated

import (
	"errors"
	"sync"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/replicated/faultnet"
	"gorestate.dev/shared/bifrost/wire"
)

// Appends keep going without an error to writers while one server of n=3, r=2 is down,
// flapping, slow, silent or restarted; every acknowledged offset is read back once, in
// order, by a reader on another node.
func TestAppendsSurviveServerFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(c *cluster, stop <-chan struct{}, wg *sync.WaitGroup)
	}{
		{"down", func(c *cluster, _ <-chan struct{}, _ *sync.WaitGroup) { c.net.Partition("s3") }},
		{"down per failure detector", func(c *cluster, _ <-chan struct{}, _ *sync.WaitGroup) {
			c.net.Partition("s3")
			c.setAlive("s3", false)
		}},
		{"black hole", func(c *cluster, _ <-chan struct{}, _ *sync.WaitGroup) {
			c.net.SetFaults("s3", faultnet.Faults{DropRequest: 1, BlackHole: true})
		}},
		{"slow", func(c *cluster, _ <-chan struct{}, _ *sync.WaitGroup) {
			c.net.SetFaults("s1", faultnet.Faults{Delay: 10 * time.Millisecond, Jitter: 20 * time.Millisecond})
		}},
		{"flapping", func(c *cluster, stop <-chan struct{}, wg *sync.WaitGroup) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(3 * time.Millisecond)
				defer tick.Stop()
				for down := true; ; down = !down {
					select {
					case <-stop:
						c.net.Heal("s2")
						return
					case <-tick.C:
					}
					if down {
						c.net.Partition("s2")
					} else {
						c.net.Heal("s2")
					}
				}
			}()
		}},
		{"killed and restarted", func(c *cluster, stop <-chan struct{}, wg *sync.WaitGroup) {
			s2 := c.servers[1]
			// A durable restart: the same records come back.
			c.net.SetHooks("s2", faultnet.Hooks{OnRestart: func() (wire.LogServer, wire.Sequencer) { return s2, nil }})
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for killed := true; ; killed = !killed {
					select {
					case <-stop:
						c.net.Restart("s2")
						return
					case <-tick.C:
					}
					if killed {
						c.net.Kill("s2")
					} else {
						c.net.Restart("s2")
					}
				}
			}()
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, 3, 2, uint64(100+i))
			seg := c.segment(uint64(20+i), w1)
			l1 := c.open(c.provider("w1", 1, nil), seg)
			l2 := c.open(c.provider("w2", 1, nil), seg)
			ctx := testCtx(t, 60*time.Second)
			stop := make(chan struct{})
			var fwg sync.WaitGroup
			tc.setup(c, stop, &fwg)
			log := newAckLog()
			runAppenders(t, "a", l1, 10, 20, nil, log).Wait()
			close(stop)
			fwg.Wait()
			if len(log.errs) > 0 {
				t.Fatalf("%d appends failed, first: %v", len(log.errs), log.errs[0])
			}
			tail := log.max() + 1
			checkReadBack(t, log.acked, readAll(t, ctx, l2, 1, tail))
			if got := len(log.acked); got != int(tail-1) {
				t.Fatalf("%d acknowledged records below tail %d", got, tail)
			}
		})
	}
}

// Message-level faults on every log server (lost requests and responses, duplicates,
// reordering, jitter), fixed seed: appends from the sequencer's node and from another node
// succeed, and everything reads back. Faults apply to log-server traffic only:
// duplicating an Append to a sequencer would append twice, like a client retry.
func TestAppendsUnderMessageFaults(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 7777)
	for _, s := range c.names {
		c.net.SetFaults(s, faultnet.Faults{
			DropRequest: 0.05, DropResponse: 0.05, Duplicate: 0.05, Reorder: 0.05, Jitter: 2 * time.Millisecond,
		})
	}
	seg := c.segment(30, w1)
	l1 := c.open(c.provider("w1", 1, nil), seg)
	l2 := c.open(c.provider("w2", 1, nil), seg)
	ctx := testCtx(t, 60*time.Second)
	log := newAckLog()
	wg1 := runAppenders(t, "a", l1, 8, 20, nil, log)
	wg2 := runAppenders(t, "b", l2, 4, 20, nil, log)
	wg1.Wait()
	wg2.Wait()
	if len(log.errs) > 0 {
		t.Fatalf("%d appends failed, first: %v", len(log.errs), log.errs[0])
	}
	tail := log.max() + 1
	for _, l := range []*Loglet{l1, l2} {
		checkReadBack(t, log.acked, readAll(t, ctx, l, 1, tail))
	}
	st := c.net.Stats()
	if st.DroppedRequests == 0 || st.DroppedResponses == 0 || st.Duplicated == 0 || st.Reordered == 0 {
		t.Fatalf("faults not exercised: %+v", st)
	}
	t.Logf("network: %+v", st)
}

// Too few usable servers for WriteUnavailableTimeout fail pending appends with
// ErrReconfigurationNeeded; the loglet can still be sealed once an f-majority is back.
func TestWriteUnavailableDemandsReconfiguration(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, 31)
	l1 := c.open(c.provider("w1", 1, func(o *Options) { o.WriteUnavailableTimeout = 200 * time.Millisecond }), c.segment(31, w1))
	ctx := testCtx(t, 20*time.Second)
	if _, err := l1.Append(ctx, [][]byte{[]byte("ok")}); err != nil {
		t.Fatal(err)
	}
	c.net.Partition("s2")
	c.net.Partition("s3")
	if _, err := l1.Append(ctx, [][]byte{[]byte("stuck")}); !errors.Is(err, bifrost.ErrReconfigurationNeeded) {
		t.Fatalf("append without a write quorum: %v", err)
	}
	c.net.Heal("s2")
	tail, err := l1.Seal(ctx)
	if err != nil || tail != 2 {
		t.Fatalf("seal: %d %v", tail, err)
	}
}
