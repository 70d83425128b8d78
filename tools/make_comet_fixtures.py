#!/usr/bin/env python3
"""Reference side of the COMET differential test (crates/comet/tests/parity.rs).

  make_comet_fixtures.py [OUTDIR]        (default tests/fixtures/comet)
      Builds, with unbabel-comet 2.2.7 itself, small random-weight COMET models in the
      on-disk layout users download (MODEL/hparams.yaml + MODEL/checkpoints/model.ckpt, a
      Lightning checkpoint written by torch.save), over a tiny XLM-R encoder whose config and
      SentencePiece tokenizer (trained on gettext text from /usr/share/locale) live in an HF
      hub cache under OUTDIR/hub as `datm/xlmr-tiny`:
        sparsemax  regression_metric, sparsemax, no layer norm (wmt22-comet-da's settings)
        softmax    regression_metric, softmax, layer norm, Sigmoid final activation
        qe         referenceless_regression_metric, sparsemax
      and records `model.predict(..., gpus=0)` scores at batch 1 and 8 for the triples in
      OUTDIR/{src,ref,hyp1,hyp2}.txt (real catalog lines, CJK, empty hypotheses, lines longer
      than 512 tokens, emoji) into OUTDIR/expected.json.

  make_comet_fixtures.py --check [OUTDIR]
      Scores the committed models and text files with unbabel-comet again and fails unless
      every score is within CHECK_TOLERANCE of OUTDIR/expected.json. (Regenerating is not
      comparable across machines: the text comes from the machine's own catalogs.)

Runs offline: HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 are set here.
"""
import json
import os
import random
import shutil
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gettext_pairs  # noqa: E402

ENCODER_NAME = "datm/xlmr-tiny"
SNAPSHOT = "0" * 40
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
LOCALES = ("de", "fr", "ru", "ja", "zh_CN", "ko", "es", "el")
VARIANTS = {
    "sparsemax": dict(cls="regression_metric", layer_transformation="sparsemax", layer_norm=False,
                      final_activation=None),
    "softmax": dict(cls="regression_metric", layer_transformation="softmax", layer_norm=True,
                    final_activation="Sigmoid"),
    "qe": dict(cls="referenceless_regression_metric", layer_transformation="sparsemax",
               layer_norm=False, final_activation=None),
}


def catalog_triples(n_short=56, seed=20240):
    """(src, ref, locale) triples: English msgids and their translations in LOCALES."""
    paths = [p for p in gettext_pairs.catalog_paths() if p.split("/")[-3] in LOCALES]
    by_locale = {}
    for loc, msgid, msgstr in gettext_pairs.catalog_pairs(paths, 2, 300):
        msgid = " ".join(msgid.split())
        if msgid and len(msgid) <= 300:
            by_locale.setdefault(loc, []).append((msgid, msgstr))
    rng = random.Random(seed)
    out = []
    for i in range(n_short):
        loc = LOCALES[i % len(LOCALES)]
        src, ref = rng.choice(by_locale[loc])
        out.append((src, ref, loc))
    return out, by_locale


def make_data(seed=7, n_short=56):
    """src, ref, hyp1, hyp2 lines (one triple per index): `n_short` catalog triples with
    edge cases, then three lines longer than 512 tokens."""
    rng = random.Random(seed)
    triples, by_locale = catalog_triples(n_short)
    src = [t[0] for t in triples]
    ref = [t[1] for t in triples]
    hyp1 = [gettext_pairs.perturb(r, rng) for r in ref]
    hyp2 = [gettext_pairs.perturb(r, rng) for r in ref]
    # Edge cases: empty hypotheses, a hypothesis equal to its reference, emoji, a duplicate source.
    hyp1[3] = ""
    hyp2[10] = ""
    hyp2[11] = ref[11]
    hyp1[5] = hyp1[5] + " 🙂🎉"
    src[6] = "👍 " + src[6]
    ref[7] = ref[7] + " 🚀"
    src[8] = src[9]
    # Lines far longer than 512 tokens (truncated to 510 by COMET).
    for loc in ("de", "ja", "ru"):
        pool = by_locale[loc]
        picks = [rng.choice(pool) for _ in range(90)]
        src.append(" ".join(p[0] for p in picks))
        ref.append(" ".join(p[1] for p in picks))
        hyp1.append(" ".join(gettext_pairs.perturb(p[1], rng) for p in picks))
        hyp2.append(" ".join(p[1] for p in picks[:50]))
    clean = lambda xs: [" ".join(x.split()) for x in xs]  # noqa: E731
    return clean(src), clean(ref), clean(hyp1), clean(hyp2)


