# Shared by scripts/fuzz-smoke.sh and scripts/fuzz-long.sh (sourced, not run): builds the
# fuzz targets of fuzz/ with cargo-fuzz on the nightly toolchain into FUZZ_TARGET_DIR (an
# absolute path; default ${XDG_CACHE_HOME:-$HOME/.cache}/datm/fuzz-target, outside the
# checkout, so a fresh clone reuses the last build) and sets
#   FUZZ_BIN      the folder holding the target binaries
#   FUZZ_LIST     the targets to run (FUZZ_TARGETS, default all)
#   FUZZ_FLAGS    libFuzzer's limits: no RSS above 2 GiB, no input over 1 s (FUZZ_TIMEOUT)
# FUZZ_SANITIZER picks cargo-fuzz's sanitizer (default none: datm is safe Rust, and
# without ASan the runs are about twice as fast; use `address` to check unsafe code).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzzing needs the nightly toolchain and cargo-fuzz:" >&2
  echo "  rustup toolchain install nightly && cargo install cargo-fuzz" >&2
  exit 1
fi
source scripts/fetch-models.sh # datm_cache_dir, claim_target_dir
FUZZ_TARGET_DIR=${FUZZ_TARGET_DIR:-$(datm_cache_dir)/fuzz-target}
claim_target_dir "$FUZZ_TARGET_DIR"
(cd fuzz && cargo +nightly fuzz build -s "${FUZZ_SANITIZER:-none}" --target-dir "$FUZZ_TARGET_DIR")
FUZZ_BIN=$FUZZ_TARGET_DIR/$(rustc +nightly -vV | sed -n 's/^host: //p')/release
FUZZ_LIST=${FUZZ_TARGETS:-$(cd fuzz && cargo +nightly fuzz list)}
# FUZZ_TIMEOUT (seconds, default 1) may be raised on a loaded machine, where a starved
# process can pass a second on a fast input; re-run any timeout artifact alone at 1 s.
FUZZ_FLAGS=(-rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout="${FUZZ_TIMEOUT:-1}"
  -print_final_stats=1)
mkdir -p fuzz/artifacts

# replay TARGET: runs every regression input of TARGET once (each must pass).
replay() {
  local inputs=(fuzz/regressions/"$1"/*)
  if [ -e "${inputs[0]}" ]; then
    "$FUZZ_BIN/$1" "${FUZZ_FLAGS[@]}" -artifact_prefix="fuzz/artifacts/$1-" "${inputs[@]}"
  fi
}
