#!/usr/bin/env bash
# Stop the registries started by tests/registry/start.sh [DIR], by their pidfiles only.
set -uo pipefail

DIR="${1:-${LONGSHORE_REGISTRY_DIR:-/tmp/longshore-registry}}"

for pidfile in "$DIR"/registry-*.pid "$DIR"/token-*.pid; do
  [ -f "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile"
done
echo "registries in $DIR stopped"
