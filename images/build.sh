#!/usr/bin/env bash
# Builds the static binaries and the FROM-scratch images gorestate/<name>:dev.
#
#   images/build.sh [name...]      names: metadatad workerd ingressd logserverd gorestate examples minio
#                                  (default: all but minio, which the compose cluster adds)
#
# BIN (default <repo>/bin) receives the binaries; IMAGE_TAG (default dev) is the tag. Every
# image carries the label dev.gorestate.image=<name>:
#   docker images --filter label=dev.gorestate.image
# Uses Docker's legacy builder (DOCKER_BUILDKIT stays unset: there is no buildx here) and a
# context holding only the Dockerfile and the image's binaries, so each build sends a few MB
# (the minio image: MinIO's ~110 MB binary from MINIO_DIR, built by `make minio`).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/bin}
tag=${IMAGE_TAG:-dev}
go=${GO:-go}
minio_dir=${MINIO_DIR:-$HOME/.cache/gorestate-minio}

declare -A pkg=(
	[metadatad]=./metadatad/cmd/metadatad
	[workerd]=./workerd/cmd/workerd
	[ingressd]=./ingressd/cmd/ingressd
	[logserverd]=./logserverd/cmd/logserverd
	[gorestate]=./clusterharness/cmd/gorestate
	[examples]=./clusterharness/cmd/examples
	[minio]=./clusterharness/cmd/mkbucket
)
# Binaries each image holds (from $bin); the first one's package is built from pkg above.
declare -A files=(
	[metadatad]=metadatad
	[workerd]=workerd
	[ingressd]=ingressd
	[logserverd]=logserverd
	[gorestate]="gorestate gorestatectl"
	[examples]=examples
	[minio]="mkbucket"
)
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	names=(metadatad workerd ingressd logserverd gorestate examples)
fi
pkgs=()
for n in "${names[@]}"; do
	if [ -z "${pkg[$n]:-}" ]; then
		echo "build.sh: unknown image $n (want: ${!pkg[*]})" >&2
		exit 2
	fi
	pkgs+=("${pkg[$n]}")
	# gorestatectl travels in the all-in-one image: docker exec <node> gorestatectl status.
	if [ "$n" = gorestate ]; then
		pkgs+=(./metadatad/cmd/gorestatectl)
	fi
	if [ "$n" = minio ] && [ ! -x "$minio_dir/minio" ]; then
		echo "build.sh: no MinIO binary in $minio_dir: run 'make minio' first" >&2
		exit 1
	fi
done

mkdir -p "$bin"
cd "$root"
CGO_ENABLED=0 "$go" build -trimpath -o "$bin/" "${pkgs[@]}"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
for n in "${names[@]}"; do
	mkdir "$stage/$n"
	cp "images/$n/Dockerfile" "$stage/$n/"
	for f in ${files[$n]}; do cp "$bin/$f" "$stage/$n/"; done
	if [ "$n" = minio ]; then
		cp "$minio_dir/minio" "$stage/$n/"
	fi
	# The legacy builder prints a deprecation notice on stderr: show stderr only on failure.
	if ! id=$(env -u DOCKER_BUILDKIT docker build -q --label dev.gorestate.project=gorestate \
		-t "gorestate/$n:$tag" "$stage/$n" 2>"$stage/$n.err"); then
		cat "$stage/$n.err" >&2
		echo "build.sh: docker build of gorestate/$n:$tag failed" >&2
		exit 1
	fi
	echo "gorestate/$n:$tag ${id#sha256:}"
done
# A rebuilt image leaves the previous one dangling (untagged); drop ours.
docker image prune -f --filter label=dev.gorestate.image >/dev/null
