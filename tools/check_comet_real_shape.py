#!/usr/bin/env python3
"""Real-shape COMET check: datm vs unbabel-comet 2.2.7 on a random-weight wmt22-comet-da
shaped model (XLM-R large: 24 layers, 1024 hidden, 16 heads, 4096 intermediate, 514
positions; sparsemax, estimator [3072, 1024]), generated once into a cache folder (not
committed; the vocabulary is the small gettext SentencePiece one, the only part not at
full size).

  check_comet_real_shape.py [--datm target/release/datm] [--cache DIR] [--segments N]

Prints {"segments", "max_segment_diff", "system_diff", ...} and exits 1 when a segment
differs by more than 1e-4. Runs offline.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_comet_fixtures as fx  # noqa: E402

LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)
ENCODER = "datm/xlmr-large-shape"
TOL = 1e-4


def ensure_model(cache):
    """The encoder (hub layout) and model under `cache`, built once."""
    hub = os.path.join(cache, "hub")
    model_dir = os.path.join(cache, "wmt22-shape")
    os.environ["HF_HUB_CACHE"] = os.path.abspath(hub)
    if not os.path.exists(os.path.join(model_dir, "checkpoints", "model.ckpt")):
        _, by_locale = fx.catalog_triples()
        text = [s for pairs in by_locale.values() for p in pairs for s in p]
        fx.build_encoder(hub, text, name=ENCODER, shape=LARGE)
        fx.build_model(model_dir, ENCODER, fx.VARIANTS["sparsemax"], seed=11,
                       hidden_sizes=(3072, 1024))
    return hub, model_dir


def datm_scores(datm, hub, model_dir, src, hyp, ref, batch_size):
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, lines in (("src", src), ("hyp", hyp), ("ref", ref)):
            paths[name] = os.path.join(tmp, name + ".txt")
            fx.write_lines(paths[name], lines)
        out = subprocess.run(
            [datm, "comet", "--model", model_dir, "-s", paths["src"], "-t", paths["hyp"],
             "-r", paths["ref"], "--json", "--batch-size", str(batch_size)],
            check=True, capture_output=True, text=True,
            env={**os.environ, "HF_HUB_CACHE": os.path.abspath(hub)})
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datm", default="target/release/datm")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/datm/comet-real-shape"))
    ap.add_argument("--segments", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1)))
    hub, model_dir = ensure_model(args.cache)
    src, ref, hyp, _ = fx.make_data(n_short=args.segments - 1)
    # Keep one of the >512-token lines (the first of the three).
    src, ref, hyp = src[:args.segments], ref[:args.segments], hyp[:args.segments]
    want = fx.reference_scores(model_dir, src, hyp, ref, args.batch_size)
    got = datm_scores(args.datm, hub, model_dir, src, hyp, ref, args.batch_size)
    diffs = [abs(a - b) for a, b in zip(got["scores"], want["scores"])]
    report = {
        "segments": len(diffs),
        "max_segment_diff": max(diffs),
        "system_diff": abs(got["system_score"] - want["system_score"]),
        "reference_system_score": want["system_score"],
        "tolerance": TOL,
    }
    print(json.dumps(report))
    if len(diffs) != len(src) or max(diffs) > TOL:
        sys.exit(1)


if __name__ == "__main__":
    main()
