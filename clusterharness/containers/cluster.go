package containers

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	dockernet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"

	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/metadatad/cluster"
	"gorestate.dev/workerd/introspect"
)

// Container ports of the daemons, as the images configure them.
const (
	PortFabric   = "5122/tcp"
	PortAdmin    = "9070/tcp"
	PortIngress  = "8080/tcp"
	PortExamples = "9080/tcp"
	PortMinIO    = "9000/tcp"
)

// Kind is what a node runs.
type Kind string

// Kinds of nodes.
const (
	KindMetadata Kind = "metadata" // metadatad with the metadata-server and admin roles
	KindWorker   Kind = "worker"   // workerd
	KindIngress  Kind = "ingress"  // ingressd
	KindExamples Kind = "examples" // the sdk-go example services, a Restate deployment
	KindSingle   Kind = "single"   // gorestate: every role in one process
	KindMinIO    Kind = "minio"    // MinIO, the snapshot store
)

// Topology says what StartCluster starts. Zero values take the defaults.
type Topology struct {
	// Single runs one gorestate node, node1, with every role, instead of separate daemons;
	// the Metadata, Workers and Ingresses counts are then ignored.
	Single bool
	// MetadataNodes is the number of metadatad nodes, meta1..metaN (default 1). Each runs the
	// metadata-server and admin roles, and every node lists all of them in
	// [metadata-client] addresses.
	MetadataNodes int
	// MetadataType is [metadata-server] type: "local" (the default; one node) or "replicated".
	MetadataType string
	// Workers is the number of workerd nodes, worker1..workerN (default 1).
	Workers int
	// Ingresses is the number of ingressd nodes, ingress1..ingressN (default 1).
	Ingresses int
	// Partitions is default-num-partitions (default 3).
	Partitions int
	// NoExamples leaves out the example deployment (node "examples", http://examples:9080).
	NoExamples bool
	// Nodes, if set, runs that many identical gorestate nodes with every role, node1..nodeN,
	// as the compose quickstart does: replicated metadata on all of them, replicated logs,
	// default-replication Replication, node1 provisioning the cluster, and each node's /data
	// on a host directory (so Wipe can empty it). Single, MetadataNodes, MetadataType,
	// Workers and Ingresses are then ignored.
	Nodes int
	// Replication is default-replication with Nodes (default 2): of the logs and partitions.
	Replication int
	// MinIO adds MinIO (node "minio", bucket "restate", made by mkbucket in its image) and
	// points the snapshots of every node at it. The tests skip without the MinIO binary
	// (`make minio`), unless GORESTATE_REQUIRE_MINIO is set.
	MinIO bool
	// Env, when set, returns extra environment for a node, applied over the defaults.
	Env func(n *Node) map[string]string
	// ReadyTimeout bounds the wait for each node to answer its readiness probe (default 60s).
	ReadyTimeout time.Duration
}

func (t *Topology) defaults() error {
	if t.MetadataNodes == 0 {
		t.MetadataNodes = 1
	}
	if t.MetadataType == "" {
		t.MetadataType = "local"
	}
	if t.Workers == 0 {
		t.Workers = 1
	}
	if t.Ingresses == 0 {
		t.Ingresses = 1
	}
	if t.Partitions == 0 {
		t.Partitions = 3
	}
	if t.ReadyTimeout == 0 {
		t.ReadyTimeout = 60 * time.Second
	}
	if t.Replication == 0 {
		t.Replication = 2
	}
	if !t.Single && t.MetadataType == "local" && t.MetadataNodes > 1 {
		return fmt.Errorf("topology: %d metadata nodes need [metadata-server] type = \"replicated\", not %q", t.MetadataNodes, t.MetadataType)
	}
	return nil
}

// Node is one container of a cluster. Its name is its network alias, its node-name and the
// host part of its advertised address (http://<name>:5122).
type Node struct {
	Name  string
	Kind  Kind
	Image string
	// Env is the environment the container was created with; it stays the same across
	// restarts.
	Env map[string]string

	ports     []string
	ready     httpReady
	dataDir   string // host directory mounted on /data (Topology.Nodes), "" otherwise
	cluster   *Cluster
	container *testcontainers.DockerContainer
	alive     atomic.Bool
}

// Alive reports whether the node was started and not stopped or killed since.
func (n *Node) Alive() bool { return n.alive.Load() }

// ContainerID is the Docker id of the node's container.
func (n *Node) ContainerID() string {
	if n.container == nil {
		return ""
	}
	return n.container.GetContainerID()
}

