package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gorestate.dev/shared/identity"
	"gorestate.dev/shared/schema"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "restate.toml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustLoad(t *testing.T, path string, environ ...string) *Config {
	t.Helper()
	c, err := Load(path, environ)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "")
	host, _ := os.Hostname()
	checks := []struct {
		name      string
		got, want any
	}{
		{"node-name", c.NodeName, host},
		{"cluster-name", c.ClusterName, "localcluster"},
		{"base-dir", c.BaseDir, "./restate-data"},
		{"roles", c.Roles, []string{"http-ingress", "admin", "worker", "log-server", "metadata-server"}},
		{"auto-provision", c.AutoProvision, true},
		{"default-num-partitions", c.DefaultNumPartitions, 8},
		{"default-replication", c.DefaultReplication, Replication(1)},
		{"bind-address", c.BindAddress, "0.0.0.0:5122"},
		{"bind-port", c.BindPort, 5122},
		{"advertised-address", c.AdvertisedAddress, "http://" + host + ":5122/"},
		{"admin.bind-address", c.Admin.BindAddress, "0.0.0.0:9070"},
		{"ingress.bind-address", c.Ingress.BindAddress, "0.0.0.0:8080"},
		{"default-journal-retention", c.DefaultJournalRetention.Duration(), 24 * time.Hour},
		{"default-idempotency-retention", c.DefaultIdempotencyRetention.Duration(), 24 * time.Hour},
		{"default-workflow-completion-retention", c.DefaultWorkflowCompletionRetention.Duration(), 24 * time.Hour},
		{"retry initial", c.DefaultRetryPolicy.InitialInterval.Duration(), 500 * time.Millisecond},
		{"retry factor", c.DefaultRetryPolicy.ExponentiationFactor, 2.0},
		{"retry attempts", c.DefaultRetryPolicy.MaxAttempts, MaxAttempts(70)},
		{"retry on-max", c.DefaultRetryPolicy.OnMaxAttempts, OnMaxAttempts("pause")},
		{"retry max-interval", c.DefaultRetryPolicy.MaxInterval.Duration(), time.Minute},
		{"bifrost", c.Bifrost.DefaultProvider, "local"},
		{"metadata-server", c.MetadataServer.Type, "local"},
		{"metadata-client.type", c.MetadataClient.Type, "replicated"},
		{"metadata-client.addresses", c.MetadataClient.Addresses, []string{c.AdvertisedAddress}},
		{"inactivity-timeout", c.Worker.Invoker.InactivityTimeout.Duration(), time.Minute},
		{"abort-timeout", c.Worker.Invoker.AbortTimeout.Duration(), 10 * time.Minute},
		{"concurrent-invocations-limit", c.Worker.Invoker.ConcurrentInvocationsLimit, 1000},
		{"disable-eager-state", c.Worker.Invoker.DisableEagerState, false},
		{"experimental-enable-protocol-v7", c.ExperimentalEnableProtocolV7, false},
		{"NodeDir", c.NodeDir(), filepath.Join("restate-data", host)},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("Load(\"\", nil) differs from Default()")
	}
	for _, r := range AllRoles() {
		if !c.HasRole(r) {
			t.Errorf("HasRole(%q) = false", r)
		}
	}
	if c.HasRole("chef") {
		t.Error(`HasRole("chef") = true`)
	}
}

const fullFile = `
node-name = "n1"
cluster-name = "prod"
base-dir = "/state"
roles = ["worker", "log-server"]
auto-provision = false
default-num-partitions = 16
default-replication = {node = 2}
advertised-address = "http://n1:5122/"
location = "eu.a"
disable-telemetry = true
experimental-enable-protocol-v7 = true
default-journal-retention = "P2D"
default-idempotency-retention = "12h"
default-workflow-completion-retention = "0s"

[default-retry-policy]
initial-interval = "1s"
exponentiation-factor = 3
max-attempts = 5
on-max-attempts = "kill"
max-interval = "10min"

[admin]
bind-address = "127.0.0.1:19070"

[ingress]
bind-port = 18080

[bifrost]
default-provider = "replicated"

[metadata-server]
type = "replicated"

[metadata-client]
addresses = ["http://n2:5122", "http://n3:5122"]

[worker.invoker]
inactivity-timeout = "0s"
abort-timeout = "PT1M"
disable-eager-state = true
concurrent-invocations-limit = 10

[worker.snapshots]
destination = "s3://bucket/prefix"
`

