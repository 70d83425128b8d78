#!/usr/bin/env bash
# Benchmark: `datm score` vs the `sacrebleu` command on 100,000 real segment pairs
# (gettext translations as references, seeded perturbations as hypotheses; see
# bench/score/make_data.py): BLEU, chrF and TER one at a time and all three together,
# each measured for both tools in the same run, outputs compared byte for byte (the
# signature's version field aside). Reports wall time, CPU time (user + sys) and peak RSS
# from /usr/bin/time -v. TER_N (default: all) limits the TER-only run if sacrebleu's TER is
# too slow on other data. Env: PY (python with sacrebleu; default $DATM_PYTHON, else
# python3), DATM_BIN (default target/release/datm, built if missing), N, TER_N, OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-${DATM_PYTHON:-python3}}
N=${N:-100000}
TER_N=${TER_N:-$N}
OUT=${OUT:-bench/out/score}
BIN=${DATM_BIN:-target/release/datm}
mkdir -p "$OUT"

if [ ! -s "$OUT/ref.txt" ] || [ "$(wc -l < "$OUT/ref.txt")" -ne "$N" ]; then
  "$PY" bench/score/make_data.py "$OUT" "$N"
fi
head -n "$TER_N" "$OUT/ref.txt" > "$OUT/ref.ter.txt"
head -n "$TER_N" "$OUT/hyp.txt" > "$OUT/hyp.ter.txt"
[ -x "$BIN" ] || cargo build --release -p datm-cli

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
SBV=$("$PY" -c 'import sacrebleu; print(sacrebleu.__version__)')
OURV=$("$BIN" score "$OUT/ref.ter.txt" -i "$OUT/hyp.ter.txt" -m bleu | sed -n 's/.*"version": "\(.*\)".*/\1/p')

# run NAME CMD... : runs CMD under /usr/bin/time -v; stdout → $OUT/NAME.out.
run() {
  local name=$1; shift
  /usr/bin/time -v "$@" > "$OUT/$name.out" 2> "$OUT/$name.time"
  local wall rss cpu
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$OUT/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/$name.time")
  cpu=$(awk -F': ' '/User time|System time/ {s+=$2} END {printf "%.2f", s}' "$OUT/$name.time")
  echo "$name $wall $rss $cpu" >> "$OUT/timings.txt"
}

: > "$OUT/timings.txt"
R="$OUT/ref.txt"; H="$OUT/hyp.txt"
for m in bleu chrf ter all; do
  args=(-m "$m"); r=$R; h=$H
  [ "$m" = all ] && args=(-m bleu chrf ter)
  [ "$m" = ter ] && { r="$OUT/ref.ter.txt"; h="$OUT/hyp.ter.txt"; }
  run "sacrebleu_$m" "$PY" -m sacrebleu "$r" -i "$h" "${args[@]}"
  run "datm_$m" "$BIN" score "$r" -i "$h" "${args[@]}"
done

same() {
  if cmp -s "$OUT/sacrebleu_$1.out" <(sed "s/$OURV/$SBV/g" "$OUT/datm_$1.out"); then echo yes; else echo NO; fi
}
field() { awk -v k="$1" -v f="$2" '$1==k {print $f}' "$OUT/timings.txt"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a/b}'; }
row() {
  local sw dw sc dc
  sw=$(field "sacrebleu_$1" 2); dw=$(field "datm_$1" 2); sc=$(field "sacrebleu_$1" 4); dc=$(field "datm_$1" 4)
  echo "| $2 | $sw | $dw | **$(ratio "$sw" "$dw")×** | $sc | $dc | $(ratio "$sc" "$dc")× | $(( $(field "sacrebleu_$1" 3) / 1024 )) | $(( $(field "datm_$1" 3) / 1024 )) | $(same "$1") |"
}
{
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); load average at start $LOAD (other jobs were running)."
  echo "Data: $N gettext pairs, $(wc -c < "$R") bytes of references. sacrebleu $SBV (\`$PY -m sacrebleu\`), datm \`$BIN score\`."
  echo
  echo "| metrics | sacrebleu wall s | datm wall s | wall speed-up | sacrebleu CPU s | datm CPU s | CPU ratio | sacrebleu peak RSS MiB | datm peak RSS MiB | identical output |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  row bleu "BLEU"
  row chrf "chrF"
  row ter "TER ($TER_N segs)"
  row all "BLEU + chrF + TER"
  echo
  echo "datm output (\`-m bleu chrf ter -f text\`):"
  echo '```'
  "$BIN" score "$R" -i "$H" -m bleu chrf ter -f text
  echo '```'
} | tee "$OUT/results.md"
