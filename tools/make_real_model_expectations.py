#!/usr/bin/env python3
"""Expected tokenizations and weight spot-checks for the real GGUF models, from HF transformers.

Run with the reference Python (transformers, gguf; CI never runs it, the Rust tests read its
committed outputs):

    eval "$(scripts/fetch-models.sh)"    # sets DATM_GEMMA_GGUF and DATM_SMOLLM2_GGUF
    $DATM_PYTHON tools/make_real_model_expectations.py

Writes to tests/fixtures/model/:
  real-<name>-tokenizer.json  {structure: digest of HF's tokenizer.json, cases: [{text, ids,
                              ids_no_special, decoded}]} from
                              AutoTokenizer.from_pretrained(dir, gguf_file=...)
                              (--tokenizers-only: skip the weights)
  real-<name>-weights.json    {file_sha256_prefix, tensors: {hf_name: {shape, sum, abs_sum, head,
                              rows: {row: first 8 values}}}} from the f32 model HF dequantizes
"""

import hashlib
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "model")

MODELS = {"gemma3": "DATM_GEMMA_GGUF", "smollm2": "DATM_SMOLLM2_GGUF"}

ALMA = "Translate this from {src} to {tgt}:\n{src}: {text}\n{tgt}:"
PROMPTS = [
    ALMA.format(src="German", tgt="English", text="Das Haus ist wunderbar."),
    ALMA.format(src="German", tgt="English", text="Die Datei »%s« konnte nicht geöffnet werden: Größe überschritten."),
    ALMA.format(src="Russian", tgt="English", text="Не удалось открыть файл «%s»: доступ запрещён."),
    ALMA.format(src="Chinese", tgt="English", text="无法打开文件：权限不够。"),
    ALMA.format(src="Japanese", tgt="English", text="ファイルを開けませんでした。もう一度お試しください。"),
    ALMA.format(src="Arabic", tgt="English", text="تعذر فتح الملف. حاول مرة أخرى."),
    ALMA.format(src="Hindi", tgt="English", text="फ़ाइल खोलने में विफल। कृपया पुनः प्रयास करें।"),
    ALMA.format(src="English", tgt="Korean", text="Cannot open the file."),
    "한국어 텍스트: 파일을 열 수 없습니다.",
    "Ελληνικά: Δεν ήταν δυνατό το άνοιγμα του αρχείου.",
    "עברית: לא ניתן לפתוח את הקובץ.",
    "ภาษาไทย: ไม่สามารถเปิดไฟล์ได้",
    "ქართული: ფაილის გახსნა ვერ მოხერხდა.",
    "Tiếng Việt: Không thể mở tệp tin.",
    "Türkçe: Dosya açılamadı; İstanbul’da ğüşıöç.",
    "Українська: Не вдалося відкрити файл «ї».",
    "Emoji 😀👍🏽 🇩🇪 family 👨‍👩‍👧 done ✅",
    "Whitespace    runs\t\ttabs   and  trailing   ",
    "   leading spaces",
    "line one\nline two\n\n\nafter three newlines\r\nwindows",
    "Placeholders: %1$s, %d files, {name}, _File, &Open, <b>bold</b>",
    "Numbers 1234567890 3.14159 1,000,000 2026-11-26",
    "Code: fn main() { println!(\"hi\"); } // ok",
    "<start_of_turn>user\nHallo<end_of_turn>\n<start_of_turn>model\n",
    "<|im_start|>user\nHello<|im_end|>\n",
    "<bos><eos><pad> literal specials",
    "Mixed: Hello Привет 你好 こんにちは مرحبا नमस्ते",
    "Accents: café naïve façade Ångström Øre Łódź",
    "",
    " ",
    "\n",
    "a",
]

# HF names whose values are spot-checked (q/k cover llama's row permutation, norms Gemma's w+1).
TENSORS = {
    "gemma3": ["model.embed_tokens.weight", "model.norm.weight", "model.layers.0.self_attn.q_proj.weight",
               "model.layers.0.self_attn.k_norm.weight", "model.layers.0.post_feedforward_layernorm.weight",
               "model.layers.5.mlp.down_proj.weight", "model.layers.17.self_attn.o_proj.weight",
               "model.layers.3.self_attn.v_proj.weight"],
    "smollm2": ["model.embed_tokens.weight", "model.norm.weight", "model.layers.0.self_attn.q_proj.weight",
                "model.layers.0.self_attn.k_proj.weight", "model.layers.29.mlp.up_proj.weight",
                "model.layers.1.input_layernorm.weight"],
}


def sha256_prefix(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def tokenizer_structure(tok):
    """A small digest of HF's whole tokenizer.json: pipeline stages verbatim, vocabulary and merges
    sampled (the full files are tens of MB)."""
    j = json.loads(tok.backend_tokenizer.to_str())
    model = j["model"]
    vocab = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    merges = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
    return {
        "normalizer": j["normalizer"], "pre_tokenizer": j["pre_tokenizer"], "post_processor": j["post_processor"],
        "decoder": j["decoder"], "model_options": {k: v for k, v in model.items() if k not in ("vocab", "merges")},
        "vocab_len": len(vocab), "vocab_sample": vocab[::997],
        "merges_len": len(merges), "merges_head": merges[:200], "merges_sample": merges[::1009],
        "added_tokens_len": len(j["added_tokens"]), "added_tokens_sample": j["added_tokens"][::53],
    }


def tokenizer_cases(path):
    d, f = os.path.split(path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    return tokenizer_structure(tok), [{"text": t, "ids": tok(t).input_ids, "ids_no_special": tok(t, add_special_tokens=False).input_ids,
             "decoded": tok.decode(tok(t, add_special_tokens=False).input_ids, skip_special_tokens=True)}
            for t in PROMPTS]


def weight_stats(path, names):
    d, f = os.path.split(path)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    sd = model.state_dict()
    out = {}
    for n in names:
        t = sd[n].float()
        rows = {}
        if t.ndim == 2:
            for r in [0, 1, t.shape[0] // 2, t.shape[0] - 1]:
                rows[str(r)] = t[r, :8].tolist()
        out[n] = {"shape": list(t.shape), "sum": float(t.double().sum()), "abs_sum": float(t.double().abs().sum()),
                  "head": t.flatten()[:8].tolist(), "rows": rows}
    return out


def main():
    torch.set_num_threads(2)
    for name, var in MODELS.items():
        path = os.environ.get(var)
        if not path or not os.path.exists(path):
            sys.exit(f"{name}: no model at {path!r}; set {var} (eval \"$(scripts/fetch-models.sh)\")")
        sha = sha256_prefix(path)
        structure, cases = tokenizer_cases(path)
        with open(os.path.join(OUT, f"real-{name}-tokenizer.json"), "w") as fh:
            json.dump({"file_sha256_prefix": sha, "structure": structure, "cases": cases}, fh,
                      ensure_ascii=False, indent=1)
        if "--tokenizers-only" in sys.argv:
            continue
        with open(os.path.join(OUT, f"real-{name}-weights.json"), "w") as fh:
            json.dump({"file_sha256_prefix": sha, "tensors": weight_stats(path, TENSORS[name])}, fh, indent=1)
        print(f"wrote real-{name}-*.json")


if __name__ == "__main__":
    sys.exit(main())
