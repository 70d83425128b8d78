#!/usr/bin/env bash
# Merge benchmark: datm merge (release build) vs PEFT add_weighted_adapter on the same random pool of
# rank-16 adapters with TinyLlama-1.1B shapes, 8 adapters (one group of 8 languages), TIES, density 0.2.
#
#   bench/merge/run.sh [WORKDIR]        (run from the repository root after `cargo build --release -p datm-cli`)
#
# Cases (same run, same machine, datm first then PEFT, then compare.py on the two outputs):
#   factors/22 layers  datm --space factors  vs PEFT combination_type="ties"      (factors must be equal)
#   delta/2 layers     datm --space delta    vs PEFT combination_type="ties_svd"  (effective ΔW within 1e-4)
#   delta/22 layers    datm --space delta only: PEFT's ties_svd runs a full torch SVD per module
#                      (~17 s per 5632×2048 matrix here), ~25 min+ for 154 modules, so it is measured on
#                      2 of the 22 layers (14 modules, all seven shapes; time is linear in layers).
# Pools are generated into WORKDIR (default /tmp/datm-merge-bench), never into git.
set -euo pipefail
W=${1:-/tmp/datm-merge-bench}
PY=${DATM_REF_PYTHON:-${DATM_PYTHON:-python3}}
DATM=${DATM_BIN:-target/release/datm}
HERE=$(cd "$(dirname "$0")" && pwd)
RES=$W/results.jsonl
mkdir -p "$W"
[ -f "$W/pool22/adapter_7/adapter_config.json" ] || "$PY" "$HERE/make_pool.py" "$W/pool22" --layers 22 --adapters 8
[ -f "$W/pool2/adapter_7/adapter_config.json" ] || "$PY" "$HERE/make_pool.py" "$W/pool2" --layers 2 --adapters 8

# timed TOOL CASE CMD…: wall seconds and peak RSS of CMD into results.jsonl
timed() {
  local tool=$1 case=$2; shift 2
  /usr/bin/time -f '%e %M' -o "$W/time.txt" "$@" > "$W/out.txt" 2> "$W/err.txt" || { cat "$W/err.txt"; exit 1; }
  read -r wall rss < "$W/time.txt"
  local detail
  detail=$(grep -h '^{' "$W/out.txt" || grep -h '^merged' "$W/err.txt" || true)
  printf '{"tool":"%s","case":"%s","wall_s":%s,"peak_rss_mb":%d,"load":"%s","detail":%s}\n' \
    "$tool" "$case" "$wall" $((rss / 1024)) "$(cut -d' ' -f1-3 /proc/loadavg)" \
    "$(printf '%s' "$detail" | "$PY" -c 'import json,sys; print(json.dumps(sys.stdin.read()))')" | tee -a "$RES"
}

bench_case() {  # CASE POOL SPACE PEFT_COMBINATION|-
  local case=$1 pool=$W/$2 space=$3 comb=$4
  rm -rf "$W/datm-$case" "$W/peft-$case"
  timed datm "$case" "$DATM" merge -o "$W/datm-$case" --space "$space" --method ties --density 0.2 "$pool"/adapter_*
  [ "$comb" = - ] && return
  timed peft "$case" "$PY" "$HERE/peft_merge.py" "$pool" "$W/peft-$case" --combination "$comb" --density 0.2
  local flag=""; [ "$space" = factors ] && flag="--factors --pool $pool --density 0.2"
  local verdict
  verdict=$("$PY" "$HERE/compare.py" "$W/datm-$case" "$W/peft-$case/merged" $flag) && status=equal || status=DIFFERENT
  printf '{"compare":"%s","status":"%s","result":%s}\n' "$case" "$status" "$verdict" | tee -a "$RES"
}

# CASES selects a subset, e.g. CASES="delta-2L delta-22L".
CASES=${CASES:-factors-22L delta-2L delta-22L}
for c in $CASES; do
  case $c in
    factors-22L) bench_case factors-22L pool22 factors ties ;;
    delta-2L) bench_case delta-2L pool2 delta ties_svd ;;
    delta-22L) bench_case delta-22L pool22 delta - ;;
    *) echo "unknown case $c"; exit 2 ;;
  esac
done
echo "results in $RES"
