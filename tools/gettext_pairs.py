"""Real multilingual segment pairs from the machine's gettext catalogs, with perturbed
copies as hypotheses, for differential tests and benchmarks of `datm score`.

Pairs are (translation, perturbed translation): the translated msgstr is the reference,
and a seeded random perturbation of it (word drops, duplications, swaps, character edits,
case flips, punctuation) is the hypothesis. Everything is deterministic for a given seed.
Newlines and tabs inside catalog strings are replaced by spaces so each segment is one line.
"""

import gettext
import glob
import random

LOCALE_GLOB = "/usr/share/locale/*/LC_MESSAGES/*.mo"


def catalog_paths(pattern=LOCALE_GLOB):
    """All catalog paths, sorted."""
    return sorted(glob.glob(pattern))


def catalog_pairs(paths, min_chars=1, max_chars=400):
    """Yields (locale, msgid, msgstr) from every readable .mo file of `paths`."""
    for path in paths:
        locale = path.split("/")[-3]
        try:
            with open(path, "rb") as fh:
                cat = gettext.GNUTranslations(fh)._catalog
        except Exception:
            continue  # unreadable or non-UTF-8 catalog: skipped, never mixed in
        for key in sorted(cat, key=str):
            msgid = key[0] if isinstance(key, tuple) else key
            msgstr = " ".join(cat[key].replace("\t", " ").split("\n")).strip()
            if msgid and min_chars <= len(msgstr) <= max_chars and msgstr != msgid:
                yield locale, msgid, msgstr


def perturb(text, rng):
    """A plausible MT-like corruption of `text`."""
    words = text.split(" ")
    for _ in range(rng.randint(0, 3)):
        if not words:
            break
        op = rng.randrange(7)
        i = rng.randrange(len(words))
        if op == 0 and len(words) > 1:
            del words[i]
        elif op == 1:
            words.insert(i, words[i])
        elif op == 2 and i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], words[i]
        elif op == 3 and words[i]:
            j = rng.randrange(len(words[i]))
            w = words[i]
            words[i] = w[:j] + rng.choice("aeiouxyzéß.,") + w[j + 1:]
        elif op == 4:
            words[i] = words[i].swapcase()
        elif op == 5:
            words[i] = words[i] + rng.choice([".", ",", "!", "?", ")", "-", ":"])
        else:
            words[i] = words[i][::-1]
    return " ".join(words)


def distinct_translations(paths, min_chars=1, max_chars=400):
    """(locale, msgstr) for every distinct translation in the catalogs at `paths`."""
    seen, pool = set(), []
    for locale, _, msgstr in catalog_pairs(paths, min_chars, max_chars):
        if msgstr not in seen:
            seen.add(msgstr)
            pool.append((locale, msgstr))
    return pool


def sample_pairs(pool, n, seed=1234, locales=None):
    """`n` deterministic (reference, hypothesis, locale) triples drawn from `pool`
    (optionally only from locales whose language is in `locales`)."""
    rng = random.Random(seed)
    pool = [p for p in pool if locales is None or p[0].split("_")[0] in locales]
    rng.shuffle(pool)
    return [(ref, perturb(ref, rng), loc) for loc, ref in pool[:n]]
