#!/usr/bin/env bash
# Fuzz campaigns: runs each target of fuzz/ until it has FUZZ_RUNS executions in all
# (default 1,000,000) or FUZZ_MAX_SECONDS of this call (default 3600), one target at a
# time. Resumable: each target's corpus is kept in fuzz/corpus/<target>/ (grown from the
# seeds; ignored by git) and its executions so far in fuzz/corpus/<target>.execs, so a
# second call goes on where the first stopped and skips targets that are done.
# Appends a line per run to FUZZ_REPORT (default fuzz/corpus/campaigns.tsv): date, target,
# executions this run, executions in all, coverage (libFuzzer's cov = edges and ft =
# features), corpus size, peak RSS, outcome. Run it under `nice -n 19` on a shared machine.
set -euo pipefail
source "$(dirname "$0")/fuzz-common.sh"
goal=${FUZZ_RUNS:-1000000}
limit=${FUZZ_MAX_SECONDS:-3600}
report=${FUZZ_REPORT:-fuzz/corpus/campaigns.tsv}
mkdir -p fuzz/corpus "$(dirname "$report")"
[ -s "$report" ] || printf 'date\ttarget\truns\ttotal_runs\tcov\tft\tcorpus\tpeak_rss_mb\toutcome\n' >"$report"
failed=0
for t in $FUZZ_LIST; do
  done_runs=$(cat "fuzz/corpus/$t.execs" 2>/dev/null || echo 0)
  if [ "$done_runs" -ge "$goal" ]; then
    echo "== $t: $done_runs executions already, skipped"
    continue
  fi
  replay "$t"
  mkdir -p "fuzz/corpus/$t"
  log=$(mktemp)
  set +e
  "$FUZZ_BIN/$t" "${FUZZ_FLAGS[@]}" -runs=$((goal - done_runs)) -max_total_time="$limit" \
    -artifact_prefix="fuzz/artifacts/$t-" "fuzz/corpus/$t" "fuzz/seeds/$t" >"$log" 2>&1
  status=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  total=$((done_runs + ${runs:-0}))
  echo "$total" >"fuzz/corpus/$t.execs"
  outcome=ok
  if [ "$status" -ne 0 ]; then
    outcome="failed (exit $status, see fuzz/artifacts/)"
    failed=1
    tail -n 30 "$log" >&2
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "${runs:-0}" "$total" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" "$outcome" | tee -a "$report"
  rm -f "$log"
done
exit "$failed"
