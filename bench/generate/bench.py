#!/usr/bin/env python3
"""Benchmark: 5-beam ALMA translation with Gemma-3-270M (GGUF), `datm generate` vs HF transformers.

Both decode the same real prompts (German gettext messages from this machine's catalogs, ALMA
de→en prompts) in the same run, on the same cores:

* HF transformers: `AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)` (dequantized to f32),
  `generate(num_beams=5, do_sample=False)`, prompts in batches of `--batch-size`, left-padded.
* datm: the release binary, default weights (GGUF weights packed as bf16 for AMX tiles on the
  `amx` path and for `vdpbf16ps` on AMD's AVX512-BF16, elsewhere as `--dtype f32` packs them) and `--dtype f32` (exact: f32 panels, or a
  GGUF file's int8 blocks widened to f32 exactly); each run before and after HF, averaged.

The headline speed-up is HF's `generate` alone (tokenizing + decoding, model loading excluded)
against datm's whole process (start, model loading, decoding, exit): what a user waits for.
Also reported: datm's in-process generation time, new tokens per second, peak RSS, the matmul work
done per second (model FLOPs: 5 beams × new tokens × 2 · parameters, LM head included) and
what fraction that is of the machine's throughput: of torch's f32 GEMM rate on 2048² matrices
and of this CPU's arithmetic peak (`cpu_peak` example: AVX-512 f32 FMA, bf16 dot products for
datm's default weights), all measured in the same run; and how many outputs equal HF's token
for token.

`--cpu-path avx2|avx2vnni|avx512|scalar|neon` forces datm's kernel path (`DATM_CPU`); with
`avx2` or `avx2vnni`, PyTorch is held to AVX2 as well (`ATEN_CPU_CAPABILITY=avx2`,
`ONEDNN_MAX_CPU_ISA=AVX2`, `MKL_ENABLE_INSTRUCTIONS=AVX2`), and the capability torch reports is
recorded. The CPU model
and its SIMD flags are recorded with every run.

    $(bench/generate/venv.sh) bench/generate/bench.py [--datm target/release/datm] [--n 12]
        [--max-new-tokens 64] [--batch-size 8] [--threads 2] [--cpu-path PATH]
        [--cpu-peak target/release/examples/cpu_peak]
"""

import argparse
import gettext
import glob
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import cpu_paths  # noqa: E402

ALMA = "Translate this from German to English:\nGerman: {}\nEnglish:"
DATM_RUNS = [("datm_default", None), ("datm_f32", "f32")]


def catalog_messages():
    """(German, English) messages of the de catalogs, catalog after catalog in sorted order,
    each catalog's messages sorted."""
    for path in sorted(glob.glob("/usr/share/locale/de/LC_MESSAGES/*.mo")):
        try:
            with open(path, "rb") as fh:
                cat = gettext.GNUTranslations(fh)._catalog
        except Exception:
            continue
        for k, v in sorted((k, v) for k, v in cat.items() if isinstance(k, str) and isinstance(v, str)):
            if k and v:
                yield v, k


def short_line(de):
    """Whether a German message is one line of 5–25 words without a format directive."""
    return "\n" not in de and "%" not in de and 5 <= len(de.split()) <= 25


def german_sentences(n):
    """The first `n` German messages (5–25 words, one line) of the sorted de catalogs."""
    out = []
    for v, _ in catalog_messages():
        if short_line(v) and v not in out:
            out.append(v.strip())
        if len(out) == n:
            return out
    return out


def cpu_info():
    """The CPU model name and its SIMD flags, from /proc/cpuinfo."""
    model, flags = "unknown", set()
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            key, _, val = line.partition(":")
            if key.strip() == "model name":
                model = val.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(val.split())
    simd = sorted(f for f in flags if re.match(r"(avx|fma|sse4|asimd|sve|amx|neon)", f))
    return {"model": model, "simd_flags": simd}


