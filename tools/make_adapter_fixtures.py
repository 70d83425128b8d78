#!/usr/bin/env python3
"""Generate the PEFT parity fixtures for datm's adapter format and merges (tests/fixtures/adapter/).

Run with the reference stack:  PYTHONHASHSEED=0 $DATM_PYTHON tools/make_adapter_fixtures.py [OUT_DIR]

It builds a tiny random LLaMA (hidden 16, 2 layers, GQA), four PEFT LoRA adapters on all seven
projection types with random non-zero lora_B, saves them with PEFT's save_pretrained (peft_a … peft_d),
then runs PEFT's own `add_weighted_adapter` for every combination type datm implements and stores
what it produced:

  cases.json              one entry per merge: combination_type, adapters, weights, density, …
  expected.safetensors    "{case}/{module}/delta"  effective ΔW of the merged adapter (get_delta_weight)
                          "{case}/{module}/lora_A", "/lora_B"  merged factors (factor-space cases only)

Adapters: a (r=4, α=8), b (r=4, α=4, alpha_pattern v_proj→16), c (r=4, α=16), d (r=6, α=12, rsLoRA).
Factor-space cases use a, b, c (PEFT needs equal ranks); SVD cases use a, b, d (mixed ranks).
DARE's masks come from torch's RNG, which datm does not reproduce, so DARE cases use density 1.0
(PEFT then skips pruning); the random-pruning definition is unit-tested in Rust.

The installed PEFT (0.21.x) applies the LoRA scaling once in the SVD path (the fix of PR #3111), so
the `*_svd` expectations are the exact ΔW-space merges datm's `--space delta` computes.
"""

import json
import sys
from pathlib import Path

import peft
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

BASE = "datm-tiny-llama-fixture"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ADAPTERS = {
    "a": dict(r=4, lora_alpha=8),
    "b": dict(r=4, lora_alpha=4, alpha_pattern={"v_proj": 16}),
    "c": dict(r=4, lora_alpha=16),
    "d": dict(r=6, lora_alpha=12, use_rslora=True),
}
FACTORS = ["a", "b", "c"]
SVD = ["a", "b", "d"]
W3 = [1.0, 0.7, -0.4]

# (name, combination_type, adapters, weights, density, majority_sign_method, svd_rank)
CASES = [
    ("linear", "linear", FACTORS, W3, None, "total", None),
    ("ties", "ties", FACTORS, W3, 0.5, "total", None),
    ("ties_frequency", "ties", FACTORS, [1.0, 1.0, 1.0], 0.3, "frequency", None),
    ("magnitude_prune", "magnitude_prune", FACTORS, W3, 0.5, "total", None),
    ("dare_linear_d1", "dare_linear", FACTORS, W3, 1.0, "total", None),
    ("dare_ties_d1", "dare_ties", FACTORS, W3, 1.0, "total", None),
    ("svd", "svd", SVD, W3, None, "total", None),
    ("ties_svd", "ties_svd", SVD, W3, 0.5, "total", None),
    ("ties_svd_frequency_r3", "ties_svd", SVD, [1.0, 1.0, 1.0], 0.3, "frequency", 3),
    ("magnitude_prune_svd", "magnitude_prune_svd", SVD, W3, 0.4, "total", None),
    ("dare_linear_svd_d1", "dare_linear_svd", SVD, W3, 1.0, "total", None),
    ("dare_ties_svd_d1", "dare_ties_svd", SVD, W3, 1.0, "total", None),
]


def tiny_base() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


def make_adapter(name: str, out: Path, seed: int) -> None:
    torch.manual_seed(100 + seed)
    cfg = LoraConfig(target_modules=TARGETS, lora_dropout=0.0, task_type="CAUSAL_LM", **ADAPTERS[name])
    model = get_peft_model(tiny_base(), cfg)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "lora_B" in pname:
                p.copy_(torch.randn_like(p) * 0.5)
    model.peft_config["default"].base_model_name_or_path = BASE
    model.save_pretrained(out / f"peft_{name}")
    (out / f"peft_{name}" / "README.md").unlink(missing_ok=True)  # PEFT's model card; not needed


def lora_layers(model: PeftModel):
    for key, module in model.base_model.model.named_modules():
        if isinstance(module, peft.tuners.lora.LoraLayer):
            yield key, module


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/adapter")
    out.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(ADAPTERS):
        make_adapter(name, out, i)

    model = PeftModel.from_pretrained(tiny_base(), out / "peft_a", adapter_name="a")
    for name in list(ADAPTERS)[1:]:
        model.load_adapter(out / f"peft_{name}", adapter_name=name)

    tensors, cases = {}, []
    for case, ctype, adapters, weights, density, sign, svd_rank in CASES:
        model.add_weighted_adapter(
            adapters, weights, case, combination_type=ctype, density=density,
            majority_sign_method=sign, svd_rank=svd_rank,
        )
        cfg = model.peft_config[case]
        space = "delta" if ctype.endswith("svd") else "factors"
        method = {"svd": "linear"}.get(ctype, ctype.removesuffix("_svd"))
        cases.append(dict(
            name=case, combination_type=ctype, method=method, space=space, adapters=adapters,
            weights=weights, density=density if density is not None else 1.0,
            majority_sign=sign, rank=svd_rank, expected_r=cfg.r, expected_alpha=cfg.lora_alpha,
        ))
        with torch.no_grad():
            for key, layer in lora_layers(model):
                tensors[f"{case}/{key}/delta"] = layer.get_delta_weight(case).contiguous()
                if space == "factors":
                    tensors[f"{case}/{key}/lora_A"] = layer.lora_A[case].weight.contiguous()
                    tensors[f"{case}/{key}/lora_B"] = layer.lora_B[case].weight.contiguous()
    save_file(tensors, out / "expected.safetensors")
    meta = dict(peft_version=peft.__version__, torch_version=torch.__version__, base=BASE, cases=cases)
    (out / "cases.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {len(cases)} cases, {len(tensors)} tensors to {out}")


if __name__ == "__main__":
    main()
