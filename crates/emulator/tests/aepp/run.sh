#!/usr/bin/env bash
# Runs check.py (the public `aepp` package against the emulator).
# Usage: run.sh [ATSPROV_BINARY] ; PYTHON defaults to python3 and needs `aepp` installed
# (e.g. python3 -m venv /tmp/aeppvenv && /tmp/aeppvenv/bin/pip install aepp; PYTHON=/tmp/aeppvenv/bin/python).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/../../../../target/debug/atsprov}"
python="${PYTHON:-python3}"
out="$(mktemp)"
"$bin" emulator --listen 127.0.0.1:0 --client-id aepp-client --client-secret aepp-secret >"$out" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do
  [ -s "$out" ] && break
  sleep 0.1
done
url="$(head -n1 "$out" | sed -n 's#^listening on ##p')"
[ -n "$url" ] || { echo "emulator did not start" >&2; exit 1; }
"$python" "$here/check.py" "$url"
