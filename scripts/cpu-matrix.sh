#!/usr/bin/env bash
# Runs datm-model's kernel, parity and training-op tests, and datm-train's PEFT parity and
# bf16 mixed-precision tests, once per CPU kernel path this machine supports (DATM_CPU=scalar,
# avx2, avx2vnni, avx512, amx on x86-64; scalar, neon on aarch64), so that every path is
# checked against the references, not only the fastest one.
# Usage: scripts/cpu-matrix.sh [extra `cargo test` arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

paths=(scalar)
case "$(uname -m)" in
  x86_64)
    flags=$(grep -m1 '^flags' /proc/cpuinfo)
    has() { [[ " $flags " == *" $1 "* ]]; }
    if has avx2 && has fma; then
      paths+=(avx2)
      if has avx_vnni || { has avx512vl && has avx512_vnni; }; then paths+=(avx2vnni); fi
    fi
    if has avx512f; then paths+=(avx512); fi
    if has avx512f && has avx512_bf16 && has amx_tile && has amx_bf16; then paths+=(amx); fi
    ;;
  aarch64) paths+=(neon) ;;
esac
echo "kernel paths on this CPU: ${paths[*]}"
# CPU_MATRIX_PATHS="scalar avx2" limits the run; CPU_MATRIX_PATHS=others runs every path but
# the native one, the fastest (the test script's choice: its own workspace run covers that).
if [ "${CPU_MATRIX_PATHS:-}" = others ]; then
  CPU_MATRIX_PATHS="${paths[*]:0:${#paths[@]}-1}"
  [ -n "$CPU_MATRIX_PATHS" ] || { echo "no kernel path besides the native one"; exit 0; }
fi
if [ -n "${CPU_MATRIX_PATHS:-}" ]; then
  for p in $CPU_MATRIX_PATHS; do
    [[ " ${paths[*]} " == *" $p "* ]] || { echo "kernel path $p does not run on this CPU" >&2; exit 1; }
  done
  read -r -a paths <<<"$CPU_MATRIX_PATHS"
fi

tests=(--lib --test parity --test gguf_tiny --test quantized --test training_ops
  --test lora --test cache --test errors --test continuous)
# Training's parity with PyTorch + PEFT (f32) and its bf16 mixed precision, per path too.
train_tests=(--test peft_parity --test mixed_bf16)
cargo test -p datm-model "${tests[@]}" --no-run "$@"
cargo test -p datm-train "${train_tests[@]}" --no-run "$@"
summary=()
for p in "${paths[@]}"; do
  echo "=== DATM_CPU=$p"
  log=$(mktemp)
  if ! { DATM_CPU=$p cargo test -p datm-model "${tests[@]}" "$@" &&
    DATM_CPU=$p cargo test -p datm-train "${train_tests[@]}" "$@"; } 2>&1 | tee "$log"; then
    echo "FAILED on kernel path $p" >&2
    exit 1
  fi
  passed=$(grep -o '[0-9]* passed' "$log" | awk '{s += $1} END {print s + 0}')
  summary+=("$p: $passed passed")
  rm -f "$log"
done
printf 'cpu matrix: %s\n' "${summary[@]}"
