#!/usr/bin/env bash
# Record every case of record_validation.py (or the ones named as arguments), each against a
# freshly started reference oracle (the real ComfyUI 0.8.0, see ../shared/oracle/README.md), so
# that no case sees the prompt counter or the node cache of another.
#   env: COMFYUI_GIT (required unless $WORK/comfy already holds the extracted tree)
#        ORACLE (default ../shared/oracle)  WORK (default /tmp/validation-oracle)  PORT (default 8188)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ORACLE=${ORACLE:-$ROOT/../shared/oracle}
WORK=${WORK:-/tmp/validation-oracle}
PORT=${PORT:-8188}
INPUTS=${INPUTS:-$ROOT/../shared/fixtures/comfyui-ref/inputs}
OUT=${OUT:-$ROOT/tests/fixtures/validation}

mkdir -p "$WORK/input"
cp "$INPUTS"/*.png "$WORK/input/"
rm -rf "$WORK/output"; mkdir -p "$WORK/output"   # fresh, so SaveImage names are *_00001_.png

if [ $# -gt 0 ]; then CASES=("$@"); else mapfile -t CASES < <(python3 "$HERE/record_validation.py" --list); fi
PID=
stop() { [ -z "$PID" ] || { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; }; }
trap stop EXIT
for c in "${CASES[@]}"; do
  COMFYUI_DIR="$WORK/comfy" ORACLE_OUT="$WORK/output" PORT="$PORT" \
    "$ORACLE/start.sh" --input-directory "$WORK/input" > "$WORK/oracle-$c.log" 2>&1 &
  PID=$!
  for _ in $(seq 120); do curl -sf "127.0.0.1:$PORT/system_stats" > /dev/null && break; sleep 0.5; done
  curl -sf "127.0.0.1:$PORT/system_stats" > /dev/null || { echo "oracle did not start, see $WORK/oracle-$c.log" >&2; exit 1; }
  python3 "$HERE/record_validation.py" --url "http://127.0.0.1:$PORT" --out "$OUT" "$c"
  stop
done
