#!/bin/sh
# Real learning check (issue 4): LoRA on Gemma-3-270M (GGUF, dequantized for training) with
# 1,000 English-German gettext pairs, trained on en-de and de-en together; chrF on 200
# held-out test pairs per direction, base model vs base + adapter, greedy decoding.
#
#   bench/train/learn.sh [DATM] [MAX_STEPS]     (DATM defaults to target/release/datm)
#
# Writes everything under ${WORK:-/tmp/datm-learn}. Pairs: `datm data import-gettext --langs de`,
# the train split shuffled with seed 0 and cut to 1,000; test: the first 200 test pairs.
set -eu
DATM=${1:-target/release/datm}
STEPS=${2:-24}
MODEL=${DATM_GEMMA_GGUF:-$(bash -c '. scripts/fetch-models.sh && fetch_model gemma')}
PY=${DATM_PYTHON:-python3}
W=${WORK:-/tmp/datm-learn}
mkdir -p "$W"
"$DATM" data import-gettext --langs de --out "$W/all" --valid 200 --test 200 >/dev/null
"$PY" - "$W" <<'PYEOF'
import json, os, random, sys
w = sys.argv[1]
rows = json.load(open(f"{w}/all/deen/train.de-en.json"))
random.Random(0).shuffle(rows)
os.makedirs(f"{w}/data/deen", exist_ok=True)
json.dump(rows[:1000], open(f"{w}/data/deen/train.de-en.json", "w"), ensure_ascii=False)
json.dump(json.load(open(f"{w}/all/deen/valid.de-en.json"))[:100],
          open(f"{w}/data/deen/valid.de-en.json", "w"), ensure_ascii=False)
test = json.load(open(f"{w}/all/deen/test.de-en.json"))[:200]
for d, (s, t) in {"de-en": ("de", "en"), "en-de": ("en", "de")}.items():
    for side, lang in (("src", s), ("ref", t)):
        with open(f"{w}/{d}.{side}", "w") as f:
            f.writelines(r["translation"][lang].replace("\n", " ") + "\n" for r in test)
PYEOF
rm -rf "$W/adapter"
"$DATM" train --model "$MODEL" --data "$W/data" --directions en-de,de-en --out "$W/adapter" \
  --batch-size 16 --micro-batch-size 8 --max-steps "$STEPS" --max-source-length 128 \
  --max-target-length 64 --max-eval-examples 20 --save-steps 4
for d in de-en en-de; do
  s=${d%-*}; t=${d#*-}
  for run in base tuned; do
    a=""; [ "$run" = tuned ] && a="--adapter $W/adapter"
    # shellcheck disable=SC2086
    "$DATM" translate --model "$MODEL" $a --src "$s" --tgt "$t" -i "$W/$d.src" \
      -o "$W/$d.$run.hyp" --num-beams 1 --max-new-tokens 48 --batch-size 8
    printf '%s %s ' "$d" "$run"
    "$DATM" score "$W/$d.ref" -i "$W/$d.$run.hyp" -m chrf -b
  done
done
