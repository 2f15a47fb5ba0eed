# gorestate: one workspace, several role daemons. `make run` starts a single node with
# every role; `make test` is the test suite CI runs.

GO      ?= go
BIN     := $(CURDIR)/bin
MODULES := ./shared/... ./metadatad/... ./workerd/... ./ingressd/... ./clusterharness/...
# Fuzz targets run briefly by `make fuzz` (package:target).
FUZZTIME ?= 10s

.PHONY: all build run examples test test-short fuzz bench bench-reference vet fmt clean

all: build

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ \
		./clusterharness/cmd/gorestate ./clusterharness/cmd/examples ./clusterharness/cmd/bench \
		./metadatad/cmd/metadatad ./workerd/cmd/workerd ./ingressd/cmd/ingressd

# Single node, all roles, Restate's default ports (ingress 8080, admin 9070), data in ./restate-data.
run: build
	$(BIN)/gorestate

# The example services (sdk-go) on 127.0.0.1:9080.
examples: build
	$(BIN)/examples

test:
	$(GO) vet $(MODULES)
	$(GO) test -race -count=1 -timeout 20m $(MODULES)

test-short:
	$(GO) test -short -count=1 $(MODULES)

fuzz:
	$(GO) test ./shared/protocol -run '^$$' -fuzz '^FuzzDecoder$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/protocol -run '^$$' -fuzz '^FuzzUnmarshalMessages$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/ids -run '^$$' -fuzz '^FuzzParseInvocationID$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/bifrost/localloglet -run '^$$' -fuzz '^FuzzRecovery$$' -fuzztime $(FUZZTIME)

# Closed-loop load against our single node.
bench: build
	GORESTATE_BIN=$(BIN)/gorestate EXAMPLES_BIN=$(BIN)/examples BENCH_BIN=$(BIN)/bench \
		bash clusterharness/scripts/bench.sh

# The same matrix against our node and the reference Restate server (npm), with ratios.
bench-reference: build
	GORESTATE_BIN=$(BIN)/gorestate EXAMPLES_BIN=$(BIN)/examples BENCH_BIN=$(BIN)/bench \
		BENCH_REFERENCE=1 bash clusterharness/scripts/bench.sh

vet:
	$(GO) vet $(MODULES)

fmt:
	gofmt -w shared metadatad workerd ingressd clusterharness

clean:
	rm -rf $(BIN)
