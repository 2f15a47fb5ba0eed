// Package ports hands out loopback TCP ports for servers that tests start and that bind
// them later (often seconds later, in another process).
package ports

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

// The range ports are picked from: below the kernel's ephemeral range (32768-60999 by
// default on Linux), from which the kernel picks the local port of every outgoing
// connection on the machine. A port the kernel handed out for a moment (listening on :0)
// could be taken by such a connection before the server bound it, and the server then
// failed to start now and then.
const (
	low  = 20000
	high = 32000
)

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Free returns n distinct addresses 127.0.0.1:port, each free when checked (by listening on
// it), never handed out before by this process, and not held by another process that uses
// this package (see reserve).
func Free(n int) ([]string, error) {
	mu.Lock()
	defer mu.Unlock()
	var out []string
	for tries := 0; len(out) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("no free port among %d tries in [%d, %d)", tries, low, high)
		}
		port := low + rand.IntN(high-low)
		if given[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue // in use
		}
		_ = ln.Close()
		if !reserve(port) {
			continue // handed out by another test process
		}
		given[port] = true
		out = append(out, addr)
	}
	return out, nil
}
