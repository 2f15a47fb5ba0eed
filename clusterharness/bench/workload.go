package bench

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// Request is one pre-serialised ingress call: the path and JSON body of a POST.
type Request struct {
	Path string
	Body string
}

// Workload names a stream of requests. Next is called concurrently by every worker.
type Workload struct {
	Name string
	Next func() Request
}

// SpreadKeys is how many Counter keys the add-1000-keys workload spreads over.
const SpreadKeys = 1000

// WorkloadNames lists the workloads NewWorkload accepts.
var WorkloadNames = []string{"greet", "add-one-key", "add-1000-keys"}

// NewWorkload returns the workload called name.
func NewWorkload(name string) (Workload, error) {
	switch name {
	case "greet":
		r := Request{Path: "/Greeter/greet", Body: `"bench"`}
		return Workload{Name: name, Next: func() Request { return r }}, nil
	case "add-one-key":
		// Every request hits the same virtual object, so the server must serialise them all.
		r := Request{Path: "/Counter/k/add", Body: `1`}
		return Workload{Name: name, Next: func() Request { return r }}, nil
	case "add-1000-keys":
		reqs := make([]Request, SpreadKeys)
		for i := range reqs {
			reqs[i] = Request{Path: fmt.Sprintf("/Counter/k%d/add", i), Body: `1`}
		}
		// A shared round-robin cursor keeps concurrent workers on different keys, so
		// per-key serialisation does not dominate as it does in add-one-key.
		var cursor atomic.Uint64
		return Workload{Name: name, Next: func() Request {
			return reqs[(cursor.Add(1)-1)%SpreadKeys]
		}}, nil
	default:
		return Workload{}, fmt.Errorf("unknown workload %q (known: %s)", name, strings.Join(WorkloadNames, ", "))
	}
}