def hf_run(model_path, prompts, args):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    d, f = os.path.split(model_path)
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()
    load = time.time() - t0
    eos = model.generation_config.eos_token_id
    eos = eos if isinstance(eos, list) else [eos]
    outs = []
    t0 = time.time()
    for i in range(0, len(prompts), args.batch_size):
        batch = tok(prompts[i : i + args.batch_size], return_tensors="pt", padding=True)
        with torch.no_grad():
            seq = model.generate(**batch, do_sample=False, num_beams=5, max_new_tokens=args.max_new_tokens,
                                 pad_token_id=tok.pad_token_id)
        width = batch.input_ids.shape[1]
        for row in seq[:, width:].tolist():
            new = []
            for t in row:
                new.append(t)
                if t in eos:
                    break
            outs.append(new)
    gen = time.time() - t0
    # f32 GEMM throughput of this machine under torch (MKL/oneDNN), for the utilisation figure.
    a = torch.randn(2048, 2048)
    torch.mm(a, a)
    t1 = time.time()
    for _ in range(5):
        torch.mm(a, a)
    gemm = 5 * 2 * 2048**3 / (time.time() - t1)
    flops_per_token = 2 * sum(p.numel() for n, p in model.named_parameters() if "embed" not in n)
    flops_per_token += 2 * model.config.vocab_size * model.config.hidden_size  # LM head
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(load_s=load, gen_s=gen, outputs=outs, peak_mb=peak, gemm_gflops=gemm / 1e9,
                flops_per_token=flops_per_token, torch_cpu_capability=torch.backends.cpu.get_cpu_capability(),
                torch_version=torch.__version__)


def datm_run(binary, model_path, prompts, args, dtype):
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "p.jsonl")
        out = os.path.join(tmp, "o.jsonl")
        with open(inp, "w") as fh:
            for p in prompts:
                fh.write(json.dumps({"prompt": p}, ensure_ascii=False) + "\n")
        cmd = ["/usr/bin/time", "-f", "%M", binary, "generate", "--model", model_path, "--input", inp, "-o", out,
               "--num-beams", "5", "--max-new-tokens", str(args.max_new_tokens), "--batch-size", str(args.batch_size)]
        if dtype:
            cmd += ["--dtype", dtype]
        env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
        t0 = time.time()
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.time() - t0
        if r.returncode != 0:
            sys.exit(f"datm failed: {r.stderr}")
        peak = int(r.stderr.strip().splitlines()[-1]) / 1024
        with open(out) as fh:
            outs = [json.loads(l)["token_ids"] for l in fh]
    # datm times itself like HF's loop above: loading apart, tokenizing + decoding together.
    m = re.search(r"model loaded in ([0-9.]+) s;.* generated in ([0-9.]+) s", r.stderr)
    if not m:
        sys.exit(f"datm printed no timing line: {r.stderr}")
    return dict(wall_s=wall, load_s=float(m.group(1)), gen_s=float(m.group(2)), outputs=outs, peak_mb=peak)