func TestLoadFileOverrides(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, writeFile(t, fullFile))
	checks := []struct {
		name      string
		got, want any
	}{
		{"node-name", c.NodeName, "n1"},
		{"cluster-name", c.ClusterName, "prod"},
		{"roles", c.Roles, []string{"worker", "log-server"}},
		{"auto-provision", c.AutoProvision, false},
		{"default-num-partitions", c.DefaultNumPartitions, 16},
		{"default-replication", c.DefaultReplication, Replication(2)},
		{"location", c.Location, "eu.a"},
		{"disable-telemetry", c.DisableTelemetry, true},
		{"protocol-v7", c.ExperimentalEnableProtocolV7, true},
		{"journal retention", c.DefaultJournalRetention.Duration(), 48 * time.Hour},
		{"idempotency retention", c.DefaultIdempotencyRetention.Duration(), 12 * time.Hour},
		{"workflow retention", c.DefaultWorkflowCompletionRetention.Duration(), time.Duration(0)},
		{"retry", c.DefaultRetryPolicy, RetryPolicy{Duration(time.Second), 3, 5, "kill", Duration(10 * time.Minute)}},
		{"admin", c.Admin.BindAddress, "127.0.0.1:19070"},
		{"admin port", c.Admin.BindPort, 19070},
		{"ingress", c.Ingress.BindAddress, "0.0.0.0:18080"},
		{"bifrost", c.Bifrost.DefaultProvider, "replicated"},
		{"metadata-server", c.MetadataServer.Type, "replicated"},
		{"metadata-client", c.MetadataClient.Addresses, []string{"http://n2:5122", "http://n3:5122"}},
		{"invoker", c.Worker.Invoker, InvokerOptions{AbortTimeout: Duration(time.Minute), DisableEagerState: true, ConcurrentInvocationsLimit: 10}},
		{"snapshots", c.Worker.Snapshots.Destination, "s3://bucket/prefix"},
		{"NodeDir", c.NodeDir(), "/state/n1"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	if c.HasRole(RoleAdmin) || !c.HasRole(RoleWorker) {
		t.Errorf("HasRole wrong for roles %v", c.Roles)
	}
}

// Every key of [worker.snapshots] loads from the environment, as Restate names them.
func TestSnapshotKeysFromEnv(t *testing.T) {
	c, err := Load("", []string{
		"RESTATE_WORKER__SNAPSHOTS__DESTINATION=s3://snapshots-bucket/cluster-prefix",
		"RESTATE_WORKER__SNAPSHOTS__SNAPSHOT_INTERVAL=10m",
		"RESTATE_WORKER__SNAPSHOTS__SNAPSHOT_INTERVAL_NUM_RECORDS=1000",
		"RESTATE_WORKER__SNAPSHOTS__NUM_RETAINED=3",
		"RESTATE_WORKER__SNAPSHOTS__AWS_ENDPOINT_URL=http://minio:9000",
		"RESTATE_WORKER__SNAPSHOTS__AWS_REGION=local",
		"RESTATE_WORKER__SNAPSHOTS__AWS_ACCESS_KEY_ID=minioadmin",
		"RESTATE_WORKER__SNAPSHOTS__AWS_SECRET_ACCESS_KEY=minioadmin",
		"RESTATE_WORKER__SNAPSHOTS__AWS_ALLOW_HTTP=true",
		"RESTATE_WORKER__TRIM_DELAY_INTERVAL=0s",
	})
	if err != nil {
		t.Fatal(err)
	}
	s := c.Worker.Snapshots
	if s.Destination != "s3://snapshots-bucket/cluster-prefix" || s.SnapshotInterval.Duration() != 10*time.Minute ||
		s.SnapshotIntervalNumRecords != 1000 || s.NumRetained != 3 || s.AWSEndpointURL != "http://minio:9000" ||
		s.AWSRegion != "local" || s.AWSAccessKeyID != "minioadmin" || s.AWSSecretAccessKey != "minioadmin" ||
		!s.AWSAllowHTTP || c.Worker.TrimDelayInterval.Duration() != 0 {
		t.Fatalf("snapshot options %+v, trim delay %v", s, c.Worker.TrimDelayInterval)
	}
	if d := Default(); d.Worker.Snapshots.NumRetained != 1 || d.Worker.TrimDelayInterval.Duration() != 10*time.Minute {
		t.Fatalf("defaults: num-retained %d, trim-delay-interval %v", d.Worker.Snapshots.NumRetained, d.Worker.TrimDelayInterval)
	}
}

func TestLoadEnvOverridesFile(t *testing.T) {
	t.Parallel()
	path := writeFile(t, fullFile)
	c := mustLoad(t, path,
		"RESTATE_CLUSTER_NAME=from-env",
		"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT=1sec",
		"RESTATE_DEFAULT_REPLICATION={node: 3}",
		"RESTATE_ADMIN__BIND_ADDRESS=0.0.0.0:9070",
		"RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS=9",
		"RESTATE_DEFAULT_NUM_PARTITIONS=4",
		"RESTATE_AUTO_PROVISION=TRUE",
		"PATH=/usr/bin",
	)
	if c.ClusterName != "from-env" || c.NodeName != "n1" {
		t.Errorf("cluster/node = %q/%q, want from-env/n1", c.ClusterName, c.NodeName)
	}
	if got := c.Worker.Invoker.InactivityTimeout.Duration(); got != time.Second {
		t.Errorf("inactivity-timeout = %v, want 1s", got)
	}
	if c.DefaultReplication != 3 || c.DefaultRetryPolicy.MaxAttempts != 9 || c.DefaultNumPartitions != 4 || !c.AutoProvision {
		t.Errorf("replication/max-attempts/partitions/auto-provision = %d/%d/%d/%v",
			c.DefaultReplication, c.DefaultRetryPolicy.MaxAttempts, c.DefaultNumPartitions, c.AutoProvision)
	}
	if c.Admin.BindAddress != "0.0.0.0:9070" {
		t.Errorf("admin.bind-address = %q", c.Admin.BindAddress)
	}
	if c.DefaultRetryPolicy.OnMaxAttempts != "kill" {
		t.Errorf("file value lost: on-max-attempts = %q", c.DefaultRetryPolicy.OnMaxAttempts)
	}
}

func TestLoadConfigPathFromEnv(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `cluster-name = "via-env-path"`)
	c := mustLoad(t, "", "RESTATE_CONFIG="+path)
	if c.ClusterName != "via-env-path" {
		t.Errorf("cluster-name = %q", c.ClusterName)
	}
	if _, err := Load("", []string{"RESTATE_CONFIG=" + filepath.Join(t.TempDir(), "missing.toml")}); err == nil {
		t.Error("Load with a missing RESTATE_CONFIG file succeeded")
	}
}

