package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	restate "github.com/restatedev/sdk-go"
	"github.com/restatedev/sdk-go/server"

	"gorestate.dev/clusterharness/harness"
)

// serveService serves one SDK service definition on a free loopback port until the test
// ends and returns its deployment URI.
func serveService(t *testing.T, def restate.ServiceDefinition) string {
	t.Helper()
	handler, err := server.NewRestate().Bind(def).Handler()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: handler, Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

// A deployment that hangs holds at most its share of the node's attempt slots
// (concurrent-invocations-per-deployment-limit, half of the node's limit by default); the
// attempts queued behind it hold none, so calls to another deployment keep running and
// never wait for a slot.
func TestHungDeploymentLeavesSlotsToOthers(t *testing.T) {
	cfg := harness.TestConfig(t.TempDir())
	cfg.Worker.Invoker.ConcurrentInvocationsLimit = 20 // 10 per deployment
	n := harness.StartSingle(t, cfg)

	release := make(chan struct{})
	hung := serveService(t, restate.NewService("Hanger").Handler("hang", restate.NewServiceHandler(
		func(ctx restate.Context, _ restate.Void) (restate.Void, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return restate.Void{}, nil
		})))
	t.Cleanup(func() { close(release) }) // before the servers shut down (cleanups run last first)
	harness.Register(t, n.AdminURL, hung)
	harness.Register(t, n.AdminURL, harness.StartExamples(t))

	const hangs = 30
	for i := range hangs {
		resp, err := harness.Send(http.MethodPost, n.IngressURL+"/Hanger/hang/send", "", nil)
		if err != nil || resp.Status != http.StatusAccepted {
			t.Fatalf("send hang %d: %v %+v", i, err, resp)
		}
	}
	worker := n.Node.Worker()
	hungWaits := func() uint64 {
		var sum uint64
		for _, w := range worker.InvokerStats().DeploymentSlotWaits {
			sum += w
		}
		return sum
	}
	harness.Eventually(t, 20*time.Second, "20 hung calls queued for their deployment", func() bool {
		return hungWaits() >= hangs-10
	})

	// 200 calls to the other deployment, 5 at a time, with the hung one holding its 10 slots.
	const calls, workers = 200, 5
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls / workers {
				name := fmt.Sprintf("w%d-%d", w, i)
				resp, err := harness.Send(http.MethodPost, n.IngressURL+"/Greeter/greet", `"`+name+`"`, nil)
				if err == nil && (resp.Status != http.StatusOK || resp.Body != `"Hello `+name+`!"`) {
					err = fmt.Errorf("answered %d %s", resp.Status, resp.Body)
				}
				if err != nil {
					errs <- fmt.Errorf("greet %s: %w", name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := worker.InvokerStats()
	t.Logf("%d greets in %s beside %d hung calls; slot waits: node %d, by deployment %v",
		calls, time.Since(start).Round(time.Millisecond), hangs, st.NodeSlotWaits, st.DeploymentSlotWaits)
	if st.NodeSlotWaits != 0 {
		t.Fatalf("%d attempts waited for a node slot", st.NodeSlotWaits)
	}
	if len(st.DeploymentSlotWaits) != 1 || hungWaits() < hangs-10 {
		t.Fatalf("deployment slot waits %v: want only the hung deployment's (at least %d)", st.DeploymentSlotWaits, hangs-10)
	}
}

// Invocations that wait for something (here awakeables nobody resolves) give their attempt
// slots up as soon as other attempts wait for one (invoker.PressureIdleTimeout), rather
// than at the inactivity timeout: with every slot of the deployment held by waiters, a
// call still answers at once. Invocations waiting on each other would otherwise stall the
// node for the inactivity timeout (the mixed benchmark did, with more programs in flight
// than slots).
func TestWaitingInvocationsYieldTheirSlots(t *testing.T) {
	cfg := harness.TestConfig(t.TempDir())
	cfg.Worker.Invoker.ConcurrentInvocationsLimit = 4 // 2 per deployment
	n := harness.StartSingle(t, cfg)
	harness.Register(t, n.AdminURL, harness.StartExamples(t))
	harness.Expect(t, call(t, n.IngressURL+"/Greeter/greet", `"warm"`, nil), 200, `"Hello warm!"`)

	for i := range 6 {
		resp, err := harness.Send(http.MethodPost, n.IngressURL+"/Approvals/request/send", fmt.Sprintf(`"yield-%d-%d"`, i, time.Now().UnixNano()), nil)
		if err != nil || resp.Status != http.StatusAccepted {
			t.Fatalf("send approval %d: %v %+v", i, err, resp)
		}
	}
	harness.Eventually(t, 10*time.Second, "the approvals to wait for their awakeables", func() bool {
		rows := query(t, n, "select count(*) as n from sys_invocation where target_service_name = 'Approvals' and status in ('suspended', 'running')").Rows
		return len(rows) == 1 && fmt.Sprint(rows[0]["n"]) == "6"
	})
	for i := range 5 {
		start := time.Now()
		name := fmt.Sprintf("g%d", i)
		harness.Expect(t, call(t, n.IngressURL+"/Greeter/greet", `"`+name+`"`, nil), 200, `"Hello `+name+`!"`)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("greet %d took %s behind invocations waiting for awakeables", i, d)
		}
	}
}
