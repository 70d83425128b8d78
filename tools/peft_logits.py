#!/usr/bin/env python3
"""Logits of an HF model with a PEFT adapter, for datm's PEFT round-trip test.

Usage: peft_logits.py BASE_DIR ADAPTER_DIR TOKEN_ID...

Loads BASE_DIR with transformers (f32), applies ADAPTER_DIR with `PeftModel.from_pretrained`,
runs one forward pass over the token ids and prints the logits of every position as JSON
(a list of rows).
"""

import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM


def main() -> None:
    base_dir, adapter_dir, *ids = sys.argv[1:]
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    with torch.no_grad():
        logits = model(torch.tensor([[int(i) for i in ids]])).logits[0]
    json.dump(logits.tolist(), sys.stdout)


if __name__ == "__main__":
    main()
