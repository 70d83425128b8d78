"""Reference significance results from the real sacrebleu for
`tests/significance_differential.rs`.

A small real example: German gettext translations as references, and a baseline and two
systems made by perturbing them deterministically. Prints, as JSON, every system's
segment statistics per metric (BLEU, chrF2, TER), the `-ci` bootstrap estimates, the
paired bootstrap / approximate randomization results, and the `sacrebleu` CLI's own
paired output (JSON and text) for BLEU. Floats are printed as `repr` strings so that
they parse exactly. Usage: significance_sacrebleu.py WORKDIR
"""
import glob
import gettext
import json
import os
import random
import subprocess
import sys

from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.significance import PairedTest

N_SEGMENTS = 120
AR_TRIALS = 2000


def messages(locale="de"):
    out = []
    for path in sorted(glob.glob(f"/usr/share/locale/{locale}/LC_MESSAGES/*.mo")):
        try:
            with open(path, "rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog
        except Exception:
            continue
        for key, value in sorted(catalog.items(), key=lambda kv: str(kv[0])):
            if isinstance(key, str) and key and isinstance(value, str) and "\n" not in value \
                    and len(value.split()) >= 3:
                out.append(value.strip())
    return out


def perturb(rng, sent, p):
    words = [w for w in sent.split() if rng.random() > p]
    if len(words) > 2 and rng.random() < p * 2:
        i, j = rng.randrange(len(words)), rng.randrange(len(words))
        words[i], words[j] = words[j], words[i]
    return " ".join(words)


def r(x):
    return None if x is None else repr(float(x))


def main():
    workdir = sys.argv[1]
    rng = random.Random(3)
    refs = rng.sample(messages(), N_SEGMENTS)
    systems = {
        "base.txt": [perturb(rng, s, 0.15) for s in refs],
        "sys1.txt": [perturb(rng, s, 0.25) for s in refs],
        "sys2.txt": [perturb(rng, s, 0.16) for s in refs],
    }
    for name, lines in list(systems.items()) + [("ref.txt", refs)]:
        with open(os.path.join(workdir, name), "w") as f:
            f.write("\n".join(lines) + "\n")

    metrics = {"BLEU": BLEU(), "CHRF": CHRF(), "TER": TER()}
    out = {"systems": list(systems), "stats": {}, "ci": {}, "paired": {}, "cli": {}}
    for mname, metric in metrics.items():
        out["stats"][mname] = {
            s: metric._extract_corpus_statistics(h, [refs]) for s, h in systems.items()
        }
        score = metric.corpus_score(systems["base.txt"], [refs], n_bootstrap=1000)
        out["ci"][mname] = {"score": r(score.score), "mean": r(score._mean), "ci": r(score._ci)}

    named = [("Baseline: base.txt", systems["base.txt"])] + \
        [(s, systems[s]) for s in ("sys1.txt", "sys2.txt")]
    for test, n in (("bs", 1000), ("ar", AR_TRIALS)):
        metric_objs = {"BLEU": BLEU(references=[refs]), "CHRF": CHRF(references=[refs]),
                       "TER": TER(references=[refs])}
        _, scores = PairedTest(named, metric_objs, None, test_type=test, n_samples=n)()
        out["paired"][test] = {
            k: [{"score": r(x.score), "p_value": r(x.p_value), "mean": r(x.mean), "ci": r(x.ci)}
                for x in v]
            for k, v in scores.items() if k != "System"
        }

    cmd = [sys.executable, "-m", "sacrebleu", "ref.txt", "-i", "base.txt", "sys1.txt",
           "sys2.txt", "-m", "bleu", "-w", "4"]
    env = dict(os.environ, NO_COLOR="1")
    for key, extra in (("bs_json", ["--paired-bs"]), ("bs_text", ["--paired-bs", "-f", "text"]),
                       ("ar_text", ["--paired-ar", "--paired-ar-n", str(AR_TRIALS), "-f", "text"])):
        out["cli"][key] = subprocess.run(cmd + extra, cwd=workdir, env=env, check=True,
                                         capture_output=True, text=True).stdout
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
