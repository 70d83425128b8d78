#!/usr/bin/env bash
# The project's test command: lint, then every test of the workspace.
# Differential tests against the reference sacrebleu need Python with sacrebleu; this
# script makes a small virtual environment for it (.venv-ci) unless DATM_PYTHON is set.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DATM_PYTHON:-}" ]; then
  venv=.venv-ci
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sacrebleu' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'sacrebleu==2.6.0'
  fi
  export DATM_PYTHON="$PWD/$venv/bin/python"
fi
echo "reference python: $DATM_PYTHON ($("$DATM_PYTHON" -c 'import sacrebleu; print("sacrebleu", sacrebleu.__version__)'))"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
