#!/usr/bin/env bash
# A local cluster in containers (`make cluster-up` / `make cluster-down`), the way the design
# card deploys it: three metadata nodes with the Raft-replicated metadata store (meta1 founds
# the cluster and provisions it, meta2 and meta3 join), one worker, one ingress and the sdk-go
# example services, on a private Docker network. Only loopback ports are published:
#   ingress 127.0.0.1:8080, admin APIs 127.0.0.1:9070-9072, fabric (gorestatectl) 127.0.0.1:5122,5222,5322
#
#   images/cluster.sh up | down | status
# Images come from images/build.sh (`make images`).
set -euo pipefail

label=dev.gorestate.cluster=local
net=gorestate-cluster
metas="http://meta1:5122,http://meta2:5122,http://meta3:5122"
root=$(cd "$(dirname "$0")/.." && pwd)
ctl="$root/bin/gorestatectl -s http://127.0.0.1:5122,http://127.0.0.1:5222,http://127.0.0.1:5322"

run() {
	local name=$1 image=$2
	shift 2
	docker run -d --name "gorestate-$name" --hostname "$name" --network "$net" --network-alias "$name" \
		--label "$label" -e RESTATE_NODE_NAME="$name" -e RESTATE_ADVERTISED_HOST="$name" \
		-e RESTATE_METADATA_CLIENT__ADDRESSES="[$metas]" "$@" "gorestate/$image:dev" >/dev/null
	echo "started $name ($image)"
}

wait_for() { # what url
	for _ in $(seq 1 60); do
		if curl -fs -o /dev/null "$2"; then return 0; fi
		sleep 1
	done
	echo "cluster.sh: timed out waiting for $1 ($2)" >&2
	return 1
}

case ${1:-up} in
up)
	if [ -n "$(docker ps -aq --filter "label=$label")" ]; then
		echo "cluster.sh: a cluster is already there; run 'make cluster-down' first" >&2
		exit 1
	fi
	docker network inspect "$net" >/dev/null 2>&1 || docker network create --label "$label" "$net" >/dev/null
	meta=(-e RESTATE_METADATA_SERVER__TYPE=replicated)
	run meta1 metadatad "${meta[@]}" -e RESTATE_AUTO_PROVISION=true -p 127.0.0.1:9070:9070 -p 127.0.0.1:5122:5122
	run meta2 metadatad "${meta[@]}" -e RESTATE_AUTO_PROVISION=false -p 127.0.0.1:9071:9070 -p 127.0.0.1:5222:5122
	run meta3 metadatad "${meta[@]}" -e RESTATE_AUTO_PROVISION=false -p 127.0.0.1:9072:9070 -p 127.0.0.1:5322:5122
	run worker1 workerd
	run ingress1 ingressd -p 127.0.0.1:8080:8080
	run examples examples
	wait_for "the admin API" http://127.0.0.1:9070/health
	for _ in $(seq 1 30); do
		if curl -fs -o /dev/null http://127.0.0.1:9070/deployments --json '{"uri":"http://examples:9080"}'; then
			echo "registered the example services (http://examples:9080)"
			break
		fi
		sleep 1
	done
	cat <<-MSG

		ingress:  http://127.0.0.1:8080   e.g. curl 127.0.0.1:8080/Greeter/greet --json '"Sarah"'
		admin:    http://127.0.0.1:9070 (meta1), :9071 (meta2), :9072 (meta3)
		status:   $ctl status
		stop:     make cluster-down
	MSG
	;;
down)
	ids=$(docker ps -aq --filter "label=$label")
	if [ -n "$ids" ]; then docker rm -f $ids >/dev/null; fi
	docker network rm "$net" >/dev/null 2>&1 || true
	echo "cluster removed"
	;;
status)
	$ctl status
	;;
*)
	echo "usage: images/cluster.sh up|down|status" >&2
	exit 2
	;;
esac
