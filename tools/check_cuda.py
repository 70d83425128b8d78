#!/usr/bin/env python3
"""GPU check: `datm generate --device cuda` against HF transformers' expected outputs.

For the tiny LLaMA and Gemma-3 fixtures (tests/fixtures/model, made by make_model_fixtures.py
with HF transformers + PEFT), decodes every prompt of every recorded generation setting
(greedy; 5 and 3 beams with several length penalties and stopping rules), with and without the
PEFT adapter, on a CUDA device in f32, and compares the new token ids with HF's. Needs a datm
binary built with `--features cuda`; no Python packages.

    python3 tools/check_cuda.py --datm target/release/datm [--device cuda]

Exit status 0 when every output equals HF's, 1 otherwise.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "model")


def run_datm(args, model, adapter, prompts, run, max_new):
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, "p.jsonl"), os.path.join(tmp, "o.jsonl")
        with open(inp, "w") as fh:
            for p in prompts:
                fh.write(json.dumps({"prompt": p}) + "\n")
        es = run.get("early_stopping", False)
        es = "never" if es == "never" else str(bool(es)).lower()
        cmd = [args.datm, "generate", "--model", model, "--input", inp, "-o", out, "--device", args.device,
               "--dtype", "f32", "--batch-size", "1", "--num-beams", str(run["num_beams"]),
               "--max-new-tokens", str(max_new), f"--length-penalty={run.get('length_penalty', 1.0)}",
               "--early-stopping", es]
        if adapter:
            cmd += ["--adapter", adapter]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"datm failed: {' '.join(cmd)}\n{r.stderr}")
        with open(out) as fh:
            return [json.loads(line)["token_ids"] for line in fh]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datm", default="target/release/datm")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    total = same = 0
    t0 = time.time()
    for name in ["tiny-llama", "tiny-gemma3"]:
        with open(os.path.join(FIXTURES, f"{name}-expected.json")) as fh:
            exp = json.load(fh)
        model = os.path.join(FIXTURES, name)
        for part, adapter in [("base", None), ("lora", os.path.join(FIXTURES, f"{name}-lora"))]:
            cases = exp[part]
            for r, run in enumerate(cases[0]["runs"]):
                got = run_datm(args, model, adapter, [c["prompt"] for c in cases], run, exp["max_new_tokens"])
                for c, g in zip(cases, got):
                    want = c["runs"][r]["token_ids"]
                    total += 1
                    same += g == want
                    if g != want:
                        print(f"DIFF {name} {part} {run['num_beams']} beams: HF {want} datm {g}")
    print(f"{same}/{total} outputs equal HF's on {args.device} ({time.time() - t0:.1f} s)")
    return 0 if same == total else 1


if __name__ == "__main__":
    sys.exit(main())