def sentencepiece_pb2_shim():
    """sentencepiece 0.2.3's generated protobuf module needs protobuf >= 5; with an older
    protobuf, transformers' own copy of the same schema is used for the slow->fast conversion."""
    try:
        from sentencepiece import sentencepiece_model_pb2  # noqa: F401
    except ImportError:
        from transformers.utils import sentencepiece_model_pb2_new

        sys.modules["sentencepiece.sentencepiece_model_pb2"] = sentencepiece_model_pb2_new


def build_encoder(hub, lines, name=ENCODER_NAME, shape=None, vocab_size=512):
    """An XLM-R config (`shape`, default TINY) + a small SentencePiece tokenizer, in hub-cache
    layout under the name `name`; returns the snapshot folder."""
    import sentencepiece as spm
    from transformers import XLMRobertaConfig, XLMRobertaTokenizer, XLMRobertaTokenizerFast

    sentencepiece_pb2_shim()
    repo = os.path.join(hub, "models--" + name.replace("/", "--"))
    snap = os.path.join(repo, "snapshots", SNAPSHOT)
    os.makedirs(snap, exist_ok=True)
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    with open(os.path.join(repo, "refs", "main"), "w") as f:
        f.write(SNAPSHOT)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "spm")
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_prefix=prefix, vocab_size=vocab_size,
            model_type="unigram", character_coverage=0.98, hard_vocab_limit=False,
            num_threads=1, seed_sentencepiece_size=100000, minloglevel=2)
        slow = XLMRobertaTokenizer(vocab_file=prefix + ".model")
        slow.save_pretrained(tmp + "/slow")
        fast = XLMRobertaTokenizerFast.from_pretrained(tmp + "/slow")
        fast.save_pretrained(snap)
        for name in os.listdir(snap):
            if name not in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
                os.remove(os.path.join(snap, name))
        n_vocab = len(fast)
    XLMRobertaConfig(vocab_size=n_vocab, max_position_embeddings=514, pad_token_id=1,
                     bos_token_id=0, eos_token_id=2, type_vocab_size=1, layer_norm_eps=1e-5,
                     **(shape or TINY)).save_pretrained(snap)
    return snap


def build_model(out_dir, encoder, variant, seed, hidden_sizes=(64, 32)):
    """A random-weight COMET model saved as MODEL/hparams.yaml + checkpoints/model.ckpt."""
    import pytorch_lightning as ptl
    import torch
    import yaml
    from comet.models import str2model

    opts = dict(variant)
    cls = str2model[opts.pop("cls")]
    torch.manual_seed(seed)
    model = cls(pretrained_model=encoder, load_pretrained_weights=False, local_files_only=True,
                hidden_sizes=list(hidden_sizes), activations="Tanh", **opts)
    with torch.no_grad():
        # Spread the layer weights so that sparsemax keeps several layers, and give every
        # LayerNorm a non-trivial affine transform.
        for i, p in enumerate(model.layerwise_attention.scalar_parameters):
            p.fill_([0.9, -0.4, 0.7, 0.2, 1.1][i % 5] * (1 + 0.1 * i))
        model.layerwise_attention.gamma.fill_(1.3)
        for name, p in model.encoder.named_parameters():
            if "LayerNorm" in name:
                p.add_(torch.randn_like(p) * 0.2)
    model.eval()
    os.makedirs(os.path.join(out_dir, "checkpoints"), exist_ok=True)
    ckpt = {
        "epoch": 0, "global_step": 0, "pytorch-lightning_version": ptl.__version__,
        "state_dict": model.state_dict(), "loops": {}, "callbacks": {},
        "optimizer_states": [], "lr_schedulers": [], "hparams_name": "kwargs",
        "hyper_parameters": dict(model.hparams),
    }
    torch.save(ckpt, os.path.join(out_dir, "checkpoints", "model.ckpt"))
    with open(os.path.join(out_dir, "hparams.yaml"), "w") as f:
        yaml.safe_dump(dict(model.hparams), f, sort_keys=False)