func TestEnvListSyntax(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"[worker,admin]", []string{"worker", "admin"}},
		{"worker,admin", []string{"worker", "admin"}},
		{"[ worker , admin ]", []string{"worker", "admin"}},
		{`["worker", 'admin']`, []string{"worker", "admin"}},
		{"metadata-server", []string{"metadata-server"}},
		{"[worker,http-ingress,log-server,admin,metadata-server]", []string{"worker", "http-ingress", "log-server", "admin", "metadata-server"}},
	}
	for _, tt := range tests {
		c := mustLoad(t, "", "RESTATE_ROLES="+tt.in, "RESTATE_METADATA_CLIENT__ADDRESSES=http://m:5122")
		if !slices.Equal(c.Roles, tt.want) {
			t.Errorf("RESTATE_ROLES=%s: roles = %q, want %q", tt.in, c.Roles, tt.want)
		}
	}
	c := mustLoad(t, "", "RESTATE_METADATA_CLIENT__ADDRESSES=[http://n1:5122/,http://n2:5122/]")
	if want := []string{"http://n1:5122/", "http://n2:5122/"}; !slices.Equal(c.MetadataClient.Addresses, want) {
		t.Errorf("addresses = %q, want %q", c.MetadataClient.Addresses, want)
	}
}

func TestEnvNamesCaseInsensitive(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "", "restate_cluster_name=lower", "Restate_Worker__Invoker__Abort_Timeout=5m")
	if c.ClusterName != "lower" || c.Worker.Invoker.AbortTimeout.Duration() != 5*time.Minute {
		t.Errorf("cluster-name = %q, abort-timeout = %v", c.ClusterName, c.Worker.Invoker.AbortTimeout)
	}
}

