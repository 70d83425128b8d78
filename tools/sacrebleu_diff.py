"""Reference side of datm-metrics' differential test against the real sacrebleu.

Builds the test data (real gettext segment pairs and random/perturbed text), scores it
with sacrebleu's API for every configuration in CONFIGS, and prints one JSON document:
{"version", "datasets": {name: {"hyps": [...], "refs": [[...], ...]}}, "cases": [...]}.
`refs` are sacrebleu reference streams (refs[k][i]); null marks a missing reference.
Each case carries the metric, its keyword arguments, and sacrebleu's corpus score (or
sentence scores) and long/short signatures. Run: python tools/sacrebleu_diff.py [n_gettext]
"""

import json
import os
import random
import sys

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF, TER

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gettext_pairs import catalog_paths, distinct_translations, perturb, sample_pairs  # noqa: E402

ALPHABET = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    + list(".,;:!?-'\"()[]{}&<>/\\@#$%^*+=~`|_")
    + ["&amp;", "&quot;", "&lt;", "&gt;", "<skipped>", "-\n", "\n", "3.14", "1,000", "2019."]
    + list("éàüößçñøåÆŒİıΣσςΑΒΓабвгд")
    + list("价格是很好中文字符漢字")
    + list("ひらがなカタカナ한국어")
    + ["𠀀", "𠀁", "€", "—", "“", "”", "…", "\u200b", "½", "²", "٣", "™", "©", "±", "→"]
    + ["\t", "\x1c", "\x1f", "\xa0", "\u3000", "\u2009", "\x85"]
    + [" "] * 12
)


def random_text(rng, max_len=40):
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, max_len)))


def unicode_sweep(rng):
    """Segments that contain every punctuation, symbol and number code point (Python `regex`
    categories P, S, N) once, between letters and digits, for the `intl` tokenizer."""
    import regex
    cat = regex.compile(r"[\p{P}\p{S}\p{N}]")
    cps = [chr(c) for c in range(0x110000)
           if not 0xD800 <= c <= 0xDFFF and cat.match(chr(c))]
    fill = list("ab1 2x.")
    segs = []
    for i in range(0, len(cps), 25):
        segs.append("".join(c + rng.choice(fill) for c in cps[i:i + 25]))
    return segs


def datasets():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
    rng = random.Random(7)
    # Every 6th catalog plus all Chinese/Japanese/Korean ones keeps the scan short.
    paths = [p for i, p in enumerate(catalog_paths())
             if i % 6 == 0 or p.split("/")[-3].split("_")[0] in ("zh", "ja", "ko")]
    pool = distinct_translations(paths)
    real = sample_pairs(pool, n, seed=99)
    refs = [r for r, _, _ in real]
    hyps = [h for _, h, _ in real]
    ref2 = [perturb(r, rng) for r in refs]
    rand_refs = [random_text(rng) for _ in range(600)]
    rand_hyps = [perturb(r, rng) if rng.random() < 0.7 else random_text(rng) for r in rand_refs]
    rand_ref2 = [random_text(rng) if rng.random() < 0.5 else perturb(r, rng) for r in rand_refs]
    var_ref2 = [None if i % 3 == 0 else r for i, r in enumerate(rand_ref2)]
    cjk = sample_pairs(pool, 400, seed=5, locales={"zh", "ja", "ko"})
    uni = unicode_sweep(rng)
    sets = {
        "gettext": {"hyps": hyps, "refs": [refs]},
        "gettext2": {"hyps": hyps, "refs": [refs, ref2]},
        "random": {"hyps": rand_hyps, "refs": [rand_refs]},
        "unicode": {"hyps": uni, "refs": [[perturb(u, rng) for u in uni]]},
        "random2": {"hyps": rand_hyps, "refs": [rand_refs, rand_ref2]},
        "random_var": {"hyps": rand_hyps, "refs": [rand_refs, var_ref2]},
        "cjk": {"hyps": [h for _, h, _ in cjk], "refs": [[r for r, _, _ in cjk]]},
        "ter_small": {"hyps": hyps[:150] + rand_hyps[:150], "refs": [refs[:150] + rand_refs[:150]]},
        "ter_small2": {"hyps": hyps[:100], "refs": [refs[:100], ref2[:100]]},
        "cjk_small": {"hyps": [h for _, h, _ in cjk[:150]], "refs": [[r for r, _, _ in cjk[:150]]]},
    }
    # A machine without (CJK) catalogs still tests the random text.
    return {k: v for k, v in sets.items() if v["hyps"]}


