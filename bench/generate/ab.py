#!/usr/bin/env python3
"""Same-machine A/B of two `datm` binaries on the generate benchmark's prompts and settings
(`bench.py`'s German gettext messages as ALMA prompts, 5 beams): the two run alternately, A then
B, `--runs` times, each as a whole process, and the script prints every run, the medians and
whether the two wrote the same tokens. On a shared 2-core VM one run of each moves by ±10%, so
a change of a few percent needs alternating runs and medians to be seen at all; no HF run here
(for speed-ups against HF, `bench.py`).

    python3 bench/generate/ab.py --a OLD_BINARY --b NEW_BINARY [--runs 5] [--dtype f32]
        [--cpu-path avx2] [--n 12] [--max-new-tokens 64] [--batch-size 8] [--threads 2]
"""

import argparse
import os
import statistics
import sys

import bench
import cpu_paths


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, help="the baseline binary")
    ap.add_argument("--b", required=True, help="the changed binary")
    ap.add_argument("--model", default=os.environ.get("DATM_GEMMA_GGUF"),
                    help="Gemma-3-270M GGUF (default: $DATM_GEMMA_GGUF)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dtype", default=None, choices=["f32", "bf16"],
                    help="datm's --dtype (default: the default weights)")
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    cpu_paths.add_argument(ap)
    args = ap.parse_args()
    if not args.model or not os.path.exists(args.model):
        sys.exit("no model: pass --model or set DATM_GEMMA_GGUF (scripts/fetch-models.sh)")
    for binary in (args.a, args.b):
        if not os.access(binary, os.X_OK):
            sys.exit(f"{binary}: not an executable")
    os.environ.update(cpu_paths.environment(args.cpu_path))
    prompts = [bench.ALMA.format(s) for s in bench.german_sentences(args.n)]
    runs = {"a": [], "b": []}
    outputs = {}
    for i in range(args.runs):
        for side in ("a", "b"):
            r = bench.datm_run(getattr(args, side), args.model, prompts, args, args.dtype)
            runs[side].append(r)
            outputs[side] = r["outputs"]
            print(f"run {i + 1} {side}: whole {r['wall_s']:6.2f} s, load {r['load_s']:.2f} s, "
                  f"generate {r['gen_s']:6.2f} s, peak {r['peak_mb']:.0f} MB", flush=True)
    for key, what in (("wall_s", "whole process"), ("gen_s", "generate")):
        a = statistics.median(r[key] for r in runs["a"])
        b = statistics.median(r[key] for r in runs["b"])
        print(f"median {what}: a {a:.2f} s, b {b:.2f} s, b/a {b / a:.3f}")
    same = outputs["a"] == outputs["b"]
    print("same tokens" if same else "DIFFERENT tokens")


if __name__ == "__main__":
    main()