// TestHarnessEnvAccepted loads the environment the e2e harnesses give a Restate container
// (PROTOCOL.md §6): options gorestate lacks must be ignored, the rest applied.
func TestHarnessEnvAccepted(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "",
		"RESTATE_CLUSTER_NAME=e2e",
		"RESTATE_AUTO_PROVISION=true",
		"RESTATE_BIFROST__DEFAULT_PROVIDER=replicated",
		"RESTATE_BIFROST__REPLICATED_LOGLET__DEFAULT_LOG_REPLICATION=2",
		"RESTATE_ROLES=[worker,http-ingress,log-server,admin,metadata-server]",
		"RESTATE_METADATA_SERVER__TYPE=replicated",
		"RESTATE_METADATA_CLIENT__ADDRESSES=[http://n1:5122,http://n2:5122]",
		"RESTATE_ADVERTISED_ADDRESS=http://n1:5122/",
		"RESTATE_ADMIN__BIND_ADDRESS=0.0.0.0:9070",
		"RESTATE_INGRESS__BIND_ADDRESS=0.0.0.0:8080",
		"RESTATE_BASE_DIR=/state",
		"RESTATE_NETWORKING__HTTP2_KEEP_ALIVE_INTERVAL=1s",
		"RESTATE_NETWORKING__HTTP2_KEEP_ALIVE_TIMEOUT=1s",
		"RESTATE_DEFAULT_REPLICATION=2",
		"RESTATE_LOG_FILTER=restate=info,warn",
		"RESTATE_LOG_FORMAT=json",
		"RUST_BACKTRACE=full",
		"DO_NOT_TRACK=true",
		"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT=0s",
		"RESTATE_DEFAULT_NUM_PARTITIONS=4",
		"RESTATE_DEFAULT_THREAD_POOL_SIZE=1",
		"RESTATE_WORKER__INVOKER__DISABLE_EAGER_STATE=true",
		"RESTATE_WORKER__NUM_TIMERS_IN_MEMORY_LIMIT=1",
		"RESTATE_WORKER__INVOKER__CONCURRENT_INVOCATIONS_LIMIT=100",
		"RESTATE_SOMETHING_FUTURE=whatever",
	)
	if c.Bifrost.DefaultProvider != "replicated" || c.MetadataServer.Type != "replicated" ||
		c.DefaultReplication != 2 || c.DefaultNumPartitions != 4 || !c.DisableTelemetry ||
		!c.Worker.Invoker.DisableEagerState || c.Worker.Invoker.ConcurrentInvocationsLimit != 100 ||
		c.Worker.Invoker.InactivityTimeout != 0 || c.BaseDir != "/state" ||
		c.Bifrost.ReplicatedLoglet.DefaultLogReplication != 2 {
		t.Errorf("harness values not applied: %+v", c)
	}
}

func TestDoNotTrackYieldsToExplicitSetting(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "", "DO_NOT_TRACK=1", "RESTATE_DISABLE_TELEMETRY=false")
	if c.DisableTelemetry {
		t.Error("RESTATE_DISABLE_TELEMETRY=false did not win over DO_NOT_TRACK")
	}
}

func TestInvalidEnvValueNamesKey(t *testing.T) {
	t.Parallel()
	_, err := Load("", []string{"RESTATE_AUTO_PROVISION=maybe"})
	want := `config: invalid value "maybe" for auto-provision (RESTATE_AUTO_PROVISION): want true or false`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrInvalidValue) {
		t.Errorf("err does not match ErrInvalidValue")
	}
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Key != "auto-provision" || ve.Value != "maybe" {
		t.Errorf("ValueError = %+v", ve)
	}
}

func TestInvalidValuesNameKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  string // RESTATE_* assignment, or "" for a file case
		file string
		key  string
	}{
		{env: "RESTATE_DEFAULT_NUM_PARTITIONS=-1", key: "default-num-partitions"},
		{env: "RESTATE_DEFAULT_NUM_PARTITIONS=eight", key: "default-num-partitions"},
		{env: "RESTATE_DEFAULT_NUM_PARTITIONS=70000", key: "default-num-partitions"},
		{env: "RESTATE_ROLES=[worker,chef]", key: "roles"},
		{env: "RESTATE_ROLES=[]", key: "roles"},
		{env: "RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT=soon", key: "worker.invoker.inactivity-timeout"},
		{env: "RESTATE_WORKER__INVOKER__ABORT_TIMEOUT=-5m", key: "worker.invoker.abort-timeout"},
		{env: "RESTATE_DEFAULT_JOURNAL_RETENTION=1 month", key: "default-journal-retention"},
		{env: "RESTATE_DEFAULT_REPLICATION={zone: 2}", key: "default-replication"},
		{env: "RESTATE_DEFAULT_REPLICATION=0", key: "default-replication"},
		{env: "RESTATE_ADMIN__BIND_ADDRESS=nonsense", key: "admin.bind-address"},
		{env: "RESTATE_INGRESS__BIND_ADDRESS=0.0.0.0:http", key: "ingress.bind-address"},
		{env: "RESTATE_ADMIN__BIND_PORT=70000", key: "admin.bind-port"},
		{env: "RESTATE_ADMIN__DEPLOYMENT_ROUTING_HEADERS=[x-routing,bad header]", key: "admin.deployment-routing-headers"},
		{file: "[admin]\ndeployment-routing-headers = [\"x:y\"]\n", key: "admin.deployment-routing-headers"},
		{env: "RESTATE_BIND_IP=localhost", key: "bind-ip"},
		{env: "RESTATE_DEFAULT_RETRY_POLICY__EXPONENTIATION_FACTOR=fast", key: "default-retry-policy.exponentiation-factor"},
		{env: "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS=-2", key: "default-retry-policy.max-attempts"},
		{env: "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS=0", key: "default-retry-policy.max-attempts"},
		{env: "RESTATE_DEFAULT_RETRY_POLICY__ON_MAX_ATTEMPTS=retry", key: "default-retry-policy.on-max-attempts"},
		{env: "RESTATE_BIFROST__DEFAULT_PROVIDER=kafka", key: "bifrost.default-provider"},
		{env: "RESTATE_METADATA_SERVER__TYPE=etcd", key: "metadata-server.type"},
		{env: "RESTATE_METADATA_CLIENT__TYPE=etcd", key: "metadata-client.type"},
		{env: "RESTATE_METADATA_CLIENT__ADDRESSES=[n1:5122]", key: "metadata-client.addresses"},
		{env: "RESTATE_ROLES=[worker]", key: "metadata-client.addresses"},
		{env: "RESTATE_LISTEN_MODE=unix", key: "listen-mode"},
		{env: "RESTATE_LISTEN_MODE=udp", key: "listen-mode"},
		{env: "RESTATE_LOCATION=a.b.c", key: "location"},
		{env: "RESTATE_ADVERTISED_ADDRESS=n1:5122", key: "advertised-address"},
		{env: "RESTATE_WORKER__SNAPSHOTS__DESTINATION=:bucket", key: "worker.snapshots.destination"},
		{env: "RESTATE_WORKER__SNAPSHOTS__DESTINATION=gs://bucket/prefix", key: "worker.snapshots.destination"},
		{env: "RESTATE_WORKER__SNAPSHOTS__DESTINATION=s3:///prefix", key: "worker.snapshots.destination"},
		{env: "RESTATE_WORKER__SNAPSHOTS__NUM_RETAINED=0", key: "worker.snapshots.num-retained"},
		{env: "RESTATE_WORKER__SNAPSHOTS__AWS_ENDPOINT_URL=minio:9000", key: "worker.snapshots.aws-endpoint-url"},
		{env: "RESTATE_WORKER__TRIM_DELAY_INTERVAL=-1s", key: "worker.trim-delay-interval"},
		{env: "RESTATE_WORKER__INVOKER__CONCURRENT_INVOCATIONS_LIMIT=-1", key: "worker.invoker.concurrent-invocations-limit"},
		{env: "RESTATE_WORKER__INVOKER__DISABLE_EAGER_STATE=yes", key: "worker.invoker.disable-eager-state"},
		{env: "RESTATE_NODE_NAME=a/b", key: "node-name"},
		{env: "RESTATE_CLUSTER_NAME=", key: "cluster-name"},
		{env: "RESTATE_BASE_DIR=", key: "base-dir"},
		{file: `auto-provision = "maybe"`, key: "auto-provision"},
		{file: `default-num-partitions = "8"`, key: "default-num-partitions"},
		{file: `default-num-partitions = 0`, key: "default-num-partitions"},
		{file: `roles = "worker"`, key: "roles"},
		{file: `roles = [1]`, key: "roles"},
		{file: `admin = 3`, key: "admin"},
		{file: "[worker.invoker]\nabort-timeout = \"soon\"", key: "worker.invoker.abort-timeout"},
		{file: "[worker.invoker]\nabort-timeout = 60", key: "worker.invoker.abort-timeout"},
		{file: `default-replication = {zone = 2}`, key: "default-replication"},
		{file: `default-replication = 1.5`, key: "default-replication"},
		{file: "[default-retry-policy]\nexponentiation-factor = \"x\"", key: "default-retry-policy.exponentiation-factor"},
		{file: "[metadata-client]\naddresses = \"http://n1:5122\"", key: "metadata-client.addresses"},
	}
	for _, tt := range tests {
		path := ""
		var environ []string
		if tt.file != "" {
			path = writeFile(t, tt.file)
		} else {
			environ = []string{tt.env}
		}
		_, err := Load(path, environ)
		if err == nil {
			t.Errorf("%s%s: Load succeeded", tt.env, tt.file)
			continue
		}
		if !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%s%s: %v does not match ErrInvalidValue", tt.env, tt.file, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, " for "+tt.key+" (") {
			t.Errorf("%s%s: error %q does not name key %s", tt.env, tt.file, msg, tt.key)
		}
		if tt.file != "" && !strings.Contains(msg, path) {
			t.Errorf("%s: error %q does not name the file", tt.file, msg)
		}
		if tt.env != "" && !strings.Contains(msg, envFor(tt.key)) {
			t.Errorf("%s: error %q does not name the variable %s", tt.env, msg, envFor(tt.key))
		}
	}
}

