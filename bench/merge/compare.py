#!/usr/bin/env python3
"""Compare two merged PEFT adapters module by module.

Usage: compare.py DATM_DIR PEFT_DIR [--factors]

Prints one JSON line: the worst relative Frobenius error of the effective ΔW = B·A·scaling over all
modules, and with --factors also of lora_A and lora_B themselves. Exit status 1 above 1e-4.
"""

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file


def load(d: Path):
    cfg = json.loads((d / "adapter_config.json").read_text())
    scaling = cfg["lora_alpha"] / (cfg["r"] ** 0.5 if cfg.get("use_rslora") else cfg["r"])
    return load_file(d / "adapter_model.safetensors"), scaling


def rel(x: torch.Tensor, y: torch.Tensor) -> float:
    return ((x.double() - y.double()).norm() / y.double().norm()).item()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("datm", type=Path)
    ap.add_argument("peft", type=Path)
    ap.add_argument("--factors", action="store_true")
    args = ap.parse_args()
    (ours, s_ours), (ref, s_ref) = load(args.datm), load(args.peft)
    if sorted(ours) != sorted(ref):
        sys.exit(f"tensor names differ: {sorted(set(ours) ^ set(ref))[:5]}")
    worst = dict(delta=0.0, lora_A=0.0, lora_B=0.0)
    modules = sorted(k[: -len(".lora_A.weight")] for k in ours if k.endswith(".lora_A.weight"))
    for m in modules:
        a, b = f"{m}.lora_A.weight", f"{m}.lora_B.weight"
        d_ours = (ours[b].double() @ ours[a].double()) * s_ours
        d_ref = (ref[b].double() @ ref[a].double()) * s_ref
        worst["delta"] = max(worst["delta"], rel(d_ours, d_ref))
        if args.factors:
            worst["lora_A"] = max(worst["lora_A"], rel(ours[a], ref[a]))
            worst["lora_B"] = max(worst["lora_B"], rel(ours[b], ref[b]))
    print(json.dumps(dict(modules=len(modules), worst_rel_err=worst)))
    sys.exit(1 if max(worst.values()) > 1e-4 else 0)


if __name__ == "__main__":
    main()
