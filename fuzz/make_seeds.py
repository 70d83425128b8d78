#!/usr/bin/env python3
"""Writes the fuzz seed corpora under fuzz/seeds/<target>/ from the repo's fixtures and
examples, plus small files built here with the reference tools (gguf, safetensors,
sentencepiece) where the fixtures are too large to be good seeds; and the hostile inputs
of issue 13 under fuzz/regressions/<target>/ (each also a test in the normal suite).

Run from the repository root with the reference venv's Python (it needs gguf, numpy,
safetensors and sentencepiece):  $DATM_PYTHON fuzz/make_seeds.py
The output is committed (about 250 KB); rerun it only when a fixture's format changes.
"""
import json
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
OUT = ROOT / "fuzz" / "seeds"
REGRESSIONS = ROOT / "fuzz" / "regressions"


def put(target, name, data, root=OUT):
    d = root / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def copy(target, src, name=None):
    put(target, name or src.name, src.read_bytes())


def sections(parts):
    """The inverse of datm_fuzz::sections: every part but the last gets a u16 length."""
    out = b""
    for i, p in enumerate(parts):
        if i + 1 < len(parts):
            out += struct.pack("<H", len(p))
        out += p
    return out


def gguf_seed():
    """A one-layer, hidden-8 llama GGUF with the spm tokenizer fixture's vocabulary."""
    import gguf

    src = gguf.GGUFReader(str(FIX / "model" / "tiny-llama-spm-tokenizer.gguf"))

    def field(name):
        f = src.fields[name]
        return [f.contents(i) for i in range(len(f.data))] if len(f.data) > 1 else f.contents()

    tokens = field("tokenizer.ggml.tokens")
    vocab, hidden, ff, heads, kv = len(tokens), 8, 16, 2, 1
    for name, dtype in [("llama-f32.gguf", np.float32), ("llama-f16.gguf", np.float16)]:
        path = Path(tempfile.mkdtemp()) / name
        w = gguf.GGUFWriter(str(path), "llama")
        w.add_context_length(64)
        w.add_embedding_length(hidden)
        w.add_block_count(1)
        w.add_feed_forward_length(ff)
        w.add_head_count(heads)
        w.add_head_count_kv(kv)
        w.add_layer_norm_rms_eps(1e-6)
        w.add_rope_freq_base(10000.0)
        w.add_rope_dimension_count(hidden // heads)
        w.add_vocab_size(vocab)
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_scores(field("tokenizer.ggml.scores"))
        w.add_token_types(field("tokenizer.ggml.token_type"))
        w.add_bos_token_id(field("tokenizer.ggml.bos_token_id"))
        w.add_eos_token_id(field("tokenizer.ggml.eos_token_id"))
        w.add_unk_token_id(field("tokenizer.ggml.unknown_token_id"))
        w.add_add_space_prefix(False)
        rng = np.random.default_rng(0)
        hd = hidden // heads
        shapes = {
            "token_embd.weight": (vocab, hidden),
            "output_norm.weight": (hidden,),
            "blk.0.attn_norm.weight": (hidden,),
            "blk.0.ffn_norm.weight": (hidden,),
            "blk.0.attn_q.weight": (hidden, hidden),
            "blk.0.attn_k.weight": (kv * hd, hidden),
            "blk.0.attn_v.weight": (kv * hd, hidden),
            "blk.0.attn_output.weight": (hidden, hidden),
            "blk.0.ffn_gate.weight": (ff, hidden),
            "blk.0.ffn_up.weight": (ff, hidden),
            "blk.0.ffn_down.weight": (hidden, ff),
        }
        for tname, shape in shapes.items():
            w.add_tensor(tname, rng.standard_normal(shape).astype(dtype))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        put("gguf", name, path.read_bytes())
    copy("gguf", FIX / "model" / "tiny-llama-spm-tokenizer.gguf")


def safetensors_seeds():
    from safetensors.numpy import load_file, save

    put("safetensors", "two-tensors.safetensors",
        save({"a": np.arange(6, dtype=np.float32).reshape(2, 3),
              "b": np.ones((4,), dtype=np.float16)}, metadata={"format": "pt"}))
    copy("safetensors", FIX / "adapter" / "peft_a" / "adapter_model.safetensors", "peft_a.safetensors")
    # The adapter target uses the tiny-llama-lora config: keep one module of its weights.
    full = load_file(str(FIX / "model" / "tiny-llama-lora" / "adapter_model.safetensors"))
    names = sorted(full)
    module = names[0].rsplit(".lora_", 1)[0]
    part = {k: v for k, v in full.items() if k.startswith(module + ".lora_")}
    put("adapter_weights", "one-module.safetensors", save(part, metadata={"format": "pt"}))


def comet_seeds():
    """Small torch checkpoints as Lightning writes them (state_dict + hyper_parameters), and
    their data.pkl records for the unpickler alone."""
    import io
    import zipfile

    import torch

    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    checkpoints = {
        "regression": {
            "state_dict": {"estimator.ff.0.weight": base, "layerwise_attention.gamma": torch.ones(1)},
            "hyper_parameters": {"activations": "Tanh", "layer": "mix", "dropout": 0.1,
                                 "hidden_sizes": [8, 4], "pretrained_model": "xlm-roberta-large"},
            "epoch": 1,
        },
        # a strided view, a bf16 storage shared by two tensors, an empty tensor
        "views": {"state_dict": {"t": base.t(), "b16": torch.ones(4, dtype=torch.bfloat16),
                                 "b16_view": torch.ones(4, dtype=torch.bfloat16)[1:],
                                 "empty": torch.zeros(0, 3)}},
    }
    for name, obj in checkpoints.items():
        buf = io.BytesIO()
        torch.save(obj, buf)
        put("comet_checkpoint", f"{name}.ckpt", buf.getvalue())
        with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
            pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
            put("pickle", f"{name}.pkl", z.read(pkl))


def spm_seeds():
    import sentencepiece as spm

    text = ["Hello world, this is a tiny corpus for a tiny model.", "Größe ½ ﬁne 世界",
            "the quick brown fox jumps over the lazy dog", "Open the selected file"] * 20
    work = Path(tempfile.mkdtemp())
    (work / "corpus.txt").write_text("\n".join(text), encoding="utf-8")
    (work / "rules.tsv").write_text("FB01\t66 69\n00BD\t31 2F 32\n", encoding="utf-8")
    # Byte fallback adds 256 byte pieces, hence the larger BPE vocabulary.
    for model_type, extra in [("unigram", {"vocab_size": 48}),
                              ("bpe", {"byte_fallback": True, "vocab_size": 320})]:
        prefix = work / model_type
        spm.SentencePieceTrainer.train(
            input=str(work / "corpus.txt"), model_prefix=str(prefix), hard_vocab_limit=False,
            model_type=model_type, normalization_rule_tsv=str(work / "rules.tsv"),
            user_defined_symbols=["<x>"], minloglevel=2, **extra)
        copy("spm", prefix.with_suffix(".model"), f"{model_type}.model")


def darts(keys):
    """A Darts double array for {bytes: value}: one 257-unit block per trie node."""
    nodes = [({}, None)]
    for key, value in keys.items():
        n = 0
        for c in key:
            if c not in nodes[n][0]:
                nodes[n][0][c] = len(nodes)
                nodes.append(({}, None))
            n = nodes[n][0][c]
        nodes[n] = (nodes[n][0], value)
    base = lambda k: 1 + 257 * k  # noqa: E731
    units = [(0, 0)] * (1 + 257 * len(nodes))
    units[0] = (base(0), 0)
    for k, (children, value) in enumerate(nodes):
        b = base(k)
        if value is not None:
            units[b] = (-value - 1, b)
        for c, child in children.items():
            units[b + c + 1] = (base(child), b)
    return b"".join(struct.pack("<iI", b, c) for b, c in units)


def mecab_dic(kind, keys, tokens):
    units = darts(keys)
    size = 72 + len(units) + 16 * len(tokens)
    head = struct.pack("<10I", size ^ 0xEF718F77, 102, kind, len(tokens), 1, 1, len(units),
                       16 * len(tokens), 0, 0) + b"UTF-8".ljust(32, b"\0")
    body = b"".join(struct.pack("<HHHh8x", left, right, 0, cost) for left, right, cost in tokens)
    return head + units + body


def mecab_seed():
    """Words `ab` and `c`; categories D (grouped) and S (the space), as the metrics test."""
    sys = mecab_dic(0, {b"ab": 1, b"c": 1 << 8 | 1}, [(0, 0, 10), (0, 0, 10)])
    unk = mecab_dic(2, {b"D": 1, b"S": 1 << 8 | 1}, [(0, 0, 1000), (0, 0, 1000)])
    word, space = 1 | 1 << 26 | 1 << 30, 2 | 1 << 18 | 1 << 26 | 1 << 30
    # The fuzz target repeats the given entries over the 65,535 code points: a period of
    # 0x21 puts S on U+0020.
    entries = b"".join(struct.pack("<I", space if i == 0x20 else word) for i in range(0x21))
    char_head = struct.pack("<I", 2) + b"D".ljust(32, b"\0") + b"S".ljust(32, b"\0") + entries
    matrix = struct.pack("<HHh", 1, 1, 0)
    for line in [b" abcxyz ", b"abc ab\xe4\xb8\x96"]:
        put("mecab", f"tiny-{len(line)}", sections(
            [line, b"; settings\nmax-grouping-size = 24\n", sys, unk, matrix, char_head]))


def text_seeds():
    for f in sorted((FIX / "adapter").glob("*/adapter_config.json")) + [
            FIX / "model" / "tiny-llama-lora" / "adapter_config.json",
            FIX / "model" / "tiny-gemma3-lora" / "adapter_config.json"]:
        copy("adapter_config", f, f.parent.name + ".json")
    for f in ["tiny-llama/tokenizer.json", "tiny-gemma3/tokenizer.json", "tiny-llama-spm-tokenizer.json"]:
        copy("tokenizer_json", FIX / "model" / f, f.replace("/", "-"))
    copy("mo", FIX / "data" / "catalog.mo")
    copy("po", FIX / "data" / "catalog.po")
    rules = [
        "nplurals=2; plural=(n != 1);",
        "nplurals=2; plural=n>1;",
        "nplurals=1; plural=0;",
        "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);",
        "nplurals=6; plural=n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : n%100>=11 ? 4 : 5;",
        "nplurals=4; plural=(n%100==1 ? 0 : n%100==2 ? 1 : n%100==3 || n%100==4 ? 2 : 3);",
        "nplurals=5; plural=(n==1 ? 0 : n==2 ? 1 : n<7 ? 2 : n<11 ? 3 : 4);",
        "nplurals=9; plural=1 + 2 * 3 - n / 2 % 3 + !n - -n;",
    ]
    for i, r in enumerate(rules):
        put("plural", f"rule-{i}", r)
    alma = FIX / "train" / "data" / "alma" / "deen"
    put("corpus", "alma.json", b"\x00" + (alma / "train.de-en.json").read_bytes())
    put("corpus", "valid.json", b"\x00" + (alma / "valid.de-en.json").read_bytes())
    put("corpus", "train.jsonl", b"\x01" + (FIX / "train" / "data" / "train.de-en.jsonl").read_bytes())
    pairs = [(p["translation"]["de"], p["translation"]["en"])
             for p in json.loads((alma / "train.de-en.json").read_text(encoding="utf-8"))]
    put("corpus", "pairs.tsv", b"\x02" + "".join(f"{d}\t{e}\n" for d, e in pairs).encode())
    put("corpus", "aligned.txt", b"\x03" + ("".join(d + "\n" for d, _ in pairs) + "\0"
                                            + "".join(e + "\r\n" for _, e in pairs)).encode())
    for i, name in enumerate(["custom-plan.toml", "quickstart.toml", "groups.toml"]):
        put("toml_configs", name, bytes([i]) + (ROOT / "examples" / name).read_bytes())


def mo_file(pairs):
    """A little-endian .mo holding (original, translation) byte pairs, sorted, no hash table."""
    pairs = sorted(pairs)
    n = len(pairs)
    strings_at = 28 + 16 * n
    head = struct.pack("<7I", 0x950412DE, 0, n, 28, 28 + 8 * n, 0, 0)
    tables, blob = [b"", b""], b""
    for side in (0, 1):
        for p in pairs:
            tables[side] += struct.pack("<II", len(p[side]), strings_at + len(blob))
            blob += p[side] + b"\0"
    return head + tables[0] + tables[1] + blob


def serve_seeds():
    """Request bodies of datm serve's routes, as LibreTranslate and OpenAI clients send them."""
    bodies = {
        "translate.json": {"q": "The cat sleeps.", "source": "en", "target": "de"},
        "translate-many.json": {"q": ["Hello", "How are you?"], "source": "de", "target": "fr",
                                "format": "text"},
        "completion.json": {"model": "base", "prompt": "Hello world, how are",
                            "max_tokens": 16},
        "completion-batch.json": {"model": "de-en", "prompt": ["a", "b"], "max_tokens": 8,
                                  "stop": ["\n", "."], "n": 1, "temperature": 0},
        "load.json": {"lora_name": "de-en", "lora_path": "/srv/pool/adapters/de-en"},
        "unload.json": {"lora_name": "de-en"},
    }
    for name, body in bodies.items():
        put("serve_request", name, json.dumps(body, ensure_ascii=False))


def regressions():
    deep = "(" * 100_000 + "n"
    put("plural", "nested-100000", f"nplurals=2; plural={deep};", REGRESSIONS)
    put("plural", "not-10000", "nplurals=2; plural=" + "!" * 10_000 + "n;", REGRESSIONS)
    header = f"Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=2; plural={deep};\n"
    put("mo", "nested-plural.mo", mo_file([(b"", header.encode()),
                                           (b"a file\0%d files", b"ein\0zwei")]), REGRESSIONS)
    # 1,000 table entries all pointing at one 4,000-byte string (quadratic expansion).
    n, long = 1000, 4000
    table = b"".join(struct.pack("<II", long, 28 + 8 * n) for _ in range(n))
    put("mo", "shared-strings.mo",
        struct.pack("<7I", 0x950412DE, 0, n, 28, 28, 0, 0) + table + b"a" * long, REGRESSIONS)
    put("po", "hex-escape-overflow.po", 'msgid "a"\nmsgstr "\\x111111111111"\n', REGRESSIONS)
    put("corpus", "deep.json", b"\x00" + b"[" * 10_000, REGRESSIONS)
    put("corpus", "deep.jsonl", b"\x01" + b"{\"a\":" * 2_000, REGRESSIONS)
    put("toml_configs", "deep-array.toml", b"\x00x = " + b"[" * 10_000, REGRESSIONS)
    put("toml_configs", "deep-inline.toml", b"\x01x = " + b"{a = " * 2_000, REGRESSIONS)
    put("adapter_config", "deep.json", b"[" * 10_000, REGRESSIONS)
    put("serve_request", "deep.json", b'{"q": ' + b"[" * 10_000, REGRESSIONS)
    put("serve_request", "deep-unknown-field.json", b'{"x": ' + b"[" * 10_000, REGRESSIONS)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    # Regressions are kept: campaigns add inputs there by hand (fuzz/RESULTS.md).
    regressions()
    text_seeds()
    serve_seeds()
    mecab_seed()
    safetensors_seeds()
    spm_seeds()
    gguf_seed()
    comet_seeds()
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
