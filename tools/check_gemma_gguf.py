#!/usr/bin/env python3
"""Real-model check: `datm generate --dtype f32` vs HF transformers on the Gemma-3-270M GGUF.

Where the model is present, decodes ALMA translation prompts with HF transformers (GGUF
dequantized to f32, `generate(do_sample=False)`) and with the datm binary, and compares prompt
ids and new token ids one prompt at a time. Exit status 0 when all agree, 1 otherwise, 77 when the
model is absent (skip).

    $DATM_PYTHON tools/check_gemma_gguf.py [--datm target/debug/datm] [--num-beams 1]
        [--max-new-tokens 20] [--model MODEL.gguf]

HF needs ~70 s to load the GGUF on 2 cores. The model defaults to `DATM_GEMMA_GGUF`
(`eval "$(scripts/fetch-models.sh gemma)"` fetches it into datm's cache and sets it).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ALMA = "Translate this from {src} to {tgt}:\n{src}: {text}\n{tgt}:"
PROMPTS = [
    ALMA.format(src="German", tgt="English", text="Das Haus ist wunderbar."),
    ALMA.format(src="German", tgt="English", text="Die Datei konnte nicht geöffnet werden."),
    ALMA.format(src="Russian", tgt="English", text="Не удалось открыть файл."),
    ALMA.format(src="French", tgt="English", text="Impossible d'ouvrir le fichier : permission refusée."),
    ALMA.format(src="Chinese", tgt="English", text="无法打开文件。"),
    ALMA.format(src="English", tgt="German", text="The house is wonderful."),
]


def hf_outputs(model_path, prompts, num_beams, max_new_tokens):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(os.cpu_count() or 2)
    d, f = os.path.split(model_path)
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()
    print(f"HF: loaded in {time.time() - t0:.0f} s", file=sys.stderr)
    out = []
    t0 = time.time()
    for p in prompts:
        ids = tok(p, return_tensors="pt").input_ids
        with torch.no_grad():
            seq = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 num_beams=num_beams, max_new_tokens=max_new_tokens,
                                 eos_token_id=model.generation_config.eos_token_id,
                                 pad_token_id=tok.pad_token_id)
        new = seq[0, ids.shape[1]:].tolist()
        out.append({"prompt_ids": ids[0].tolist(), "token_ids": new, "text": tok.decode(new, skip_special_tokens=True)})
    print(f"HF: generated in {time.time() - t0:.1f} s", file=sys.stderr)
    return out


def datm_outputs(datm, model_path, prompts, num_beams, max_new_tokens):
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "in.jsonl")
        outp = os.path.join(tmp, "out.jsonl")
        with open(inp, "w") as fh:
            for p in prompts:
                fh.write(json.dumps({"prompt": p}, ensure_ascii=False) + "\n")
        cmd = [datm, "generate", "--model", model_path, "--dtype", "f32", "--input", inp, "--output", outp,
               "--num-beams", str(num_beams), "--max-new-tokens", str(max_new_tokens), "--batch-size", "1"]
        t0 = time.time()
        subprocess.run(cmd, check=True)
        print(f"datm: load + generate in {time.time() - t0:.1f} s", file=sys.stderr)
        with open(outp) as fh:
            return [json.loads(line) for line in fh if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--model", default=os.environ.get("DATM_GEMMA_GGUF"))
    ap.add_argument("--datm", default=os.path.join(root, "target", "debug", "datm"))
    ap.add_argument("--num-beams", type=int, default=1)
    ap.add_argument("--max-new-tokens", type=int, default=20)
    args = ap.parse_args()
    if not args.model or not os.path.exists(args.model):
        ap.error(f"no model at {args.model!r}: pass --model or set DATM_GEMMA_GGUF "
                 '(eval "$(scripts/fetch-models.sh gemma)")')
    ours = datm_outputs(args.datm, args.model, PROMPTS, args.num_beams, args.max_new_tokens)
    ref = hf_outputs(args.model, PROMPTS, args.num_beams, args.max_new_tokens)
    failures = 0
    for p, a, b in zip(PROMPTS, ours, ref):
        same_prompt = a["prompt_ids"] == b["prompt_ids"]
        same_new = a["token_ids"] == b["token_ids"]
        status = "OK  " if same_prompt and same_new else "DIFF"
        failures += status == "DIFF"
        print(f"{status} {p.splitlines()[1]!r} -> HF {b['text']!r}")
        if not same_prompt:
            print(f"     prompt ids differ: datm {a['prompt_ids']} HF {b['prompt_ids']}")
        if not same_new:
            print(f"     datm {a['token_ids']} {a['text']!r}\n     HF   {b['token_ids']}")
    print(f"{len(PROMPTS) - failures}/{len(PROMPTS)} prompts identical (num_beams={args.num_beams}, "
          f"max_new_tokens={args.max_new_tokens})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
