"""A LLaMA of a given shape with random weights (seed 0) and the tiny-llama fixture's character
tokenizer (vocabulary 512), saved in HF's layout: what the GPU benchmarks (tools/bench_cuda.py,
tools/bench_cuda_train.py) decode and train, since the GPU machine has no real weights.
"""

import json
import os
import shutil

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                       "model", "tiny-llama")


def build(out, layers, hidden=4096, intermediate=11008, heads=32, dtype="bf16", device="cuda"):
    """Saves the model and tokenizer to `out` and returns the model (on `device`)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=heads, vocab_size=512,
                      max_position_embeddings=4096, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(cfg).to({"bf16": torch.bfloat16, "f16": torch.float16}[dtype])
    model.save_pretrained(out)
    for f in os.listdir(FIXTURE):
        if f.startswith("tokenizer") or f.startswith("special_tokens"):
            shutil.copy(os.path.join(FIXTURE, f), out)
    # The fixture names transformers 5's `TokenizersBackend`; `PreTrainedTokenizerFast` is the
    # same class under the name transformers 4 knows too.
    config_path = os.path.join(out, "tokenizer_config.json")
    with open(config_path) as f:
        config = json.load(f)
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2)
    return model
