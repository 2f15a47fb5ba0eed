# gorestate: one workspace, several role daemons. `make run` starts a single node with
# every role; `make test` is the test suite CI runs.

GO      ?= go
BIN     := $(CURDIR)/bin
MODULES := ./shared/... ./metadatad/... ./workerd/... ./ingressd/... ./logserverd/... ./clusterharness/...
# Fuzz targets run briefly by `make fuzz` (package:target).
FUZZTIME ?= 10s

.PHONY: all build run examples test minio test-short fuzz bench bench-reference vet fmt clean \
	images docker-up test-containers docker-clean cluster-up cluster-down bench-metadata \
	bench-log bench-query bench-soak test-log-faults bench-cluster test-failover-retained failover-reference bench-restart test-idle \
	test-ts-sdk test-chaos

all: build

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ \
		./clusterharness/cmd/gorestate ./clusterharness/cmd/examples ./clusterharness/cmd/bench \
		./metadatad/cmd/metadatad ./workerd/cmd/workerd ./ingressd/cmd/ingressd ./logserverd/cmd/logserverd \
		./metadatad/cmd/gorestatectl ./clusterharness/cmd/mkbucket

# Single node, all roles, Restate's default ports (ingress 8080, admin 9070), data in ./restate-data.
run: build
	$(BIN)/gorestate

# The example services (sdk-go) on 127.0.0.1:9080.
examples: build
	$(BIN)/examples

test: minio
	$(GO) vet $(MODULES)
	GORESTATE_REQUIRE_MINIO=1 $(GO) test -race -count=1 -timeout 20m $(MODULES)

# MinIO, the S3 server the snapshot tests run against, built from the Go module proxy once
# (a few minutes and ~1.5 GB of memory the first time) into ~/.cache/gorestate-minio.
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_DIR     ?= $(HOME)/.cache/gorestate-minio
minio:
	@test -x $(MINIO_DIR)/minio || { echo "building MinIO $(MINIO_VERSION) into $(MINIO_DIR) (first time only)"; \
		mkdir -p $(MINIO_DIR) && cd /tmp && CGO_ENABLED=0 GOBIN=$(MINIO_DIR) $(GO) install -trimpath -ldflags='-s -w' \
		github.com/minio/minio@$(MINIO_VERSION); }

test-short:
	$(GO) test -short -count=1 $(MODULES)

fuzz:
	$(GO) test ./shared/protocol -run '^$$' -fuzz '^FuzzDecoder$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/protocol -run '^$$' -fuzz '^FuzzUnmarshalMessages$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/ids -run '^$$' -fuzz '^FuzzParseInvocationID$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/bifrost/localloglet -run '^$$' -fuzz '^FuzzRecovery$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/bifrost/localloglet -run '^$$' -fuzz '^FuzzMetaFile$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/bifrost/localloglet -run '^$$' -fuzz '^FuzzSummary$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/bifrost/wire -run '^$$' -fuzz '^FuzzUnmarshal$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/rowscan -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/bifrost/wire -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime $(FUZZTIME)
	$(GO) test ./logserverd/server -run '^$$' -fuzz '^FuzzRequests$$' -fuzztime $(FUZZTIME)
	$(GO) test ./logserverd/logstore -run '^$$' -fuzz '^FuzzWALRecord$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/membership -run '^$$' -fuzz '^FuzzParseSender$$' -fuzztime $(FUZZTIME)
	$(GO) test ./metadatad/raftstore -run '^$$' -fuzz '^FuzzDecodeCommand$$' -fuzztime $(FUZZTIME)
	$(GO) test ./metadatad/raftstore -run '^$$' -fuzz '^FuzzDecodeSnapshot$$' -fuzztime $(FUZZTIME)
	$(GO) test ./metadatad/raftstore -run '^$$' -fuzz '^FuzzDecodeLog$$' -fuzztime $(FUZZTIME)
	$(GO) test ./workerd/store -run '^$$' -fuzz '^FuzzImport$$' -fuzztime $(FUZZTIME)
	$(GO) test ./workerd/store -run '^$$' -fuzz '^FuzzStatus$$' -fuzztime $(FUZZTIME)
	$(GO) test ./workerd/store -run '^$$' -fuzz '^FuzzJournalEntry$$' -fuzztime $(FUZZTIME)
	$(GO) test ./workerd/store -run '^$$' -fuzz '^FuzzInboxPatch$$' -fuzztime $(FUZZTIME)
	$(GO) test ./workerd/store -run '^$$' -fuzz '^FuzzJournalEvent$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/logrecord -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/protocol -run '^$$' -fuzz '^FuzzInputTraceContext$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/protocol -run '^$$' -fuzz '^FuzzAgainstReference$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/h2c -run '^$$' -fuzz '^FuzzClampConn$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/bifrost/localloglet -run '^$$' -fuzz '^FuzzRecordDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/ids -run '^$$' -fuzz '^FuzzParseAwakeableID$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ingressd/ingress -run '^$$' -fuzz '^FuzzParsePath$$' -fuzztime $(FUZZTIME)
	$(GO) test ./metadatad/admin -run '^$$' -fuzz '^FuzzParseManifest$$' -fuzztime $(FUZZTIME)
	$(GO) test ./metadatad/admin -run '^$$' -fuzz '^FuzzScanSQL$$' -fuzztime $(FUZZTIME)
	$(GO) test ./metadatad/admin -run '^$$' -fuzz '^FuzzRestartQuery$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/config -run '^$$' -fuzz '^FuzzParseJiffDuration$$' -fuzztime $(FUZZTIME)
	$(GO) test ./metadatad/admin -run '^$$' -fuzz '^FuzzRuleBatch$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/serdejson -run '^$$' -fuzz '^FuzzString$$' -fuzztime $(FUZZTIME)

