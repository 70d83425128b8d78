#!/usr/bin/env python3
"""The reference side of the merge benchmark: PEFT's add_weighted_adapter on a pool of adapters.

Usage: peft_merge.py POOL_DIR OUT_DIR --combination ties|ties_svd|… [--density D] [--weights …]

Builds the TinyLlama-shaped base on the meta device and materialises it uninitialised (the base
weights play no part in add_weighted_adapter), loads every adapter_* of POOL_DIR, merges, saves the
merged adapter to OUT_DIR/merged, and prints one JSON line of timings (load, merge, save seconds).
"""

import argparse
import json
import time
from pathlib import Path

import torch
from peft import PeftModel
from safetensors import safe_open
from transformers import LlamaConfig, LlamaForCausalLM


def n_layers(adapter: Path) -> int:
    with safe_open(adapter / "adapter_model.safetensors", "pt") as f:
        return 1 + max(int(k.split(".layers.")[1].split(".")[0]) for k in f.keys())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pool", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--combination", default="ties")
    ap.add_argument("--density", type=float, default=0.2)
    ap.add_argument("--weights", type=float, nargs="*")
    args = ap.parse_args()
    adapters = sorted(p for p in args.pool.iterdir() if p.name.startswith("adapter_"))
    config = LlamaConfig(hidden_size=2048, intermediate_size=5632, num_hidden_layers=n_layers(adapters[0]),
                         num_attention_heads=32, num_key_value_heads=4, vocab_size=32000)
    with torch.device("meta"):
        base = LlamaForCausalLM(config)
    base = base.to_empty(device="cpu")

    t0 = time.perf_counter()
    names = [p.name for p in adapters]
    model = PeftModel.from_pretrained(base, adapters[0], adapter_name=names[0])
    for p in adapters[1:]:
        model.load_adapter(p, adapter_name=p.name)
    t1 = time.perf_counter()
    weights = args.weights or [1.0] * len(names)
    model.add_weighted_adapter(names, weights, "merged", combination_type=args.combination,
                               density=args.density, majority_sign_method="total")
    t2 = time.perf_counter()
    model.save_pretrained(args.out, selected_adapters=["merged"])
    t3 = time.perf_counter()
    print(json.dumps(dict(tool="peft", combination=args.combination, load_s=t1 - t0, merge_s=t2 - t1,
                          save_s=t3 - t2, total_s=t3 - t0, threads=torch.get_num_threads())))


if __name__ == "__main__":
    main()