// URL returns http://127.0.0.1:<host port> for one of the node's container ports (PortAdmin,
// ...). The host port changes when the container restarts, so ask again after a restart.
func (n *Node) URL(t testing.TB, port string) string {
	t.Helper()
	u, err := n.url(context.Background(), port)
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	return u
}

func (n *Node) url(ctx context.Context, port string) (string, error) {
	if n.container == nil {
		return "", errors.New("no container")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := n.container.MappedPort(ctx, port)
	if err != nil {
		return "", fmt.Errorf("mapped port of %s: %w", port, err)
	}
	return "http://" + hostIP + ":" + p.Port(), nil
}

// Cluster is a set of nodes on a private Docker network, removed when the test ends.
type Cluster struct {
	Topology  Topology
	Network   *testcontainers.DockerNetwork
	Metadata  []*Node
	Workers   []*Node
	Ingresses []*Node
	Examples  *Node   // nil with Topology.NoExamples
	Single    *Node   // node1 with Topology.Single
	All       []*Node // node1..nodeN with Topology.Nodes
	MinIO     *Node   // with Topology.MinIO

	t      testing.TB
	nodes  []*Node
	docker *testcontainers.DockerClient
}

// StartCluster starts topo on a new private network and waits until every node answers its
// readiness probe: the metadata nodes first (all at once, so nodes that need a quorum can
// find each other), then the workers, ingresses and the example deployment. Everything is
// removed when the test ends; when the test failed, the nodes' logs are written to it first.
func StartCluster(t testing.TB, topo Topology) *Cluster {
	t.Helper()
	requireSuite(t)
	if topo.MinIO {
		requireMinIO(t)
	}
	if err := topo.defaults(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	docker, err := dockerClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { docker.Close() })
	nw, err := tcnetwork.New(ctx, tcnetwork.WithLabels(map[string]string{LabelTest: t.Name()}))
	if err != nil {
		t.Fatalf("create network: %v", err)
	}
	// Cleanups run last-registered first: logs, then containers, then the network.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := nw.Remove(ctx); err != nil {
			t.Errorf("remove network %s: %v", nw.Name, err)
		}
	})
	c := &Cluster{Topology: topo, Network: nw, t: t, docker: docker}
	c.plan()
	t.Cleanup(c.terminate)
	t.Cleanup(c.dumpLogsIfFailed)

	var tiers [][]*Node
	if c.MinIO != nil {
		tiers = append(tiers, []*Node{c.MinIO})
	}
	first := append(slices.Clone(c.Metadata), c.All...)
	if c.Single != nil {
		first = append(first, c.Single)
	}
	rest := append(slices.Clone(c.Workers), c.Ingresses...)
	if c.Examples != nil {
		rest = append(rest, c.Examples)
	}
	tiers = append(tiers, first, rest)
	for i, tier := range tiers {
		if c.MinIO != nil && i == 1 {
			if err := c.makeBucket(ctx); err != nil {
				t.Fatalf("start cluster: %v", err)
			}
		}
		if err := c.create(ctx, tier); err != nil {
			t.Fatalf("start cluster: %v", err)
		}
	}
	return c
}

