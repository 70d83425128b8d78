#!/usr/bin/env python3
"""Generate the tiny-model fixtures under tests/fixtures/model/ with the reference stack.

Run with the reference Python, $DATM_PYTHON (torch, transformers 5.x, peft, gguf, sentencepiece, tokenizers);
CI never runs this, it only reads the committed outputs. Everything is seeded, but torch kernels
and library versions may change the random weights: regenerate all files together.

For each of a tiny LLaMA (gpt2-style byte-level BPE tokenizer, untied LM head) and a tiny Gemma-3
text model (SentencePiece-style BPE with byte fallback, tied embeddings, sliding + global layers):

  <name>/                  HF model dir: config.json, model.safetensors (f32), tokenizer.json,
                           tokenizer_config.json, generation_config.json
  <name>.gguf              the same model written as llama.cpp would (f32 tensors; llama Q/K
                           permuted for interleaved RoPE, gemma norm weights stored as w+1) with
                           the tokenizer in the GGUF metadata
  <name>-q8_0.gguf         (llama only) linear weights quantized to Q8_0
  <name>-lora/             a PEFT LoRA adapter on all 7 projections, random non-zero lora_B
  <name>-logits.safetensors  f32 logits of the full forward pass, `<case>.<prompt index>`
  <name>-expected.json     prompts, prompt ids, greedy and beam `generate` outputs, with and
                           without the adapter, and the GGUF tokenizer ids (see README.md)

The tokenizers in the HF dirs are produced by HF's own GGUF conversion
(`AutoTokenizer.from_pretrained(dir, gguf_file=...)`), so the tokenizer datm rebuilds from the
GGUF must equal the tokenizer.json one.
"""

import gettext
import glob
import json
import os
import random
import shutil
import sys
import tempfile

import numpy as np
import sentencepiece as spm
import torch
from gguf import GGMLQuantizationType, GGUFWriter, quants
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "model")
VOCAB = 512
MAX_NEW = 20
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# (num_beams, length_penalty, early_stopping) settings recorded for every prompt.
BEAM_SETTINGS = [(5, 1.0, False), (5, 1.0, True), (5, 2.0, False), (5, 0.5, "never"), (3, -1.0, True)]


def corpus_sentences(n=600, seed=0):
    """Real gettext messages (English and translations) to train the tiny tokenizers on."""
    out = []
    for lang in ["de", "fr", "ru", "zh_CN", "ja", "ar", "es", "uk"]:
        for path in sorted(glob.glob(f"/usr/share/locale/{lang}/LC_MESSAGES/*.mo")):
            if os.path.basename(path).startswith("iso_"):
                continue
            try:
                with open(path, "rb") as fh:
                    cat = gettext.GNUTranslations(fh)._catalog
            except Exception:
                continue
            for k, v in cat.items():
                if isinstance(k, str) and k and "\x04" not in k and isinstance(v, str) and len(k.split()) >= 3:
                    out.append(k.strip())
                    out.append(v.strip())
    rng = random.Random(seed)
    out = sorted(set(s for s in out if 10 < len(s) < 200))
    rng.shuffle(out)
    return out[:n]


def prompts():
    """Test prompts: ALMA-style translation prompts (longer than the sliding window) and a short one."""
    return [
        "Translate this from German to English:\nGerman: Das Haus ist wunderbar.\nEnglish:",
        "Translate this from Russian to English:\nRussian: Файл не найден.\nEnglish:",
        "Hello",
        "Translate this from English to Chinese:\nEnglish: Cannot open file %s for writing\nChinese:",
    ]


