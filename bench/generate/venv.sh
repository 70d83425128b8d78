#!/usr/bin/env bash
# Makes (or verifies) the Python environment of bench/generate/bench.py and prints its python:
# torch with transformers 5 (4.x, which unbabel-comet holds the test venv to, rebuilds
# Gemma-3's GGUF tokenizer wrongly: 39 tokens instead of 20 for an ALMA prompt), gguf and
# sentencepiece, in ${XDG_CACHE_HOME:-~/.cache}/datm/venv-hf5.
#
#     PY=$(bench/generate/venv.sh) && $PY bench/generate/bench.py ...
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/fetch-models.sh # datm_cache_dir
VENV=$(datm_cache_dir)/venv-hf5
CHECK='
import torch, transformers, gguf, sentencepiece
assert int(transformers.__version__.split(".")[0]) >= 5, transformers.__version__
'
if ! "$VENV/bin/python" -W ignore -c "$CHECK" 2>/dev/null; then
  echo "installing torch and transformers 5 into $VENV" >&2
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch 'transformers>=5' gguf sentencepiece accelerate >&2
  "$VENV/bin/python" -W ignore -c "$CHECK"
fi
echo "$VENV/bin/python"
