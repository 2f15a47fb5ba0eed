#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine, the way CI needs it: installs Debian's
# docker.io when dockerd is missing (and docker-compose for the cluster quickstart), starts dockerd in the background when `docker info`
# fails, and waits (bounded) until it answers. Idempotent: does nothing when an engine runs.
#
# DOCKERD_LOG (default /tmp/gorestate-dockerd.log) receives dockerd's output;
# DOCKER_UP_TIMEOUT (default 60) bounds the wait in seconds.
set -euo pipefail

log=${DOCKERD_LOG:-/tmp/gorestate-dockerd.log}
timeout=${DOCKER_UP_TIMEOUT:-60}

# No buildx here: the legacy builder is the one that works.
unset DOCKER_BUILDKIT

# install PACKAGE...: Debian's packages, retried (the mirror is sometimes slow to answer).
install() {
	echo "docker-up: installing $*"
	export DEBIAN_FRONTEND=noninteractive
	for attempt in 1 2 3; do
		if apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; then
			return 0
		fi
		if [ "$attempt" -eq 3 ]; then
			echo "docker-up: apt-get install $* failed" >&2
			exit 1
		fi
		sleep 5
	done
}

# docker-compose (1.29.2) runs the cluster quickstart (docker-compose.yml, make cluster-up).
if ! command -v docker-compose >/dev/null 2>&1; then
	install docker-compose
fi

if docker info >/dev/null 2>&1; then
	echo "docker-up: engine already running ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
	exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
	install docker.io
fi

# A dockerd killed earlier leaves its pid file; a stale one stops the new daemon at start.
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
	rm -f /var/run/docker.pid
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
	echo "docker-up: starting dockerd (log: $log)"
	# setsid: the daemon outlives this script and the CI step that called it.
	setsid dockerd >>"$log" 2>&1 </dev/null &
fi

deadline=$((SECONDS + timeout))
until docker info >/dev/null 2>&1; do
	if [ "$SECONDS" -ge "$deadline" ]; then
		echo "docker-up: docker info still fails after ${timeout}s; last lines of $log:" >&2
		tail -n 30 "$log" >&2 || true
		exit 1
	fi
	sleep 1
done
echo "docker-up: engine ready ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
