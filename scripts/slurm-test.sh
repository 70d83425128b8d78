#!/usr/bin/env bash
# A real Slurm runs datm's emitted jobs: this script starts a one-node cluster on this
# machine (Debian's slurm-wlm + munge, CPU only, installed when missing), emits the submit
# script of a tiny DAT pool (`datm pool train --emit slurm --evaluate DIR`), runs it, waits
# for the training array(s), the DATM merge and the translate/score job, and checks that
# the adapters, the merged pool and the report equal those of the same steps run locally.
#
#   scripts/slurm-test.sh [DATM_BINARY]     (default: $CARGO_TARGET_DIR or target, /debug/datm, built if missing)
#
# The cluster's MaxArraySize is 4 while the pool has 5 adapters, so the training array is
# split in two. Everything lives in a temporary folder; the daemons are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DATM=${1:-${CARGO_TARGET_DIR:-target}/debug/datm}
[ -x "$DATM" ] || cargo build -q -p datm-cli
DATM=$(realpath "$DATM")
WORK=$(mktemp -d /tmp/datm-slurm.XXXXXX)
export SLURM_CONF=$WORK/etc/slurm.conf

log() { echo "slurm-test: $*" >&2; }

install_slurm() {
  if command -v slurmctld >/dev/null && command -v munged >/dev/null; then return; fi
  log "installing slurm-wlm and munge"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q slurm-wlm munge >/dev/null
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  fi
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  if ! munge -n >/dev/null 2>&1; then
    if id munge >/dev/null 2>&1; then
      su -s /bin/sh munge -c munged || munged --force
    else
      munged --force
    fi
  fi
  munge -n | unmunge >/dev/null
}

write_config() {
  local host mem
  host=$(hostname -s)
  mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
  mkdir -p "$WORK/etc" "$WORK/state" "$WORK/spool"
  cat >"$SLURM_CONF" <<EOF
ClusterName=datm-test
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ReturnToService=2
MaxArraySize=4
NodeName=$host CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start_cluster() {
  if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
    log "a slurmctld or slurmd already runs on this machine; stop it first"; exit 1
  fi
  slurmctld
  slurmd
  for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qx idle; then return; fi
    sleep 1
  done
  log "the node did not come up:"; sinfo >&2 || true; tail -20 "$WORK"/slurm*.log >&2
  exit 1
}

stop_cluster() {
  for pid in "$WORK/slurmd.pid" "$WORK/slurmctld.pid"; do
    [ -s "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
}

# Stops the daemons, then removes the scratch folder (their pid files live there).
cleanup() {
  stop_cluster
  for _ in $(seq 20); do
    pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || break
    sleep 0.5
  done
  rm -rf "$WORK"
}

# The fixture pool: real German, Dutch and French gettext messages, the tiny LLaMA.
prepare_pool() {
  "$DATM" data import-gettext --langs de,nl,fr --out "$WORK/data" --valid 20 --test 20 >/dev/null
  "$DATM" pool plan --strategy dat --langs de,nl,fr -o "$WORK/plan.toml" 2>/dev/null
}

TRAIN=(--model "$REPO/tests/fixtures/model/tiny-llama" --data "$WORK/data" --max-steps 2
  --batch-size 4 --micro-batch-size 4 --eval-examples 0)
EVAL=(--test-size 3 --num-beams 2 --max-new-tokens 4)

run_on_slurm() {
  "$DATM" pool train --plan "$WORK/plan.toml" "${TRAIN[@]}" --out "$WORK/slurm-pool" \
    --emit slurm --throttle 2 --evaluate "$WORK/slurm-eval" \
    $(printf -- '--evaluate-arg=%s ' "${EVAL[@]}") >"$WORK/submit.sh"
  DATM="$DATM" bash "$WORK/submit.sh" | tee "$WORK/submitted.txt" >&2
  local last
  last=$(awk '/^evaluate: / {print $2}' "$WORK/submitted.txt")
  [ -n "$last" ] || { log "the submit script printed no evaluation job id"; exit 1; }
  for _ in $(seq 600); do
    [ -z "$(squeue -h -o %i)" ] && break
    sleep 1
  done
  local failed
  failed=$(sacct -n -X -o JobID,State 2>/dev/null | grep -v COMPLETED || true)
  if [ -n "$(squeue -h -o %i)" ] || [ ! -s "$WORK/slurm-eval/report.md" ]; then
    log "the jobs did not finish: $failed"; tail -n 20 "$WORK"/slurm-pool/slurm/*.log >&2 || true
    exit 1
  fi
}

run_locally() {
  "$DATM" pool train --plan "$WORK/plan.toml" "${TRAIN[@]}" --out "$WORK/local-pool" 2>/dev/null
  "$DATM" pool merge --groupwise --plan "$WORK/local-pool/pool.toml" --pool "$WORK/local-pool" 2>/dev/null
  "$DATM" pool translate --pool "$WORK/local-pool/datm.toml" --model "$REPO/tests/fixtures/model/tiny-llama" \
    --data "$WORK/data" --out "$WORK/local-eval" "${EVAL[@]}" >/dev/null 2>&1
}

compare() {
  local n=0 f rel
  while IFS= read -r f; do
    rel=${f#"$WORK/local-pool/"}
    cmp -s "$f" "$WORK/slurm-pool/$rel" || { log "differs from the local run: $rel"; exit 1; }
    n=$((n + 1))
  done < <(find "$WORK/local-pool" -name 'adapter_model.safetensors' -o -name 'adapter_config.json')
  [ "$n" -ge 14 ] || { log "expected 5 trained + 2 merged adapters, compared $n files"; exit 1; }
  # The manifests name their own folder; equal once the pool paths are aligned.
  diff <(sed "s#$WORK/local-pool#POOL#g" "$WORK/local-pool/datm.toml") \
    <(sed "s#$WORK/slurm-pool#POOL#g" "$WORK/slurm-pool/datm.toml") >&2
  local hyps=0
  for f in "$WORK"/local-eval/*.txt "$WORK/local-eval/report.md"; do
    cmp "$f" "$WORK/slurm-eval/$(basename "$f")"
    hyps=$((hyps + 1))
  done
  [ "$hyps" -ge 5 ] || { log "expected hypothesis files and a report, compared $hyps"; exit 1; }
  log "OK: $n adapter files, the DATM manifest, $((hyps - 1)) hypothesis files and the report equal the local run's"
}

trap cleanup EXIT
install_slurm
start_munge
write_config
start_cluster
prepare_pool
run_on_slurm
run_locally
compare
