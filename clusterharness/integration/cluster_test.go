package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/ingressd"
	"gorestate.dev/metadatad"
	"gorestate.dev/shared/config"
	"gorestate.dev/workerd"
)

// metadataNodeConfig is a metadatad node (metadata-server + admin) of an in-process cluster
// whose other metadata servers and gossip seeds are given.
func metadataNodeConfig(t *testing.T, base, name string, autoProvision bool, metaAddrs []string, seeds []string) (*config.Config, string) {
	t.Helper()
	fabric := "127.0.0.1:" + freePort(t)
	env := []string{
		"RESTATE_BASE_DIR=" + base, "RESTATE_NODE_NAME=" + name,
		"RESTATE_ROLES=[metadata-server,admin]",
		"RESTATE_METADATA_SERVER__TYPE=replicated",
		"RESTATE_BIND_ADDRESS=" + fabric, "RESTATE_ADVERTISED_ADDRESS=http://" + fabric + "/",
		"RESTATE_ADMIN__BIND_ADDRESS=127.0.0.1:0",
		"RESTATE_GOSSIP__BIND_ADDRESS=127.0.0.1:" + freePort(t),
		fmt.Sprintf("RESTATE_AUTO_PROVISION=%v", autoProvision),
		"RESTATE_DEFAULT_NUM_PARTITIONS=3",
	}
	if len(metaAddrs) > 0 {
		env = append(env, "RESTATE_METADATA_CLIENT__ADDRESSES=["+strings.Join(metaAddrs, ",")+"]")
	}
	if len(seeds) > 0 {
		env = append(env, "RESTATE_GOSSIP__SEEDS=["+strings.Join(seeds, ",")+"]")
	}
	cfg, err := config.Load("", env)
	if err != nil {
		t.Fatalf("config of %s: %v", name, err)
	}
	return cfg, "http://" + fabric
}

// TestMigrationToReplicated: a single node with data restarts with the replicated metadata
// store, two metadata nodes join it, and every deployment and all state are still served.
func TestMigrationToReplicated(t *testing.T) {
	base := t.TempDir()
	cfg := harness.TestConfig(base)
	fabric := "127.0.0.1:" + freePort(t) // stable: it becomes the raft address
	cfg.BindAddress, cfg.AdvertisedAddress = fabric, "http://"+fabric+"/"
	cfg.Gossip.BindAddress = "127.0.0.1:" + freePort(t)
	uri := harness.StartExamples(t)

	n := harness.StartSingle(t, cfg)
	harness.Register(t, n.AdminURL, uri)
	harness.Expect(t, call(t, n.IngressURL+"/Counter/mig/add", "5", nil), 200, "5")
	n.Node.Stop()
	harness.WaitPortFree(t, fabric)
	harness.WaitPortFree(t, cfg.Gossip.BindAddress)

	cfg.MetadataServer.Type = "replicated"
	n = harness.StartSingle(t, cfg)
	harness.Expect(t, call(t, n.IngressURL+"/Counter/mig/get", "", nil), 200, "5")

	seeds := []string{cfg.Gossip.BindAddress}
	m2cfg, m2 := metadataNodeConfig(t, base, "m2", false, []string{"http://" + fabric}, seeds)
	m3cfg, m3 := metadataNodeConfig(t, base, "m3", false, []string{"http://" + fabric, m2}, seeds)
	d2, _ := harness.StartMetadatad(t, m2cfg)
	harness.StartMetadatad(t, m3cfg)

	// Any member may lead: node-1 founded the cluster, but with raft's 200 ms heartbeat
	// timeout a loaded host (-race, two cores) sees elections now and then, and raft never
	// hands leadership back.
	harness.Eventually(t, 20*time.Second, "three metadata members, every node alive", func() bool {
		st, err := harness.ClusterStatus(m3)
		if err != nil || len(st.Metadata.Members) != 3 || st.Metadata.Leader == "" || len(st.Nodes) != 3 {
			return false
		}
		for _, nd := range st.Nodes {
			if nd.State != "alive" {
				return false
			}
		}
		return true
	})
	// m2 serves the migrated schema from its own replica of the store.
	adminM2 := "http://" + d2.AdminAddr.String()
	if r := get(t, adminM2+"/deployments"); r.Status != 200 || !strings.Contains(r.Body, uri) {
		t.Fatalf("deployments on m2: %d %s", r.Status, r.Body)
	}
	// A write through m2's admin API goes to the leader; the ingress on node-1 sees it.
	r, err := harness.Send(http.MethodPatch, adminM2+"/services/Greeter", `{"public":false}`, map[string]string{"content-type": "application/json"})
	if err != nil || r.Status != 200 {
		t.Fatalf("PATCH through m2: %v %+v", err, r)
	}
	harness.Eventually(t, 10*time.Second, "node-1's ingress to see the change made through m2", func() bool {
		return call(t, n.IngressURL+"/Greeter/greet", `"x"`, nil).Status == 400
	})
	harness.Expect(t, call(t, n.IngressURL+"/Counter/mig/add", "1", nil), 200, "6")
	if _, err := harness.ClusterStatus(m2); err != nil {
		t.Fatal(err)
	}
}

