#!/usr/bin/env bash
# failover-reference.sh: the failover kills of the crash suite, side by side: three of our
# nodes (TestPartitionsFailOverBetweenNodes) and three reference restate-server nodes
# (TestReferenceFailover), both under the same idempotent Counter.add load through all
# three ingresses, SIGKILL of a node without the metadata leader and then of the one with
# it, each restarted; 24 partitions (both servers' default), so that every node leads some.
# Runs in a private network namespace (lib.sh, in_private_netns).
# About 3 minutes. RESTATE_SERVER_BIN uses a reference binary instead of the npm install.
set -euo pipefail

REF_VERSION=1.7.12
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MODULE_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/gorestate-failover-reference.XXXXXX")
# shellcheck source=lib.sh
source "$SCRIPT_DIR/lib.sh"

resolve_reference
log "building the crash tests"
(cd "$MODULE_DIR" && go test -c -o "$work/crash.test" ./crash)
# The test builds gorestate itself (go build, offline from the module cache).
cd "$MODULE_DIR/crash"
in_private_netns env RESTATE_SERVER_BIN="$ref_bin" GOPROXY=off GORESTATE_FAILOVER_PARTITIONS=24 \
	"$work/crash.test" -test.v -test.count=1 -test.timeout=20m \
	-test.run '^(TestPartitionsFailOverBetweenNodes|TestReferenceFailover)$' 2>&1 |
	tee "$work/out.txt" | grep -E '^(=== RUN|--- |PASS|FAIL|ok)|killed|longest gap|restarted|joined'
echo
echo "== longest gap between acknowledged calls after SIGKILL (ours, then reference) =="
grep -E 'killed n[0-9] \(' "$work/out.txt" | sed 's/^ *//'
