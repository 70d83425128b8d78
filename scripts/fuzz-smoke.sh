#!/usr/bin/env bash
# Fuzz smoke test (for CI): builds every fuzz target of fuzz/, replays its regression inputs
# (fuzz/regressions/<target>/), then fuzzes it for FUZZ_SECONDS (default 20) from its seed
# corpus (fuzz/seeds/<target>/). Fails on any crash, panic, abort, input taking over 1 s or
# RSS over 2 GiB; the input that did it is written to fuzz/artifacts/.
# FUZZ_TARGETS="mo po" runs only those; see scripts/fuzz-common.sh for FUZZ_SANITIZER.
set -euo pipefail
source "$(dirname "$0")/fuzz-common.sh"
seconds=${FUZZ_SECONDS:-20}
for t in $FUZZ_LIST; do
  echo "== $t: regressions, then ${seconds}s of fuzzing"
  replay "$t"
  scratch=$(mktemp -d)
  log="$scratch.log"
  if ! "$FUZZ_BIN/$t" "${FUZZ_FLAGS[@]}" -max_total_time="$seconds" \
    -artifact_prefix="fuzz/artifacts/$t-" "$scratch" "fuzz/seeds/$t" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz target $t failed; the input is in fuzz/artifacts/" >&2
    exit 1
  fi
  grep -E '^(#[0-9]+.*DONE|Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log"
  rm -rf "$scratch" "$log"
done
echo "fuzz smoke: all targets passed"