// TestMetadataLeaderLoss: three metadatad nodes, a worker and an ingress; the Raft leader
// stops, and admin and ingress requests keep being served by the survivors.
func TestMetadataLeaderLoss(t *testing.T) {
	base := t.TempDir()
	m1cfg, m1 := metadataNodeConfig(t, base, "m1", true, nil, nil)
	seeds := []string{m1cfg.Gossip.BindAddress}
	m2cfg, m2 := metadataNodeConfig(t, base, "m2", false, []string{m1}, seeds)
	m3cfg, m3 := metadataNodeConfig(t, base, "m3", false, []string{m1, m2}, seeds)
	metas := []string{m1, m2, m3}
	cfgs := map[string]*config.Config{"m1": m1cfg, "m2": m2cfg, "m3": m3cfg}
	// A worker and an ingress that know all three metadata servers. They start first: they
	// must wait for the metadata servers, not give up.
	workerFabric, ingress := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	load := func(name string, env ...string) *config.Config {
		env = append(env, "RESTATE_BASE_DIR="+base, "RESTATE_NODE_NAME="+name,
			"RESTATE_METADATA_CLIENT__ADDRESSES=["+strings.Join(metas, ",")+"]",
			"RESTATE_GOSSIP__BIND_ADDRESS=127.0.0.1:0", "RESTATE_GOSSIP__SEEDS=["+strings.Join(seeds, ",")+"]")
		c, err := config.Load("", env)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx, cancel := context.WithCancel(context.Background())
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testLog{t}})
	done := make(chan error, 2)
	go func() {
		done <- workerd.Run(ctx, load("w1", "RESTATE_ROLES=[worker]", "RESTATE_BIND_ADDRESS="+workerFabric, "RESTATE_ADVERTISED_ADDRESS=http://"+workerFabric), logger)
	}()
	go func() {
		done <- ingressd.Run(ctx, load("i1", "RESTATE_ROLES=[http-ingress]", "RESTATE_BIND_ADDRESS=127.0.0.1:0", "RESTATE_INGRESS__BIND_ADDRESS="+ingress), logger)
	}()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			<-done
		}
	})
	stops := map[string]func(){}
	admins := map[string]string{}
	for _, c := range []*config.Config{m1cfg, m2cfg, m3cfg} {
		d, stop := harness.StartMetadatad(t, c)
		stops[c.NodeName], admins[c.NodeName] = stop, "http://"+d.AdminAddr.String()
	}

	uri := harness.StartExamples(t)
	var leader, last string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last cluster status seen from m2: %s", last)
		}
	})
	harness.Eventually(t, 20*time.Second, "a healthy cluster of five nodes", func() bool {
		st, err := harness.ClusterStatus(m2)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%d metadata members, leader %q; nodes %+v", len(st.Metadata.Members), st.Metadata.Leader, st.Nodes)
		if len(st.Metadata.Members) != 3 || len(st.Nodes) != 5 {
			return false
		}
		for _, nd := range st.Nodes {
			if nd.State != "alive" {
				return false
			}
		}
		leader = st.Metadata.Leader
		return leader != ""
	})
	harness.Register(t, admins[leader], uri)
	ingressURL := "http://" + ingress
	harness.Eventually(t, 15*time.Second, "the ingress to serve", func() bool {
		resp, err := harness.Send(http.MethodPost, ingressURL+"/Counter/ll/add", "1", nil)
		return err == nil && resp.Status == 200 && resp.Body == "1"
	})

	stops[leader]()
	var survivor string
	for name := range cfgs {
		if name != leader {
			survivor = name
			break
		}
	}
	survivorFabric := map[string]string{"m1": m1, "m2": m2, "m3": m3}[survivor]
	var newLeader string
	harness.Eventually(t, 20*time.Second, "a new metadata leader, the old one shown as gone", func() bool {
		st, err := harness.ClusterStatus(survivorFabric)
		if err != nil || st.Metadata.Leader == "" || st.Metadata.Leader == leader {
			return false
		}
		for _, nd := range st.Nodes {
			if nd.Name == leader && (nd.State == "left" || nd.State == "failed") {
				newLeader = st.Metadata.Leader
				return true
			}
		}
		return false
	})
	t.Logf("metadata leader %s stopped; %s leads now", leader, newLeader)
	// Writes through a surviving admin API (re-registering, forced) still commit.
	status, body := harness.Do(t, http.MethodPost, admins[survivor]+"/deployments", `{"uri":"`+uri+`","force":true}`, map[string]string{"content-type": "application/json"})
	if status != 200 && status != 201 {
		t.Fatalf("register through %s after the leader stopped: %d %s", survivor, status, body)
	}
	harness.Expect(t, call(t, ingressURL+"/Counter/ll/add", "1", nil), 200, "2")
	harness.Expect(t, call(t, ingressURL+"/Greeter/greet", `"after"`, nil), 200, `"Hello after!"`)
}