# ---------------------------------------------------------------- tokenizers
def spm_vocab(sentences, workdir):
    """A SentencePiece BPE (byte fallback, Gemma's special ids), as GGUF `llama` tokenizer arrays."""
    text = os.path.join(workdir, "corpus.txt")
    # CJK and Arabic are left to byte fallback: their characters would not fit a tiny vocabulary.
    with open(text, "w") as fh:
        fh.write("\n".join(s for s in sentences if all(ord(c) < 0x600 for c in s)))
    prefix = os.path.join(workdir, "spm")
    spm.SentencePieceTrainer.train(
        input=text, model_prefix=prefix, model_type="bpe", vocab_size=VOCAB, byte_fallback=True,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>",
        unk_piece="<unk>", control_symbols=["<start_of_turn>", "<end_of_turn>"], add_dummy_prefix=False,
        split_by_whitespace=False, remove_extra_whitespaces=False, character_coverage=0.98,
        normalization_rule_name="identity", minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            types.append(2)
        elif sp.is_control(i):
            types.append(3)
        elif sp.is_byte(i):
            types.append(6)
        elif sp.is_unused(i):
            types.append(5)
        else:
            types.append(1)
    return dict(model="llama", tokens=tokens, scores=scores, types=types, merges=None,
                bos=2, eos=1, unk=3, pad=0, add_bos=True)


def bpe_vocab(sentences):
    """A gpt2-style byte-level BPE with merges (like SmolLM2), as GGUF `gpt2` tokenizer arrays."""
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(sentences, trainer)
    model = json.loads(tok.to_str())["model"]
    vocab = model["vocab"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    merges = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
    types = [3 if t in specials else 1 for t in tokens]
    return dict(model="gpt2", pre="smollm", tokens=tokens, scores=None, types=types, merges=merges,
                bos=1, eos=2, unk=0, pad=2, add_bos=False)


# ---------------------------------------------------------------- models
def llama_model(vocab_size):
    cfg = LlamaConfig(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-5,
        rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=2,
        initializer_range=0.2, attn_implementation="eager",
    )
    return LlamaForCausalLM(cfg)


def gemma_model(vocab_size):
    # Six layers so llama.cpp's fixed Gemma-3 pattern (every 6th layer global) holds: the GGUF
    # carries no layer pattern. query_pre_attn_scalar = head_dim, as llama.cpp assumes.
    cfg = Gemma3TextConfig(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=6,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, query_pre_attn_scalar=32,
        sliding_window=8, max_position_embeddings=512, rms_norm_eps=1e-6,
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                         "full_attention": {"rope_type": "default", "rope_theta": 1000000.0}},
        layer_types=["sliding_attention"] * 5 + ["full_attention"],
        bos_token_id=2, eos_token_id=1, pad_token_id=0, initializer_range=0.2, tie_word_embeddings=True,
        attn_implementation="eager",
    )
    return Gemma3ForCausalLM(cfg)


def randomize(model, eos_id, seed, arch):
    """Spread the random weights so argmaxes are well separated (HF's tiny init gives near-ties),
    and make EOS likely enough that beam search meets it. Gemma (tied embeddings scaled by
    sqrt(hidden), norms stored as w - 1) would just repeat its last token: its post-sublayer norms
    are raised and its embeddings shrunk so the layers outweigh the embedding."""
    gemma = arch == "gemma3"
    scale = 2.0 if gemma else 4.0
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                center = (3.0 if "post" in name else 0.0) if gemma else 1.0
                p.copy_(center + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (0.5 / p.shape[-1] ** 0.5) * scale)
        if gemma:
            model.get_input_embeddings().weight *= 0.5
        model.get_output_embeddings().weight[eos_id] *= 2.0


# ---------------------------------------------------------------- GGUF writing (llama.cpp's conventions)
GGUF_NAMES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
}
LLAMA_NAMES = dict(GGUF_NAMES, post_attention_layernorm="ffn_norm")
GEMMA_NAMES = dict(GGUF_NAMES, post_attention_layernorm="post_attention_norm",
                   pre_feedforward_layernorm="ffn_norm", post_feedforward_layernorm="post_ffw_norm")


def gguf_name(hf, table):
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".")
    layer, rest = parts[2], ".".join(parts[3:-1])
    return f"blk.{layer}.{table[rest]}.weight"


