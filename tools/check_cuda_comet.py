#!/usr/bin/env python3
"""GPU check: `datm comet --device cuda` against unbabel-comet 2.2.7's scores on the COMET
fixtures (tests/fixtures/comet, made by tools/make_comet_fixtures.py with the reference
package): the sparsemax, softmax and referenceless (QE) models, two hypothesis files, batch 8,
f32. Every segment must be within 1e-4 of the reference and the system score within 1e-5 (the
CPU path is held to 1e-5 and 1e-6). Needs only the datm binary.

    python3 tools/check_cuda_comet.py --datm DATM [--device cuda]

Exit status 0 when every score agrees, 1 otherwise.
"""

import argparse
import json
import os
import subprocess
import sys

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "comet")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datm", default="target/release/datm")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    with open(os.path.join(FIXTURES, "expected.json")) as f:
        expected = json.load(f)
    env = dict(os.environ, HF_HUB_CACHE=os.path.join(FIXTURES, "hub"))
    failed = 0
    for variant in ["sparsemax", "softmax", "qe"]:
        cmd = [os.path.abspath(args.datm), "comet", "--model", variant, "-s", "src.txt",
               "-t", "hyp1.txt", "hyp2.txt", "--json", "--batch-size", "8", "--device", args.device]
        if variant != "qe":
            cmd += ["-r", "ref.txt"]
        r = subprocess.run(cmd, cwd=FIXTURES, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"{variant}: datm failed:\n{r.stderr[-2000:]}")
            failed += 1
            continue
        for line in r.stdout.splitlines():
            got = json.loads(line)
            hyp = got["hyp"].removesuffix(".txt")
            want = expected[variant][f"{hyp}_batch8"]
            seg = max(abs(a - b) for a, b in zip(got["scores"], want["scores"]))
            system = abs(got["system_score"] - want["system_score"])
            ok = len(got["scores"]) == len(want["scores"]) and seg <= 1e-4 and system <= 1e-5
            failed += not ok
            print(f"{variant} {hyp}: largest segment difference {seg:.2e}, system {system:.2e}"
                  f" {'ok' if ok else 'FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
