#!/usr/bin/env bash
# bench.sh: run the load matrix (cmd/bench) against our engine and, optionally, against the
# reference restate-server, one server at a time, each with a fresh data dir and a fresh
# examples deployment, then print a side-by-side comparison.
#
# Usage: scripts/bench.sh [--reference|--only-reference] [--duration 10s] [--warmup 2s]
#                         [--concurrency 1,16,64] [--workloads greet,add-one-key,add-1000-keys]
#                         [--out DIR] [GORESTATE_BIN]
#
# Environment (flags win over environment):
#   GORESTATE_BIN        our server binary; when unset, cmd/gorestate is built if it exists;
#                        when there is still none, the "ours" run is skipped with a message
#   BENCH_REFERENCE=1    same as --reference
#   RESTATE_SERVER_BIN   reference binary to use instead of the npm install
#   BENCH_CACHE_DIR      npm prefix for the reference (default ~/.cache/gorestate-bench)
#   RESTATE_INGRESS__BIND_ADDRESS (127.0.0.1:8080), RESTATE_ADMIN__BIND_ADDRESS (127.0.0.1:9070),
#   BENCH_FABRIC_PORT (5122), EXAMPLES_LISTEN (127.0.0.1:9080)
#   BENCH_DURATION, BENCH_WARMUP, BENCH_CONCURRENCY, BENCH_WORKLOADS, BENCH_OUT
#   BENCH_MIXED          programs of the mixed workload run after the matrix (default 2000;
#                        0 skips it)
#   BENCH_SOAK           run a soak of this many requests (greet and add-1000-keys
#                        alternating, concurrency 64) instead of the matrix and the mixed run
set -euo pipefail

REF_VERSION=1.7.12
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MODULE_DIR=$(cd "$SCRIPT_DIR/.." && pwd)

reference=${BENCH_REFERENCE:-0}
run_ours=1
duration=${BENCH_DURATION:-10s}
warmup=${BENCH_WARMUP:-2s}
concurrency=${BENCH_CONCURRENCY:-1,16,64}
workloads=${BENCH_WORKLOADS:-greet,add-one-key,add-1000-keys}
mixed=${BENCH_MIXED:-2000}
soak=${BENCH_SOAK:-0}
out=${BENCH_OUT:-/tmp/gorestate-bench-$(date +%Y%m%d-%H%M%S)}
ours_bin=${GORESTATE_BIN:-}

while [[ $# -gt 0 ]]; do
	case $1 in
	--reference) reference=1 ;;
	--only-reference) reference=1 run_ours=0 ;;
	--duration) duration=$2; shift ;;
	--warmup) warmup=$2; shift ;;
	--concurrency) concurrency=$2; shift ;;
	--workloads) workloads=$2; shift ;;
	--out) out=$2; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
	*) ours_bin=$1 ;;
	esac
	shift
done

ingress_addr=${RESTATE_INGRESS__BIND_ADDRESS:-127.0.0.1:8080}
admin_addr=${RESTATE_ADMIN__BIND_ADDRESS:-127.0.0.1:9070}
fabric_port=${BENCH_FABRIC_PORT:-5122}
examples_addr=${EXAMPLES_LISTEN:-127.0.0.1:9080}
ingress_url=http://$ingress_addr
admin_url=http://$admin_addr

mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/gorestate-bench-work.XXXXXX")

# shellcheck source=lib.sh
source "$SCRIPT_DIR/lib.sh"

