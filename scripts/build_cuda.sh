#!/usr/bin/env bash
# Builds `datm` with the `cuda` feature on a machine without a GPU or CUDA install, for a GPU
# machine with the CUDA 13.0 toolkit (/usr/local/cuda-13.0) and a driver that runs it:
#
#   scripts/build_cuda.sh [OUT_DIR]      # default OUT_DIR: .gpu (git-ignored locally)
#
# - nvcc 13.0 and its headers come from NVIDIA's PyPI wheels (nvcc, nvvm, crt, runtime, cccl),
#   unpacked under $CUDA_WHEELS (default /tmp/cuda13).
# - candle links the CUDA libraries dynamically, so the link step gets empty stand-ins with the
#   real sonames (libcuda.so.1, libcublas.so.13, ...); unresolved symbols are left to the
#   dynamic loader, which finds them in the real libraries on the GPU machine:
#   `LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib`.
# - Kernels are compiled for compute capability 9.0 (H100/H200); override with CUDA_COMPUTE_CAP.
# The result, stripped and gzipped, is OUT_DIR/datm.gz (small enough to carry to the GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.gpu}
wheels=${CUDA_WHEELS:-/tmp/cuda13}
root=$wheels/root/nvidia/cu13
python=${PYTHON:-python3}

if [ ! -x "$root/nvvm/bin/cicc" ] || [ ! -e "$root/include/nv/target" ]; then
    mkdir -p "$wheels"
    "$python" -m pip download --no-deps -d "$wheels" nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 \
        nvidia-cuda-crt==13.0.88 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85
    for w in "$wheels"/*.whl; do
        "$python" -m zipfile -e "$w" "$wheels/root"
    done
    chmod +x "$root"/bin/* "$root"/nvvm/bin/*
fi

stubs=$wheels/stubs
mkdir -p "$stubs"
echo 'void datm_cuda_link_stub(void) {}' > "$stubs/stub.c"
for pair in cuda:libcuda.so.1 nvrtc:libnvrtc.so.13 curand:libcurand.so.10 cublas:libcublas.so.13 \
    cublasLt:libcublasLt.so.13 cudart:libcudart.so.13; do
    name=${pair%%:*} soname=${pair##*:}
    cc -shared -fPIC -o "$stubs/lib$name.so" -Wl,-soname,"$soname" "$stubs/stub.c"
    ln -sf "lib$name.so" "$stubs/$soname"
done

export CUDA_HOME=$root PATH=$root/bin:$PATH CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cuda}
# Build scripts linked with these flags load the stand-ins while they run.
export LD_LIBRARY_PATH=$stubs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export RUSTFLAGS="-L $stubs -C link-arg=-Wl,--unresolved-symbols=ignore-all -C link-arg=-Wl,--push-state,--no-as-needed,-lcuda,-lnvrtc,-lcurand,-lcublas,-lcublasLt,-lcudart,--pop-state"
cargo build --release -p datm-cli --features cuda
mkdir -p "$out"
strip "$CARGO_TARGET_DIR/release/datm" -o "$out/datm"
gzip -9 -f "$out/datm"
ls -l "$out/datm.gz"
