#!/usr/bin/env bash
# One SD1.5 UNet call (batch 2 = one CFG step) at 256x256 and 512x512 on the full-size f16
# random-weight checkpoint (the one bench/sd15_txt2img.sh makes, generated here when missing):
# the plain libtorch ops and the fast CPU paths (nn/conv, nn/attention, nn/norm) timed
# alternately in one process (best of REPEAT each; the machine may be shared, so compare the
# ratios), with the per-op breakdown (conv / attention / linear / norm / weight casts) and the
# outputs' difference. Usage: bench/unet_call.sh [REPEAT] [SIZES]   (defaults: 3 256,512)
# OPS=1 times the single heaviest ops instead.
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${1:-3}
SIZES=${2:-256,512}
BIN=${BIN:-build/comfycpp}
WORK=bench/.cache
mkdir -p "$WORK/models/checkpoints"
CKPT="$WORK/models/checkpoints/bench_sd15.safetensors"
if [ ! -f "$CKPT.f16.done" ]; then
  "$BIN" dev make-checkpoint --arch sd15 --size full --dtype f16 --seed 1 -o "$CKPT"
  touch "$CKPT.f16.done"
fi
if [ -n "${OPS:-}" ]; then
  exec "$BIN" dev bench-unet --ops --repeat "$REPEAT"
fi
"$BIN" dev bench-unet --checkpoint "$CKPT" --sizes "$SIZES" --repeat "$REPEAT" --profile --compare