// metadataTrio starts three metadata nodes that all list each other, with the given
// auto-provision settings, and returns their fabric URLs.
func metadataTrio(t *testing.T, autoProvision [3]bool) []string {
	t.Helper()
	base := t.TempDir()
	fabrics := make([]string, 3)
	for i := range fabrics {
		fabrics[i] = "127.0.0.1:" + freePort(t)
	}
	var urls []string
	for _, f := range fabrics {
		urls = append(urls, "http://"+f)
	}
	gossip := make([]string, 3)
	for i := range gossip {
		gossip[i] = "127.0.0.1:" + freePort(t)
	}
	for i := range 3 {
		env := []string{
			"RESTATE_BASE_DIR=" + base, fmt.Sprintf("RESTATE_NODE_NAME=m%d", i+1),
			"RESTATE_ROLES=[metadata-server,admin]", "RESTATE_METADATA_SERVER__TYPE=replicated",
			"RESTATE_BIND_ADDRESS=" + fabrics[i], "RESTATE_ADVERTISED_ADDRESS=" + urls[i] + "/",
			"RESTATE_ADMIN__BIND_ADDRESS=127.0.0.1:0",
			"RESTATE_GOSSIP__BIND_ADDRESS=" + gossip[i], "RESTATE_GOSSIP__SEEDS=[" + strings.Join(gossip, ",") + "]",
			fmt.Sprintf("RESTATE_AUTO_PROVISION=%v", autoProvision[i]),
			"RESTATE_METADATA_CLIENT__ADDRESSES=[" + strings.Join(urls, ",") + "]",
		}
		cfg, err := config.Load("", env)
		if err != nil {
			t.Fatal(err)
		}
		// Started concurrently: a node blocks in Start until it is a member, so the test
		// owns the daemons' lifetime itself rather than through StartMetadatad.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		logger := hclog.New(&hclog.LoggerOptions{Name: cfg.NodeName, Level: hclog.Warn, Output: testLog{t}})
		go func() {
			defer close(done)
			d, err := metadatad.Start(ctx, cfg, logger)
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("start %s: %v", cfg.NodeName, err)
				}
				return
			}
			<-d.Done()
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	return urls
}