def load_reference(model_dir):
    """unbabel-comet's own loader on MODEL/checkpoints/model.ckpt."""
    from comet import load_from_checkpoint

    return load_from_checkpoint(os.path.join(model_dir, "checkpoints", "model.ckpt"),
                                local_files_only=True)


def reference_scores(model_dir, src, hyp, ref, batch_size, model=None):
    """unbabel-comet's fp32 predict() on the CPU."""
    model = model or load_reference(model_dir)
    if ref is None:
        samples = [{"src": s, "mt": m} for s, m in zip(src, hyp)]
    else:
        samples = [{"src": s, "mt": m, "ref": r} for s, m, r in zip(src, hyp, ref)]
    out = model.predict(samples, batch_size=batch_size, gpus=0, progress_bar=False)
    return {"scores": [float(x) for x in out.scores], "system_score": float(out.system_score)}


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


def generate(out):
    import torch

    torch.set_num_threads(1)
    os.makedirs(out, exist_ok=True)
    hub = os.path.join(out, "hub")
    os.environ["HF_HUB_CACHE"] = os.path.abspath(hub)
    src, ref, hyp1, hyp2 = make_data()
    for name, lines in (("src", src), ("ref", ref), ("hyp1", hyp1), ("hyp2", hyp2)):
        write_lines(os.path.join(out, name + ".txt"), lines)
    _, by_locale = catalog_triples()
    text = [s for pairs in by_locale.values() for p in pairs for s in p]
    build_encoder(hub, text)
    expected = {"comet": __import__("comet").__version__, "torch": torch.__version__}
    for seed, (name, variant) in enumerate(VARIANTS.items()):
        model_dir = os.path.join(out, name)
        build_model(model_dir, ENCODER_NAME, variant, seed)
        use_ref = None if variant["cls"].startswith("referenceless") else ref
        expected[name] = {
            f"{hyp_name}_batch{bs}": reference_scores(model_dir, src, hyp, use_ref, bs)
            for hyp_name, hyp in (("hyp1", hyp1), ("hyp2", hyp2)) for bs in (1, 8)
        }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


# Largest difference a score may have from the committed one in --check: torch's float
# sums differ slightly between CPUs, far below what datm's parity tests allow.
CHECK_TOLERANCE = 1e-5


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def check_scores(out):
    """The largest difference between unbabel-comet's scores of the committed models and
    texts today and OUTDIR/expected.json."""
    os.environ["HF_HUB_CACHE"] = os.path.abspath(os.path.join(out, "hub"))
    src, ref, hyp1, hyp2 = (read_lines(os.path.join(out, n + ".txt"))
                            for n in ("src", "ref", "hyp1", "hyp2"))
    committed = json.load(open(os.path.join(out, "expected.json")))
    worst = 0.0
    for name, variant in VARIANTS.items():
        model_dir = os.path.join(out, name)
        model = load_reference(model_dir)
        use_ref = None if variant["cls"].startswith("referenceless") else ref
        for hyp_name, hyp in (("hyp1", hyp1), ("hyp2", hyp2)):
            for bs in (1, 8):
                got = reference_scores(model_dir, src, hyp, use_ref, bs, model)
                want = committed[name][f"{hyp_name}_batch{bs}"]
                if len(got["scores"]) != len(want["scores"]):
                    sys.exit(f"{name} {hyp_name}: {len(got['scores'])} scores, "
                             f"expected.json has {len(want['scores'])}")
                pairs = zip(got["scores"] + [got["system_score"]],
                            want["scores"] + [want["system_score"]])
                worst = max([worst] + [abs(a - b) for a, b in pairs])
    return worst


def main():
    args = sys.argv[1:]
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    out = args[0] if args else "tests/fixtures/comet"
    if not check:
        shutil.rmtree(out, ignore_errors=True)
        generate(out)
        print(json.dumps({"written": out}))
        return
    worst = check_scores(out)
    if worst > CHECK_TOLERANCE:
        sys.exit(f"{out}/expected.json differs from unbabel-comet today by {worst:.3g}")
    print(json.dumps({"checked": out, "largest_difference": worst}))


if __name__ == "__main__":
    main()