func TestUnknownTOMLKeysNamed(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `
colour = "red"
[admin.query-engine]
pgsql-bind-address = "0.0.0.0:9071"
pgsql-bind-adress = "0.0.0.0:9071"
[worker]
bogus = 1
[worker.invoker]
abort-timeout = "1m"
[nonsense.table]
x = 1
`)
	_, err := Load(path, nil)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
	msg := err.Error()
	for _, k := range []string{`"colour"`, `"worker.bogus"`, `"admin.query-engine.pgsql-bind-adress"`, `"nonsense.table"`, path} {
		if !strings.Contains(msg, k) {
			t.Errorf("error %q does not name %s", msg, k)
		}
	}
	if strings.Contains(msg, "pgsql-bind-address") || strings.Contains(msg, "abort-timeout") || strings.Contains(msg, "nonsense.table.x") {
		t.Errorf("error %q names Restate's or our own keys, or keys inside an unknown table", msg)
	}
}

// TestRestateKeysAreIgnored: keys of restate-server 1.7 that we do not implement are
// accepted and listed for a warning, not refused.
func TestRestateKeysAreIgnored(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `
rocksdb-total-memory-size = "2.0 GiB"
[admin.query-engine]
pgsql-bind-address = "0.0.0.0:9071"
[worker.storage]
rocksdb-memory-budget = "1 GiB"
[worker.invoker.additional-request-headers]
x-custom = "1"
[worker.invoker]
abort-timeout = "1m"
[[ingress.kafka-clusters]]
name = "my-cluster"
brokers = ["b:9092"]
`)
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"admin.query-engine.pgsql-bind-address", "ingress.kafka-clusters", "rocksdb-total-memory-size",
		"worker.invoker.additional-request-headers.x-custom", "worker.storage.rocksdb-memory-budget"}
	got := append([]string(nil), c.Ignored...)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("ignored %v, want %v", got, want)
	}
	if c.Worker.Invoker.AbortTimeout.Duration() != time.Minute {
		t.Errorf("abort-timeout %v, want 1m", c.Worker.Invoker.AbortTimeout)
	}
}

