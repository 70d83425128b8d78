#!/usr/bin/env python3
"""How close datm's default decoding stays to `--dtype f32` (HF's exact outputs) and to the
references, on more prompts than the speed benchmark: German gettext messages from this
machine's catalogs (the `--n` after the speed benchmark's first 12), ALMA de→en prompts,
5 beams; the first line of each output is scored against the catalog's English message with
sacreBLEU (BLEU and chrF), and counted where it equals f32's.

    $DATM_SACREBLEU_PYTHON bench/generate/fidelity.py --datm target/release/datm --json out.json

`--also NAME=BINARY` adds another datm binary's default (e.g. an older build) to compare.
"""

import argparse
import json
import os
import subprocess
import tempfile

import sacrebleu

from bench import ALMA, catalog_messages, short_line


def pairs(skip, n):
    """(German, English) messages (5–25 words, one line each) of the sorted de catalogs."""
    out, seen = [], set()
    for de, en in catalog_messages():
        if short_line(de) and "\n" not in en and de not in seen:
            seen.add(de)
            out.append((de.strip(), en.strip()))
    return out[skip:skip + n]


def decode(binary, model, prompts, args, dtype=None):
    """datm's outputs (token ids and first lines) for `prompts`."""
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "out.jsonl")
        with open(inp, "w") as fh:
            for p in prompts:
                fh.write(json.dumps({"prompt": p}) + "\n")
        cmd = [binary, "generate", "--model", model, "--input", inp, "-o", out, "--num-beams", "5",
               "--max-new-tokens", str(args.max_new_tokens), "--batch-size", "8"]
        subprocess.run(cmd + (["--dtype", dtype] if dtype else []), check=True, capture_output=True)
        rows = [json.loads(line) for line in open(out)]
    return [r["token_ids"] for r in rows], [r["text"].strip().split("\n")[0].strip() for r in rows]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datm", default="target/release/datm")
    ap.add_argument("--model", default=os.environ.get("DATM_GEMMA_GGUF"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--also", action="append", default=[], help="NAME=BINARY: another build's default")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    data = pairs(12, args.n)
    prompts, refs = [ALMA.format(de) for de, _ in data], [en for _, en in data]
    runs = {"f32": (args.datm, "f32"), "default": (args.datm, None)}
    runs.update({name: (binary, None) for name, binary in (a.split("=", 1) for a in args.also)})
    outs = {name: decode(binary, args.model, prompts, args, dtype) for name, (binary, dtype) in runs.items()}
    res = {"prompts": len(prompts), "max_new_tokens": args.max_new_tokens}
    for name, (ids, lines) in outs.items():
        res[name] = {
            "bleu": sacrebleu.corpus_bleu(lines, [refs]).score,
            "chrf": sacrebleu.corpus_chrf(lines, [refs]).score,
            "first_line_as_f32": sum(a == b for a, b in zip(lines, outs["f32"][1])),
            "tokens_as_f32": sum(a == b for a, b in zip(ids, outs["f32"][0])),
        }
        r = res[name]
        print(f"{name:10s} BLEU {r['bleu']:5.2f}  chrF {r['chrf']:5.2f}  first line as f32 "
              f"{r['first_line_as_f32']}/{len(prompts)}  all tokens as f32 {r['tokens_as_f32']}/{len(prompts)}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