# Closed-loop load against our single node.
bench: build
	GORESTATE_BIN=$(BIN)/gorestate EXAMPLES_BIN=$(BIN)/examples BENCH_BIN=$(BIN)/bench \
		bash clusterharness/scripts/bench.sh

# The same matrix against our node and the reference Restate server (npm), with ratios.
# A soak of BENCH_SOAK requests (default 1,000,000; greet and add-1000-keys alternating at
# concurrency 64) against our single node: throughput and RSS every 10 s, first vs last minute.
bench-soak: build
	GORESTATE_BIN=$(BIN)/gorestate EXAMPLES_BIN=$(BIN)/examples BENCH_BIN=$(BIN)/bench \
		BENCH_SOAK=$${BENCH_SOAK:-1000000} bash clusterharness/scripts/bench.sh

bench-reference: build
	GORESTATE_BIN=$(BIN)/gorestate EXAMPLES_BIN=$(BIN)/examples BENCH_BIN=$(BIN)/bench \
		BENCH_REFERENCE=1 bash clusterharness/scripts/bench.sh

# Three of our nodes against three reference restate-server nodes (npm) on this machine:
# every role on each node, replicated metadata and logs, replication 2, all load through
# node 1's ingress; greet and add-1000-keys at concurrency 1 and 64, then the ratios. About
# 3 minutes. BENCH_DURATION, BENCH_CONCURRENCY, BENCH_WORKLOADS override the matrix.
bench-cluster: build
	GORESTATE_BIN=$(BIN)/gorestate bash clusterharness/scripts/bench-cluster.sh

# Restart after SIGKILL to the first successful call with ~100k and ~500k log records, our
# single node and the reference restate-server (npm), with RSS (about 6 minutes).
bench-restart: build
	GORESTATE_BIN=$(BIN)/gorestate bash clusterharness/scripts/bench-restart.sh

# Compare-and-set writes on a 3-member Raft metadata cluster (in-process, loopback): writes/s
# and p99 per writer count.
bench-metadata:
	$(GO) test ./metadatad/raftstore -run '^$$' -bench BenchmarkCASThreeMembers -benchtime 3s

# Loglet appends, closed loop, one 256-byte record each: the local loglet (fsync) against
# the replicated loglet on 3 logserverd processes with replication 2 (sequencer in the
# bench, h2c on loopback) at 1, 16 and 64 appenders, in 5 rounds that alternate the two
# loglets, with each round's ratios, their medians and where the time goes; then the log
# servers' RSS while 2,000,000 records are appended. BENCH_LOG_FLAGS passes flags (e.g.
# -rounds 9 -duration 3s). About 2 minutes after the build.
BENCH_LOG_FLAGS ?=
bench-log: build
	$(GO) build -o $(BIN)/benchlog ./clusterharness/cmd/benchlog
	$(BIN)/benchlog -logserverd $(BIN)/logserverd $(BENCH_LOG_FLAGS)

# The SQL the restate CLI sends for `invocations list` (and --all, describe) against a store
# of 1,000,000 retained invocations, with push-down, and against 100,000 with and without it.
# BENCH_QUERY_FLAGS passes flags (e.g. -n 200000). About 1 to 2 minutes.
BENCH_QUERY_FLAGS ?=
bench-query:
	$(GO) run ./clusterharness/cmd/benchquery $(BENCH_QUERY_FLAGS)