// TestTopLevelRequestIdentityKey: Restate's top-level spelling of the request identity key,
// in the file or the environment, signs the invoker's requests.
func TestTopLevelRequestIdentityKey(t *testing.T) {
	t.Parallel()
	pemBytes, _, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(key, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, fmt.Sprintf("request-identity-private-key-pem-file = %q", key))
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Worker.Invoker.RequestIdentityPrivateKeyPEMFile != key || len(c.Ignored) != 0 {
		t.Errorf("invoker key %q, ignored %v", c.Worker.Invoker.RequestIdentityPrivateKeyPEMFile, c.Ignored)
	}
	c, err = Load("", []string{"RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE=" + key})
	if err != nil {
		t.Fatal(err)
	}
	if c.Worker.Invoker.RequestIdentityPrivateKeyPEMFile != key {
		t.Errorf("invoker key %q from the environment", c.Worker.Invoker.RequestIdentityPrivateKeyPEMFile)
	}
	if _, err := Load("", []string{"RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE=/nonexistent.pem"}); err == nil || !strings.Contains(err.Error(), "request-identity-private-key-pem-file") {
		t.Errorf("a missing key file: %v", err)
	}
}

// TestSeedConfigurationLoads: the restate.toml example of seed 002 (its placeholders
// filled in) loads.
func TestSeedConfigurationLoads(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `
node-name = "node-2"
cluster-name = "my-cluster"
advertised-address = "http://10.0.0.2:5122/"
auto-provision = false
default-replication = 2

[bifrost]
default-provider = "replicated"

[metadata-server]
type = "replicated"

[metadata-client]
addresses = ["http://10.0.0.1:5122/", "http://10.0.0.2:5122/"]

[admin]
bind-address = "0.0.0.0:9070"

[ingress]
bind-address = "0.0.0.0:8080"

[admin.query-engine]
pgsql-bind-address = "0.0.0.0:9071"
`)
	c, err := Load(path, nil)
	if err != nil {
		t.Fatalf("the seed's restate.toml does not load: %v", err)
	}
	if c.NodeName != "node-2" || c.Bifrost.DefaultProvider != "replicated" || c.MetadataServer.Type != "replicated" || !slices.Equal(c.Ignored, []string{"admin.query-engine.pgsql-bind-address"}) {
		t.Errorf("loaded %q %q %q, ignored %v", c.NodeName, c.Bifrost.DefaultProvider, c.MetadataServer.Type, c.Ignored)
	}
}

func TestSyntaxErrorNamesFile(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "node-name = ")
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v, want a parse error naming %s", err, path)
	}
}

