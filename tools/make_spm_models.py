#!/usr/bin/env python3
"""Reference side of the SentencePiece differential test (crates/metrics/tests/spm_differential.rs).

  make_spm_models.py train OUTDIR
      Trains small SentencePiece models (unigram/BPE/word/char; nmt_nfkc, nfkc_cf, identity;
      byte fallback on/off; user-defined and control symbols) on real multilingual text
      from the gettext catalogs under /usr/share/locale, and writes OUTDIR/<name>.model
      plus OUTDIR/lines.json: test lines (real catalog lines of every locale, perturbed
      copies, random text and whitespace/edge cases). Prints {"models": [...], "lines": N,
      "sentencepiece": VERSION, ...}.

  make_spm_models.py encode LINES_JSON MODEL...
      Prints {MODEL: [EncodeAsPieces(line) for line in lines]} from the C++ sentencepiece.

  make_spm_models.py sacrebleu WORKDIR LINES_JSON MODEL
      Installs MODEL under each file name sacrebleu's spm tokenizers load from
      $SACREBLEU/models (so nothing is downloaded) and prints, for spm, flores101,
      flores200 and spBLEU-1K, the BLEU signature, sacrebleu's tokenization of the lines and
      the corpus BLEU of the lines shifted by one against the lines.
"""
import gettext
import glob
import json
import os
import random
import shutil
import sys

LOCALE_GLOB = "/usr/share/locale/*/LC_MESSAGES/*.mo"
# Left out of the training text of the smallest models, which could not cover their characters.
CJK_LOCALES = ("ja", "ko", "zh")
# name -> trainer options (beyond input/model_prefix).
MODELS = {
    "unigram_nfkc_1000": dict(model_type="unigram", vocab_size=1000, normalization_rule_name="nmt_nfkc",
                              corpus="no_cjk"),
    "unigram_cf_4000_bytes": dict(model_type="unigram", vocab_size=4000, normalization_rule_name="nfkc_cf",
                                  byte_fallback=True),
    "unigram_identity_1500_user": dict(model_type="unigram", vocab_size=1500, normalization_rule_name="identity",
                                      corpus="no_cjk",
                                      user_defined_symbols=["%s", "{0}", "<b>", "http", "▁the"],
                                      control_symbols=["<2de>"]),
    "bpe_nfkc_1000": dict(model_type="bpe", vocab_size=1000, normalization_rule_name="nmt_nfkc", corpus="no_cjk"),
    "bpe_identity_2000_bytes_user": dict(model_type="bpe", vocab_size=2000, normalization_rule_name="identity",
                                         byte_fallback=True, user_defined_symbols=["%s", "%d", "<b>", "ing"]),
    "bpe_cf_3000_suffix": dict(model_type="bpe", vocab_size=3000, normalization_rule_name="nfkc_cf",
                               treat_whitespace_as_suffix=True, split_digits=True),
    "unigram_nfkc_2000_nodummy": dict(model_type="unigram", vocab_size=2000, normalization_rule_name="nmt_nfkc",
                                      add_dummy_prefix=False, remove_extra_whitespaces=False),
    "word_nfkc": dict(model_type="word", vocab_size=3000, normalization_rule_name="nmt_nfkc"),
    "char_identity": dict(model_type="char", vocab_size=2000, normalization_rule_name="identity",
                          corpus="no_cjk"),
}


