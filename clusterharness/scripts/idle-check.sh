#!/usr/bin/env bash
# idle-check.sh: three nodes with every role (replicated metadata and logs, replication 2,
# default failure-detection settings) left idle for IDLE_MINUTES (default 10); fails if any
# partition changed leader or epoch, or any node saw a metadata (Raft) leader change or a
# partition leadership taken up, between the start and the end of the idle time. A false
# failover (a live node declared dead) shows up as one of those.
#
#   GORESTATE_BIN=bin/gorestate GORESTATECTL_BIN=bin/gorestatectl bash clusterharness/scripts/idle-check.sh
#
# Ports: fabric 57N2, gossip 57N3, ingress 5N080, admin 5N070 for node N in 1..3 (loopback).
set -euo pipefail

MODULE_DIR=$(cd "$(dirname "$0")/.." && pwd)
minutes=${IDLE_MINUTES:-10}
bin=${GORESTATE_BIN:?set GORESTATE_BIN (make build: bin/gorestate)}
ctl=${GORESTATECTL_BIN:?set GORESTATECTL_BIN (make build: bin/gorestatectl)}
work=$(mktemp -d "${TMPDIR:-/tmp}/gorestate-idle.XXXXXX")
# shellcheck source=lib.sh
source "$MODULE_DIR/scripts/lib.sh"

fabric() { echo "127.0.0.1:57${1}2"; }
addresses="http://$(fabric 1),http://$(fabric 2),http://$(fabric 3)"
require_free_ports 5712 5713 5722 5723 5732 5733 51080 51070 52080 52070 53080 53070

for i in 1 2 3; do
	env RESTATE_NODE_NAME="n$i" RESTATE_BASE_DIR="$work/data" RESTATE_METADATA_SERVER__TYPE=replicated \
		RESTATE_METADATA_CLIENT__ADDRESSES="[$addresses]" \
		RESTATE_BIFROST__DEFAULT_PROVIDER=replicated RESTATE_DEFAULT_REPLICATION=2 \
		RESTATE_BIND_ADDRESS="$(fabric "$i")" RESTATE_ADVERTISED_ADDRESS="http://$(fabric "$i")" \
		RESTATE_GOSSIP__BIND_ADDRESS="127.0.0.1:57${i}3" \
		RESTATE_GOSSIP__SEEDS="[127.0.0.1:5713,127.0.0.1:5723,127.0.0.1:5733]" \
		RESTATE_INGRESS__BIND_ADDRESS="127.0.0.1:5${i}080" RESTATE_ADMIN__BIND_ADDRESS="127.0.0.1:5${i}070" \
		"$bin" >"$work/n$i.log" 2>&1 &
	started_pids+=("$!")
done

# partitions: the partition list as JSON on one line, without blanks
partitions() {
	local json
	json=$("$ctl" -s "$addresses" --json partitions list) || return 1
	tr -d ' \n' <<<"$json"
}

# every partition led and followed: the placed leader and each placed follower answer
settled() {
	local json
	json=$(partitions) || return 1
	[[ $json == *'"placed_leader"'* ]] || return 1
	! grep -q '"under_replicated"' <<<"$json" || return 1
	[[ $(grep -o '"mode":"leader"' <<<"$json" | wc -l) -eq $(grep -o '"placed_leader"' <<<"$json" | wc -l) ]]
}
if ! wait_until 120 "every partition to have its leader and followers" settled; then
	tail -20 "$work"/n*.log >&2
	exit 1
fi
sleep 10 # let the first leaderships' announcements settle

# observe: the placed leader and the epoch of every processor, and each node's counters of
# leaderships taken up and metadata leader changes
observe() {
	partitions |
		grep -o '"id":[0-9]*,"node":"[^"]*","mode":"[^"]*","epoch":[0-9]*\|"placed_leader":"[^"]*"'
	local i
	for i in 1 2 3; do
		curl -sf "http://$(fabric "$i")/metrics" |
			grep -E '^restate_(partition_leader_changes_total|metadata_leader_changes_total)' |
			sed "s/^/n$i /"
	done
}

before=$(observe) || { log "could not read the partition list and the nodes' metrics"; exit 1; }
log "cluster settled: $(grep -c "\"mode\":\"leader\"" <<<"$before") partitions led, $(grep -c "\"epoch\"" <<<"$before") processors, $(grep -c "^n" <<<"$before") counters; idle for $minutes min"
sleep $((minutes * 60))
after=$(observe) || { log "could not read the partition list and the nodes' metrics after the idle time (a node down?)"; tail -20 "$work"/n*.log >&2; exit 1; }

if [[ $before == "$after" ]]; then
	log "no leader, epoch or metadata leader changed in $minutes idle minutes"
	exit 0
fi
log "changed during the idle time (before / after):"
diff <(echo "$before") <(echo "$after") >&2 || true
exit 1
