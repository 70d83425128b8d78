#!/usr/bin/env bash
# Benchmark: `datm score` vs the `sacrebleu` command on 100,000 real segment pairs
# (gettext translations as references, seeded perturbations as hypotheses; see
# bench/score/make_data.py), BLEU + chrF + TER, measured in the same run.
#
# sacrebleu's TER takes about 6 minutes per 100k segments, so both tools score TER on the
# first TER_N (default 10,000) segments for the comparison; datm also scores all three
# metrics on the full 100k. Outputs are compared byte for byte (the signature's version
# field aside). Env: PY (python with sacrebleu; default /work/venv/bin/python, else python3),
# DATM_BIN (default target/release/datm, built if missing), N (pairs), TER_N, OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/work/venv/bin/python}
[ -x "$PY" ] || PY=python3
N=${N:-100000}
TER_N=${TER_N:-10000}
OUT=${OUT:-bench/out/score}
BIN=${DATM_BIN:-target/release/datm}
mkdir -p "$OUT"

if [ ! -s "$OUT/ref.txt" ] || [ "$(wc -l < "$OUT/ref.txt")" -ne "$N" ]; then
  "$PY" bench/score/make_data.py "$OUT" "$N"
fi
head -n "$TER_N" "$OUT/ref.txt" > "$OUT/ref.ter.txt"
head -n "$TER_N" "$OUT/hyp.txt" > "$OUT/hyp.ter.txt"
[ -x "$BIN" ] || cargo build --release -p datm-cli

SBV=$("$PY" -c 'import sacrebleu; print(sacrebleu.__version__)')
OURV=$("$BIN" score "$OUT/ref.ter.txt" -i "$OUT/hyp.ter.txt" -m bleu | sed -n 's/.*"version": "\(.*\)".*/\1/p')

# run NAME CMD... : runs CMD under /usr/bin/time -v; stdout → $OUT/NAME.out.
run() {
  local name=$1; shift
  /usr/bin/time -v "$@" > "$OUT/$name.out" 2> "$OUT/$name.time"
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$OUT/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/$name.time")
  echo "$name $wall $rss" >> "$OUT/timings.txt"
}

: > "$OUT/timings.txt"
run sacrebleu_bleu_chrf "$PY" -m sacrebleu "$OUT/ref.txt" -i "$OUT/hyp.txt" -m bleu chrf
run datm_bleu_chrf "$BIN" score "$OUT/ref.txt" -i "$OUT/hyp.txt" -m bleu chrf
run sacrebleu_ter "$PY" -m sacrebleu "$OUT/ref.ter.txt" -i "$OUT/hyp.ter.txt" -m ter
run datm_ter "$BIN" score "$OUT/ref.ter.txt" -i "$OUT/hyp.ter.txt" -m ter
run datm_all "$BIN" score "$OUT/ref.txt" -i "$OUT/hyp.txt" -m bleu chrf ter

same() {
  if cmp -s "$OUT/sacrebleu_$1.out" <(sed "s/$OURV/$SBV/g" "$OUT/datm_$1.out"); then echo yes; else echo NO; fi
}
field() { awk -v k="$1" -v f="$2" '$1==k {print $f}' "$OUT/timings.txt"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a/b}'; }

SB1=$(field sacrebleu_bleu_chrf 2); D1=$(field datm_bleu_chrf 2)
SB2=$(field sacrebleu_ter 2); D2=$(field datm_ter 2); D3=$(field datm_all 2)
SB3=$(awk -v a="$SB1" -v b="$SB2" -v n="$N" -v t="$TER_N" 'BEGIN {printf "%.1f", a + b * n / t}')
{
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "Data: $N gettext pairs ($(wc -c < "$OUT/ref.txt") bytes of references); TER on the first $TER_N. sacrebleu $SBV."
  echo
  echo "| run | sacrebleu wall s | datm wall s | speed-up | sacrebleu peak RSS MB | datm peak RSS MB | identical output |"
  echo "|---|---|---|---|---|---|---|"
  echo "| BLEU + chrF, ${N} segs | $SB1 | $D1 | $(ratio "$SB1" "$D1")× | $(( $(field sacrebleu_bleu_chrf 3) / 1024 )) | $(( $(field datm_bleu_chrf 3) / 1024 )) | $(same bleu_chrf) |"
  echo "| TER, ${TER_N} segs | $SB2 | $D2 | $(ratio "$SB2" "$D2")× | $(( $(field sacrebleu_ter 3) / 1024 )) | $(( $(field datm_ter 3) / 1024 )) | $(same ter) |"
  echo "| BLEU + chrF + TER, ${N} segs | $SB3 (TER extrapolated ×$((N / TER_N))) | $D3 | $(ratio "$SB3" "$D3")× | – | $(( $(field datm_all 3) / 1024 )) | – |"
  echo
  echo "datm output (BLEU + chrF + TER, ${N} segments):"
  echo '```'
  "$BIN" score "$OUT/ref.txt" -i "$OUT/hyp.txt" -m bleu chrf ter -f text
  echo '```'
} | tee "$OUT/results.md"
