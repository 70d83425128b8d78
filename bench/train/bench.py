#!/usr/bin/env python3
"""Benchmark: LoRA training throughput on Gemma-3-270M (GGUF), `datm train` vs PyTorch + PEFT.

Same run, same machine, same threads, same data, same batch shape:

* data: the first `--n` English→German pairs of an ALMA layout made from this machine's gettext
  catalogs (`datm data import-gettext --langs de --out DIR`), as ALMA prompts
  (`[BOS] prompt` masked, `target [EOS]` in the loss);
* LoRA r 16, α 32, dropout 0.05 on q/k/v/o/gate/up/down, AdamW lr 2e-3, inverse-sqrt schedule,
  clipping 1.0, effective batch `--batch-size` in micro-batches of `--micro-batch-size`, one
  epoch, f32 (or, with `--dtype bf16`, mixed precision: PyTorch under bf16 autocast, datm's
  bf16 products with f32 sums), both on `--threads` threads;
* PyTorch + PEFT: `AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)` (dequantized to f32),
  `get_peft_model`, a hand-written HF-Trainer-equivalent loop (loss summed over the target tokens
  and divided by the step's target-token count, `clip_grad_norm_`, `AdamW`,
  `get_inverse_sqrt_schedule`); each step's sequences are sorted by length before being cut into
  micro-batches, as datm does, so both pad alike;
* datm: the release binary, `datm train` with the same options.

Throughput is real (non-padding) tokens per second of training steps, model loading excluded,
first step excluded (warm-up) for both. Peak memory is each process's maximum RSS (loading
included, for both).

Run it with transformers 5 (bench/generate/venv.sh): transformers 4.x, which the test venv
holds for unbabel-comet, rebuilds Gemma-3's GGUF tokenizer wrongly (39 tokens instead of 20 for
an ALMA prompt), so PyTorch would train on other sequences than datm (step-1 loss 6.3 vs 3.3).

    PY=$(bench/generate/venv.sh) && $PY bench/train/bench.py --data DIR [--datm target/release/datm]
        [--n 48] [--batch-size 16] [--micro-batch-size 8] [--threads 2] [--dtype f32|bf16]
        [--gradient-checkpointing]
"""

import argparse
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import cpu_paths  # noqa: E402

ALMA = "Translate this from English to German:\nEnglish: {}\nGerman:"


def pairs(data_dir, n):
    with open(os.path.join(data_dir, "deen", "train.de-en.json")) as f:
        rows = json.load(f)
    return [(r["translation"]["en"], r["translation"]["de"]) for r in rows[:n]]


def write_layout(rows, out):
    os.makedirs(os.path.join(out, "deen"), exist_ok=True)
    with open(os.path.join(out, "deen", "train.de-en.json"), "w") as f:
        json.dump([{"translation": {"de": de, "en": en}} for en, de in rows], f, ensure_ascii=False)


def alma_sequences(tok, rows):
    """(ids, prompt length) per (en, de) pair: `[BOS] prompt` masked, `target [EOS]` learned."""
    seqs = []
    for en, de in rows:
        p = [tok.bos_token_id] + tok(ALMA.format(en), add_special_tokens=False)["input_ids"]
        t = tok(de, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        seqs.append((p + t, len(p)))
    return seqs


def with_lora(model, gradient_checkpointing):
    """The paper's LoRA (r 16, α 32, dropout 0.05, all linear layers) on `model` with PEFT,
    in training mode; with HF's non-reentrant activation checkpointing if asked."""
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, bias="none", task_type="CAUSAL_LM",
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                     "up_proj", "down_proj"])
    model = get_peft_model(model, cfg)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    return model


def torch_train(model, seqs, batch_size, micro_batch_size, pad, device, loss_scaling=False,
                autocast=None):
    """HF-Trainer-equivalent LoRA steps over `seqs` on `device`: AdamW lr 2e-3, inverse-sqrt
    warm-up, loss summed over each step's target tokens, clipping 1.0, each step's sequences
    sorted by length before being cut into micro-batches (as datm does); with `loss_scaling`
    (f16), a GradScaler as HF's Trainer uses; with `autocast` (a torch dtype), the forward
    pass under `torch.autocast`, as HF's Trainer runs `bf16=True`. Returns one record per
    step: tokens, seconds, loss."""
    import contextlib
    import torch
    from transformers.optimization import get_inverse_sqrt_schedule

    steps = [seqs[i: i + batch_size] for i in range(0, len(seqs), batch_size)]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.01)
    sched = get_inverse_sqrt_schedule(opt, num_warmup_steps=math.ceil(0.01 * len(steps)))
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    scaler = torch.amp.GradScaler(str(device).split(":")[0], enabled=loss_scaling)
    log = []
    for step in steps:
        sync()
        t0 = time.perf_counter()
        step = sorted(step, key=lambda s: -len(s[0]))
        n_items = sum(len(ids) - p for ids, p in step)
        tokens = sum(len(ids) for ids, _ in step)
        loss_sum = 0.0
        for i in range(0, len(step), micro_batch_size):
            mb = step[i: i + micro_batch_size]
            width = max(len(ids) for ids, _ in mb)
            ids = torch.full((len(mb), width), pad)
            mask = torch.zeros((len(mb), width), dtype=torch.long)
            labels = torch.full((len(mb), width), -100)
            for r, (s, p) in enumerate(mb):
                ids[r, : len(s)] = torch.tensor(s)
                mask[r, : len(s)] = 1
                labels[r, p: len(s)] = torch.tensor(s[p:])
            cast = (torch.autocast(str(device).split(":")[0], dtype=autocast) if autocast
                    else contextlib.nullcontext())
            with cast:
                out = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                            labels=labels.to(device),
                            num_items_in_batch=torch.tensor(n_items, device=device))
            scaler.scale(out.loss).backward()
            loss_sum += out.loss.item()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(opt)
        scaler.update()
        sched.step()
        opt.zero_grad()
        sync()
        log.append({"tokens": tokens, "seconds": time.perf_counter() - t0, "loss": loss_sum})
        print(f"torch step {len(log)}: loss {loss_sum:.4f} {log[-1]['seconds']:.1f}s", file=sys.stderr)
    return log


