#!/usr/bin/env python3
"""Writes tests/fixtures/data/: an ALMA-layout corpus written by Python's json.dump exactly as
ALMA's data files are (json.dump(data, f, ensure_ascii=False)), with tricky characters, plus
a small .po catalog compiled with msgfmt (if available) for the .mo parser test.

Usage: python3 tools/make_data_fixtures.py   (from the repository root)
"""
import json
import os
import shutil
import subprocess

ROOT = os.path.join("tests", "fixtures", "data")

PAIRS = [
    ("Hallo Welt", "Hello world"),
    ("Sie sagte: \"Nein\" \\ fertig", "She said: \"No\" \\ done"),
    ("Tab\there, newline\nthere", "Tab\there, newline\nthere too"),
    ("Steuerzeichen \x01\x1f\x7f", "control chars \x01\x1f\x7f"),
    ("Emoji 😀 und \u2028 Trenner", "emoji 😀 and \u2028 separator"),
    ("Straße, Ärger, Öl — ‚Anführungszeichen‘", "street, trouble, oil — quotes"),
]


def dump(path, src, tgt, pairs):
    data = [{"translation": {src: (s if src == "de" else t), tgt: (t if tgt == "en" else s)}}
            for s, t in pairs]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)


def main():
    alma = os.path.join(ROOT, "alma")
    shutil.rmtree(alma, ignore_errors=True)
    os.makedirs(os.path.join(alma, "deen"))
    d = os.path.join(alma, "deen")
    dump(os.path.join(d, "train.de-en.json"), "de", "en", PAIRS)
    dump(os.path.join(d, "valid.de-en.json"), "de", "en", PAIRS[:2])
    dump(os.path.join(d, "test.de-en.json"), "de", "en", PAIRS[2:4])
    dump(os.path.join(d, "test.en-de.json"), "en", "de", PAIRS[4:])
    po = os.path.join(ROOT, "catalog.po")
    mo = os.path.join(ROOT, "catalog.mo")
    if shutil.which("msgfmt"):
        subprocess.run(["msgfmt", "-o", mo, po], check=True)
    print("wrote", alma, "and", mo if os.path.exists(mo) else "(no msgfmt: catalog.mo unchanged)")


if __name__ == "__main__":
    main()
