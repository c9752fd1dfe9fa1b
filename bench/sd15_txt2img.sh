#!/usr/bin/env bash
# Whole-pipeline benchmark: a full-size random-weight SD1.5 checkpoint (made by the project's own
# generator, never downloaded) runs 512x512 text-to-image: wall time, time per sampling step and
# peak RSS. Usage: bench/sd15_txt2img.sh [STEPS] [DTYPE]   (defaults: 4 f16)
# Random weights make noise images; the speed and memory are those of the real model.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-4}
DTYPE=${2:-f16}
BIN=${BIN:-build/comfycpp}
WORK=bench/.cache
mkdir -p "$WORK/models/checkpoints" "$WORK/output"
CKPT="$WORK/models/checkpoints/bench_sd15.safetensors"
if [ ! -f "$CKPT.$DTYPE.done" ]; then
  "$BIN" dev make-checkpoint --arch sd15 --size full --dtype "$DTYPE" --seed 1 -o "$CKPT"
  touch "$CKPT.$DTYPE.done"
fi
run() {
  /usr/bin/time -f "%e s wall, %M KB peak RSS" "$BIN" run bench/workflows/sd15_txt2img.json \
    --base-directory "$WORK" --set "3.steps=$1" 2>&1 | grep -E "s wall|step|error" || true
}
echo "== 1 step (load + text + 1 UNet step with CFG + VAE decode)"
run 1
echo "== $STEPS steps"
run "$STEPS"
echo "time per step = (t[$STEPS] - t[1]) / ($STEPS - 1)"
