package crash

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFailoverWithManyRetainedInvocations is the failover of TestPartitionsFailOverBetweenNodes
// with GORESTATE_RETAINED (make test-failover-retained: 100,000) completed idempotent
// invocations retained in the partition stores first: taking over a partition must not cost
// time in proportion to what it retains. Skipped unless GORESTATE_RETAINED is set (loading
// 100,000 calls takes a few minutes).
func TestFailoverWithManyRetainedInvocations(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("GORESTATE_RETAINED"))
	if n <= 0 || testing.Short() {
		t.Skip("set GORESTATE_RETAINED=100000 to run (make test-failover-retained)")
	}
	c := runningCluster3(t)
	began := time.Now()
	retainCompleted(t, c, n)
	t.Logf("%d idempotent Greeter.greet calls completed in %v", n, time.Since(began).Round(time.Second))
	if got := completedInvocations(t, c); got < n {
		t.Fatalf("%d completed invocations retained, want at least %d", got, n)
	} else {
		t.Logf("%d completed invocations retained in the partition stores", got)
	}

	w := NewWorkload(c.nodes[0].Ingress, "add", CounterKeys("rt-", 16), 8, AcceptAdd)
	w.Ingresses = c.ingresses()
	plain := c.killAndRestart(t, w, 1, false)
	leader := c.killAndRestart(t, w, 2, true)
	t.Logf("with %d retained invocations: longest gap %v after killing a plain node, %v after killing the metadata leader's node",
		n, plain.Round(time.Millisecond), leader.Round(time.Millisecond))
}

// retainCompleted completes n idempotent greet calls through the three ingresses (a retained
// result each), re-sending a failed call with its idempotency key.
func retainCompleted(t *testing.T, c *cluster3, n int) {
	t.Helper()
	w := NewWorkload(c.nodes[0].Ingress, "", nil, 0, nil)
	ingresses := c.ingresses()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failure atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	for range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1))
				if i > n {
					return
				}
				for attempt := 0; ; attempt++ {
					url := ingresses[(i+attempt)%len(ingresses)] + "/Greeter/greet"
					a, err := w.Post(ctx, url, fmt.Sprintf(`"r%d"`, i), map[string]string{"idempotency-key": fmt.Sprintf("ret-%d", i)})
					if err == nil && a.Status == http.StatusOK {
						break
					}
					if ctx.Err() != nil || attempt == 50 {
						failure.Store(fmt.Sprintf("call %d: %v %+v", i, err, a))
						cancel()
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	if f := failure.Load(); f != nil {
		t.Fatalf("loading retained invocations: %s", f)
	}
}

// completedInvocations counts the completed invocations the cluster retains (POST /query).
func completedInvocations(t *testing.T, c *cluster3) int {
	t.Helper()
	body := `{"query":"SELECT count(*) AS n FROM sys_invocation WHERE status = 'completed'"}`
	req, err := http.NewRequest(http.MethodPost, c.nodes[0].Admin+"/query", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("accept", "application/json") // Arrow IPC otherwise
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Rows []struct {
			N int `json:"n"`
		} `json:"rows"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || len(out.Rows) != 1 {
		t.Fatalf("count completed invocations: status %d, %v, %+v", resp.StatusCode, err, out)
	}
	return out.Rows[0].N
}
