#!/usr/bin/env python3
"""GPU training check: LoRA training throughput and peak device memory with a LLaMA of the
paper's body shape (LLaMA-2-7B: hidden 4096, 32 layers, 32 heads, MLP 11008) and random
weights, `datm train --device cuda` against PyTorch + PEFT on the same GPU in the same run.

Both sides train the paper's LoRA (r 16, α 32, dropout 0.05, all linear layers) with AdamW,
the inverse-sqrt warm-up and clipping (bench/train/bench.py's loop), on the same ALMA en→de
sequences of about `--chars` characters per side, with the base in `--dtype` (bf16 or f16; the
LoRA weights stay f32 on both sides) and, with `--gradient-checkpointing`, activation
checkpointing on both (HF's non-reentrant one). Real weights are not available on the GPU
machine, so the model is built there with random weights (seed 0) and the tiny-llama fixture's
character tokenizer (vocabulary 512: the time is the body's). Each side runs in its own process;
peak memory is the device's used memory polled with nvidia-smi (on `--device cpu`, for trying the
script on a small `--layers/--hidden` shape, the peak RSS). Throughput is real tokens per second
over steps 2 onwards. With `--composite`, datm also trains with its fused CUDA kernels off
(`DATM_CUDA_KERNELS=0`: candle's composite RMSNorm, RoPE, softmax, activations and loss), to
show what the kernels bring.

    python3 tools/bench_cuda_train.py --datm DATM [--device cuda] [--layers 32] [--steps 4]
        [--batch-size 16] [--micro-batch-size 8] [--chars 120] [--dtype bf16]
        [--gradient-checkpointing] [--hidden 4096 --intermediate 11008 --heads 32]
        [--model-cache DIR] [--composite]

Needs torch, transformers and peft (the GPU machine has them).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench", "train"))
import bench as train_bench  # noqa: E402
import random_llama  # noqa: E402

SENTENCES = [("The file could not be opened.", "Die Datei konnte nicht geöffnet werden."),
             ("Please close the window.", "Bitte schließen Sie das Fenster."),
             ("The train arrives tomorrow.", "Der Zug kommt morgen an."),
             ("Where is the station?", "Wo ist der Bahnhof?")]


def rows(n, chars):
    """`n` (en, de) pairs of about `chars` characters per side, all different."""
    out = []
    for i in range(n):
        en, de = [], []
        j = i
        while sum(map(len, en)) < chars:
            e, d = SENTENCES[j % len(SENTENCES)]
            en.append(f"{e} ({j})")
            de.append(f"{d} ({j})")
            j += 1
        out.append((" ".join(en), " ".join(de)))
    return out


def build_model(args, out):
    """A random LLaMA of the asked shape in `args.dtype`, saved with the fixture's tokenizer."""
    random_llama.build(out, args.layers, args.hidden, args.intermediate, args.heads, args.dtype,
                       args.device)


def torch_child(args):
    """The PyTorch + PEFT side: prints its step records as JSON."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(42)
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16}[args.dtype]
    tok = AutoTokenizer.from_pretrained(args.model_dir)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=dtype).to(args.device)
    model = train_bench.with_lora(model, args.gradient_checkpointing)
    seqs = train_bench.alma_sequences(tok, rows(args.steps * args.batch_size, args.chars))
    log = train_bench.torch_train(model, seqs, args.batch_size, args.micro_batch_size,
                                  tok.pad_token_id, args.device, loss_scaling=args.dtype == "f16")
    print(json.dumps(log))


def peak_memory_of(cmd, device, env=None):
    """Runs `cmd` (with `env`); returns (stdout, peak memory in MiB): the device's used memory
    polled with nvidia-smi on a GPU, the process's peak RSS on the CPU."""
    if device == "cpu":
        out, peak = train_bench.peak_rss_of(cmd, env=env)
        return out, peak // 2**20
    index = device.split(":")[1] if ":" in device else "0"
    query = ["nvidia-smi", "-i", index, "--query-gpu=memory.used", "--format=csv,noheader,nounits"]
    peak, done = [0], threading.Event()

    def poll():
        while not done.is_set():
            used = subprocess.run(query, capture_output=True, text=True).stdout.strip()
            peak[0] = max(peak[0], int(used or 0))
            time.sleep(0.2)

    base = int(subprocess.run(query, capture_output=True, text=True).stdout.strip() or 0)
    watcher = threading.Thread(target=poll)
    watcher.start()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    done.set()
    watcher.join()
    if res.returncode != 0:
        sys.exit(f"{cmd[0]} failed:\n{res.stderr[-3000:]}")
    return res.stdout, peak[0] - base


