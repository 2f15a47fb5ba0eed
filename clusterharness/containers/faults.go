package containers

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	tcexec "github.com/testcontainers/testcontainers-go/exec"
)

// Wipe deletes everything in a stopped or killed node's data directory (Topology.Nodes),
// as if its disk had been replaced: started again, it comes back with its name and nothing
// else.
func (c *Cluster) Wipe(t testing.TB, n *Node) {
	t.Helper()
	if n.dataDir == "" {
		t.Fatalf("wipe %s: only nodes of Topology.Nodes have a data directory on the host", n.Name)
	}
	if n.Alive() {
		t.Fatalf("wipe %s: stop or kill it first", n.Name)
	}
	ents, err := os.ReadDir(n.dataDir)
	if err != nil {
		t.Fatalf("wipe %s: %v", n.Name, err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(n.dataDir, e.Name())); err != nil {
			t.Fatalf("wipe %s: %v", n.Name, err)
		}
	}
}

// Isolate cuts n off from every other node of the cluster with iptables rules in n's
// network namespace (traffic from and to their addresses is dropped), while the test still
// reaches n through its published ports. Heal removes the rules; so does the end of the test.
func (c *Cluster) Isolate(t testing.TB, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid, _, err := c.netInfo(ctx, n)
	if err != nil {
		t.Fatalf("isolate %s: %v", n.Name, err)
	}
	t.Cleanup(func() { c.heal(n, pid) })
	for _, peer := range c.nodes {
		if peer == n || peer.container == nil || peer.Kind == KindExamples || peer.Kind == KindMinIO {
			continue
		}
		_, ip, err := c.netInfo(ctx, peer)
		if err != nil {
			t.Fatalf("isolate %s: address of %s: %v", n.Name, peer.Name, err)
		}
		for _, rule := range [][]string{{"-A", "INPUT", "-s", ip, "-j", "DROP"}, {"-A", "OUTPUT", "-d", ip, "-j", "DROP"}} {
			if err := nsIptables(pid, rule...); err != nil {
				t.Fatalf("isolate %s from %s: %v", n.Name, peer.Name, err)
			}
		}
	}
}

// Heal removes what Isolate added.
func (c *Cluster) Heal(t testing.TB, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid, _, err := c.netInfo(ctx, n)
	if err != nil {
		t.Fatalf("heal %s: %v", n.Name, err)
	}
	if err := c.heal(n, pid); err != nil {
		t.Fatalf("heal %s: %v", n.Name, err)
	}
}

func (c *Cluster) heal(n *Node, pid int) error {
	// The container's namespace has no rules of its own: flushing removes only ours.
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		if err := nsIptables(pid, "-F", chain); err != nil {
			return err
		}
	}
	return nil
}

// nsIptables runs iptables in the network namespace of process pid.
func nsIptables(pid int, args ...string) error {
	cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(pid), "-n", "iptables", "-w"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nsenter -t %d -n iptables %s: %w: %s", pid, strings.Join(args, " "), err, out)
	}
	return nil
}

// netInfo returns the pid of n's process and n's address on the cluster network.
func (c *Cluster) netInfo(ctx context.Context, n *Node) (int, string, error) {
	info, err := n.container.Inspect(ctx)
	if err != nil {
		return 0, "", err
	}
	if info.State == nil || info.State.Pid == 0 {
		return 0, "", fmt.Errorf("%s is not running", n.Name)
	}
	ep, ok := info.NetworkSettings.Networks[c.Network.Name]
	if !ok || ep == nil || !ep.IPAddress.IsValid() {
		return 0, "", fmt.Errorf("%s has no address on network %s", n.Name, c.Network.Name)
	}
	return info.State.Pid, ep.IPAddress.String(), nil
}

// Exec runs a command in n's container (images are FROM scratch: only their own binaries,
// e.g. gorestatectl in the gorestate image) and returns its exit code and output.
func (c *Cluster) Exec(t testing.TB, n *Node, cmd ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, r, err := n.container.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, n.Name, err)
	}
	out, _ := io.ReadAll(r)
	return code, string(out)
}