// plan names the nodes and sets their environment.
func (c *Cluster) plan() {
	topo := c.Topology
	var metaAddrs []string
	for i := 1; i <= topo.MetadataNodes && !topo.Single && topo.Nodes == 0; i++ {
		metaAddrs = append(metaAddrs, fmt.Sprintf("http://meta%d:5122", i))
	}
	if topo.Single {
		metaAddrs = []string{"http://node1:5122"}
	}
	if topo.Nodes > 0 {
		metaAddrs = nil
		for i := 1; i <= topo.Nodes; i++ {
			metaAddrs = append(metaAddrs, fmt.Sprintf("http://node%d:5122", i))
		}
	}
	// RESTATE_ADVERTISED_HOST makes every advertised address (fabric, gossip, ...) name the
	// node by its network alias rather than by its container's hostname.
	common := func(name string) map[string]string {
		return map[string]string{
			"RESTATE_NODE_NAME":                  name,
			"RESTATE_ADVERTISED_HOST":            name,
			"RESTATE_METADATA_CLIENT__ADDRESSES": "[" + strings.Join(metaAddrs, ",") + "]",
			"RESTATE_DEFAULT_NUM_PARTITIONS":     strconv.Itoa(topo.Partitions),
		}
	}
	add := func(kind Kind, name, image string, ports []string, ready httpReady, env map[string]string) *Node {
		n := &Node{Name: name, Kind: kind, Image: image, Env: env, ports: ports, ready: ready, cluster: c}
		n.ready.timeout = topo.ReadyTimeout
		c.nodes = append(c.nodes, n)
		return n
	}
	for i := 1; i <= topo.Nodes; i++ {
		name := fmt.Sprintf("node%d", i)
		env := common(name)
		env["RESTATE_ADVERTISED_ADDRESS"] = "http://" + name + ":5122"
		env["RESTATE_METADATA_SERVER__TYPE"] = "replicated"
		env["RESTATE_BIFROST__DEFAULT_PROVIDER"] = "replicated"
		env["RESTATE_DEFAULT_REPLICATION"] = strconv.Itoa(topo.Replication)
		env["RESTATE_AUTO_PROVISION"] = strconv.FormatBool(i == 1)
		if topo.MinIO {
			maps.Copy(env, minioSnapshotsEnv)
		}
		n := add(KindSingle, name, ImageGorestate, []string{PortFabric, PortAdmin, PortIngress},
			httpReady{port: PortAdmin, path: "/health", ok: statusOK}, env)
		n.dataDir = c.t.TempDir()
		c.All = append(c.All, n)
	}
	if topo.MinIO {
		c.MinIO = add(KindMinIO, "minio", ImageMinIO, []string{PortMinIO},
			httpReady{port: PortMinIO, path: "/minio/health/ready", ok: statusOK}, map[string]string{})
	}
	if topo.Single {
		env := common("node1")
		env["RESTATE_ADVERTISED_ADDRESS"] = "http://node1:5122"
		env["RESTATE_METADATA_SERVER__TYPE"] = topo.MetadataType
		c.Single = add(KindSingle, "node1", ImageGorestate, []string{PortFabric, PortAdmin, PortIngress},
			httpReady{port: PortAdmin, path: "/health", ok: statusOK}, env)
	}
	split := !topo.Single && topo.Nodes == 0 // separate daemons
	for i := 1; i <= topo.MetadataNodes && split; i++ {
		name := fmt.Sprintf("meta%d", i)
		env := common(name)
		env["RESTATE_ADVERTISED_ADDRESS"] = "http://" + name + ":5122"
		env["RESTATE_METADATA_SERVER__TYPE"] = topo.MetadataType
		// What the admin API reports as the ingress address.
		env["RESTATE_INGRESS__ADVERTISED_ADDRESS"] = "http://ingress1:8080"
		c.Metadata = append(c.Metadata, add(KindMetadata, name, ImageMetadatad, []string{PortFabric, PortAdmin},
			httpReady{port: PortAdmin, path: "/health", ok: statusOK}, env))
	}
	for i := 1; i <= topo.Workers && split; i++ {
		name := fmt.Sprintf("worker%d", i)
		env := common(name)
		env["RESTATE_ADVERTISED_ADDRESS"] = "http://" + name + ":5122"
		// The rows route is added once the worker has started its partitions.
		c.Workers = append(c.Workers, add(KindWorker, name, ImageWorkerd, []string{PortFabric},
			httpReady{port: PortFabric, path: introspect.RowsPath, ok: statusRouted}, env))
	}
	for i := 1; i <= topo.Ingresses && split; i++ {
		name := fmt.Sprintf("ingress%d", i)
		c.Ingresses = append(c.Ingresses, add(KindIngress, name, ImageIngressd, []string{PortIngress},
			httpReady{port: PortIngress, path: "/restate/health", ok: statusOK}, common(name)))
	}
	if !topo.NoExamples {
		c.Examples = add(KindExamples, "examples", ImageExamples, []string{PortExamples},
			httpReady{port: PortExamples, path: "/health", h2c: true, ok: statusOK}, map[string]string{})
	}
	if topo.Env != nil {
		for _, n := range c.nodes {
			for k, v := range topo.Env(n) {
				n.Env[k] = v
			}
		}
	}
}

// create creates and starts nodes concurrently and waits until each is ready.
func (c *Cluster) create(ctx context.Context, nodes []*Node) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { errs[i] = n.create(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (n *Node) create(ctx context.Context) error {
	t := n.cluster.t
	ctr, err := testcontainers.Run(ctx, n.Image,
		testcontainers.WithLogger(tclog.TestLogger(t)),
		tcnetwork.WithNetwork([]string{n.Name}, n.cluster.Network),
		testcontainers.WithEnv(n.Env),
		testcontainers.WithExposedPorts(n.ports...),
		testcontainers.WithHostConfigModifier(loopbackPorts(n.ports)),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			if n.dataDir != "" {
				hc.Binds = append(hc.Binds, n.dataDir+":/data")
			}
		}),
		testcontainers.WithLabels(map[string]string{LabelNode: n.Name, LabelTest: t.Name()}),
		// Readable in `docker ps`; the network's id keeps concurrent clusters apart.
		testcontainers.WithName("gorestate-"+n.Name+"-"+n.cluster.Network.ID[:8]),
		testcontainers.WithWaitStrategyAndDeadline(n.ready.timeout+5*time.Second, n.ready),
	)
	if ctr != nil {
		n.container = ctr
		n.alive.Store(true)
	}
	if err != nil {
		return fmt.Errorf("%s (%s): %w", n.Name, n.Image, err)
	}
	return n.checkLoopback(ctx)
}