func TestDumpLoadsBack(t *testing.T) {
	t.Parallel()
	orig := mustLoad(t, writeFile(t, fullFile), "RESTATE_LOCATION=us")
	var buf bytes.Buffer
	if err := orig.Dump(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`default-journal-retention = "2d"`, "[worker.invoker]", `abort-timeout = "1m"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("dump lacks %s:\n%s", want, buf.String())
		}
	}
	again := mustLoad(t, writeFile(t, buf.String()))
	if !reflect.DeepEqual(orig, again) {
		t.Errorf("reloaded dump differs:\n%+v\n%+v", orig, again)
	}
	def := Default()
	buf.Reset()
	if err := def.Dump(&buf); err != nil {
		t.Fatal(err)
	}
	if again := mustLoad(t, writeFile(t, buf.String())); !reflect.DeepEqual(def, again) {
		t.Errorf("reloaded default dump differs:\n%+v\n%+v", def, again)
	}
}

// A RESTATE_* variable that names no key is ignored, but said: one of Restate's keys that
// is not implemented here goes to Ignored, anything else (a typo) to UnknownEnv; variables
// of Restate's tools are neither.
func TestUnmatchedEnvIsReported(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "",
		"RESTATE_INGRES__BIND_ADDRESS=127.0.0.1:1",
		"RESTATE_LOG_FILTER=info",
		"RESTATE_NETWORKING__HTTP2_KEEP_ALIVE_INTERVAL=1s",
		"RESTATE_ADMIN_URL=http://127.0.0.1:9070",
		"RESTATE_LOG_LEVEL=debug",
		"RESTATE_INGRESS__BIND_ADDRESS=127.0.0.1:18080",
	)
	if c.Ingress.BindAddress != "127.0.0.1:18080" {
		t.Fatalf("ingress bind address %q", c.Ingress.BindAddress)
	}
	if fmt.Sprint(c.UnknownEnv) != "[RESTATE_INGRES__BIND_ADDRESS]" {
		t.Errorf("unknown variables %v", c.UnknownEnv)
	}
	if fmt.Sprint(c.Ignored) != "[log-filter (RESTATE_LOG_FILTER) networking.http2-keep-alive-interval (RESTATE_NETWORKING__HTTP2_KEEP_ALIVE_INTERVAL)]" {
		t.Errorf("ignored %v", c.Ignored)
	}
}

func TestDeploymentRoutingHeaders(t *testing.T) {
	t.Parallel()
	c, err := Load(writeFile(t, "[admin]\ndeployment-routing-headers = [\"X-Routing\", \"x-tenant\"]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Admin.DeploymentRoutingHeaders, []string{"X-Routing", "x-tenant"}) || len(c.Ignored) != 0 {
		t.Fatalf("routing headers %q, ignored %v", c.Admin.DeploymentRoutingHeaders, c.Ignored)
	}
	c, err = Load("", []string{"RESTATE_ADMIN__DEPLOYMENT_ROUTING_HEADERS=[x-routing]"})
	if err != nil || !slices.Equal(c.Admin.DeploymentRoutingHeaders, []string{"x-routing"}) {
		t.Fatalf("from the environment: %q, %v", c.Admin.DeploymentRoutingHeaders, err)
	}
	if d := Default(); len(d.Admin.DeploymentRoutingHeaders) != 0 {
		t.Fatalf("default routing headers %q", d.Admin.DeploymentRoutingHeaders)
	}
}

// The service defaults the schema is resolved with are the node's configuration keys; with
// none set they are restate-server's builtin ones.
func TestServiceDefaults(t *testing.T) {
	t.Parallel()
	if got, want := Default().ServiceDefaults(), schema.BuiltinDefaults(); got != want {
		t.Errorf("defaults of an unconfigured node = %+v, want %+v", got, want)
	}
	c := mustLoad(t, "",
		"RESTATE_DEFAULT_JOURNAL_RETENTION=2h",
		"RESTATE_DEFAULT_IDEMPOTENCY_RETENTION=3h",
		"RESTATE_DEFAULT_WORKFLOW_COMPLETION_RETENTION=0s",
		"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT=42s",
		"RESTATE_WORKER__INVOKER__ABORT_TIMEOUT=7m",
		"RESTATE_DEFAULT_RETRY_POLICY__INITIAL_INTERVAL=100ms",
		"RESTATE_DEFAULT_RETRY_POLICY__EXPONENTIATION_FACTOR=3",
		"RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS=2",
		"RESTATE_DEFAULT_RETRY_POLICY__ON_MAX_ATTEMPTS=kill",
		"RESTATE_DEFAULT_RETRY_POLICY__MAX_INTERVAL=7s",
	)
	want := schema.Defaults{
		IdempotencyRetention:        3 * time.Hour,
		WorkflowCompletionRetention: 0,
		JournalRetention:            2 * time.Hour,
		InactivityTimeout:           42 * time.Second,
		AbortTimeout:                7 * time.Minute,
		RetryPolicy: schema.RetryPolicy{InitialInterval: 100 * time.Millisecond, ExponentiationFactor: 3,
			MaxAttempts: 2, MaxInterval: 7 * time.Second, OnMaxAttempts: "Kill"},
	}
	if got := c.ServiceDefaults(); got != want {
		t.Errorf("ServiceDefaults = %+v, want %+v", got, want)
	}
}
