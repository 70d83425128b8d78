#!/usr/bin/env python3
"""GPU speed check: 5-beam decoding with a LLaMA of the paper's body shape (LLaMA-2-7B:
hidden 4096, 32 layers, 32 heads, MLP 11008) and random bf16 weights, `datm generate --device
cuda --dtype bf16` against HF transformers `generate` on the same GPU in the same run.

Real weights are not available on the GPU machine, so the model is built there with random
weights (seed 0) and the tiny-llama fixture's tokenizer (vocabulary 512, so the LM head is
small and the time is the body's). Token agreement is printed for information only: with
random weights and bf16 arithmetic, beams are near-ties everywhere.

    python3 tools/bench_cuda.py --datm target/release/datm [--layers 32] [--new 64]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import random_llama

SENTENCES = ["Das Haus ist wunderbar.", "Die Datei konnte nicht geöffnet werden.", "Ich habe keine Zeit.",
             "Der Zug kommt morgen an.", "Bitte schließen Sie das Fenster.", "Wo ist der Bahnhof?",
             "Das Wetter ist heute schön.", "Wir sehen uns nächste Woche."]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datm", default="target/release/datm")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--new", type=int, default=64)
    args = ap.parse_args()
    import torch
    from transformers import AutoTokenizer

    prompts = [f"Translate this from German to English:\nGerman: {s}\nEnglish:" for s in SENTENCES]
    d = tempfile.mkdtemp(prefix="llama7b-")
    t0 = time.time()
    model = random_llama.build(d, args.layers).eval()
    print(f"built and saved the random model in {time.time() - t0:.1f} s")
    tok = AutoTokenizer.from_pretrained(d)
    tok.padding_side = "left"
    batch = tok(prompts, return_tensors="pt", padding=True).to("cuda")
    gen = dict(do_sample=False, num_beams=5, max_new_tokens=args.new, pad_token_id=2)
    with torch.no_grad():
        model.generate(**batch, **dict(gen, max_new_tokens=2))  # warm-up
        torch.cuda.synchronize()
        t0 = time.time()
        seq = model.generate(**batch, **gen)
        torch.cuda.synchronize()
        hf_s = time.time() - t0
    width = batch.input_ids.shape[1]
    hf_out = []
    for row in seq[:, width:].tolist():
        out = []
        for t in row:
            out.append(t)
            if t == 2:
                break
        hf_out.append(out)
    hf_peak = torch.cuda.max_memory_allocated() / 2**30
    del model
    torch.cuda.empty_cache()

    inp = os.path.join(d, "prompts.jsonl")
    with open(inp, "w") as fh:
        for p in prompts:
            fh.write(json.dumps({"prompt": p}) + "\n")
    out = os.path.join(d, "out.jsonl")
    r = subprocess.run([args.datm, "generate", "--model", d, "--input", inp, "-o", out, "--device", "cuda",
                        "--dtype", "bf16", "--num-beams", "5", "--max-new-tokens", str(args.new),
                        "--batch-size", "8"], capture_output=True, text=True)
    print(r.stderr[-2000:])
    m = re.search(r"model loaded in ([0-9.]+) s;.* generated in ([0-9.]+) s", r.stderr)
    if r.returncode != 0 or not m:
        print("datm failed")
        return 1
    with open(out) as fh:
        datm_out = [json.loads(line)["token_ids"] for line in fh]
    datm_s = float(m.group(2))
    n_hf, n_datm = sum(map(len, hf_out)), sum(map(len, datm_out))
    same = sum(a == b for a, b in zip(hf_out, datm_out))
    print(json.dumps({"layers": args.layers, "new_tokens": args.new, "hf_s": hf_s, "hf_tokens": n_hf,
                      "hf_peak_gib": hf_peak, "datm_load_s": float(m.group(1)), "datm_s": datm_s,
                      "datm_tokens": n_datm, "speedup_tok_per_s": (n_datm / datm_s) / (n_hf / hf_s),
                      "same_outputs": same}))
    shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
