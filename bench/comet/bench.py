#!/usr/bin/env python3
"""Benchmark: `datm comet` vs unbabel-comet 2.2.7 `predict` on the CPU, same run.

Two hypothesis files (seeded perturbations of gettext translations) against one set of 200
real source/reference triples, on a random-weight model of wmt22-comet-da's exact shape
(XLM-R large encoder, sparsemax, estimator [3072, 1024]; built once by
tools/check_comet_real_shape.py's generator into --cache). Each side runs as its own process
under /usr/bin/time -v:
  datm       `datm comet --model M -s src -t hyp1 hyp2 -r ref --json` (whole process);
  reference  load_from_checkpoint + predict() per hypothesis file, fp32, gpus=0, with its
             embedding cache on (`--reference-cache on`, the default: as comet-score, which
             should find the second file's source and reference batches cached; its hits
             are recorded, and in 2.2.7 there are none) or off (`off`: as `predict` runs
             from Python unless `set_embedding_cache()` is called).
Reports wall time, segments/s (2 × N segments), peak RSS, encoder GFLOP/s (FLOPs of the
distinct sentences' encoder passes over wall time) and the max score difference. `--dtypes f32
bf16` also times datm's `--dtype bf16` (bf16 weights and inputs; AMX tiles where the CPU has
them) against the same fp32 reference run: its speed and how far its scores move.
`--with-comet-score` also times unbabel-comet's own `comet-score` command on the same files
(`--gpus 0`; it runs the model in fp16), with its score differences from the fp32 `predict`.

`--cpu-path avx2|avx2vnni|avx512|...` forces datm's kernel path (`DATM_CPU`); with `avx2` or
`avx2vnni` PyTorch is held to AVX2 as well (`ATEN_CPU_CAPABILITY`, oneDNN and MKL limits, as
bench/generate does), and the capability torch reports is recorded.

  bench.py [--datm target/release/datm] [--n 200] [--batch-size 16] [--out bench/out/comet]
           [--dtypes f32 [bf16]] [--reference-cache on|off] [--with-comet-score]
           [--cpu-path PATH]
Env: run with the reference venv's python (torch, unbabel-comet). Do not run on a shared
machine: timings are meaningless there.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
sys.path.append(os.path.join(HERE, ".."))
import cpu_paths  # noqa: E402
import check_comet_real_shape as real  # noqa: E402
import gettext_pairs  # noqa: E402
import make_comet_fixtures as fx  # noqa: E402


def make_data(n, seed=99):
    import random

    rng = random.Random(seed)
    triples, _ = fx.catalog_triples(n, seed=seed)
    src = [" ".join(t[0].split()) for t in triples]
    ref = [" ".join(t[1].split()) for t in triples]
    hyp1 = [" ".join(gettext_pairs.perturb(r, rng).split()) for r in ref]
    hyp2 = [" ".join(gettext_pairs.perturb(r, rng).split()) for r in ref]
    return src, ref, hyp1, hyp2


def timed(cmd, env, out_path):
    """Runs cmd under /usr/bin/time -v; returns (stdout, wall seconds, peak RSS KiB)."""
    t0 = time.time()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    with open(out_path, "w") as f:
        f.write(p.stderr)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed:\n{p.stderr[-3000:]}")
    rss = next(int(line.split(":")[1]) for line in p.stderr.splitlines()
               if "Maximum resident set size" in line)
    return p.stdout, wall, rss


def encoder_gflop(sentences):
    """GFLOPs of one encoder pass over each distinct sentence (matmuls and attention);
    needs HF_HUB_CACHE pointing at the generated hub (set by real.ensure_model)."""
    from transformers import XLMRobertaTokenizerFast

    tok = XLMRobertaTokenizerFast.from_pretrained(real.ENCODER, local_files_only=True)
    h, ff, layers = 1024, 4096, 24
    total = 0
    for ids in tok(sorted(set(sentences)), truncation=True, max_length=510)["input_ids"]:
        t = len(ids)
        total += layers * (2 * t * (4 * h * h + 2 * h * ff) + 4 * t * t * h)
    return total / 1e9


def reference_run(args):
    """The reference side, in its own process: prints scores JSON and predict() seconds."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    read = lambda p: open(p, encoding="utf-8").read().split("\n")[:-1]  # noqa: E731
    src, ref = read(args.src), read(args.ref)
    model = fx.load_reference(args.model)
    if args.reference_cache == "on":
        model.set_embedding_cache()
    t0 = time.time()
    out = []
    for path in args.hyps:
        hyp = read(path)
        pred = model.predict([{"src": s, "mt": m, "ref": r} for s, m, r in zip(src, hyp, ref)],
                             batch_size=args.batch_size, gpus=0, progress_bar=False)
        out.append({"hyp": path, "scores": [float(x) for x in pred.scores],
                    "system_score": float(pred.system_score)})
    # unbabel-comet 2.2.7 calls its cached function with keyword tensors, which its key
    # builder leaves as objects hashed by identity: the cache has never hit in these runs.
    hits = (model.retrieve_sentence_embedding.cache_info().hits
            if args.reference_cache == "on" else None)
    print(json.dumps({"results": out, "predict_s": time.time() - t0, "cache_hits": hits,
                      "torch_capability": torch.backends.cpu.get_cpu_capability()}))