def llamacpp_permute(w, n_head, n_head_kv):
    """llama.cpp's convert_hf_to_gguf `LlamaModel.permute` (rotary pairs interleaved)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(path, arch, model, tok, quantize=None):
    cfg = model.config
    w = GGUFWriter(path, arch)
    w.add_name(f"tiny-{arch}")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    if arch == "llama":
        w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
        w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
        w.add_vocab_size(cfg.vocab_size)
    else:
        w.add_rope_freq_base(cfg.rope_parameters["full_attention"]["rope_theta"])
        w.add_key_length(cfg.head_dim)
        w.add_value_length(cfg.head_dim)
        w.add_sliding_window(cfg.sliding_window)
    w.add_tokenizer_model(tok["model"])
    if tok["model"] == "gpt2":
        w.add_tokenizer_pre(tok["pre"])
    w.add_token_list(tok["tokens"])
    if tok["scores"] is not None:
        w.add_token_scores(tok["scores"])
    w.add_token_types(tok["types"])
    if tok["merges"] is not None:
        w.add_token_merges(tok["merges"])
    w.add_bos_token_id(tok["bos"])
    w.add_eos_token_id(tok["eos"])
    w.add_unk_token_id(tok["unk"])
    w.add_pad_token_id(tok["pad"])
    w.add_add_bos_token(tok["add_bos"])
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)
    table = LLAMA_NAMES if arch == "llama" else GEMMA_NAMES
    for hf, t in model.state_dict().items():
        if hf == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        a = t.detach().float().numpy().copy()
        name = gguf_name(hf, table)
        if arch == "llama" and name.endswith("attn_q.weight"):
            a = llamacpp_permute(a, cfg.num_attention_heads, cfg.num_attention_heads)
        elif arch == "llama" and name.endswith("attn_k.weight"):
            a = llamacpp_permute(a, cfg.num_attention_heads, cfg.num_key_value_heads)
        if arch == "gemma3" and name.endswith("norm.weight"):
            a = a + 1.0
        if quantize is not None and a.ndim == 2 and name != "token_embd.weight":
            w.add_tensor(name, quants.quantize(a, quantize), raw_dtype=quantize)
        else:
            w.add_tensor(name, a.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------- expected outputs
def add_lora(model, r, alpha, rslora, seed):
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=LORA_TARGETS, lora_dropout=0.0,
                     use_rslora=rslora, task_type="CAUSAL_LM")
    peft = get_peft_model(model, cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name or "lora_A" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return peft


def record(model, tok, gen_ids, name, logits_out):
    """Logits, greedy and beam outputs for every prompt."""
    cases = []
    for i, text in enumerate(prompts()):
        ids = tok(text).input_ids
        inp = torch.tensor([ids])
        with torch.no_grad():
            logits = model(input_ids=inp).logits[0].float()
        logits_out[f"{name}.{i}"] = logits.contiguous()
        case = {"prompt": text, "prompt_ids": ids, "logits_key": f"{name}.{i}", "runs": []}
        common = dict(max_new_tokens=MAX_NEW, do_sample=False, eos_token_id=gen_ids["eos"],
                      pad_token_id=gen_ids["pad"], return_dict_in_generate=True, output_scores=True)
        with torch.no_grad():
            out = model.generate(input_ids=inp, attention_mask=torch.ones_like(inp), num_beams=1, **common)
        new = out.sequences[0, len(ids):].tolist()
        case["runs"].append({"num_beams": 1, "token_ids": new, "text": tok.decode(new, skip_special_tokens=True),
                             "min_top2_gap": min_gap(out.scores)})
        for beams, lp, es in BEAM_SETTINGS:
            with torch.no_grad():
                out = model.generate(input_ids=inp, attention_mask=torch.ones_like(inp), num_beams=beams,
                                     length_penalty=lp, early_stopping=es, **common)
            new = out.sequences[0, len(ids):].tolist()
            case["runs"].append({"num_beams": beams, "length_penalty": lp, "early_stopping": es,
                                 "token_ids": new, "text": tok.decode(new, skip_special_tokens=True),
                                 "sequence_score": float(out.sequences_scores[0])})
        cases.append(case)
    return cases


def min_gap(scores):
    gaps = []
    for s in scores:
        top = torch.topk(s[0].float(), 2).values
        gaps.append(float(top[0] - top[1]))
    return min(gaps)


def gguf_tokenizer_cases(hf_tok):
    texts = prompts() + corpus_sentences(40, seed=7)[:20] + ["  two  spaces\n\nnewlines\t tab", "emoji 😀 ünï", ""]
    return [{"text": t, "ids": hf_tok(t).input_ids, "ids_no_special": hf_tok(t, add_special_tokens=False).input_ids}
            for t in texts]


def check_gguf_matches(path, name, hf_dir, model, extra):
    """HF loading our GGUF must give the model we wrote (validates the llama.cpp conventions)."""
    d, f = os.path.split(path)
    m = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32, attn_implementation="eager", **extra)
    ids = torch.tensor([[1, 5, 9, 30, 100, 7, 8, 9, 10, 11, 12, 13]])
    with torch.no_grad():
        a = model(input_ids=ids).logits
        b = m(input_ids=ids).logits
    err = float((a - b).abs().max())
    print(f"{name}: HF-from-GGUF vs safetensors max |dlogit| = {err:.2e}")
    assert err < 1e-3, err


def build(name, arch, tok_arrays, make_model, seed, lora):
    torch.manual_seed(seed)
    hf_dir = os.path.join(OUT, name)
    shutil.rmtree(hf_dir, ignore_errors=True)
    os.makedirs(hf_dir)
    model = make_model(len(tok_arrays["tokens"])).eval()
    randomize(model, tok_arrays["eos"], seed, arch)
    gguf_path = os.path.join(OUT, f"{name}.gguf")
    write_gguf(gguf_path, arch, model, tok_arrays)
    if arch == "llama":
        write_gguf(os.path.join(OUT, f"{name}-q8_0.gguf"), arch, model, tok_arrays, GGMLQuantizationType.Q8_0)
    tok = AutoTokenizer.from_pretrained(OUT, gguf_file=f"{name}.gguf")
    tok.save_pretrained(hf_dir)
    model.generation_config.eos_token_id = tok_arrays["eos"]
    model.generation_config.pad_token_id = tok_arrays["pad"]
    model.generation_config.bos_token_id = tok_arrays["bos"]
    model.save_pretrained(hf_dir, safe_serialization=True)
    extra = {"query_pre_attn_scalar": model.config.query_pre_attn_scalar} if arch == "gemma3" else {}
    check_gguf_matches(gguf_path, name, hf_dir, model, extra)

    gen_ids = {"eos": tok_arrays["eos"], "pad": tok_arrays["pad"]}
    logits = {}
    expected = {
        "model_dir": name, "gguf": f"{name}.gguf", "adapter_dir": f"{name}-lora", "max_new_tokens": MAX_NEW,
        "eos_token_id": tok_arrays["eos"], "pad_token_id": tok_arrays["pad"],
        "base": record(model, tok, gen_ids, "base", logits),
    }
    r, alpha, rslora = lora
    peft = add_lora(model, r, alpha, rslora, seed + 1).eval()
    peft.save_pretrained(os.path.join(OUT, f"{name}-lora"))
    expected["lora"] = record(peft, tok, gen_ids, "lora", logits)
    expected["lora_config"] = {"r": r, "lora_alpha": alpha, "use_rslora": rslora, "target_modules": LORA_TARGETS}
    expected["gguf_tokenizer"] = gguf_tokenizer_cases(tok)
    save_file(logits, os.path.join(OUT, f"{name}-logits.safetensors"))
    with open(os.path.join(OUT, f"{name}-expected.json"), "w") as fh:
        json.dump(expected, fh, ensure_ascii=False, indent=1)
    eos_runs = sum(1 for part in ("base", "lora") for c in expected[part] for run in c["runs"]
                   if tok_arrays["eos"] in run["token_ids"])
    gaps = [run["min_top2_gap"] for part in ("base", "lora") for c in expected[part] for run in c["runs"]
            if "min_top2_gap" in run]
    print(f"{name}: runs ending in EOS {eos_runs}, smallest greedy top-2 logit gap {min(gaps):.3g}")


def llama_spm_tokenizer(tok):
    """A tokenizer-only GGUF of architecture llama with a SentencePiece vocabulary (LLaMA-2 style:
    merges from scores, first-word Metaspace), and HF's ids for it."""
    name = "tiny-llama-spm-tokenizer"
    path = os.path.join(OUT, f"{name}.gguf")
    w = GGUFWriter(path, "llama")
    w.add_block_count(1)
    w.add_tokenizer_model("llama")
    w.add_token_list(tok["tokens"])
    w.add_token_scores(tok["scores"])
    w.add_token_types(tok["types"])
    w.add_bos_token_id(tok["bos"])
    w.add_eos_token_id(tok["eos"])
    w.add_unk_token_id(tok["unk"])
    w.add_add_space_prefix(False)  # HF ignores it for llama: LlamaTokenizer always prepends "▁"
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    hf_tok = AutoTokenizer.from_pretrained(OUT, gguf_file=f"{name}.gguf")
    cases = gguf_tokenizer_cases(hf_tok)
    for c in cases:
        c["decoded"] = hf_tok.decode(c["ids_no_special"], skip_special_tokens=True)
    with open(os.path.join(OUT, f"{name}.json"), "w") as fh:
        json.dump({"gguf": f"{name}.gguf", "cases": cases}, fh, ensure_ascii=False, indent=1)


def main():
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    sentences = corpus_sentences()
    with tempfile.TemporaryDirectory() as tmp:
        gemma_tok = spm_vocab(sentences, tmp)
    llama_tok = bpe_vocab(sentences)
    llama_spm_tokenizer(gemma_tok)
    if "--tokenizer-only" in sys.argv:
        return
    build("tiny-llama", "llama", llama_tok, llama_model, 1234, (8, 16, False))
    build("tiny-gemma3", "gemma3", gemma_tok, gemma_model, 4321, (4, 8, True))


if __name__ == "__main__":
    sys.exit(main())