// checkLoopback fails unless every published port of the node is bound to 127.0.0.1 only:
// test traffic must not leave loopback, and nothing else should reach the cluster.
func (n *Node) checkLoopback(ctx context.Context) error {
	info, err := n.container.Inspect(ctx)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", n.Name, err)
	}
	for port, bindings := range info.NetworkSettings.Ports {
		for _, b := range bindings {
			if b.HostIP.String() != hostIP {
				return fmt.Errorf("%s: port %s is published on %s, want %s only", n.Name, port, b.HostIP, hostIP)
			}
		}
	}
	return nil
}

// loopbackPorts publishes every port on 127.0.0.1 only, on a port the engine picks.
func loopbackPorts(ports []string) func(*container.HostConfig) {
	return func(hc *container.HostConfig) {
		if hc.PortBindings == nil {
			hc.PortBindings = dockernet.PortMap{}
		}
		for _, p := range ports {
			hc.PortBindings[dockernet.MustParsePort(p)] = []dockernet.PortBinding{{HostIP: netip.MustParseAddr(hostIP)}}
		}
	}
}

// Node returns the node called name (meta1, worker1, ingress1, examples, ...).
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.nodes {
		if n.Name == name {
			return n
		}
	}
	c.t.Fatalf("no node %q in the cluster", name)
	return nil
}

// Nodes returns every node, in start order.
func (c *Cluster) Nodes() []*Node { return slices.Clone(c.nodes) }

// Stop stops the node gracefully (SIGTERM, then SIGKILL after 10 s), as `docker stop` does.
// Its container and data stay.
func (c *Cluster) Stop(t testing.TB, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	timeout := 10 * time.Second
	n.alive.Store(false)
	if err := n.container.Stop(ctx, &timeout); err != nil {
		t.Fatalf("stop %s: %v", n.Name, err)
	}
}

