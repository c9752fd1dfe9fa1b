#!/usr/bin/env bash
# `make bench`: comfy.cpp against PyTorch eager fp32 on the same SD1.5 state dict, in one run.
#
#   bench/run.sh                      every figure
#   ONLY=unet|vae|clip|load|memory|server|overhead bench/run.sh    one group (comma-separated ok)
#   REPEAT=N      runs per timed stage, the best is kept (default 1)
#   INSTALLED=0   skip PyTorch "as installed" (1 thread, the system BLAS: slow; default 1)
#
# What runs (bench/README.md has the details):
#   1. the checkpoint: bench/.cache/models/checkpoints/bench_sd15.safetensors, a full-size f16
#      random-weight SD1.5 made by `comfycpp dev make-checkpoint` once, cached (free disk checked);
#   2. the inputs: bench/.cache/io/inputs/*.npy, seeded, made by bench/reference/sd15_torch.py;
#   3. `comfycpp dev bench` (our side) and bench/reference/sd15_torch.py twice: "best" (threads =
#      cores, AVX-512 kernels where the CPU has them, OpenBLAS on the right core type instead of
#      the system's libblas) and "installed" (the environment as it is);
#   4. bench/report.py: parity of every stage's output (no ratio when outputs differ), the table,
#      and bench/results/<date>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ONLY=${ONLY:-all}
REPEAT=${REPEAT:-1}
INSTALLED=${INSTALLED:-1}
BIN=${BIN:-build/comfycpp}
PY=${PY:-/usr/bin/python3}
WORK=bench/.cache
IO=$WORK/io
CKPT=$WORK/models/checkpoints/bench_sd15.safetensors
mkdir -p "$WORK/models/checkpoints" "$IO" bench/results
rm -rf "$IO"/*.json "$IO"/*.log "$IO/comfycpp" "$IO"/torch-*  # never a stale output in a parity check

want() { [ "$ONLY" = all ] || [[ ",$ONLY," == *",$1,"* ]]; }

# --- free disk, then the checkpoint (2.1 GB) ------------------------------------------------
avail_mb=$(df -Pm "$WORK" | awk 'NR==2 {print $4}')
need_mb=1500  # outputs, inputs and the OpenBLAS package
[ -f "$CKPT.f16.done" ] || need_mb=$((need_mb + 2300))
if [ "$avail_mb" -lt "$need_mb" ]; then
  echo "bench: $avail_mb MB free under $WORK, $need_mb MB needed" >&2
  exit 1
fi
if [ ! -f "$CKPT.f16.done" ]; then
  "$BIN" dev make-checkpoint --arch sd15 --size full --dtype f16 --seed 1 -o "$CKPT"
  touch "$CKPT.f16.done"
fi

# --- PyTorch at its best: OpenBLAS (Debian's package, unpacked here, never installed) -------
BLAS_DIR=$WORK/openblas/usr/lib/x86_64-linux-gnu/openblas-pthread
if [ ! -f "$BLAS_DIR/libblas.so.3" ]; then
  (mkdir -p "$WORK/openblas/deb" && cd "$WORK/openblas/deb" && apt-get download libopenblas0-pthread >/dev/null 2>&1 &&
   dpkg-deb -x libopenblas0-pthread_*.deb ..) || echo "bench: could not fetch OpenBLAS; PyTorch best uses the system BLAS" >&2
fi
# OpenMP threads that spin at barriers while the machine is shared lose most of their time (both
# sides: 2-6x on a 2-core machine at load 5); passive waiting is the default here, for comfycpp and
# PyTorch best alike. OMP_WAIT_POLICY=active bench/run.sh restores spinning.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
best_env=(OMP_NUM_THREADS="$(nproc)")
if grep -q avx512f /proc/cpuinfo && grep -q avx512bw /proc/cpuinfo; then
  best_env+=(ATEN_CPU_CAPABILITY=avx512 OPENBLAS_CORETYPE=SKYLAKEX)
elif grep -q AuthenticAMD /proc/cpuinfo; then
  best_env+=(ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=ZEN)
else
  best_env+=(ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=HASWELL)
fi
[ -f "$BLAS_DIR/libblas.so.3" ] && best_env+=(LD_LIBRARY_PATH="$PWD/$BLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")

# --- which stages -------------------------------------------------------------------------
ours=() torch_best=() torch_installed=()
if want unet; then ours+=(unet512 unet256); torch_best+=(unet512 unet256); torch_installed+=(unet512 unet256); fi
if want clip; then ours+=(clip); torch_best+=(clip); torch_installed+=(clip); fi
if want vae; then ours+=(vae); torch_best+=(vae); torch_installed+=(vae); fi
if want load; then torch_best+=(load); fi
if want memory; then torch_best+=(memory); fi
join() { local IFS=,; echo "$*"; }
# run_to FILE CMD...: CMD's last stdout line (its JSON) into FILE; a failure is reported, and the
# other figures still run.
run_to() {
  local out=$1; shift
  if "$@" > "$out.out"; then tail -1 "$out.out" > "$out"; else echo "bench: FAILED ($?): $*" >&2; fi
  rm -f "$out.out"
}

"$PY" bench/reference/sd15_torch.py --checkpoint "$CKPT" --io "$IO" --make-inputs-only
echo "== OMP_WAIT_POLICY=$OMP_WAIT_POLICY; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"

if [ ${#ours[@]} -gt 0 ]; then
  echo "== comfycpp: $(join "${ours[@]}")"
  run_to "$IO/comfycpp.json" "$BIN" dev bench --checkpoint "$CKPT" --io "$IO" --stages "$(join "${ours[@]}")" --repeat "$REPEAT"
fi
if want load || want memory; then
  # Checkpoint load to first step, cold page cache then warm, each in a fresh process; the cold
  # run's RSS maxima are the memory figure (a whole 512x512 text-to-image run, 2 steps).
  echo "== comfycpp: txt2img, cold page cache"
  run_to "$IO/comfycpp-cold.json" "$BIN" dev bench --checkpoint "$CKPT" --io "$IO" --stages txt2img --cold --base-directory "$WORK"
  if want load; then
    echo "== comfycpp: txt2img, warm page cache"
    run_to "$IO/comfycpp-warm.json" "$BIN" dev bench --checkpoint "$CKPT" --io "$IO" --stages txt2img --base-directory "$WORK"
  fi
fi
if want overhead; then
  echo "== comfycpp: engine overhead per node"
  run_to "$IO/comfycpp-overhead.json" "$BIN" dev bench --io "$IO" --stages overhead --repeat "$((REPEAT > 5 ? REPEAT : 5))" --base-directory "$WORK"
fi
if want server; then
  echo "== comfycpp: server"
  node bench/server_latency.mjs --binary "$BIN" --starts 5 --runs 200 --json "$IO/server.json"
fi
if [ ${#torch_best[@]} -gt 0 ]; then
  echo "== PyTorch best (${best_env[*]}): $(join "${torch_best[@]}")"
  run_to "$IO/torch-best.json" env "${best_env[@]}" "$PY" bench/reference/sd15_torch.py --checkpoint "$CKPT" --io "$IO" \
    --label best --stages "$(join "${torch_best[@]}")" --repeat "$REPEAT"
fi
if [ ${#torch_installed[@]} -gt 0 ] && [ "$INSTALLED" = 1 ]; then
  echo "== PyTorch as installed: $(join "${torch_installed[@]}")"
  run_to "$IO/torch-installed.json" env -u OMP_WAIT_POLICY "$PY" bench/reference/sd15_torch.py --checkpoint "$CKPT" --io "$IO" \
    --label installed --stages "$(join "${torch_installed[@]}")" --repeat "$REPEAT"
fi
"$PY" bench/report.py --io "$IO" --out "bench/results/$(date -u +%Y-%m-%dT%H%M%SZ).json" --only "$ONLY" --repeat "$REPEAT"