def comet_score_run(model_dir, files, args, env, ref_run):
    """unbabel-comet's `comet-score` on both files, timed whole; its scores against the fp32
    `predict` scores of `ref_run`."""
    cli = os.path.join(os.path.dirname(sys.executable), "comet-score")
    out, wall, rss = timed(
        [cli, "--model", os.path.join(model_dir, "checkpoints", "model.ckpt"), "-s",
         files["src"], "-t", files["hyp1"], files["hyp2"], "-r", files["ref"], "--gpus", "0",
         "--quiet", "--batch_size", str(args.batch_size)],
        env, os.path.join(args.out, "comet-score.time"))
    scores = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].startswith("Segment "):
            scores.setdefault(parts[0], []).append(float(parts[2].split(": ")[1]))
    diffs = [abs(a - b) for r, got in zip(ref_run["results"], scores.values())
             for a, b in zip(r["scores"], got)]
    return {"wall_s": wall, "peak_rss_kib": rss, "max_segment_diff_vs_fp32": max(diffs),
            "note": "scores printed with 4 decimals"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datm", default="target/release/datm")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/datm/comet-real-shape"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", default="bench/out/comet")
    ap.add_argument("--dtypes", nargs="+", default=["f32"], choices=["f32", "bf16"],
                    help="datm's --dtype values to time (the first is the headline)")
    ap.add_argument("--reference-cache", choices=["on", "off"], default="on",
                    help="unbabel-comet's embedding cache (on: as comet-score; off: as predict())")
    ap.add_argument("--with-comet-score", action="store_true",
                    help="also time the comet-score command (fp16 model) on the same files")
    cpu_paths.add_argument(ap)
    ap.add_argument("--reference-run", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--src", help=argparse.SUPPRESS)
    ap.add_argument("--ref", help=argparse.SUPPRESS)
    ap.add_argument("--hyps", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference_run:
        return reference_run(args)
    hub, model_dir = real.ensure_model(args.cache)
    os.makedirs(args.out, exist_ok=True)
    src, ref, hyp1, hyp2 = make_data(args.n)
    files = {}
    for name, lines in (("src", src), ("ref", ref), ("hyp1", hyp1), ("hyp2", hyp2)):
        files[name] = os.path.join(args.out, name + ".txt")
        fx.write_lines(files[name], lines)
    env = {**os.environ, "HF_HUB_CACHE": os.path.abspath(hub), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    env.update(cpu_paths.environment(args.cpu_path))
    datm_runs = {}
    for dtype in args.dtypes:
        timing = "datm.time" if dtype == args.dtypes[0] else f"datm-{dtype}.time"
        datm_runs[dtype] = timed(
            [args.datm, "comet", "--model", model_dir, "-s", files["src"], "-t", files["hyp1"],
             files["hyp2"], "-r", files["ref"], "--json", "--batch-size", str(args.batch_size),
             "--dtype", dtype],
            env, os.path.join(args.out, timing))
    r_out, r_wall, r_rss = timed(
        [sys.executable, os.path.abspath(__file__), "--reference-run", "--model", model_dir,
         "--src", files["src"], "--ref", files["ref"], "--hyps", files["hyp1"], files["hyp2"],
         "--batch-size", str(args.batch_size), "--reference-cache", args.reference_cache],
        env, os.path.join(args.out, "reference.time"))
    ref_run = json.loads(r_out.splitlines()[-1])
    comet_score = (comet_score_run(model_dir, files, args, env, ref_run)
                   if args.with_comet_score else None)
    gflop = encoder_gflop(src + ref + hyp1 + hyp2)
    segs = 2 * args.n

    def summary(dtype):
        d_out, d_wall, d_rss = datm_runs[dtype]
        datm = [json.loads(line) for line in d_out.splitlines()]
        diffs = [abs(a - b) for d, r in zip(datm, ref_run["results"])
                 for a, b in zip(d["scores"], r["scores"])]
        system = [abs(d["system_score"] - r["system_score"])
                  for d, r in zip(datm, ref_run["results"])]
        return {"wall_s": d_wall, "segments_per_s": segs / d_wall, "peak_rss_kib": d_rss,
                "encoder_gflop_per_s": gflop / d_wall, "speedup_wall": r_wall / d_wall,
                "speedup_vs_predict_only": ref_run["predict_s"] / d_wall,
                "max_segment_diff": max(diffs), "max_system_diff": max(system)}

    by_dtype = {dtype: summary(dtype) for dtype in args.dtypes}
    head = by_dtype[args.dtypes[0]]
    report = {
        "segments": segs, "batch_size": args.batch_size, "threads": os.cpu_count(),
        "dtype": args.dtypes[0], "reference_cache": args.reference_cache,
        "datm": {k: head[k] for k in ("wall_s", "segments_per_s", "peak_rss_kib",
                                      "encoder_gflop_per_s")},
        "reference": {"wall_s": r_wall, "predict_s": ref_run["predict_s"],
                      "segments_per_s": segs / r_wall, "peak_rss_kib": r_rss,
                      "embedding_cache_hits": ref_run["cache_hits"]},
        "speedup_wall": head["speedup_wall"],
        "speedup_vs_predict_only": head["speedup_vs_predict_only"],
        "distinct_sentence_gflop": gflop, "max_segment_diff": head["max_segment_diff"],
        "datm_by_dtype": by_dtype, "comet_score_command": comet_score,
        "loadavg": open("/proc/loadavg").read().split()[:3],
        "cpu_path": args.cpu_path or "native", "torch_capability": ref_run["torch_capability"],
    }
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