def catalog_lines():
    """(locale, line) for every non-empty translated line of every readable catalog."""
    out = []
    for path in sorted(glob.glob(LOCALE_GLOB)):
        locale = path.split("/")[4]
        try:
            with open(path, "rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog
        except Exception:  # a broken catalog is simply not used
            continue
        for key, value in sorted(catalog.items(), key=lambda kv: str(kv[0])):
            if key == "" or not isinstance(value, str):
                continue
            out.extend((locale, line) for line in value.split("\n") if line.strip())
    return out


ODD = ["\t", "  ", "\u3000", "\u00a0", "\u2009", "\u200b", "\ufeff", "\r", "\x0b", "\u0301", "\u00ad",
       "😀", "👍🏽", "🇩🇪", "ﬁ", "①", "Ⅻ", "ｶ", "ＡＢＣ", "½", "\u0000", "\u001f", "\U00020000", "ß", "İ", "ς",
       "%s", "{0}", "<b>", "▁", "http://x.org/a?b=c", "<2de>", "<unk>", "<s>", "<0x41>"]


def perturb(rng, line):
    chars = list(line)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randint(0, len(chars))
        op = rng.random()
        if op < 0.5:
            chars.insert(pos, rng.choice(ODD))
        elif op < 0.7 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op < 0.85:
            chars.insert(pos, chr(rng.choice([rng.randint(0x20, 0x2FF), rng.randint(0x370, 0x1FFF),
                                              rng.randint(0x3000, 0x9FFF), rng.randint(0xAC00, 0xD7A3),
                                              rng.randint(0x1F300, 0x1FAFF)])))
        else:
            chars = chars[::-1] if rng.random() < 0.5 else [c.upper() for c in chars]
    return "".join(chars)


def random_line(rng):
    pool = ODD + [" ", " ", "a", "é", "ж", "中", "ع", "क", "ไ", "ü", "Ω", ".", ","]
    return "".join(rng.choice(pool) if rng.random() < 0.6 else chr(rng.randint(1, 0x2FFFF))
                   for _ in range(rng.randint(0, 25))).encode("utf-8", "ignore").decode("utf-8")


def clean(s):
    # Lone surrogates cannot reach the Rust side (str is valid UTF-8).
    return s.encode("utf-8", "ignore").decode("utf-8")


def train(outdir):
    import sentencepiece as spm
    rng = random.Random(20240601)
    lines = catalog_lines()
    if not lines:
        sys.exit(f"no gettext catalogs under {LOCALE_GLOB}")
    by_locale = {}
    for locale, line in lines:
        by_locale.setdefault(locale, []).append(line)
    train_lines, test_lines = [], []
    for locale in sorted(by_locale):
        ls = by_locale[locale]
        rng.shuffle(ls)
        train_lines += [(locale, line) for line in ls[:80]]
        test_lines += ls[80:105]
    rng.shuffle(train_lines)
    corpora = {"all": os.path.join(outdir, "train.txt"), "no_cjk": os.path.join(outdir, "train_no_cjk.txt")}
    for kind, path in corpora.items():
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(line.replace("\r", " ") + "\n" for locale, line in train_lines
                         if kind == "all" or not locale.startswith(CJK_LOCALES))
    for name, opts in MODELS.items():
        opts = dict(opts)
        corpus = corpora[opts.pop("corpus", "all")]
        spm.SentencePieceTrainer.train(input=corpus, model_prefix=os.path.join(outdir, name), num_threads=2,
                                       hard_vocab_limit=False, minloglevel=2, character_coverage=0.98, **opts)
    extra = ["", " ", "   ", "\t", "\u3000", "▁", "a", " a ", "a  b", " leading", "trailing  ", "\u3000x\u3000y\u3000",
             "%s%s{0}<b>http", "the the▁the", "ＡＢＣ１２３", "１２３４５６７８９０", "¹²³", "Ǆǅǆ", "ﬀﬁﬂ", "㍿㌀",
             "<unk><s></s><2de>", "<0x41><0xFF>", "e\u0301\u0301\u0301", "👩‍👩‍👧‍👦 🏳️‍🌈", "\u0000\u0001x\u007f"]
    perturbed = [perturb(rng, rng.choice(test_lines)) for _ in range(2500)]
    randoms = [random_line(rng) for _ in range(1000)]
    all_lines = [clean(s) for s in test_lines + perturbed + randoms + extra]
    with open(os.path.join(outdir, "lines.json"), "w", encoding="utf-8") as f:
        json.dump(all_lines, f, ensure_ascii=False)
    print(json.dumps({"models": sorted(MODELS), "lines": len(all_lines), "locales": len(by_locale),
                      "catalog_lines": len(test_lines), "sentencepiece": spm.__version__}))


def encode(lines_json, models):
    import sentencepiece as spm
    with open(lines_json, encoding="utf-8") as f:
        lines = json.load(f)
    out = {}
    for model in models:
        sp = spm.SentencePieceProcessor()
        sp.Load(model)
        out[model] = [sp.EncodeAsPieces(line) for line in lines]
    print(json.dumps(out, ensure_ascii=False))


def sacrebleu_tokenize(workdir, lines_json, model):
    os.environ["SACREBLEU"] = workdir
    models_dir = os.path.join(workdir, "models")
    os.makedirs(models_dir, exist_ok=True)
    from sacrebleu.tokenizers.tokenizer_spm import SPM_MODELS
    for spec in SPM_MODELS.values():
        shutil.copyfile(model, os.path.join(models_dir, os.path.basename(spec["url"])))
    from sacrebleu.metrics.bleu import BLEU
    with open(lines_json, encoding="utf-8") as f:
        lines = json.load(f)
    out = {}
    for name in SPM_MODELS:
        bleu = BLEU(tokenize=name)
        # Scoring sets the signature's reference count; the hypotheses are the lines
        # shifted by one, so the score is some middling number.
        score = bleu.corpus_score(lines[1:] + lines[:1], [lines])
        out[name] = {"signature": bleu.get_signature().format(), "short": bleu.get_signature().format(short=True),
                     "file": os.path.basename(SPM_MODELS[name]["url"]), "score": score.score,
                     "tokenized": [bleu.tokenizer(line) for line in lines]}
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "train":
        train(*args)
    elif cmd == "encode":
        encode(args[0], args[1:])
    elif cmd == "sacrebleu":
        sacrebleu_tokenize(*args)
    else:
        sys.exit(f"unknown command {cmd}")
