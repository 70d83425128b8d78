#!/usr/bin/env bash
# Every GPU check of issues 10, 12 and 3 in one run on the device machine (one H100/H200, the
# CUDA 13.0 toolkit in /usr/local/cuda-13.0, python3 with torch, transformers and peft; no
# Rust), with the binary that scripts/build_cuda.sh makes here (`.gpu/datm.gz`, carried):
#
#   bash tools/gpu_check.sh [DATM_GZ_OR_BINARY] [OUT_DIR]     # defaults: .gpu/datm.gz, $OUT or gpu-check
#
# 1. the fused training kernels (cuda/fused.cu): `datm check-kernels`, each op's value and
#    input gradient against candle's composite ops, in f32, bf16 and f16;
# 2. decoding parity: tools/check_cuda.py (tiny fixtures' outputs against HF's, f32);
# 3. COMET: tools/check_cuda_comet.py (datm comet --device cuda against unbabel-comet's scores);
# 4. training: tools/bench_cuda_train.py on a LLaMA of LLaMA-2-7B's body shape (LAYERS layers,
#    default 16 to fit the 15 minutes a session gets), datm against PyTorch + PEFT: bf16, bf16
#    with activation checkpointing, f16 with loss scaling (the fused kernels on; the bf16 step also
#    trains datm with them off, DATM_CUDA_KERNELS=0, candle's composite ops);
# 5. decoding speed: tools/bench_cuda.py (5 beams, same shape).
# Each step writes OUT_DIR/<step>.log; a failing step does not stop the others. The exit status
# is the number of failed steps. DEVICE (default cuda) and LAYERS override the defaults; with
# DEVICE=cpu and a small shape (SHAPE="--hidden 256 --intermediate 688 --heads 4") the script
# can be tried on a machine without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.gpu/datm.gz}
out=${2:-${OUT:-gpu-check}}
device=${DEVICE:-cuda}
layers=${LAYERS:-16}
shape=${SHAPE:-}
mkdir -p "$out"
if [[ $bin == *.gz ]]; then
    gunzip -c "$bin" > "$out/datm" && chmod +x "$out/datm" && bin=$out/datm
fi
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
failed=0
step() {
    local name=$1
    shift
    local t0=$SECONDS
    if "$@" > "$out/$name.log" 2>&1; then
        echo "$name: ok ($((SECONDS - t0)) s)"
    else
        echo "$name: FAILED ($((SECONDS - t0)) s; see $out/$name.log)"
        failed=$((failed + 1))
    fi
    tail -n 1 "$out/$name.log"
}
if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
fi
step kernels "$bin" check-kernels --device "$device"
step decode-parity python3 tools/check_cuda.py --datm "$bin" --device "$device"
step comet-parity python3 tools/check_cuda_comet.py --datm "$bin" --device "$device"
train=(python3 tools/bench_cuda_train.py --datm "$bin" --device "$device" --layers "$layers" $shape)
step train-bf16 "${train[@]}" --model-cache "$cache/bf16" --composite
step train-bf16-checkpointing "${train[@]}" --model-cache "$cache/bf16" --gradient-checkpointing
step train-f16 "${train[@]}" --model-cache "$cache/f16" --dtype f16
if [ "$device" != cpu ]; then
    step decode-speed python3 tools/bench_cuda.py --datm "$bin" --layers "$layers"
fi
echo "$failed step(s) failed"
exit "$failed"
