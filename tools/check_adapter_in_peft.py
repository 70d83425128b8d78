#!/usr/bin/env python3
"""Check that a datm-written adapter loads in PEFT and has the expected effective ΔW.

Usage: check_adapter_in_peft.py ADAPTER_DIR EXPECTED.safetensors CASE

Loads ADAPTER_DIR with `PeftModel.from_pretrained` onto the tiny LLaMA of make_adapter_fixtures.py,
runs a forward pass, and compares every LoRA layer's `get_delta_weight` with the tensor
"{CASE}/{module}/delta" of EXPECTED within 1e-4 relative. Prints "OK <n> modules" on success.
"""

import sys
from pathlib import Path

import peft
import torch
from peft import PeftModel
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_adapter_fixtures import tiny_base  # noqa: E402


def main() -> None:
    adapter_dir, expected_file, case = sys.argv[1:4]
    expected = load_file(expected_file)
    model = PeftModel.from_pretrained(tiny_base(), adapter_dir)
    checked = 0
    with torch.no_grad():
        model(torch.tensor([[1, 2, 3, 4]]))
        for key, layer in model.base_model.model.named_modules():
            if not isinstance(layer, peft.tuners.lora.LoraLayer):
                continue
            got = layer.get_delta_weight("default")
            want = expected[f"{case}/{key}/delta"]
            err = ((got - want).norm() / want.norm()).item()
            if err > 1e-4:
                sys.exit(f"{key}: effective ΔW differs by {err:.3e} relative")
            checked += 1
    print(f"OK {checked} modules")


if __name__ == "__main__":
    main()