def torch_run(args):
    """The PyTorch + PEFT side (runs in its own process)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    d, f = os.path.split(os.path.abspath(args.model))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model = with_lora(model, args.gradient_checkpointing)
    seqs = alma_sequences(tok, pairs(args.data, args.n))
    log = torch_train(model, seqs, args.batch_size, args.micro_batch_size,
                      tok.pad_token_id if tok.pad_token_id is not None else 0, "cpu",
                      autocast=torch.bfloat16 if args.dtype == "bf16" else None)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"steps": log, "peak_rss": peak, "capability": torch.backends.cpu.get_cpu_capability()}))


def throughput(steps):
    rest = steps[1:] or steps
    return sum(s["tokens"] for s in rest) / sum(s["seconds"] for s in rest)


def peak_rss_of(cmd, env=None):
    """Runs `cmd` (with `env`) under /usr/bin/time -v; returns (stdout, peak RSS in bytes)."""
    res = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(f"{cmd[0]} failed:\n{res.stderr[-3000:]}")
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr).group(1))
    return res.stdout, kb * 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="ALMA layout with deen/train.de-en.json")
    ap.add_argument("--model", default=os.environ.get("DATM_GEMMA_GGUF"),
                    help='default $DATM_GEMMA_GGUF (eval "$(scripts/fetch-models.sh gemma)")')
    ap.add_argument("--datm", default="target/release/datm")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--micro-batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    cpu_paths.add_argument(ap)
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"],
                    help="bf16: PyTorch under bf16 autocast, datm --dtype bf16 (both mixed "
                         "precision: bf16 products, f32 weights of record)")
    ap.add_argument("--gradient-checkpointing", action="store_true",
                    help="activation checkpointing on both sides (HF's non-reentrant one)")
    ap.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_child:
        return torch_run(args)
    if not args.model or not os.path.exists(args.model):
        ap.error(f"no model at {args.model!r}: pass --model or set DATM_GEMMA_GGUF")
    # Inherited by the PyTorch child, which must start with them set.
    os.environ.update(cpu_paths.environment(args.cpu_path))

    common = ["--data", args.data, "--model", args.model, "--n", str(args.n),
              "--batch-size", str(args.batch_size), "--micro-batch-size",
              str(args.micro_batch_size), "--threads", str(args.threads), "--dtype", args.dtype]
    checkpointing = ["--gradient-checkpointing"] if args.gradient_checkpointing else []
    out, torch_peak = peak_rss_of([sys.executable, __file__, "--torch-child"] + common + checkpointing)
    torch_out = json.loads(out.strip().splitlines()[-1])
    torch_steps = torch_out["steps"]

    with tempfile.TemporaryDirectory() as tmp:
        write_layout(pairs(args.data, args.n), os.path.join(tmp, "data"))
        cmd = [args.datm, "train", "--model", args.model, "--data", os.path.join(tmp, "data"),
               "--directions", "en-de", "--out", os.path.join(tmp, "out"),
               "--batch-size", str(args.batch_size),
               "--micro-batch-size", str(args.micro_batch_size), "--dtype", args.dtype] + checkpointing
        env_threads = {"RAYON_NUM_THREADS": str(args.threads)}
        os.environ.update(env_threads)
        _, datm_peak = peak_rss_of(cmd)
        with open(os.path.join(tmp, "out", "train_log.jsonl")) as f:
            datm_steps = [json.loads(l) for l in f]

    t_tps, d_tps = throughput(torch_steps), throughput(datm_steps)
    result = {
        "cpu_path": args.cpu_path or "native", "torch_cpu_capability": torch_out["capability"],
        "sequences": args.n, "batch_size": args.batch_size,
        "micro_batch_size": args.micro_batch_size, "threads": args.threads,
        "gradient_checkpointing": args.gradient_checkpointing, "dtype": args.dtype,
        "torch_tokens_per_s": round(t_tps, 1), "datm_tokens_per_s": round(d_tps, 1),
        "speedup": round(d_tps / t_tps, 2),
        "torch_peak_rss_mb": torch_peak // 2**20, "datm_peak_rss_mb": datm_peak // 2**20,
        "torch_losses": [round(s["loss"], 4) for s in torch_steps],
        "datm_losses": [round(s["loss"], 4) for s in datm_steps],
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
