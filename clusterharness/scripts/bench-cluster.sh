#!/usr/bin/env bash
# bench-cluster.sh: three of our nodes against three reference restate-server nodes on this
# machine, one cluster at a time: every role on each node, replicated metadata and logs,
# replication 2, fsync on, all load through node 1's ingress. Then the ratios.
#
# Usage: scripts/bench-cluster.sh [--duration 10s] [--warmup 2s] [--concurrency 1,64]
#                                 [--workloads greet,add-1000-keys] [--out DIR]
#
# Environment (flags win): GORESTATE_BIN (our binary, required), RESTATE_SERVER_BIN (the
# reference instead of the npm install), BENCH_CACHE_DIR, BENCH_DURATION, BENCH_WARMUP,
# BENCH_CONCURRENCY, BENCH_WORKLOADS, BENCH_OUT. Node i uses fabric 127.0.0.1:5i22, gossip
# 5i23 (ours), ingress i8080 and admin i9070; the examples listen on 127.0.0.1:9080.
set -euo pipefail

REF_VERSION=1.7.12
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MODULE_DIR=$(cd "$SCRIPT_DIR/.." && pwd)

duration=${BENCH_DURATION:-10s}
warmup=${BENCH_WARMUP:-2s}
concurrency=${BENCH_CONCURRENCY:-1,64}
workloads=${BENCH_WORKLOADS:-greet,add-1000-keys}
out=${BENCH_OUT:-/tmp/gorestate-bench-cluster-$(date +%Y%m%d-%H%M%S)}
ours_bin=${GORESTATE_BIN:-}

while [[ $# -gt 0 ]]; do
	case $1 in
	--duration) duration=$2; shift ;;
	--warmup) warmup=$2; shift ;;
	--concurrency) concurrency=$2; shift ;;
	--workloads) workloads=$2; shift ;;
	--out) out=$2; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench-cluster.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
[[ -x $ours_bin ]] || { echo "bench-cluster.sh: set GORESTATE_BIN to our gorestate binary" >&2; exit 2; }