// Kill sends SIGKILL to the nodes' processes at once, as `docker kill` does: no shutdown code
// runs. Their containers and data stay.
func (c *Cluster) Kill(t testing.TB, nodes ...*Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		n.alive.Store(false)
		wg.Go(func() { errs[i] = c.kill(ctx, n) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func (c *Cluster) kill(ctx context.Context, n *Node) error {
	if _, err := c.docker.ContainerKill(ctx, n.ContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("kill %s: %w", n.Name, err)
	}
	// Wait until the engine has seen the process exit, so a Start right after does not race it.
	for {
		st, err := n.container.State(ctx)
		if err != nil {
			return fmt.Errorf("state of %s: %w", n.Name, err)
		}
		if !st.Running {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still running after SIGKILL", n.Name)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Start starts a stopped or killed node again, with the same container (so the same
// filesystem and data) and environment, and waits until it is ready. Its host ports change.
func (c *Cluster) Start(t testing.TB, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), n.ready.timeout+time.Minute)
	defer cancel()
	if err := n.container.Start(ctx); err != nil {
		t.Fatalf("start %s: %v", n.Name, err)
	}
	n.alive.Store(true)
}

// Restart stops the node gracefully and starts it again.
func (c *Cluster) Restart(t testing.TB, n *Node) {
	t.Helper()
	c.Stop(t, n)
	c.Start(t, n)
}

// AdminURL returns the admin API of the first live node with the admin role (a metadata
// node, or the single node) that answers /health, polling for up to 30 s: a node may be
// restarting or its metadata store electing a leader.
func (c *Cluster) AdminURL(t testing.TB) string {
	t.Helper()
	return c.firstHealthy(t, PortAdmin, "/health")
}

// IngressURL returns the ingress of the first live node with the http-ingress role that
// answers /restate/health, polling for up to 30 s.
func (c *Cluster) IngressURL(t testing.TB) string {
	t.Helper()
	return c.firstHealthy(t, PortIngress, "/restate/health")
}

func (c *Cluster) firstHealthy(t testing.TB, port, path string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last error = errors.New("no live node")
	for {
		for _, n := range c.nodes {
			if !n.Alive() || !slices.Contains(n.ports, port) {
				continue
			}
			u, err := n.url(context.Background(), port)
			if err != nil {
				last = fmt.Errorf("%s: %w", n.Name, err)
				continue
			}
			resp, err := harness.Send(http.MethodGet, u+path, "", nil)
			if err == nil && resp.Status == http.StatusOK {
				return u
			}
			if err == nil {
				err = fmt.Errorf("status %d", resp.Status)
			}
			last = fmt.Errorf("%s: %w", n.Name, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no healthy node answers %s: %v", path, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// MetadataLeader returns the metadata node that leads the replicated metadata store, as the
// cluster status of a live metadata node reports it (GET /cluster/v1/status on its fabric
// port), polling for up to 30 s until one reports a live leader.
func (c *Cluster) MetadataLeader(t testing.TB) *Node {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last error = errors.New("no live metadata node")
	for {
		for _, n := range c.Metadata {
			if !n.Alive() {
				continue
			}
			leader, err := n.metadataLeader()
			if err != nil {
				last = fmt.Errorf("%s: %w", n.Name, err)
				continue
			}
			for _, l := range c.Metadata {
				if l.Name == leader && l.Alive() {
					return l
				}
			}
			last = fmt.Errorf("%s: leader %q is not a live metadata node", n.Name, leader)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metadata leader: %v", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (n *Node) metadataLeader() (string, error) {
	u, err := n.url(context.Background(), PortFabric)
	if err != nil {
		return "", err
	}
	resp, err := harness.Send(http.MethodGet, u+cluster.PathPrefix+"status", "", nil)
	if err != nil {
		return "", err
	}
	if resp.Status != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.Status, resp.Body)
	}
	var st cluster.Status
	if err := json.Unmarshal([]byte(resp.Body), &st); err != nil {
		return "", fmt.Errorf("decode cluster status: %w", err)
	}
	if st.Metadata.Leader == "" {
		return "", fmt.Errorf("no leader known (%s)", st.Metadata.Error)
	}
	return st.Metadata.Leader, nil
}

// ExamplesURI is the example deployment's address inside the cluster network, the one to
// register.
const ExamplesURI = "http://examples:9080"

// RegisterExamples registers the example deployment through the admin API and fails the
// test unless the answer is 201 Created.
func (c *Cluster) RegisterExamples(t testing.TB) {
	t.Helper()
	if c.Examples == nil {
		t.Fatal("the cluster has no example deployment (Topology.NoExamples)")
	}
	status, body := harness.Do(t, http.MethodPost, c.AdminURL(t)+"/deployments", `{"uri":"`+ExamplesURI+`"}`,
		map[string]string{"content-type": "application/json"})
	if status != http.StatusCreated {
		t.Fatalf("register %s: %d %s", ExamplesURI, status, body)
	}
}

// terminate removes every container of the cluster.
func (c *Cluster) terminate() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		if n.container == nil {
			continue
		}
		wg.Go(func() {
			// Graceful stops are not under test here: kill at once.
			if err := n.container.Terminate(ctx, testcontainers.StopTimeout(0)); err != nil {
				c.t.Errorf("remove %s: %v", n.Name, err)
			}
			n.alive.Store(false)
		})
	}
	wg.Wait()
}

// maxLogLines bounds what a failed test prints of each node's log.
const maxLogLines = 300

// dumpLogsIfFailed writes the tail of every node's log (all its runs) into a failed test,
// or into every test with GORESTATE_CONTAINER_LOGS=1.
func (c *Cluster) dumpLogsIfFailed() {
	if !c.t.Failed() && os.Getenv("GORESTATE_CONTAINER_LOGS") != "1" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range c.nodes {
		if n.container == nil {
			continue
		}
		lines, err := n.logLines(ctx, maxLogLines)
		if err != nil {
			c.t.Logf("logs of %s: %v", n.Name, err)
			continue
		}
		c.t.Logf("=== log of %s (%s, last %d lines) ===\n%s", n.Name, n.ContainerID()[:12], len(lines), strings.Join(lines, "\n"))
	}
}

// logLines returns the last max lines of the node's log (all its runs); max 0: all.
func (n *Node) logLines(ctx context.Context, max int) ([]string, error) {
	rc, err := n.container.Logs(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var lines []string
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if max > 0 && len(lines) > 2*max {
			lines = slices.Clone(lines[len(lines)-max:])
		}
	}
	if max > 0 && len(lines) > max {
		lines = lines[len(lines)-max:]
	}
	return lines, sc.Err()
}

// Logs returns the node's whole log (all its runs).
func (c *Cluster) Logs(t testing.TB, n *Node) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lines, err := n.logLines(ctx, 0)
	if err != nil {
		t.Fatalf("logs of %s: %v", n.Name, err)
	}
	return strings.Join(lines, "\n")
}