resolve_ours() {
	if [[ -z $ours_bin && -n $(ls "$MODULE_DIR"/cmd/gorestate/*.go 2>/dev/null) ]]; then
		log "GORESTATE_BIN not set: building cmd/gorestate"
		if (cd "$MODULE_DIR" && go build -o "$work/bin/gorestate" ./cmd/gorestate); then
			ours_bin=$work/bin/gorestate
		else
			log "cmd/gorestate does not build; skipping our engine"
			return 1
		fi
	fi
	if [[ -z $ours_bin ]]; then
		log "GORESTATE_BIN is not set and cmd/gorestate does not exist yet: skipping our engine"
		return 1
	fi
	if [[ ! -x $ours_bin ]]; then
		log "GORESTATE_BIN=$ours_bin is not an executable file: skipping our engine"
		return 1
	fi
}

# bench_server LABEL BINARY: fresh examples deployment + fresh server, run the matrix,
# stop both. Writes $out/LABEL.json and $out/LABEL.txt.
bench_server() {
	local label=$1 bin=$2 data ex_pid srv_pid pids
	require_free_ports "$(port_of "$ingress_addr")" "$(port_of "$admin_addr")" "$fabric_port" "$(port_of "$examples_addr")"

	log "$label: starting examples on $examples_addr"
	"$work/bin/examples" -listen "$examples_addr" -log-level warn >"$out/$label-examples.log" 2>&1 &
	ex_pid=$!
	started_pids+=("$ex_pid")
	wait_until 30 "examples /discover" \
		curl -sf --http2-prior-knowledge -o /dev/null -H "accept: application/vnd.restate.endpointmanifest.v4+json" "http://$examples_addr/discover"

	data=$(mktemp -d "$work/$label-data.XXXXXX")
	log "$label: starting $bin (data dir $data)"
	env RESTATE_BASE_DIR="$data" \
		RESTATE_BIND_IP=127.0.0.1 RESTATE_LISTEN_MODE=tcp \
		RESTATE_BIND_PORT="$fabric_port" RESTATE_ADVERTISED_ADDRESS="http://127.0.0.1:$fabric_port/" \
		RESTATE_INGRESS__BIND_ADDRESS="$ingress_addr" RESTATE_ADMIN__BIND_ADDRESS="$admin_addr" \
		RESTATE_DISABLE_TELEMETRY=true DO_NOT_TRACK=true \
		"$bin" >"$out/$label-server.log" 2>&1 &
	srv_pid=$!
	started_pids+=("$srv_pid")
	if ! wait_until 90 "$label admin health" curl -sf -o /dev/null "$admin_url/health" ||
		! wait_until 60 "$label ingress health" curl -sf -o /dev/null "$ingress_url/restate/health"; then
		log "$label did not become healthy; last server log lines:"
		tail -20 "$out/$label-server.log" >&2
		return 1
	fi

	log "$label: registering deployment http://$examples_addr"
	if ! curl -sS -f -o "$out/$label-deployment.json" "$admin_url/deployments" \
		--json "{\"uri\":\"http://$examples_addr\"}"; then
		log "$label: deployment registration failed"
		cat "$out/$label-deployment.json" >&2 2>/dev/null || true
		return 1
	fi
	# Registration is accepted before every ingress knows the new services.
	wait_until 60 "$label to serve Greeter/greet" curl -sf -o /dev/null "$ingress_url/Greeter/greet" --json '"warmup"'

	pids=$(descendants "$srv_pid")
	if ((soak > 0)); then
		log "$label: soak of $soak requests (server pids $pids)"
		"$work/bin/bench" -ingress "$ingress_url" -soak "$soak" -pid "$pids" -label "$label" \
			-json "$out/$label-soak.json" | tee "$out/$label-soak.txt"
		stop_pid "$srv_pid"
		stop_pid "$ex_pid"
		return
	fi
	log "$label: running the matrix (server pids $pids)"
	"$work/bin/bench" -ingress "$ingress_url" -duration "$duration" -warmup "$warmup" \
		-concurrency "$concurrency" -workloads "$workloads" -pid "$pids" -deployment-pid "$ex_pid" -label "$label" \
		-metrics "http://127.0.0.1:$fabric_port/metrics" -json "$out/$label.json" | tee "$out/$label.txt"
	if ((mixed > 0)); then
		log "$label: running the mixed workload ($mixed programs)"
		"$work/bin/bench" -ingress "$ingress_url" -admin "$admin_url" -mixed "$mixed" -label "$label" \
			-json "$out/$label-mixed.json" | tee "$out/$label-mixed.txt" || log "$label: the mixed workload failed"
	fi

	stop_pid "$srv_pid"
	stop_pid "$ex_pid"
}

build_tools

ran_ours=0
if ((run_ours)) && resolve_ours; then
	bench_server ours "$ours_bin"
	ran_ours=1
fi
ran_ref=0
if ((reference)); then
	resolve_reference
	bench_server reference "$ref_bin"
	ran_ref=1
fi

if ((soak > 0)); then
	log "results in $out"
	exit 0
fi
if ((ran_ours && ran_ref)); then
	echo
	echo "== ours vs reference restate-server $REF_VERSION =="
	"$work/bin/bench" -compare "$out/ours.json,$out/reference.json" | tee "$out/comparison.txt"
	if [[ -f $out/ours-mixed.json && -f $out/reference-mixed.json ]]; then
		echo
		"$work/bin/bench" -compare-mixed "$out/ours-mixed.json,$out/reference-mixed.json" | tee -a "$out/comparison.txt"
	fi
elif ((!ran_ours && !ran_ref)); then
	log "nothing was benchmarked (use --reference to benchmark the reference server)"
fi
log "results in $out"
