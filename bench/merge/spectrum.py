#!/usr/bin/env python3
"""Diagnose a delta-space difference: conditioning of the rank-r truncation of PEFT's TIES result.

Usage: spectrum.py POOL_DIR DATM_OUT PEFT_OUT MODULE [--density 0.2] [--rank 16]

Recomputes PEFT's `ties` on the pool's ΔWᵢ (torch f32, as PEFT does), prints the singular values
around the cut (σ_r vs σ_{r+1}: the truncation's condition number is about σ₁/(σ_r − σ_{r+1})), a
second exact truncation of the same matrix by f64 eigh of M·Mᵀ (datm's method, in torch), and how far
PEFT's and datm's outputs are from it.
"""

import argparse
import json
from pathlib import Path

import torch
from peft.utils.merge_utils import ties
from safetensors.torch import load_file


def effective(d: Path, module: str) -> torch.Tensor:
    t = load_file(d / "adapter_model.safetensors")
    cfg = json.loads((d / "adapter_config.json").read_text())
    return t[f"{module}.lora_B.weight"].double() @ t[f"{module}.lora_A.weight"].double() * cfg["lora_alpha"] / cfg["r"]


def rel(x, y):
    """‖x − y‖ / ‖y‖ in f64."""
    x, y = x.double(), y.double()
    return ((x - y).norm() / y.norm()).item()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pool", type=Path)
    ap.add_argument("datm", type=Path)
    ap.add_argument("peft", type=Path)
    ap.add_argument("module")
    ap.add_argument("--density", type=float, default=0.2)
    ap.add_argument("--rank", type=int, default=16)
    args = ap.parse_args()
    deltas = []
    for p in sorted(args.pool.glob("adapter_*")):
        t = load_file(p / "adapter_model.safetensors")
        cfg = json.loads((p / "adapter_config.json").read_text())
        deltas.append((t[f"{args.module}.lora_B.weight"] @ t[f"{args.module}.lora_A.weight"]) * (cfg["lora_alpha"] / cfg["r"]))
    m = ties(deltas, torch.ones(len(deltas)), args.density, "total").double()
    tall = m.shape[0] >= m.shape[1]
    lam, vecs = torch.linalg.eigh(m.T @ m if tall else m @ m.T)
    top = vecs[:, -args.rank:]
    exact = (m @ top) @ top.T if tall else top @ (top.T @ m)
    sv = lam.flip(0)[: args.rank + 2].clamp(min=0).sqrt().tolist()
    r = args.rank
    print(json.dumps(dict(
        module=args.module, sigma_1=sv[0], sigma_r=sv[r - 1], sigma_r1=sv[r],
        condition=sv[0] / (sv[r - 1] - sv[r]),
        peft_vs_f64_truncation=rel(effective(args.peft, args.module), exact),
        datm_vs_f64_truncation=rel(effective(args.datm, args.module), exact),
    )))


if __name__ == "__main__":
    main()
