#!/usr/bin/env python3
"""Reference values for datm-train's tests, computed with PyTorch (+ transformers + PEFT).

Usage: $DATM_PYTHON tools/make_train_fixtures.py [OUT_DIR]   (default tests/fixtures/train)

Writes:
  optim.json          torch.optim.AdamW + clip_grad_norm_ + HF inverse_sqrt on random tensors.
  {llama,gemma3}/     a tiny random model (HF safetensors dir), a PEFT adapter with random
                      non-zero lora_B (adapter_init/), one batch (batch.json), and what one HF
                      Trainer-style run of 3 optimizer steps gives: per-step loss/grad-norm/lr
                      (expected.json), step-1 gradients (grads_step1.safetensors), and the adapter
                      after step 1 and after step 3 (adapter_step{1,3}.safetensors).

The training loop mirrors transformers' Trainer inner loop: the batch is split into micro-batches,
each micro-batch's loss is the summed token cross-entropy divided by `num_items_in_batch` (the
number of non-masked `labels[..., 1:]` over the whole accumulated batch), gradients accumulate,
then `clip_grad_norm_(1.0)`, `AdamW.step()`, `scheduler.step()`.
"""
import json
import math
import os
import sys
from functools import partial

import torch
from safetensors.torch import save_file
from transformers.optimization import get_inverse_sqrt_schedule

LR = 2e-3
WD = 0.01
MAX_NORM = 1.0


def optim_fixture():
    """AdamW + clipping + schedule on three random tensors for six steps."""
    g = torch.Generator().manual_seed(0)
    shapes = {"a": (3, 4), "b": (5,), "c": (2, 3)}
    params = {k: torch.nn.Parameter(torch.randn(*s, generator=g)) for k, s in shapes.items()}
    init = {k: p.detach().clone().flatten().tolist() for k, p in params.items()}
    opt = torch.optim.AdamW(params.values(), lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=WD)
    total, ratio = 6, 0.34
    warmup = math.ceil(total * ratio)
    sched = get_inverse_sqrt_schedule(opt, num_warmup_steps=warmup)
    steps = []
    for step in range(total):
        # Alternate large and small gradients so that clipping both fires and does not.
        scale = 3.0 if step % 2 == 0 else 0.05
        grads = {k: (torch.randn(*s, generator=g) * scale) for k, s in shapes.items()}
        for k, p in params.items():
            p.grad = grads[k].clone()
        lr = opt.param_groups[0]["lr"]
        norm = torch.nn.utils.clip_grad_norm_(params.values(), MAX_NORM).item()
        opt.step()
        sched.step()
        steps.append({
            "lr": lr,
            "grad_norm": norm,
            "grads": {k: v.flatten().tolist() for k, v in grads.items()},
            "params_after": {k: p.detach().flatten().tolist() for k, p in params.items()},
        })
    schedules = []
    for total_steps, ratio in [(1000, 0.01), (5, 0.0), (37, 0.1), (3, 0.34)]:
        warm = math.ceil(total_steps * ratio)
        opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
        s = get_inverse_sqrt_schedule(opt2, num_warmup_steps=warm)
        lrs = []
        for _ in range(total_steps):
            lrs.append(opt2.param_groups[0]["lr"])
            opt2.step()
            s.step()
        schedules.append({"total_steps": total_steps, "warmup_ratio": ratio, "lrs": lrs})
    return {
        "shapes": {k: list(s) for k, s in shapes.items()},
        "init": init,
        "config": {"lr": LR, "weight_decay": WD, "max_grad_norm": MAX_NORM, "total_steps": total,
                   "warmup_ratio": ratio},
        "steps": steps,
        "schedules": schedules,
    }


