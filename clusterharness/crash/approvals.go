package crash

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gorestate.dev/clusterharness/examples"
)

// Approvals drives the example Approvals.request, whose invocation waits on an awakeable
// that a client resolves through the ingress, from a fixed number of workers: each sends a
// request with an idempotency key, waits for its awakeable, resolves it, and attaches until
// the invocation answers with the value it was resolved with. Every step is re-sent until
// it is acknowledged, across ingresses, as a client would; a resolution that an ingress
// acknowledged and that was lost would leave its invocation waiting for ever, which
// Finish reports. The example services must run in this process (examples.AwakeableFor).
type Approvals struct {
	Ingresses []string
	Workers   int
	Tag       string // names of the requests start with it

	client  *http.Client
	stopped atomic.Bool
	wg      sync.WaitGroup

	mu      sync.Mutex
	pending map[string]string // name → invocation id, of requests not answered yet
	done    int
	wrong   []string // answers that were not the resolved value
}

// StartApprovals starts the workers.
func StartApprovals(ingresses []string, workers int, tag string) *Approvals {
	a := &Approvals{Ingresses: ingresses, Workers: workers, Tag: tag, pending: map[string]string{},
		client: &http.Client{Timeout: 2 * time.Second}}
	for w := range workers {
		a.wg.Go(func() {
			for n := 0; !a.stopped.Load(); n++ {
				a.run(fmt.Sprintf("%s-w%d-%d", tag, w, n), w+n)
			}
		})
	}
	return a
}

// Stop stops the workers after their current step; requests they began stay pending.
func (a *Approvals) Stop() {
	a.stopped.Store(true)
	a.wg.Wait()
}

// Done is the number of requests answered with their resolved value.
func (a *Approvals) Done() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.done
}

// run takes one request through its steps; it gives up (leaving it pending) when stopped.
func (a *Approvals) run(name string, turn int) {
	id := a.retry(&turn, func(ing string) (string, bool) {
		ans, err := a.post(ing+"/Approvals/request/send", `"`+name+`"`, map[string]string{"idempotency-key": name})
		return ans.ID, err == nil && ans.Status == http.StatusAccepted && ans.ID != ""
	})
	if id == "" {
		return
	}
	a.mu.Lock()
	a.pending[name] = id
	a.mu.Unlock()
	a.finish(name, id, &turn, func() bool { return a.stopped.Load() })
}

// finish resolves name's awakeable and attaches until its invocation answers, or until
// quit says stop; it reports whether the request was answered.
func (a *Approvals) finish(name, id string, turn *int, quit func() bool) bool {
	var awk string
	for awk = examples.AwakeableFor(name); awk == ""; awk = examples.AwakeableFor(name) {
		if quit() {
			return false
		}
		// Polls the services' record of the awakeable the invocation created.
		time.Sleep(20 * time.Millisecond)
	}
	value := "ok-" + name
	if a.retryUntil(turn, quit, func(ing string) (string, bool) {
		ans, err := a.post(ing+"/restate/a/"+awk+"/resolve", `"`+value+`"`, nil)
		return "", err == nil && ans.Status == http.StatusAccepted
	}) == "" {
		return false
	}
	body := a.retryUntil(turn, quit, func(ing string) (string, bool) {
		ans, err := a.get(ing + "/restate/invocation/" + id + "/attach")
		return ans.Body, err == nil && ans.Status == http.StatusOK
	})
	if body == "" {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.pending, name)
	a.done++
	if body != `"approved: `+value+`"` {
		a.wrong = append(a.wrong, fmt.Sprintf("%s (%s): %s", name, id, body))
	}
	return true
}

// Finish takes every pending request to its answer within timeout and returns what went
// wrong: requests never answered, answers with another value.
func (a *Approvals) Finish(timeout time.Duration) []string {
	a.mu.Lock()
	pending := make(map[string]string, len(a.pending))
	for k, v := range a.pending {
		pending[k] = v
	}
	a.mu.Unlock()
	deadline := time.Now().Add(timeout)
	quit := func() bool { return time.Now().After(deadline) }
	var problems []string
	turn := 0
	for name, id := range pending {
		if !a.finish(name, id, &turn, quit) {
			problems = append(problems, fmt.Sprintf("%s (%s): not answered within %v", name, id, timeout))
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return append(problems, a.wrong...)
}

func (a *Approvals) retry(turn *int, step func(ingress string) (string, bool)) string {
	return a.retryUntil(turn, func() bool { return a.stopped.Load() }, step)
}

// retryUntil runs step against the ingresses in turn, with bounded backoff, until it
// succeeds (its result, "ok" if empty) or quit says stop ("").
func (a *Approvals) retryUntil(turn *int, quit func() bool, step func(ingress string) (string, bool)) string {
	backoff := 20 * time.Millisecond
	for !quit() {
		*turn++
		if out, ok := step(a.Ingresses[*turn%len(a.Ingresses)]); ok {
			if out == "" {
				out = "ok"
			}
			return out
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 500*time.Millisecond)
	}
	return ""
}

func (a *Approvals) post(url, body string, headers map[string]string) (Answer, error) {
	return a.do(http.MethodPost, url, body, headers)
}

func (a *Approvals) get(url string) (Answer, error) { return a.do(http.MethodGet, url, "", nil) }

func (a *Approvals) do(method, url, body string, headers map[string]string) (Answer, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return Answer{}, err
	}
	if body != "" {
		req.Header.Set("content-type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Answer{}, err
	}
	return Answer{Status: resp.StatusCode, Body: string(b), ID: resp.Header.Get("x-restate-id")}, nil
}
