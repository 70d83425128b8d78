#!/usr/bin/env python3
"""Record HF transformers' `generate(stop_strings=...)` on the tiny LLaMA fixture.

Run with the reference venv (torch, transformers); CI only reads the committed output,
tests/fixtures/model/tiny-llama-stop.json: for each prompt of tiny-llama-expected.json and each
stop-string set, the greedy and 5-beam token ids (max_new_tokens 20), with and without the
fixture adapter. datm's `StopString` must reproduce them (crates/model/tests/stop_strings.rs).
"""

import json
import os

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures", "model")
# ASCII stops: HF matches token strings, datm decoded text; they agree on ASCII.
STOP_SETS = [["s"], ["es", "ent"], ["\r"], ["/"], ["zzz"]]
MAX_NEW = 20


def main():
    expected = json.load(open(os.path.join(FIX, "tiny-llama-expected.json")))
    model_dir = os.path.join(FIX, "tiny-llama")
    # The committed tokenizer_config.json names transformers 5's class; read tokenizer.json.
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(model_dir, "tokenizer.json"))
    base = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    cases = []
    for part in ["base", "lora"]:
        model = base
        if part == "lora":
            model = PeftModel.from_pretrained(base, os.path.join(FIX, "tiny-llama-lora")).eval()
        for case in expected[part]:
            inp = torch.tensor([case["prompt_ids"]])
            for stops in STOP_SETS:
                for beams in [1, 5]:
                    with torch.no_grad():
                        out = model.generate(
                            input_ids=inp,
                            attention_mask=torch.ones_like(inp),
                            num_beams=beams,
                            do_sample=False,
                            max_new_tokens=MAX_NEW,
                            stop_strings=stops,
                            tokenizer=tok,
                            eos_token_id=expected["eos_token_id"],
                            pad_token_id=expected["pad_token_id"],
                        )
                    ids = out[0, inp.shape[1]:].tolist()
                    cases.append({
                        "adapter": part == "lora",
                        "prompt_ids": case["prompt_ids"],
                        "stop_strings": stops,
                        "num_beams": beams,
                        "token_ids": ids,
                    })
        if part == "lora":
            base = model.unload()
    with open(os.path.join(FIX, "tiny-llama-stop.json"), "w") as f:
        json.dump({"max_new_tokens": MAX_NEW, "cases": cases}, f, indent=1)


if __name__ == "__main__":
    main()
