#!/usr/bin/env python3
"""Write a pool of random PEFT LoRA adapters for the merge benchmark (not committed; goes to /tmp).

Usage: make_pool.py OUT_DIR [--adapters 8] [--rank 16] [--layers 22]

Shapes are TinyLlama-1.1B's (a 1B-class LLaMA): hidden 2048, intermediate 5632, 32 heads with 4 KV
heads (k/v_proj 256×2048), LoRA on q,k,v,o,gate,up,down. lora_A is kaiming-uniform as PEFT
initialises it, lora_B is random normal (a trained-looking, non-zero adapter). Each adapter has its
own lora_alpha so the scalings differ. Written with PEFT's own config class and safetensors.
"""

import argparse
import math
from pathlib import Path

import torch
from peft import LoraConfig
from safetensors.torch import save_file

HIDDEN, INTER, KV = 2048, 5632, 256
SHAPES = {  # module -> (out, in)
    "self_attn.q_proj": (HIDDEN, HIDDEN),
    "self_attn.k_proj": (KV, HIDDEN),
    "self_attn.v_proj": (KV, HIDDEN),
    "self_attn.o_proj": (HIDDEN, HIDDEN),
    "mlp.gate_proj": (INTER, HIDDEN),
    "mlp.up_proj": (INTER, HIDDEN),
    "mlp.down_proj": (HIDDEN, INTER),
}
BASE = "TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--adapters", type=int, default=8)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--layers", type=int, default=22)
    args = ap.parse_args()
    for i in range(args.adapters):
        gen = torch.Generator().manual_seed(1000 + i)
        tensors = {}
        for layer in range(args.layers):
            for module, (out, inp) in SHAPES.items():
                key = f"base_model.model.model.layers.{layer}.{module}"
                bound = 1.0 / math.sqrt(inp)  # kaiming_uniform(a=sqrt(5)) bound
                a = (torch.rand(args.rank, inp, generator=gen) * 2 - 1) * bound
                b = torch.randn(out, args.rank, generator=gen) * 0.02
                tensors[f"{key}.lora_A.weight"] = a
                tensors[f"{key}.lora_B.weight"] = b
        d = args.out / f"adapter_{i}"
        d.mkdir(parents=True, exist_ok=True)
        save_file(tensors, d / "adapter_model.safetensors", metadata={"format": "pt"})
        cfg = LoraConfig(r=args.rank, lora_alpha=16 + 8 * (i % 3), lora_dropout=0.0, task_type="CAUSAL_LM",
                         target_modules=[m.split(".")[1] for m in SHAPES], base_model_name_or_path=BASE)
        cfg.save_pretrained(d)
        print(f"wrote {d}")


if __name__ == "__main__":
    main()
