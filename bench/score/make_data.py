"""Writes the `datm score` benchmark corpus: 100,000 real segment pairs from the machine's
gettext catalogs (all of /usr/share/locale/*/LC_MESSAGES/*.mo, every language).

ref.txt holds distinct catalog translations (msgstr, 1-400 characters, one line each);
hyp.txt holds a seeded random perturbation of each (word drops, duplications, swaps,
character edits, case flips, punctuation; see tools/gettext_pairs.py). Deterministic.
Usage: python make_data.py OUT_DIR [N]
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tools"))
from gettext_pairs import catalog_paths, distinct_translations, sample_pairs  # noqa: E402


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    os.makedirs(out, exist_ok=True)
    pairs = sample_pairs(distinct_translations(catalog_paths()), n, seed=2024)
    if len(pairs) < n:
        sys.exit(f"only {len(pairs)} distinct translations available, need {n}")
    with open(os.path.join(out, "ref.txt"), "w", encoding="utf-8") as r, \
            open(os.path.join(out, "hyp.txt"), "w", encoding="utf-8") as h:
        for ref, hyp, _ in pairs:
            r.write(ref + "\n")
            h.write(hyp + "\n")
    langs = sorted({loc for _, _, loc in pairs})
    print(f"{len(pairs)} pairs from {len(langs)} locales written to {out}")


if __name__ == "__main__":
    main()
