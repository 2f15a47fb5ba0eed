# lib.sh: helpers shared by the benchmark scripts (sourced, not run). The sourcing script
# sets MODULE_DIR (the clusterharness module), REF_VERSION and work (a scratch dir).

# Every process this script starts is recorded here and stopped by PID on exit.
started_pids=()

log() { printf '[%s %s] %s\n' "${0##*/}" "$(date +%H:%M:%S)" "$*" >&2; }

stop_pid() {
	local pid=$1 deadline
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	deadline=$((SECONDS + 15))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid ignored SIGTERM for 15s, sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local pid
	for pid in "${started_pids[@]}"; do stop_pid "$pid"; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_until SECONDS WHAT CMD...: poll CMD until it succeeds or the deadline passes.
wait_until() {
	local limit=$1 what=$2 deadline
	shift 2
	deadline=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			log "timed out after ${limit}s waiting for $what"
			return 1
		fi
		sleep 0.2
	done
}

port_of() { echo "${1##*:}"; }

port_free() { [[ -z $(ss -Htln "sport = :$1") ]]; }

require_free_ports() {
	local port
	for port in "$@"; do
		if ! wait_until 20 "port $port to be free" port_free "$port"; then
			log "port $port is in use by another process; set RESTATE_INGRESS__BIND_ADDRESS, RESTATE_ADMIN__BIND_ADDRESS, BENCH_FABRIC_PORT or EXAMPLES_LISTEN"
			return 1
		fi
	done
}

# descendants PID: PID and all its descendants, comma-separated, so multi-process servers
# are measured whole.
descendants() {
	local pids=$1 frontier=$1 next child
	while [[ -n $frontier ]]; do
		next=
		for child in $(pgrep -P "$frontier" 2>/dev/null || true); do
			pids+=",$child"
			next+="${next:+,}$child"
		done
		frontier=$next
	done
	echo "$pids"
}

build_tools() {
	log "building examples and bench into $work/bin"
	(cd "$MODULE_DIR" && go build -o "$work/bin/examples" ./cmd/examples && go build -o "$work/bin/bench" ./cmd/bench)
}

resolve_reference() {
	if [[ -n ${RESTATE_SERVER_BIN:-} ]]; then
		ref_bin=$RESTATE_SERVER_BIN
	else
		local cache=${BENCH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gorestate-bench}
		ref_bin=$cache/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server
		if [[ ! -x $ref_bin ]]; then
			log "installing @restatedev/restate-server@$REF_VERSION into $cache"
			mkdir -p "$cache"
			npm install --silent --no-audit --no-fund --prefix "$cache" "@restatedev/restate-server@$REF_VERSION" >&2
		fi
	fi
	[[ -x $ref_bin ]] || { log "reference binary $ref_bin missing"; return 1; }
}


# in_private_netns CMD...: run CMD in a new network namespace that has only loopback, when
# this runs as root with unshare: the reference server tries to reach api.github.com when it
# starts (even with telemetry off), and inside such a namespace nothing can leave the
# machine. Without root or unshare, CMD runs here after a warning.
in_private_netns() {
	if [[ $(id -u) == 0 ]] && command -v unshare >/dev/null && command -v ip >/dev/null; then
		unshare --net bash -c 'ip link set lo up && exec "$@"' bash "$@"
	else
		log "not root or no unshare/ip: running without a private network namespace"
		"$@"
	fi
}