# The loglet suite's append-and-seal race 1000 times with random delays, on replicated
# loglets over 3 in-process log servers behind a fault-injecting network (lost requests and
# answers, late, duplicated and reordered messages; servers killed and restarted from
# disk). make test runs it 20 times. About a minute.
test-log-faults:
	GORESTATE_LOGLETTEST_ROUNDS=1000 GORESTATE_LOGLETTEST_MAX_DELAY=2ms \
		$(GO) test -race -count=1 -timeout 10m -run '^TestAppendConcurrentWithSealUnderFaults$$' \
		./clusterharness/logcluster/inprocess

# Services written with Restate's TypeScript SDK (1.17.2, pinned in package-lock.json)
# against the gorestate binary. Installs the SDK and a Node.js 22 (the SDK needs it) from
# npm into clusterharness/sdkcompat/ts first. About 10 s after the download.
test-ts-sdk:
	cd clusterharness/sdkcompat/ts && npm ci --no-audit --no-fund
	$(GO) test -count=1 -v -run '^TestTypeScriptSDK$$' ./clusterharness/sdkcompat

# The failover of the three-node crash test with 100,000 completed invocations retained in
# the partition stores first (a few minutes of loading).
# Three nodes with every role (replicated metadata and logs, replication 2, default failure
# detection) left idle for IDLE_MINUTES (default 10): fails if any partition leader or
# epoch, or any metadata leader, changed meanwhile (a false failover). About 11 minutes.
test-idle: build
	GORESTATE_BIN=$(BIN)/gorestate GORESTATECTL_BIN=$(BIN)/gorestatectl bash clusterharness/scripts/idle-check.sh

test-failover-retained: build
	GORESTATE_RETAINED=100000 $(GO) test -count=1 -timeout 40m -v \
		-run '^TestFailoverWithManyRetainedInvocations$$' ./clusterharness/crash

# The failover kills side by side: three of our nodes, then three reference restate-server
# nodes (npm), the same load and kills (clusterharness/scripts/failover-reference.sh).
failover-reference:
	bash clusterharness/scripts/failover-reference.sh

# Three nodes with every role under Counter.add and MixedProgram.run load while a seeded
# schedule of faults hits them (SIGKILL of one, two or all nodes, SIGSTOP, a wiped data
# directory), then checks that every acknowledged request took effect exactly once, nothing
# is left unfinished and the replicas converge. CHAOS_DURATION (default 5m) bounds the
# faults; CHAOS_SEED replays a schedule. Takes CHAOS_DURATION plus about a minute.
test-chaos: minio
	GORESTATE_CHAOS_DURATION=$${CHAOS_DURATION:-5m} GORESTATE_CHAOS_SEED=$${CHAOS_SEED:-} \
		$(GO) test -count=1 -timeout 60m -v -run '^TestChaos$$' ./clusterharness/crash

vet:
	$(GO) vet $(MODULES)

# FROM-scratch images of the daemons, the single node and the examples, built from static
# binaries: gorestate/{metadatad,workerd,ingressd,logserverd,gorestate,examples}:dev, each labeled
# dev.gorestate.image=<name> (docker images --filter label=dev.gorestate.image).
images:
	BIN=$(BIN) GO=$(GO) bash images/build.sh

# Install (Debian's docker.io) and start a Docker engine unless one answers.
docker-up:
	bash images/docker-up.sh

# Only the container suite (also part of `make test`); it builds the images itself.
test-containers:
	GORESTATE_REQUIRE_DOCKER=1 $(GO) test -race -count=1 -timeout 20m -p 1 -v ./clusterharness/containers/...

# The cluster quickstart of seed 002 (docker-compose.yml): three nodes with every role, MinIO
# for snapshots and the example services, registered; ingress on 127.0.0.1:8080/28080/38080,
# admin on 9070/29070/39070. Needs `make docker-up` (Docker and docker-compose).
cluster-up: minio
	BIN=$(BIN) GO=$(GO) MINIO_DIR=$(MINIO_DIR) bash images/cluster.sh up

cluster-down:
	bash images/cluster.sh down

# Remove containers and networks left by interrupted container tests (testcontainers labels
# everything it creates with org.testcontainers=true).
docker-clean:
	docker ps -aq --filter label=org.testcontainers=true | xargs -r docker rm -f
	docker network prune -f --filter label=org.testcontainers=true

fmt:
	gofmt -w shared metadatad workerd ingressd logserverd clusterharness

clean:
	rm -rf $(BIN)
