#!/usr/bin/env bash
# bench-restart.sh: time from a restart after SIGKILL to the first successful call, once the
# partition logs hold about 100k and about 500k records, for our single node and for the
# reference restate-server (npm), one after the other, each with a fresh data dir, default
# configuration and the example services. Records are counted as the sum of the partitions'
# applied LSNs (ours: the cluster API; the reference: restatectl partitions list). Runs in a
# private network namespace (lib.sh, in_private_netns). Ours runs twice: with the default
# configuration, and with [worker] trim-delay-interval = 0s ("ours-trim0"), which trims each
# log below its durable applied LSN as soon as it moves (the default waits 10 minutes, longer
# than this benchmark). About 8 minutes.
#
# Environment: GORESTATE_BIN (our binary, required), RESTATE_SERVER_BIN / RESTATECTL_BIN (the
# reference instead of the npm install), BENCH_RESTART_TARGETS (default "100000 500000"),
# BENCH_OUT.
set -euo pipefail

REF_VERSION=1.7.12
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MODULE_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
ours_bin=${GORESTATE_BIN:-}
targets=${BENCH_RESTART_TARGETS:-100000 500000}
out=${BENCH_OUT:-/tmp/gorestate-bench-restart-$(date +%Y%m%d-%H%M%S)}
[[ -x $ours_bin ]] || { echo "bench-restart.sh: set GORESTATE_BIN to our gorestate binary" >&2; exit 2; }
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/gorestate-bench-restart.XXXXXX")
# shellcheck source=lib.sh
source "$SCRIPT_DIR/lib.sh"

if [[ -z ${BENCH_TOOLS:-} ]]; then
	build_tools
	resolve_reference
	ctl_bin=${RESTATECTL_BIN:-$(dirname "$ref_bin")/../../restatectl-linux-x64/bin/restatectl}
	if [[ ! -x $ctl_bin ]]; then
		log "installing @restatedev/restatectl@$REF_VERSION"
		npm install --silent --no-audit --no-fund --prefix "$(dirname "$ref_bin")/../../../.." "@restatedev/restatectl@$REF_VERSION" >&2
	fi
	in_private_netns env BENCH_TOOLS="$work/bin" RESTATE_SERVER_BIN="$ref_bin" RESTATECTL_BIN="$ctl_bin" \
		BENCH_OUT="$out" BENCH_RESTART_TARGETS="$targets" bash "$0"
	exit
fi
mkdir -p "$work/bin"
cp "$BENCH_TOOLS/examples" "$BENCH_TOOLS/bench" "$work/bin/"
ref_bin=$RESTATE_SERVER_BIN
ctl_bin=$RESTATECTL_BIN

ingress=http://127.0.0.1:8080
admin=http://127.0.0.1:9070

# records LABEL: the sum of the partitions' applied LSNs.
records() {
	if [[ $1 == ours* ]]; then
		curl -sf http://127.0.0.1:5122/cluster/v1/status |
			python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(max([p["applied_lsn"] for p in x.get("processors") or []] or [0]) for x in d["partitions"]))'
	else
		"$ctl_bin" --address http://127.0.0.1:5122 partitions list 2>/dev/null |
			awk '$3=="Leader" {s+=$6} END {print s+0}'
	fi
}

# start_server LABEL DATA: start the server in the background; its PID is in srv_pid.
start_server() {
	local label=$1 data=$2
	local env=(RESTATE_BASE_DIR="$data" RESTATE_NODE_NAME=n1 RESTATE_DISABLE_TELEMETRY=true DO_NOT_TRACK=true)
	if [[ $label == ours-trim0 ]]; then
		env "${env[@]}" RESTATE_WORKER__TRIM_DELAY_INTERVAL=0s "$ours_bin" >>"$out/$label-server.log" 2>&1 &
	elif [[ $label == ours ]]; then
		env "${env[@]}" "$ours_bin" >>"$out/$label-server.log" 2>&1 &
	else
		env "${env[@]}" RESTATE_BIND_IP=127.0.0.1 RESTATE_LISTEN_MODE=tcp "$ref_bin" >>"$out/$label-server.log" 2>&1 &
	fi
	srv_pid=$!
	started_pids+=("$srv_pid")
}

greet_ok() { curl -sf -o /dev/null --max-time 2 "$ingress/Greeter/greet" --json '"restart"'; }

bench_restart() {
	local label=$1 data target n calls start end ms rss
	require_free_ports 8080 9070 5122 5123 9080
	"$work/bin/examples" -listen 127.0.0.1:9080 -log-level warn >"$out/$label-examples.log" 2>&1 &
	local ex_pid=$!
	started_pids+=("$ex_pid")
	data=$(mktemp -d "$work/$label-data.XXXXXX")
	start_server "$label" "$data"
	wait_until 90 "$label admin health" curl -sf -o /dev/null "$admin/health"
	wait_until 60 "$label to register the examples" curl -sf -o /dev/null "$admin/deployments" --json '{"uri":"http://127.0.0.1:9080"}'
	wait_until 60 "$label to serve greet" greet_ok
	calls=0
	for target in $targets; do
		while (( (n = $(records "$label")) < target )); do
			"$work/bin/bench" -ingress "$ingress" -duration 5s -warmup 0s -concurrency 64 -workloads greet \
				-json "$work/chunk.json" >/dev/null
			calls=$((calls + $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sum(c["requests"] for c in r["cells"]))' "$work/chunk.json")))
		done
		kill -KILL "$srv_pid"
		wait "$srv_pid" 2>/dev/null || true
		start=$(date +%s%N)
		start_server "$label" "$data"
		until greet_ok; do sleep 0.01; done
		end=$(date +%s%N)
		ms=$(((end - start) / 1000000))
		rss=$(($(ps -o rss= -p "$srv_pid") / 1024))
		log "$label: $n records ($calls calls): restart to the first successful call ${ms} ms, RSS ${rss} MiB"
		echo "$label $n $calls $ms $rss" >>"$out/results.txt"
	done
	stop_pid "$srv_pid"
	stop_pid "$ex_pid"
}

bench_restart ours
bench_restart ours-trim0
bench_restart reference
echo
echo "== restart after SIGKILL to the first successful call (single node, default configuration) =="
python3 - "$out/results.txt" <<'EOF'
import sys
rows = [l.split() for l in open(sys.argv[1])]
print(f"{'server':10} {'records':>9} {'calls':>8} {'restart ms':>11} {'rss MiB':>8}")
for label, n, calls, ms, rss in rows:
    print(f"{label:10} {int(n):9d} {int(calls):8d} {int(ms):11d} {int(rss):8d}")
ours = [r for r in rows if r[0] == "ours"]
trim0 = [r for r in rows if r[0] == "ours-trim0"]
ref = [r for r in rows if r[0] == "reference"]
if len(ours) >= 2:
    a, b = int(ours[0][3]), int(ours[-1][3])
    print(f"ours: {ours[-1][1]} records vs {ours[0][1]}: {b} ms vs {a} ms ({(b - a) / max(a, 1) * 100:+.0f}%)")
if len(trim0) >= 2:
    a, b = int(trim0[0][3]), int(trim0[-1][3])
    print(f"ours-trim0: {trim0[-1][1]} records vs {trim0[0][1]}: {b} ms vs {a} ms ({(b - a) / max(a, 1) * 100:+.0f}%)")
if ours and ref:
    print(f"ours / reference at the largest size: {int(ours[-1][3]) / max(int(ref[-1][3]), 1):.2f}x restart time, "
          f"{int(ours[-1][4]) / max(int(ref[-1][4]), 1):.2f}x RSS")
EOF
log "results and logs in $out"