def tiny_model(arch):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    if arch == "llama":
        cfg = LlamaConfig(vocab_size=len(char_vocab()), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                          rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                          bos_token_id=1, eos_token_id=2, pad_token_id=0)
        model = LlamaForCausalLM(cfg)
    else:
        cfg = Gemma3TextConfig(vocab_size=96, hidden_size=32, intermediate_size=64,
                               num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=1,
                               head_dim=16, max_position_embeddings=64, sliding_window=4,
                               layer_types=["sliding_attention", "sliding_attention",
                                            "full_attention"],
                               query_pre_attn_scalar=16, rms_norm_eps=1e-6,
                               tie_word_embeddings=True, bos_token_id=2, eos_token_id=1,
                               pad_token_id=0)
        model = Gemma3ForCausalLM(cfg)
    # Non-trivial norm weights so that a wrong norm formula shows.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model.float().eval()


def char_vocab():
    """Specials, then one token per printable ASCII character and newline."""
    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    chars = ["\n"] + [chr(c) for c in range(32, 127)]
    return {t: i for i, t in enumerate(specials + chars)}


def save_char_tokenizer(path):
    """A character-level `tokenizer.json` (WordLevel over single characters) for the tiny
    LLaMA, so that whole training runs can be tested on text."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel(vocab=char_vocab(), unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.add_special_tokens(["<pad>", "<s>", "</s>", "<unk>"])
    tok.save(path)


def make_batch(vocab, pad_id, bos_id, eos_id):
    """Four right-padded rows: BOS + prompt, then target + EOS; labels mask the prompt."""
    g = torch.Generator().manual_seed(2)
    rows = [(5, 4), (9, 3), (3, 6), (7, 5)]  # (prompt tokens incl. BOS, target tokens incl. EOS)
    seqs, prompt_lens = [], []
    for p, t in rows:
        body = torch.randint(3, vocab, (p + t - 2,), generator=g).tolist()
        seqs.append([bos_id] + body + [eos_id])
        prompt_lens.append(p)
    return seqs, prompt_lens


def collate(seqs, prompt_lens, pad_id):
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), -100)
    for i, (s, p) in enumerate(zip(seqs, prompt_lens)):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
        labels[i, p: len(s)] = torch.tensor(s[p:])
    return ids, mask, labels


def lora_fixture(arch, out):
    from peft import LoraConfig, get_peft_model

    model = tiny_model(arch)
    os.makedirs(f"{out}/model", exist_ok=True)
    model.save_pretrained(f"{out}/model", safe_serialization=True)
    if arch == "llama":
        save_char_tokenizer(f"{out}/model/tokenizer.json")
    cfg = model.config
    lcfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                      "up_proj", "down_proj"])
    peft_model = get_peft_model(model, lcfg)
    torch.manual_seed(3)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn_like(p) * 0.1)
    peft_model.save_pretrained(f"{out}/adapter_init")
    os.remove(f"{out}/adapter_init/README.md")
    cfg_path = f"{out}/adapter_init/adapter_config.json"
    with open(cfg_path) as f:  # PEFT writes target_modules in set order; sort for stable output
        acfg = json.load(f)
    acfg["target_modules"] = sorted(acfg["target_modules"])
    with open(cfg_path, "w") as f:
        json.dump(acfg, f, indent=2, sort_keys=True)
    os.remove(f"{out}/model/generation_config.json")
    seqs, prompt_lens = make_batch(cfg.vocab_size, cfg.pad_token_id, cfg.bos_token_id,
                                   cfg.eos_token_id)
    with open(f"{out}/batch.json", "w") as f:
        json.dump({"sequences": seqs, "prompt_lens": prompt_lens, "micro_batch_size": 2,
                   "pad_id": cfg.pad_token_id, "lr": LR, "weight_decay": WD,
                   "max_grad_norm": MAX_NORM, "total_steps": 3, "warmup_ratio": 0.34,
                   "lora": {"r": 4, "alpha": 8}}, f)

    params = [(n, p) for n, p in peft_model.named_parameters() if p.requires_grad]
    peft_model.train()  # dropout is 0, so train mode only matters for bookkeeping
    opt = torch.optim.AdamW([p for _, p in params], lr=LR, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=WD)
    sched = get_inverse_sqrt_schedule(opt, num_warmup_steps=math.ceil(3 * 0.34))
    micro = [(seqs[i: i + 2], prompt_lens[i: i + 2]) for i in range(0, len(seqs), 2)]
    batches = [collate(s, p, cfg.pad_token_id) for s, p in micro]
    n_items = sum(int(l[..., 1:].ne(-100).sum()) for _, _, l in batches)
    expected = {"steps": [], "num_items_in_batch": n_items}

    def key(n):  # PEFT on-disk name: drop the adapter name
        return n.replace("base_model.model.", "base_model.model.", 1).replace(".default", "")

    for step in range(3):
        lr = opt.param_groups[0]["lr"]
        total = 0.0
        for ids, mask, labels in batches:
            outp = peft_model(input_ids=ids, attention_mask=mask, labels=labels,
                              num_items_in_batch=torch.tensor(n_items))
            outp.loss.backward()
            total += outp.loss.item()
        if step == 0:
            save_file({key(n): p.grad.detach().clone().contiguous() for n, p in params},
                      f"{out}/grads_step1.safetensors")
        norm = torch.nn.utils.clip_grad_norm_([p for _, p in params], MAX_NORM).item()
        opt.step()
        sched.step()
        opt.zero_grad()
        expected["steps"].append({"loss": total, "grad_norm": norm, "lr": lr})
        if step in (0, 2):
            save_file({key(n): p.detach().clone().contiguous() for n, p in params},
                      f"{out}/adapter_step{step + 1}.safetensors")
    with open(f"{out}/expected.json", "w") as f:
        json.dump(expected, f, indent=1)


PAIRS = [  # (German, English), ASCII only so the tiny character tokenizer covers them
    ("Datei oeffnen", "Open file"), ("Datei speichern", "Save file"),
    ("Fenster schliessen", "Close window"), ("Neues Fenster", "New window"),
    ("Einstellungen", "Settings"), ("Hilfe anzeigen", "Show help"),
    ("Programm beenden", "Quit program"), ("Bild drucken", "Print image"),
    ("Seite neu laden", "Reload page"), ("Text kopieren", "Copy text"),
    ("Text einfuegen", "Paste text"), ("Auswahl loeschen", "Delete selection"),
    ("Alles auswaehlen", "Select all"), ("Rueckgaengig", "Undo"),
    ("Wiederholen", "Redo"), ("Suchen und ersetzen", "Find and replace"),
    ("Datei umbenennen", "Rename file"), ("Ordner erstellen", "Create folder"),
    ("Verbindung trennen", "Disconnect"), ("Passwort eingeben", "Enter password"),
    ("Benutzer wechseln", "Switch user"), ("Bildschirm sperren", "Lock screen"),
    ("Lautstaerke erhoehen", "Raise volume"), ("Ton aus", "Mute"),
]


def write_text_data(out):
    """De-En pairs as a JSONL file and as an ALMA layout (train + valid)."""
    os.makedirs(f"{out}/data/alma/deen", exist_ok=True)
    with open(f"{out}/data/train.de-en.jsonl", "w") as f:
        for de, en in PAIRS:
            f.write(json.dumps({"translation": {"de": de, "en": en}}) + "\n")
    for split, rows in [("train", PAIRS[:20]), ("valid", PAIRS[20:])]:
        with open(f"{out}/data/alma/deen/{split}.de-en.json", "w") as f:
            json.dump([{"translation": {"de": de, "en": en}} for de, en in rows], f)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/train"
    os.makedirs(out, exist_ok=True)
    with open(f"{out}/optim.json", "w") as f:
        json.dump(optim_fixture(), f)
    write_text_data(out)
    for arch in ["llama", "gemma3"]:
        lora_fixture(arch, f"{out}/{arch}")


if __name__ == "__main__":
    main()