// TestDefaultAutoProvisionFoundsOneCluster: three metadata nodes that all keep the default
// auto-provision = true and start together form one cluster (the first of the
// [metadata-client] addresses founds it), not three.
func TestDefaultAutoProvisionFoundsOneCluster(t *testing.T) {
	urls := metadataTrio(t, [3]bool{true, true, true})
	harness.Eventually(t, 30*time.Second, "one cluster of three members", func() bool {
		for _, u := range urls {
			st, err := harness.ClusterStatus(u)
			if err != nil || len(st.Metadata.Members) != 3 || st.Metadata.Leader == "" || !st.Provisioned {
				return false
			}
		}
		return true
	})
}

// TestProvisionIsRefusedOnceAClusterExists: without auto-provision, `provision` founds the
// cluster on the node it is sent to; a second provision, sent to another node (which may
// still be joining), is refused with 409 instead of founding a second cluster.
func TestProvisionIsRefusedOnceAClusterExists(t *testing.T) {
	urls := metadataTrio(t, [3]bool{false, false, false})
	send := func(u string) (*harness.Response, error) {
		return harness.Send(http.MethodPost, u+"/cluster/v1/provision", `{"num_partitions":2}`, map[string]string{"content-type": "application/json"})
	}
	provision := func(u string) *harness.Response {
		resp, err := send(u)
		if err != nil {
			t.Fatalf("provision via %s: %v", u, err)
		}
		return resp
	}
	var first *harness.Response
	harness.Eventually(t, 10*time.Second, "the cluster API", func() bool {
		var err error
		first, err = send(urls[1])
		return err == nil && first.Status != http.StatusServiceUnavailable
	})
	if first.Status != http.StatusOK {
		t.Fatalf("first provision: %d %s", first.Status, first.Body)
	}
	for _, u := range []string{urls[2], urls[0], urls[1]} {
		if r := provision(u); r.Status != http.StatusConflict || !strings.Contains(r.Body, "already provisioned") {
			t.Fatalf("second provision via %s: %d %s", u, r.Status, r.Body)
		}
	}
	// One cluster: every member sees the same three members and the same leader. m2
	// founded it, but the leadership may have moved since (an election on a loaded host;
	// raft never hands it back), so which member leads says nothing.
	harness.Eventually(t, 30*time.Second, "one cluster of three members", func() bool {
		leaders := map[string]bool{}
		for _, u := range urls {
			st, err := harness.ClusterStatus(u)
			if err != nil || len(st.Metadata.Members) != 3 || st.Metadata.Leader == "" {
				return false
			}
			leaders[st.Metadata.Leader] = true
		}
		return len(leaders) == 1
	})
}

// TestRemovedMemberStopsServing: a metadata member removed from the cluster (gorestatectl
// metadata remove-server) stops answering metadata reads from its frozen copy, so clients
// fail over to the members that still follow the log.
func TestRemovedMemberStopsServing(t *testing.T) {
	urls := metadataTrio(t, [3]bool{true, true, true})
	harness.Eventually(t, 30*time.Second, "one cluster of three members", func() bool {
		st, err := harness.ClusterStatus(urls[0])
		return err == nil && len(st.Metadata.Members) == 3 && st.Provisioned
	})
	// m3 serves once it has caught up (a member in the configuration may still be starting).
	harness.Eventually(t, 20*time.Second, "m3 to serve reads", func() bool {
		r, err := harness.Send(http.MethodGet, urls[2]+"/metadata/v1/partition_table", "", nil)
		return err == nil && r.Status == 200
	})
	if r, err := harness.Send(http.MethodDelete, urls[0]+"/metadata/cluster/members/m3", "", nil); err != nil || r.Status != 200 {
		t.Fatalf("remove m3: %v %+v", err, r)
	}
	harness.Eventually(t, 10*time.Second, "m3 to refuse reads", func() bool {
		r, err := harness.Send(http.MethodGet, urls[2]+"/metadata/v1/partition_table", "", nil)
		return err == nil && r.Status == http.StatusServiceUnavailable && strings.Contains(r.Body, "not a member")
	})
	if r, err := harness.Send(http.MethodGet, urls[1]+"/metadata/v1/partition_table", "", nil); err != nil || r.Status != 200 {
		t.Fatalf("read on m2 after the removal: %v %+v", err, r)
	}
}
