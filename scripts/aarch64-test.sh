#!/usr/bin/env bash
# aarch64 in CI, on an x86-64 Linux machine: cross-builds datm for aarch64-unknown-linux-gnu
# (Debian's gcc-aarch64-linux-gnu as linker), runs datm-model's kernel and parity tests
# under qemu-aarch64 on both aarch64 kernel paths (neon, scalar), runs a real `datm
# generate` on the tiny fixtures there (with and without the dot-product extension) and
# compares it with the x86-64 binary's output,
# and type-checks the crates that build without Apple's SDK for aarch64-apple-darwin.
# Installs what is missing (rustup targets; apt packages, as root or through sudo).
# Cross builds go to AARCH64_TARGET_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/datm/
# aarch64-target, outside the checkout, so a fresh clone reuses the last build); the x86-64
# datm is built in the caller's CARGO_TARGET_DIR (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/fetch-models.sh # datm_cache_dir, claim_target_dir
start=$SECONDS

LINUX=aarch64-unknown-linux-gnu
APPLE=aarch64-apple-darwin
SYSROOT=/usr/aarch64-linux-gnu

# --- toolchain
installed=$(rustup target list --installed)
for t in $LINUX $APPLE; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null \
  || [ ! -d "$SYSROOT/lib" ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q gcc-aarch64-linux-gnu \
    g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
fi

NATIVE_TARGET_DIR=${CARGO_TARGET_DIR:-target}
export CARGO_TARGET_DIR=${AARCH64_TARGET_DIR:-$(datm_cache_dir)/aarch64-target}
claim_target_dir "$CARGO_TARGET_DIR"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $SYSROOT"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
# Smoke-sized: dependencies at opt-level 1 instead of the dev profile's 3 (a third of the
# build time; the tiny fixtures run in seconds under qemu all the same).
cross=(--target $LINUX --config 'profile.dev.package."*".opt-level=1')

# --- model tests under qemu, on each aarch64 kernel path
tests=(--lib --test parity --test gguf_tiny --test quantized --test training_ops --test cache)
cargo test -p datm-model "${cross[@]}" "${tests[@]}" --no-run
for p in ${AARCH64_PATHS:-neon scalar}; do
  echo "=== aarch64 tests, DATM_CPU=$p"
  DATM_CPU=$p cargo test -p datm-model "${cross[@]}" "${tests[@]}"
done

# --- a real `datm generate`: aarch64 under qemu against x86-64. NEON's f32 FMA chains and
# bf16 widening are the scalar path's; its int8 products (`sdot`, with the dot-product
# extension: qemu's default CPU) are AVX2's bit for bit, so a quantized model's default on
# aarch64 is compared with x86-64's `--dtype int8` on the AVX2 path, and on a CPU without
# the dot product (a Cortex-A72) with the scalar path's int8 blocks widened to f32.
cargo build -p datm-cli --bin datm "${cross[@]}"
arm_datm=$CARGO_TARGET_DIR/$LINUX/debug/datm
CARGO_TARGET_DIR=$NATIVE_TARGET_DIR cargo build -p datm-cli --bin datm
x86_datm=$NATIVE_TARGET_DIR/debug/datm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s\n' '{"prompt": "Translate this from English to German:\nEnglish: The cat sleeps.\nGerman:"}' \
  '{"prompt": "Hello world, how are"}' >"$work/prompts.jsonl"
fx=tests/fixtures/model
# name | qemu CPU | x86-64 kernel path and extra arguments | arguments of both
runs=(
  "tiny-llama|max|scalar|-m $fx/tiny-llama --adapter $fx/tiny-llama-lora --num-beams 3"
  "tiny-llama-q8_0-int8|max|avx2 --dtype int8|-m $fx/tiny-llama-q8_0.gguf --num-beams 2"
  "tiny-llama-q8_0-f32|cortex-a72|scalar|-m $fx/tiny-llama-q8_0.gguf --num-beams 2"
  "tiny-gemma3|max|scalar|-m $fx/tiny-gemma3.gguf --dtype f32"
)
for run in "${runs[@]}"; do
  IFS='|' read -r name arm_cpu x86 args <<<"$run"
  read -r -a args <<<"$args"
  read -r x86_path x86_extra <<<"$x86"
  common=(generate "${args[@]}" -i "$work/prompts.jsonl" --max-new-tokens 12)
  # shellcheck disable=SC2086 # x86_extra: zero or more words
  DATM_CPU=$x86_path "$x86_datm" "${common[@]}" $x86_extra -o "$work/$name-x86.jsonl"
  qemu-aarch64 -cpu "$arm_cpu" -L $SYSROOT "$arm_datm" "${common[@]}" -o "$work/$name-arm.jsonl"
  if ! cmp -s "$work/$name-x86.jsonl" "$work/$name-arm.jsonl"; then
    echo "datm generate $name: aarch64 output differs from x86-64" >&2
    diff "$work/$name-x86.jsonl" "$work/$name-arm.jsonl" >&2 || true
    exit 1
  fi
  echo "datm generate $name: aarch64 (qemu -cpu $arm_cpu) = x86-64 ($x86_path)" \
    "($(wc -l <"$work/$name-arm.jsonl") outputs)"
done

# --- macOS: type-check what builds without Apple's SDK. tokenizers' C dependencies
# (onig_sys, esaxx-rs) need an Apple C toolchain at build time, so every crate on top of
# datm-model is left out.
cargo check --target $APPLE -p datm-lang -p datm-data -p datm-metrics -p datm-adapter
echo "aarch64 checks passed in $((SECONDS - start)) s"