def cpu_peak(args):
    """This CPU's measured f32/bf16/int8 peak on `--threads` threads for the kernel path datm runs
    (`--cpu-path`, else the fastest this CPU has), or {} without the binary."""
    if not os.path.exists(args.cpu_peak):
        print(f"note: {args.cpu_peak} not built; no CPU-peak figures")
        return {}
    out = subprocess.run([args.cpu_peak, str(args.threads)], capture_output=True, text=True, check=True)
    paths = json.loads(out.stdout)["paths"]
    path = args.cpu_path or next((p for p in ("amx", "avx512", "avx2vnni", "avx2", "neon", "scalar") if p in paths), None)
    return dict(paths.get(path) or {}, path=path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datm", default="target/release/datm")
    ap.add_argument("--model", default=os.environ.get("DATM_GEMMA_GGUF"),
                    help='default $DATM_GEMMA_GGUF (eval "$(scripts/fetch-models.sh gemma)")')
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cpu-peak", default="target/release/examples/cpu_peak",
                    help="the cpu_peak example binary (`cargo build --release -p datm-model --examples`)")
    cpu_paths.add_argument(ap)
    ap.add_argument("--json", default=None, help="write the numbers here")
    args = ap.parse_args()
    os.environ.update(cpu_paths.environment(args.cpu_path))  # before hf_run imports torch
    if not args.model or not os.path.exists(args.model):
        ap.error(f"no model at {args.model!r}: pass --model or set DATM_GEMMA_GGUF")
    prompts = [ALMA.format(s) for s in german_sentences(args.n)]
    res = {"prompts": len(prompts), "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size,
           "cpu": cpu_info(), "cpu_path": args.cpu_path or "native"}
    # The machine may be shared: datm runs before and after HF and the two are averaged.
    before = {n: datm_run(args.datm, args.model, prompts, args, d) for n, d in DATM_RUNS}
    res["hf"] = hf_run(args.model, prompts, args)
    for name, dtype in DATM_RUNS:
        after = datm_run(args.datm, args.model, prompts, args, dtype)
        r = before[name]
        for key in ["wall_s", "load_s", "gen_s"]:
            r[key + "_runs"] = [r[key], after[key]]
            r[key] = (r[key] + after[key]) / 2
        r["peak_mb"] = max(r["peak_mb"], after["peak_mb"])
        res[name] = r
    hf = res["hf"]
    peak = cpu_peak(args)
    res["cpu_peak"] = peak
    print(f"CPU {res['cpu']['model']} [{' '.join(res['cpu']['simd_flags'])}]; datm path {res['cpu_path']}, "
          f"torch {hf['torch_version']} capability {hf['torch_cpu_capability']}")
    print(f"prompts {len(prompts)}, 5 beams, max_new_tokens {args.max_new_tokens}, batch {args.batch_size}, "
          f"threads {args.threads}; torch f32 GEMM {hf['gemm_gflops']:.0f} GFLOP/s; CPU peak f32 "
          f"{peak.get('f32_gflops') or 0:.0f}, bf16 {peak.get('bf16_gflops') or 0:.0f} GFLOP/s, "
          f"int8 {peak.get('int8_gops') or 0:.0f} GOP/s")
    for name in ["hf", "datm_default", "datm_f32"]:
        r = res[name]
        toks = sum(len(o) for o in r["outputs"])
        same = sum(a == b for a, b in zip(r["outputs"], hf["outputs"]))
        gflops = toks * 5 * hf["flops_per_token"] / r["gen_s"] / 1e9
        # datm's default packs int8 blocks for int8 products where the path says so (AMD's
        # AVX512-VNNI and AVX2: the int8 peak, `vpdpbusd` or `vpmaddubsw`), else bf16 where it
        # says so (AMX; on AMD CPUs without AVX512-VNNI, AVX512-BF16 at the bf16 dot
        # product's peak); elsewhere it is the f32 packing.
        default = name == "datm_default"
        int8_default = default and peak.get("default_int8")
        bf16_default = default and peak.get("default_bf16", peak.get("path") == "amx")
        cpu = ((int8_default and peak.get("int8_gops"))
               or (bf16_default and peak.get("bf16_gflops")) or peak.get("f32_gflops"))
        speed = hf["gen_s"] / r["gen_s"]
        whole = hf["gen_s"] / r.get("wall_s", r["gen_s"])
        r.update(speedup_in_process=speed, speedup_whole_process=whole, gflops=gflops, pct_torch_gemm=100 * gflops / hf["gemm_gflops"],
                 pct_cpu_peak=100 * gflops / cpu if cpu else None)
        wall = f"whole process {r['wall_s']:6.2f}s x{whole:4.2f}" if "wall_s" in r else ""
        print(f"{name:13s} load {r['load_s']:6.1f}s  generate {r['gen_s']:7.2f}s  {toks / r['gen_s']:6.1f} tok/s  "
              f"x{speed:4.2f} vs HF  {wall}  peak {r['peak_mb']:6.0f} MB  {gflops:5.0f} GFLOP/s = "
              f"{r['pct_torch_gemm']:5.1f}% of torch GEMM, "
              f"{r['pct_cpu_peak'] or 0:4.1f}% of CPU peak  same tokens as HF {same}/{len(prompts)}")
    if args.json:
        for r in res.values():
            if isinstance(r, dict):
                r.pop("outputs", None)
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
