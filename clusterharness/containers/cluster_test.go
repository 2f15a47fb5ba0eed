package containers

import (
	"net/http"
	"testing"
	"time"

	"gorestate.dev/clusterharness/harness"
)

// TestSeparateDaemonsInContainers runs one metadatad (metadata-server + admin, local store),
// one workerd, one ingressd and the example deployment, each in its own container on a
// private network: the example services are registered and called through the ingress, and
// a virtual object's state survives a graceful restart and a SIGKILL of the worker's
// container (its data directory lives in the container's filesystem, which both keep).
func TestSeparateDaemonsInContainers(t *testing.T) {
	Timed(t)
	c := StartCluster(t, Topology{})
	c.RegisterExamples(t)
	ingress := c.IngressURL(t)

	harness.Eventually(t, 30*time.Second, "a greeting through ingressd → workerd → examples", func() bool {
		resp, err := harness.Send(http.MethodPost, ingress+"/Greeter/greet", `"Sarah"`, nil)
		return err == nil && resp.Status == http.StatusOK && resp.Body == `"Hello Sarah!"`
	})
	expect(t, ingress+"/Counter/apples/add", "5", "5")
	expect(t, ingress+"/Counter/apples/add", "2", "7")
	expect(t, ingress+"/Counter/apples/get", "", "7")

	worker := c.Node("worker1")
	c.Restart(t, worker)
	eventuallyExpect(t, ingress+"/Counter/apples/get", "", "7", "the counter after a worker restart")
	expect(t, ingress+"/Counter/apples/add", "1", "8")

	c.Kill(t, worker)
	c.Start(t, worker)
	eventuallyExpect(t, ingress+"/Counter/apples/get", "", "8", "the counter after a worker SIGKILL")
	expect(t, ingress+"/Counter/apples/add", "1", "9")
}

// expect calls url once and fails unless it answers 200 with want.
func expect(t *testing.T, url, body, want string) {
	t.Helper()
	resp, err := harness.Send(http.MethodPost, url, body, nil)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	harness.Expect(t, resp, http.StatusOK, want)
}

// eventuallyExpect polls url until it answers 200 with want: right after a worker restart
// the ingress may still hold a connection to the old process, and the partitions may still
// be recovering. A call with a body (an add) carries an idempotency key named after what:
// an attempt whose answer was lost may have taken effect, and its retry must not add again.
func eventuallyExpect(t *testing.T, url, body, want, what string) {
	t.Helper()
	var headers map[string]string
	if body != "" {
		headers = map[string]string{"idempotency-key": what}
	}
	var last string
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := harness.Send(http.MethodPost, url, body, headers)
		switch {
		case err != nil:
			last = err.Error()
		case resp.Status == http.StatusOK && resp.Body == want:
			return
		default:
			last = resp.Body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: want %q, last answer %q", what, want, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSingleNodeImage runs the all-in-one gorestate image and the example deployment:
// registration, a greeting and virtual-object state across a restart of the node.
func TestSingleNodeImage(t *testing.T) {
	Timed(t)
	c := StartCluster(t, Topology{Single: true})
	c.RegisterExamples(t)
	ingress := c.IngressURL(t)
	harness.Eventually(t, 30*time.Second, "a greeting through the single node", func() bool {
		resp, err := harness.Send(http.MethodPost, ingress+"/Greeter/greet", `"Sarah"`, nil)
		return err == nil && resp.Status == http.StatusOK && resp.Body == `"Hello Sarah!"`
	})
	expect(t, ingress+"/Counter/pears/add", "3", "3")
	c.Restart(t, c.Single)
	ingress = c.IngressURL(t) // the host port changed with the restart
	eventuallyExpect(t, ingress+"/Counter/pears/add", "1", "4", "the counter after a node restart")
}
