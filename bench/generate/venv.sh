#!/usr/bin/env bash
# Makes (or verifies) the Python environment of bench/generate/bench.py and prints its python:
# transformers 5 (4.x, which unbabel-comet holds the test venv to, rebuilds Gemma-3's GGUF
# tokenizer wrongly: 39 tokens instead of 20 for an ALMA prompt) in
# ${XDG_CACHE_HOME:-~/.cache}/datm/venv-hf5. Its torch, gguf and sentencepiece are the test
# venv's (venv-ref, which scripts/test.sh makes), reached through a .pth file: PyPI's torch
# wheel brings about 5 GB of CUDA libraries, once is enough. The venv's own packages come
# first on sys.path, so its transformers 5 wins over venv-ref's 4.x.
#
#     PY=$(bench/generate/venv.sh) && $PY bench/generate/bench.py ...
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/fetch-models.sh # datm_cache_dir
CACHE=$(datm_cache_dir)
VENV=$CACHE/venv-hf5
REF=$CACHE/venv-ref
CHECK='
import torch, transformers, gguf, sentencepiece
assert int(transformers.__version__.split(".")[0]) >= 5, transformers.__version__
'
if ! "$VENV/bin/python" -W ignore -c "$CHECK" 2>/dev/null; then
  [ -x "$REF/bin/python" ] || { echo "run scripts/test.sh first (it makes $REF)" >&2; exit 1; }
  echo "installing transformers 5 into $VENV (torch from $REF)" >&2
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  site() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
  site "$REF/bin/python" >"$(site "$VENV/bin/python")/venv-ref.pth"
  "$VENV/bin/pip" install -q 'transformers>=5' >&2
  "$VENV/bin/python" -W ignore -c "$CHECK"
fi
echo "$VENV/bin/python"
