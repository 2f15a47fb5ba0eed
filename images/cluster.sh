#!/usr/bin/env bash
# The cluster quickstart of seed 002 in containers (`make cluster-up` / `make cluster-down`):
# docker-compose.yml at the repository root, three identical nodes with every role
# (replicated metadata, replicated logs with replication 2), MinIO for the snapshots and the
# sdk-go example services, which `up` registers. Only loopback ports are published:
#   ingress 127.0.0.1:8080, 28080, 38080   admin 9070, 29070, 39070   fabric 5122, 25122, 35122
#   MinIO 127.0.0.1:9000 (console 9001); the examples only inside the network (http://examples:9080)
#
#   images/cluster.sh up | down | status
# `up` builds the images it needs first (images/build.sh gorestate examples minio; the MinIO
# binary comes from `make minio`). Debian's docker-compose 1.29.2: `make docker-up` installs it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
compose=(docker-compose -p gorestate -f "$root/docker-compose.yml")

wait_for() { # what url [seconds]
	local deadline=$((SECONDS + ${3:-120}))
	until curl -fs -o /dev/null "$2"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "cluster.sh: timed out waiting for $1 ($2)" >&2
			return 1
		fi
		sleep 1
	done
}

if ! command -v docker-compose >/dev/null 2>&1; then
	echo "cluster.sh: docker-compose is missing: run 'make docker-up' first" >&2
	exit 1
fi

case ${1:-up} in
up)
	bash "$root/images/build.sh" gorestate examples minio
	"${compose[@]}" up -d
	for port in 9070 29070 39070; do
		if ! wait_for "the admin API on 127.0.0.1:$port" "http://127.0.0.1:$port/health"; then
			"${compose[@]}" logs --tail 30 >&2
			exit 1
		fi
	done
	for port in 8080 28080 38080; do
		wait_for "the ingress on 127.0.0.1:$port" "http://127.0.0.1:$port/restate/health"
	done
	deadline=$((SECONDS + 60))
	until curl -fs -o /dev/null http://127.0.0.1:9070/deployments --json '{"uri":"http://examples:9080"}'; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "cluster.sh: could not register http://examples:9080" >&2
			exit 1
		fi
		sleep 1
	done
	echo "registered the example services (http://examples:9080)"
	cat <<-MSG

		ingress:  http://127.0.0.1:8080 (node1), :28080 (node2), :38080 (node3)
		          curl 127.0.0.1:8080/Greeter/greet --json '"Sarah"'
		admin:    http://127.0.0.1:9070, :29070, :39070
		status:   docker-compose -p gorestate exec node1 gorestatectl status
		MinIO:    http://127.0.0.1:9001 (console, minioadmin / minioadmin), bucket "restate"
		stop:     make cluster-down
	MSG
	;;
down)
	"${compose[@]}" down -v --remove-orphans
	echo "cluster removed"
	;;
status)
	"${compose[@]}" exec -T node1 gorestatectl status
	;;
*)
	echo "usage: images/cluster.sh up|down|status" >&2
	exit 2
	;;
esac
