#!/usr/bin/env python3
"""How far PEFT's own `ties_svd` result moves under choices the reference leaves open.

Usage: reference_noise.py POOL_DIR DATM_OUT PEFT_OUT MODULE [MODULE…] [--density 0.2] [--rank 16]

For each module, PEFT's path (`get_delta_weight` = (B @ A) · scaling in f32, `ties(…, "total")`,
`torch.linalg.svd(full_matrices=True)`, rank-r truncation, no clamp) is rerun on the same pool,
then rerun with one thing changed that the reference does not pin down:
- `rounded_input`: ΔWᵢ computed in f64 and rounded to f32 (within 1 ulp of torch's f32 matmul);
- `reversed_tie_order`: `torch.topk` over the reversed flattened tensor, i.e. another choice
  among the values tied at the top-k threshold (torch leaves the choice unspecified);
- `keep_all_ties` / `drop_all_ties`: every value equal to the k-th magnitude kept / dropped.
Each prints the relative distance of the effective ΔW (U·S·Vh) to PEFT's own result, next to
datm's distance to PEFT's result on the benchmark's outputs.
"""

import argparse
import json
from pathlib import Path

import peft.utils.merge_utils as merge_utils
import torch
from peft.utils.merge_utils import ties
from safetensors.torch import load_file
from spectrum import effective, rel  # same folder: a saved adapter's effective ΔW; relative error


def pool_factors(pool: Path, module: str):
    out = []
    for p in sorted(pool.glob("adapter_*")):
        t = load_file(p / "adapter_model.safetensors")
        cfg = json.loads((p / "adapter_config.json").read_text())
        scale = cfg["lora_alpha"] / cfg["r"]
        out.append((t[f"{module}.lora_B.weight"], t[f"{module}.lora_A.weight"], scale))
    return out


def peft_ties_svd(deltas, density: float, rank: int) -> torch.Tensor:
    """PEFT's `_svd_generalized_task_arithmetic_weighted_adapter` for ties_svd, as an effective ΔW."""
    merged = ties(deltas, torch.ones(len(deltas)), density, "total")
    u, s, vh = torch.linalg.svd(merged, full_matrices=True)
    return (u[:, :rank] @ torch.diag(s[:rank])) @ vh[:rank, :]


def prune_reversed(tensor, density, method="magnitude", rescale=False):
    """PEFT's magnitude pruning, with topk run over the reversed flattened tensor."""
    flat = tensor.reshape(-1).flip(0)
    mask = torch.zeros_like(flat)
    mask[torch.topk(flat.abs(), k=int(density * tensor.numel()))[1]] = 1
    return (flat * mask).flip(0).reshape(tensor.shape)


def prune_threshold(keep_ties: bool):
    """Magnitude pruning at the k-th magnitude, keeping (or dropping) every value tied with it."""
    def prune(tensor, density, method="magnitude", rescale=False):
        v = tensor.abs().reshape(-1)
        kth = torch.topk(v, int(density * tensor.numel())).values[-1]
        return tensor * ((v >= kth) if keep_ties else (v > kth)).reshape(tensor.shape)
    return prune


def with_prune(prune, deltas, density: float, rank: int) -> torch.Tensor:
    """`peft_ties_svd` with `merge_utils.prune` replaced for the call."""
    original = merge_utils.prune
    merge_utils.prune = prune
    try:
        return peft_ties_svd(deltas, density, rank)
    finally:
        merge_utils.prune = original


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pool", type=Path)
    ap.add_argument("datm", type=Path)
    ap.add_argument("peft", type=Path)
    ap.add_argument("modules", nargs="+")
    ap.add_argument("--density", type=float, default=0.2)
    ap.add_argument("--rank", type=int, default=16)
    args = ap.parse_args()
    for module in args.modules:
        factors = pool_factors(args.pool, module)
        as_peft = [(b @ a) * s for b, a, s in factors]
        rounded = [((b.double() @ a.double()) * s).float() for b, a, s in factors]
        ref = peft_ties_svd(as_peft, args.density, args.rank)
        peft_out = effective(args.peft, module)
        variants = {
            "rounded_input": peft_ties_svd(rounded, args.density, args.rank),
            "reversed_tie_order": with_prune(prune_reversed, as_peft, args.density, args.rank),
            "keep_all_ties": with_prune(prune_threshold(True), as_peft, args.density, args.rank),
            "drop_all_ties": with_prune(prune_threshold(False), as_peft, args.density, args.rank),
        }
        print(json.dumps(dict(
            module=module,
            rerun_vs_peft=rel(ref, peft_out),
            **{f"{k}_vs_peft": rel(v, peft_out) for k, v in variants.items()},
            datm_vs_peft=rel(effective(args.datm, module), peft_out),
        )), flush=True)


if __name__ == "__main__":
    main()