BLEU_SETS = ["gettext", "gettext2", "random", "random2", "random_var", "cjk", "unicode"]
CHRF_SETS = ["gettext", "gettext2", "random", "random_var", "cjk", "unicode"]
TER_SETS = ["ter_small", "ter_small2", "cjk_small"]

CONFIGS = (
    [("bleu", {"tokenize": t}, BLEU_SETS) for t in ["13a", "intl", "zh", "char", "none"]]
    + [("bleu", {"smooth_method": m, **v}, ["gettext", "random"]) for m, v in [
        ("none", {}), ("floor", {}), ("floor", {"smooth_value": 0.5}), ("add-k", {}),
        ("add-k", {"smooth_value": 2}), ("exp", {})]]
    + [("bleu", {"lowercase": True}, ["gettext", "random"]),
       ("bleu", {"effective_order": True}, ["gettext", "random"]),
       ("bleu", {"max_ngram_order": 2}, ["gettext"]),
       ("bleu", {"max_ngram_order": 6, "tokenize": "intl"}, ["gettext"]),
       ("bleu", {"max_ngram_order": 40, "effective_order": True}, ["gettext2"]),
       ("bleu", {"lowercase": True, "tokenize": "zh"}, ["cjk", "random"])]
    + [("chrf", kw, CHRF_SETS) for kw in [
        {}, {"word_order": 2}, {"word_order": 1, "char_order": 4}, {"beta": 1}, {"beta": 3},
        {"whitespace": True}, {"eps_smoothing": True}, {"lowercase": True},
        {"word_order": 2, "eps_smoothing": True, "lowercase": True, "whitespace": True},
        {"char_order": 7, "word_order": 3}]]
    + [("ter", kw, TER_SETS) for kw in [
        {}, {"normalized": True}, {"no_punct": True}, {"case_sensitive": True},
        {"normalized": True, "asian_support": True},
        {"normalized": True, "no_punct": True, "asian_support": True, "case_sensitive": True}]]
)

SENTENCE_CONFIGS = [
    ("bleu", {"effective_order": True}, "random2"),
    ("bleu", {"effective_order": True, "smooth_method": "floor"}, "gettext"),
    ("bleu", {"effective_order": True, "smooth_method": "add-k", "tokenize": "char"}, "cjk"),
    ("chrf", {}, "random2"),
    ("chrf", {"word_order": 2}, "gettext"),
    ("ter", {}, "ter_small"),
]

CLASSES = {"bleu": BLEU, "chrf": CHRF, "ter": TER}


def signatures(metric):
    return metric.get_signature().format(), metric.get_signature().format(short=True)


def main():
    data = datasets()
    cases = []
    for name, kwargs, sets in CONFIGS:
        for ds in sets:
            if ds not in data:
                continue
            metric = CLASSES[name](**kwargs)
            score = metric.corpus_score(data[ds]["hyps"], data[ds]["refs"])
            long_sig, short_sig = signatures(metric)
            cases.append({"metric": name, "kwargs": kwargs, "dataset": ds, "sentence": False,
                          "score": score.score, "verbose": score.format(width=4),
                          "signature": long_sig, "short": short_sig})
    for name, kwargs, ds in SENTENCE_CONFIGS:
        if ds not in data:
            continue
        metric = CLASSES[name](**kwargs)
        hyps, streams = data[ds]["hyps"][:300], data[ds]["refs"]
        scores = []
        for i, h in enumerate(hyps):
            seg_refs = [s[i] for s in streams if s[i] is not None]
            scores.append(metric.sentence_score(h, seg_refs).score)
        long_sig, short_sig = signatures(metric)
        cases.append({"metric": name, "kwargs": kwargs, "dataset": ds, "sentence": True,
                      "scores": scores, "signature": long_sig, "short": short_sig})
    json.dump({"version": sacrebleu.__version__, "datasets": data, "cases": cases},
              sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
