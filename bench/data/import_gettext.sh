#!/usr/bin/env bash
# The real gettext import (issue 2): builds English-centric corpora from this machine's
# catalogs twice, checks that the two runs are byte-identical, and prints the stats.
#
# Usage: bench/data/import_gettext.sh [LOCALE_DIR]    (env DATM: the datm binary to use)
set -euo pipefail
cd "$(dirname "$0")/../.."
LOCALE_DIR=${1:-/usr/share/locale}
DATM=${DATM:-}
if [[ -z $DATM ]]; then
  cargo build -q -p datm-cli
  DATM=target/debug/datm
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for run in a b; do
  start=$(date +%s%N)
  "$DATM" data import-gettext --locale-dir "$LOCALE_DIR" --out "$work/$run" > "$work/$run.log"
  end=$(date +%s%N)
  echo "run $run: $(( (end - start) / 1000000 )) ms wall"
done
(cd "$work/a" && find . -type f | sort | xargs sha256sum) > "$work/a.sum"
(cd "$work/b" && find . -type f | sort | xargs sha256sum) > "$work/b.sum"
if cmp -s "$work/a.sum" "$work/b.sum"; then
  echo "re-run: byte-identical ($(wc -l < "$work/a.sum") files, $(du -sh "$work/a" | cut -f1))"
else
  echo "re-run: FILES DIFFER" >&2
  diff "$work/a.sum" "$work/b.sum" >&2 || true
  exit 1
fi
cat "$work/a.log"
