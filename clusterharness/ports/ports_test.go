package ports

import (
	"net"
	"strconv"
	"testing"
)

func TestFreeHandsOutDistinctBindablePorts(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		addrs, err := Free(5)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if seen[a] {
				t.Fatalf("%s handed out twice", a)
			}
			seen[a] = true
			_, p, _ := net.SplitHostPort(a)
			if port, _ := strconv.Atoi(p); port < low || port >= high {
				t.Fatalf("port %d outside [%d, %d)", port, low, high)
			}
			ln, err := net.Listen("tcp", a)
			if err != nil {
				t.Fatalf("listen on %s: %v", a, err)
			}
			ln.Close()
		}
	}
}
