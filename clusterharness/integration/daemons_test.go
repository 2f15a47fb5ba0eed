package integration

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"gorestate.dev/clusterharness/ports"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/ingressd"
	"gorestate.dev/metadatad"
	"gorestate.dev/metadatad/cluster"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd"
)

func freePort(t *testing.T) string {
	t.Helper()
	addrs, err := ports.Free(1)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addrs[0])
	return port
}

// TestRolesOverTheNetwork runs metadatad, workerd and ingressd as separate daemons (each with
// its own configuration, data dir and ports) that meet only over the network: the worker and
// the ingress read metadata through the metadata client, and the ingress reaches the
// partition leader by RPC.
func TestRolesOverTheNetwork(t *testing.T) {
	base := t.TempDir()
	metaFabric := "127.0.0.1:" + freePort(t)
	workerFabric := "127.0.0.1:" + freePort(t)
	admin := "127.0.0.1:" + freePort(t)
	ingress := "127.0.0.1:" + freePort(t)
	metaGossip := "127.0.0.1:" + freePort(t)
	load := func(name string, env ...string) *config.Config {
		env = append(env, "RESTATE_BASE_DIR="+base, "RESTATE_NODE_NAME="+name,
			"RESTATE_GOSSIP__SEEDS=["+metaGossip+"]",
			"RESTATE_METADATA_CLIENT__ADDRESSES=[http://"+metaFabric+"]",
			"RESTATE_ADMIN__BIND_ADDRESS="+admin, "RESTATE_INGRESS__BIND_ADDRESS="+ingress,
			"RESTATE_DEFAULT_NUM_PARTITIONS=3")
		cfg, err := config.Load("", env)
		if err != nil {
			t.Fatalf("config of %s: %v", name, err)
		}
		return cfg
	}
	metaCfg := load("meta", "RESTATE_ROLES=[metadata-server,admin]", "RESTATE_BIND_ADDRESS="+metaFabric,
		"RESTATE_GOSSIP__BIND_ADDRESS="+metaGossip)
	workerCfg := load("worker", "RESTATE_ROLES=[worker]", "RESTATE_BIND_ADDRESS="+workerFabric,
		"RESTATE_ADVERTISED_ADDRESS=http://"+workerFabric, "RESTATE_GOSSIP__BIND_ADDRESS=127.0.0.1:0")
	ingressCfg := load("ingress", "RESTATE_ROLES=[http-ingress]", "RESTATE_BIND_ADDRESS=127.0.0.1:0",
		"RESTATE_GOSSIP__BIND_ADDRESS=127.0.0.1:0")

	ctx, cancel := context.WithCancel(context.Background())
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testLog{t}})
	done := make(chan error, 3)
	for _, d := range []struct {
		run func(context.Context, *config.Config, hclog.Logger) error
		cfg *config.Config
	}{{metadatad.Run, metaCfg}, {workerd.Run, workerCfg}, {ingressd.Run, ingressCfg}} {
		go func() { done <- d.run(ctx, d.cfg, logger) }()
	}
	t.Cleanup(func() {
		cancel()
		for i := 0; i < 3; i++ {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("a daemon did not stop")
			}
		}
	})

	uri := harness.StartExamples(t)
	adminURL, ingressURL := "http://"+admin, "http://"+ingress
	harness.Eventually(t, 15*time.Second, "the admin API", func() bool {
		resp, err := harness.Send(http.MethodGet, adminURL+"/health", "", nil)
		return err == nil && resp.Status == 200
	})
	harness.Register(t, adminURL, uri)
	harness.Eventually(t, 15*time.Second, "a greeting through ingressd → workerd", func() bool {
		resp, err := harness.Send(http.MethodPost, ingressURL+"/Greeter/greet", `"net"`, nil)
		return err == nil && resp.Status == 200 && resp.Body == `"Hello net!"`
	})
	harness.Expect(t, call(t, ingressURL+"/Counter/n/add", "2", nil), 200, "2")
	harness.Expect(t, call(t, ingressURL+"/Counter/n/add", "3", nil), 200, "5")
	harness.Expect(t, call(t, ingressURL+"/Counter/n/get", "", nil), 200, "5")
	// The admin API apart from the worker reaches the partition's leader to cancel.
	sent := call(t, ingressURL+"/Sleeper/nap/send", "600000", nil)
	var nap struct {
		InvocationID string `json:"invocationId"`
	}
	if err := json.Unmarshal([]byte(sent.Body), &nap); err != nil || sent.Status != 202 {
		t.Fatalf("send a nap: %d %s", sent.Status, sent.Body)
	}
	if r, err := harness.Send(http.MethodPatch, adminURL+"/invocations/"+nap.InvocationID+"/cancel", "", nil); err != nil || (r.Status != 200 && r.Status != 202) {
		t.Fatalf("cancel through metadatad's admin: %v %+v", err, r)
	}

	// The cluster status (what gorestatectl shows): every daemon registered and alive in the
	// gossip, and the worker leading each partition.
	harness.Eventually(t, 15*time.Second, "every daemon alive in the cluster status", func() bool {
		resp, err := harness.Send(http.MethodGet, "http://"+metaFabric+"/cluster/v1/status", "", nil)
		if err != nil || resp.Status != 200 {
			return false
		}
		var st cluster.Status
		if json.Unmarshal([]byte(resp.Body), &st) != nil || !st.Provisioned || len(st.Nodes) != 3 || len(st.Partitions) != 3 {
			return false
		}
		for _, n := range st.Nodes {
			if n.State != "alive" || n.Generation != 1 {
				return false
			}
		}
		for _, p := range st.Partitions {
			if p.Leader != "worker" {
				return false
			}
		}
		return st.Metadata.Leader == "meta" && len(st.Metadata.Members) == 1
	})

	// The ingress restarts (a second life, generation 2, registers and joins the gossip):
	// requests stamped by its first life are refused by the worker from then on.
	secondCfg := load("ingress", "RESTATE_ROLES=[http-ingress]", "RESTATE_BIND_ADDRESS=127.0.0.1:0",
		"RESTATE_GOSSIP__BIND_ADDRESS=127.0.0.1:0")
	secondCfg.Ingress.BindAddress = "127.0.0.1:0" // the first life still holds its port
	ctx2, cancel2 := context.WithCancel(context.Background())
	var secondErr error
	secondDone := make(chan struct{})
	go func() {
		defer close(secondDone)
		secondErr = ingressd.Run(ctx2, secondCfg, logger)
	}()
	defer func() { cancel2(); <-secondDone }()
	harness.Eventually(t, 15*time.Second, "the worker to refuse the first life of the ingress", func() bool {
		select {
		case <-secondDone:
			t.Fatalf("second life of the ingress stopped: %v", secondErr)
		default:
		}
		resp, err := harness.Send(http.MethodPost, "http://"+workerFabric+rpc.InvokePath, `{}`,
			map[string]string{rpc.SenderHeader: "ingress@1", "content-type": "application/json"})
		return err == nil && resp.Status == http.StatusConflict && strings.Contains(resp.Body, "stale sender ingress@1: node ingress is at generation 2")
	})
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