def datm_train(args, model_dir, data, flags, out, env=None):
    """`datm train` on the data; returns its step records and its peak memory in MiB."""
    cmd = [args.datm, "train", "--model", model_dir, "--data", data, "--directions", "en-de",
           "--out", out, "--device", args.device, "--dtype", args.dtype,
           "--batch-size", str(args.batch_size), "--micro-batch-size", str(args.micro_batch_size),
           "--max-eval-examples", "0"] + flags
    _, peak = peak_memory_of(cmd, args.device, env)
    with open(os.path.join(out, "train_log.jsonl")) as f:
        return [json.loads(line) for line in f], peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datm", default="target/release/datm")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--intermediate", type=int, default=11008)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--micro-batch-size", type=int, default=8)
    ap.add_argument("--chars", type=int, default=120)
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f16"])
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--model-cache", help="keep the random model here and reuse it when present "
                    "(a model of another shape or dtype must not be there)")
    ap.add_argument("--composite", action="store_true",
                    help="also train datm with its fused CUDA kernels off")
    ap.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_child:
        return torch_child(args)

    tmp = tempfile.mkdtemp(prefix="bench-cuda-train-")
    try:
        model_dir = args.model_cache or os.path.join(tmp, "model")
        if not os.path.exists(os.path.join(model_dir, "config.json")):
            t0 = time.time()
            build_model(args, model_dir)
            print(f"built the random model in {time.time() - t0:.1f} s", file=sys.stderr)
        data = os.path.join(tmp, "data")
        train_bench.write_layout(rows(args.steps * args.batch_size, args.chars), data)
        flags = ["--gradient-checkpointing"] if args.gradient_checkpointing else []
        child = [sys.executable, os.path.abspath(__file__), "--torch-child", "--model-dir", model_dir]
        for k in ["device", "steps", "batch_size", "micro_batch_size", "chars", "dtype"]:
            child += [f"--{k.replace('_', '-')}", str(getattr(args, k))]
        out, torch_peak = peak_memory_of(child + flags, args.device)
        torch_steps = json.loads(out.strip().splitlines()[-1])
        datm_steps, datm_peak = datm_train(args, model_dir, data, flags, os.path.join(tmp, "out"))
        composite = {}
        if args.composite:
            env = dict(os.environ, DATM_CUDA_KERNELS="0")
            steps, peak = datm_train(args, model_dir, data, flags, os.path.join(tmp, "out2"), env)
            composite = {"datm_composite_tokens_per_s": round(train_bench.throughput(steps), 1),
                         "datm_composite_peak_mib": peak,
                         "datm_composite_losses": [round(s["loss"], 4) for s in steps]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t_tps, d_tps = train_bench.throughput(torch_steps), train_bench.throughput(datm_steps)
    print(json.dumps({
        "device": args.device, "dtype": args.dtype, "layers": args.layers, "hidden": args.hidden,
        "gradient_checkpointing": args.gradient_checkpointing, "steps": len(datm_steps),
        "batch_size": args.batch_size, "micro_batch_size": args.micro_batch_size,
        "torch_tokens_per_s": round(t_tps, 1), "datm_tokens_per_s": round(d_tps, 1),
        "speedup": round(d_tps / t_tps, 2),
        "torch_peak_mib": torch_peak, "datm_peak_mib": datm_peak,
        "torch_losses": [round(s["loss"], 4) for s in torch_steps],
        "datm_losses": [round(s["loss"], 4) for s in datm_steps],
        **composite,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
