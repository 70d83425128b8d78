#!/usr/bin/env python3
"""Compare two merged PEFT adapters module by module.

Usage: compare.py DATM_DIR PEFT_DIR [--factors [--pool POOL_DIR --density D]]

Prints one JSON line: the worst relative Frobenius error of the effective ΔW = B·A·scaling over all
modules, and with --factors also of lora_A and lora_B themselves. Exit status 1 above 1e-4.

Factor-space TIES keeps the top int(density·numel) entries by |x| of each input factor; where the
k-th largest |x| is tied (x and -x, or equal draws), which entry survives is unspecified in torch.topk.
With --pool, a factor tensor that differs is checked against the inputs: if some input tensor has a
tie at its top-k threshold, the difference is reported under "tie_broken" and excluded from the worst
errors; otherwise it counts.
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


def tie_at_threshold(inputs, key: str, density: float) -> bool:
    for tensors in inputs:
        t = tensors[key].abs().flatten()
        k = int(density * t.numel())
        if 0 < k < t.numel() and (t == torch.topk(t, k).values[-1]).sum().item() > 1:
            return True
    return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("datm", type=Path)
    ap.add_argument("peft", type=Path)
    ap.add_argument("--factors", action="store_true")
    ap.add_argument("--pool", type=Path)
    ap.add_argument("--density", type=float, default=0.2)
    args = ap.parse_args()
    (ours, s_ours), (ref, s_ref) = load(args.datm), load(args.peft)
    if sorted(ours) != sorted(ref):
        sys.exit(f"tensor names differ: {sorted(set(ours) ^ set(ref))[:5]}")
    inputs = []
    if args.pool:
        inputs = [load_file(p / "adapter_model.safetensors") for p in sorted(args.pool.glob("adapter_*"))]
    worst = dict(delta=0.0, lora_A=0.0, lora_B=0.0)
    tie_broken = []
    modules = sorted(k[: -len(".lora_A.weight")] for k in ours if k.endswith(".lora_A.weight"))
    for m in modules:
        a, b = f"{m}.lora_A.weight", f"{m}.lora_B.weight"
        errs = {}
        if args.factors:
            errs = {"lora_A": rel(ours[a], ref[a]), "lora_B": rel(ours[b], ref[b])}
        d_ours = (ours[b].double() @ ours[a].double()) * s_ours
        d_ref = (ref[b].double() @ ref[a].double()) * s_ref
        errs["delta"] = rel(d_ours, d_ref)
        ties = [k for k, key in (("lora_A", a), ("lora_B", b))
                if errs.get(k, 0) > 1e-5 and inputs and tie_at_threshold(inputs, key, args.density)]
        if ties:
            diff = {k: int(((ours[key] - ref[key]).abs() > 1e-6 * ref[key].abs().max()).sum())
                    for k, key in (("lora_A", a), ("lora_B", b)) if k in ties}
            tie_broken.append(dict(module=m, entries_differing=diff, rel_err=errs))
            continue
        for k, v in errs.items():
            worst[k] = max(worst[k], v)
    print(json.dumps(dict(modules=len(modules), worst_rel_err=worst, tie_broken=tie_broken)))
    sys.exit(1 if max(worst.values()) > 1e-4 else 0)


if __name__ == "__main__":
    main()
