package crash

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorestate.dev/clusterharness/harness"
)

// seedConfig is the restate.toml example of seed 002 ("기본 설정 예시"), verbatim but for
// its placeholders, which fmt fills: node name, cluster name, advertised address, the
// metadata servers' addresses, and the admin, ingress and pgsql bind addresses.
const seedConfig = `# 노드별로 고유한 이름 필요
node-name = %q

# 모든 노드가 동일한 클러스터 이름 사용
cluster-name = %q

# 노드 간 충돌이 없는 광고 주소
advertised-address = %q

# 하나의 노드만 auto-provision 가능
auto-provision = false

# 로그 및 파티션 복제 수 설정 (예: 2)
default-replication = 2

[bifrost]
# 분산형 배포에서는 반드시 replicated 사용
default-provider = "replicated"

[metadata-server]
# 고가용성을 위한 replicated 설정
type = "replicated"

[metadata-client]
# metadata-server 역할을 가진 노드의 주소 목록
addresses = [%s]

[admin]
bind-address = %q

[ingress]
bind-address = %q

[admin.query-engine]
pgsql-bind-address = %q
`

// TestSeedConfigurationCluster starts three nodes, each with seed 002's restate.toml, provisions
// the cluster with gorestatectl as the seed does, and serves calls through every ingress.
// The harness adds only what the file cannot hold: data directories and gossip ports.
func TestSeedConfigurationCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	bins, err := daemonBins()
	if err != nil {
		t.Fatalf("build the daemons: %v", err)
	}
	names := []string{"n1", "n2", "n3"}
	var nodes []*Server
	var fabrics []string
	for range names {
		s := NewServer(t, serverBin)
		nodes = append(nodes, s)
		fabrics = append(fabrics, fmt.Sprintf("%q", s.Fabric))
	}
	gossip := freePorts(t, 3)
	pgsql := freePorts(t, 3)
	for i, s := range nodes {
		path := filepath.Join(t.TempDir(), "restate.toml")
		file := fmt.Sprintf(seedConfig, names[i], "seed-cluster", s.Fabric, strings.Join(fabrics, ", "),
			strings.TrimPrefix(s.Admin, "http://"), strings.TrimPrefix(s.Ingress, "http://"), pgsql[i])
		if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
		var seeds []string
		for j, g := range gossip {
			if j != i {
				seeds = append(seeds, g)
			}
		}
		s.SetName(names[i])
		// NewServer's node name and default partition count give way to the file's.
		s.Setenv("RESTATE_CONFIG="+path, "RESTATE_NODE_NAME="+names[i], "RESTATE_DEFAULT_NUM_PARTITIONS=4",
			"RESTATE_GOSSIP__BIND_ADDRESS="+gossip[i], "RESTATE_GOSSIP__SEEDS=["+strings.Join(seeds, ",")+"]")
		s.Launch()
	}
	harness.Eventually(t, 30*time.Second, "the metadata servers to answer", func() bool {
		out, err := exec.Command(bins[1], "-s", nodes[0].Fabric, "status").CombinedOutput()
		return err == nil || strings.Contains(string(out), "not provisioned")
	})
	out, err := exec.Command(bins[1], "-s", nodes[0].Fabric, "provision", "--yes").CombinedOutput()
	if err != nil {
		t.Fatalf("gorestatectl provision: %v\n%s", err, out)
	}
	for _, s := range nodes {
		s.WaitReady()
		if len(s.grepLogs("admin.query-engine.pgsql-bind-address")) == 0 {
			t.Errorf("%s did not log the ignored pgsql-bind-address", s.Fabric)
		}
	}
	harness.Register(t, nodes[0].Admin, harness.StartExamples(t))
	for round := range 3 {
		for i, s := range nodes {
			harness.Eventually(t, 30*time.Second, "a greeting through "+names[i], func() bool {
				resp, err := harness.Send(http.MethodPost, s.Ingress+"/Greeter/greet", fmt.Sprintf(`"%s-%d"`, names[i], round), map[string]string{"content-type": "application/json"})
				return err == nil && resp.Status == 200 && resp.Body == fmt.Sprintf(`"Hello %s-%d!"`, names[i], round)
			})
		}
	}
	status, err := exec.Command(bins[1], "-s", nodes[0].Fabric, "logs", "list").CombinedOutput()
	if err != nil || !strings.Contains(string(status), "replicated") {
		t.Errorf("logs list after provisioning with the seed's configuration: %v\n%s", err, status)
	}
}