examples_addr=127.0.0.1:9080
metadata_addresses=[http://127.0.0.1:5122,http://127.0.0.1:5222,http://127.0.0.1:5322]

mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/gorestate-bench-cluster.XXXXXX")
# shellcheck source=lib.sh
source "$SCRIPT_DIR/lib.sh"

# start_node LABEL I DATA: start node I of cluster LABEL (ours or reference) in the
# background; its PID is in node_pid.
start_node() {
	local label=$1 i=$2 data=$3 provision=false
	((i == 1)) && provision=true
	local common=(
		RESTATE_NODE_NAME="n$i" RESTATE_BASE_DIR="$data" RESTATE_CLUSTER_NAME=bench
		RESTATE_AUTO_PROVISION=$provision RESTATE_DEFAULT_REPLICATION=2
		RESTATE_BIFROST__DEFAULT_PROVIDER=replicated RESTATE_METADATA_CLIENT__ADDRESSES="$metadata_addresses"
		RESTATE_ADVERTISED_ADDRESS="http://127.0.0.1:5${i}22/"
		RESTATE_INGRESS__BIND_ADDRESS="127.0.0.1:${i}8080" RESTATE_ADMIN__BIND_ADDRESS="127.0.0.1:${i}9070"
		RESTATE_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
	)
	if [[ $label == ours ]]; then
		env "${common[@]}" RESTATE_METADATA_SERVER__TYPE=replicated \
			RESTATE_BIND_ADDRESS="127.0.0.1:5${i}22" RESTATE_GOSSIP__BIND_ADDRESS="127.0.0.1:5${i}23" \
			RESTATE_GOSSIP__SEEDS=[127.0.0.1:5123,127.0.0.1:5223,127.0.0.1:5323] \
			"$ours_bin" >"$out/$label-n$i.log" 2>&1 &
	else
		env "${common[@]}" RESTATE_BIND_IP=127.0.0.1 RESTATE_LISTEN_MODE=tcp RESTATE_BIND_PORT="5${i}22" \
			"$ref_bin" >"$out/$label-n$i.log" 2>&1 &
	fi
	node_pid=$!
	started_pids+=("$node_pid")
}

# Every key of add-one-key's first 64 workers answers: each partition has a leader.
all_partitions_serve() {
	local k
	for k in $(seq 1 64); do
		curl -sf -o /dev/null --max-time 5 "http://127.0.0.1:18080/Counter/warmup-$k/add" --json 0 || return 1
	done
}

# bench_cluster LABEL: fresh examples + a fresh three-node cluster, run the matrix, stop all.
bench_cluster() {
	local label=$1 ex_pid i pids=() all
	require_free_ports 9080 5122 5222 5322 5123 5223 5323 18080 28080 38080 19070 29070 39070

	log "$label: starting examples on $examples_addr"
	"$work/bin/examples" -listen "$examples_addr" -log-level warn >"$out/$label-examples.log" 2>&1 &
	ex_pid=$!
	started_pids+=("$ex_pid")
	wait_until 30 "examples /discover" \
		curl -sf --http2-prior-knowledge -o /dev/null -H "accept: application/vnd.restate.endpointmanifest.v4+json" "http://$examples_addr/discover"

	for i in 1 2 3; do
		start_node "$label" "$i" "$(mktemp -d "$work/$label-n$i.XXXXXX")"
		pids+=("$node_pid")
	done
	for i in 1 2 3; do
		if ! wait_until 120 "$label n$i admin health" curl -sf -o /dev/null "http://127.0.0.1:${i}9070/health" ||
			! wait_until 120 "$label n$i ingress health" curl -sf -o /dev/null "http://127.0.0.1:${i}8080/restate/health"; then
			tail -20 "$out/$label-n$i.log" >&2
			return 1
		fi
	done
	log "$label: registering deployment http://$examples_addr"
	wait_until 60 "$label to register the deployment" \
		curl -sf -o "$out/$label-deployment.json" "http://127.0.0.1:19070/deployments" --json "{\"uri\":\"http://$examples_addr\"}"
	wait_until 60 "$label to serve Greeter/greet" curl -sf -o /dev/null "http://127.0.0.1:18080/Greeter/greet" --json '"warmup"'
	wait_until 120 "$label to serve every partition" all_partitions_serve

	all=
	for i in "${pids[@]}"; do all+="${all:+,}$(descendants "$i")"; done
	log "$label: running the matrix through n1's ingress (server pids $all)"
	"$work/bin/bench" -ingress http://127.0.0.1:18080 -duration "$duration" -warmup "$warmup" \
		-concurrency "$concurrency" -workloads "$workloads" -pid "$all" -deployment-pid "$ex_pid" -label "$label-3-nodes" \
		-json "$out/$label.json" | tee "$out/$label.txt"

	for i in "${pids[@]}"; do stop_pid "$i"; done
	stop_pid "$ex_pid"
}

if [[ -z ${BENCH_TOOLS:-} ]]; then
	# Everything that needs the network first; then this script again, in a private network
	# namespace (lib.sh, in_private_netns), for the measurements.
	build_tools
	resolve_reference
	in_private_netns env BENCH_TOOLS="$work/bin" RESTATE_SERVER_BIN="$ref_bin" BENCH_OUT="$out" \
		BENCH_DURATION="$duration" BENCH_WARMUP="$warmup" BENCH_CONCURRENCY="$concurrency" \
		BENCH_WORKLOADS="$workloads" bash "$0"
	exit
fi
mkdir -p "$work/bin"
cp "$BENCH_TOOLS/examples" "$BENCH_TOOLS/bench" "$work/bin/"
resolve_reference
bench_cluster ours
bench_cluster reference
echo
echo "== three of our nodes vs three restate-server $REF_VERSION nodes (replication 2, one ingress) =="
"$work/bin/bench" -compare "$out/ours.json,$out/reference.json" | tee "$out/comparison.txt"
log "results and node logs in $out"
