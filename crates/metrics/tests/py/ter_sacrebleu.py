"""Reference TER results from the real sacrebleu for `tests/ter_differential.rs`.

Builds a corpus from the machine's gettext catalogs (/usr/share/locale/*/LC_MESSAGES/*.mo,
read with gettext.GNUTranslations): real translations as references, deterministic
perturbations of them (dropped, duplicated, re-cased and re-punctuated words, moved
blocks) as hypotheses, a second reference for part of the corpus, and some long
concatenated segments that exercise the beam and the shift-candidate cap. For each
option set it prints the segment statistics, the corpus score and the signature as JSON,
plus the edit distance of random word sequences over tiny vocabularies (shift-heavy).
"""
import glob
import gettext
import json
import random
import sys

from sacrebleu.metrics import TER
from sacrebleu.metrics.lib_ter import translation_edit_rate

LOCALES = ["de", "fr", "ru", "es", "pl", "zh_CN", "ja", "ko", "ar", "el", "tr", "vi"]
PER_LOCALE = 12


def messages(locale):
    out = []
    for path in sorted(glob.glob(f"/usr/share/locale/{locale}/LC_MESSAGES/*.mo")):
        try:
            with open(path, "rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog
        except Exception:
            continue
        for key, value in sorted(catalog.items(), key=lambda kv: str(kv[0])):
            if isinstance(key, str) and key and isinstance(value, str) and value.strip():
                out.append(value)
        if len(out) > 400:
            break
    return out


def perturb(rng, sent):
    words = sent.split()
    out = []
    for w in words:
        r = rng.random()
        if r < 0.08:
            continue
        if r < 0.12:
            out.append(w)
        if r < 0.16:
            w = w.upper()
        if r < 0.2:
            w = w + rng.choice([".", ",", "!", "?", ")", "'s", "&amp;", "。", "，"])
        out.append(w)
    if len(out) > 3 and rng.random() < 0.6:
        i = rng.randrange(len(out))
        j = rng.randrange(i, min(len(out), i + rng.randint(1, 6)) + 1)
        block = out[i:j]
        rest = out[:i] + out[j:]
        k = rng.randrange(len(rest) + 1)
        out = rest[:k] + block + rest[k:]
    return " ".join(out)


def corpus():
    rng = random.Random(7)
    refs, hyps = [], []
    for locale in LOCALES:
        msgs = messages(locale)
        if not msgs:
            continue
        for sent in rng.sample(msgs, min(PER_LOCALE, len(msgs))):
            refs.append(sent)
            hyps.append(perturb(rng, sent))
    for _ in range(3):  # long segments: beam, many shift candidates
        parts = rng.sample(refs, 8)
        ref = " ".join(parts)
        rng.shuffle(parts)
        refs.append(ref)
        hyps.append(perturb(rng, " ".join(parts)))
    hyps += ["", "only hyp", ""]
    refs += ["only ref", "", ""]
    refs2 = [perturb(rng, r) if i % 3 == 0 else r for i, r in enumerate(refs)]
    return hyps, refs, refs2


OPTION_SETS = [
    {},
    {"normalized": True},
    {"no_punct": True},
    {"normalized": True, "asian_support": True},
    {"no_punct": True, "asian_support": True},
    {"normalized": True, "no_punct": True, "asian_support": True, "case_sensitive": True},
    {"case_sensitive": True},
]


def fuzz_pairs(n=150):
    """Random word sequences over tiny vocabularies: many matches, many shifts."""
    rng = random.Random(11)
    pairs = []
    for _ in range(n):
        vocab = [f"w{i}" for i in range(rng.randint(2, 9))]
        ref = [rng.choice(vocab) for _ in range(rng.randint(0, 30))]
        hyp = [rng.choice(vocab) for _ in range(rng.randint(0, 30))]
        edits, length = translation_edit_rate(hyp, ref)
        pairs.append({"hyp": " ".join(hyp), "ref": " ".join(ref), "edits": edits, "len": length})
    return pairs


def main():
    hyps, refs, refs2 = corpus()
    cases = []
    for opts in OPTION_SETS:
        for ref_sets in ([refs], [refs, refs2]):
            if len(ref_sets) == 2 and opts not in (OPTION_SETS[0], OPTION_SETS[3]):
                continue
            ter = TER(**opts)
            stats = ter._extract_corpus_statistics(hyps, ref_sets)
            score = ter._aggregate_and_compute(stats)
            cases.append({
                "opts": opts,
                "refs": ref_sets,
                "seg_stats": stats,
                "score": repr(score.score),  # a string: parsed exactly on the Rust side
                "signature": str(ter.get_signature()),
            })
    json.dump({"hyps": hyps, "cases": cases, "fuzz": fuzz_pairs()}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
