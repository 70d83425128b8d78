#!/usr/bin/env python3
"""Load test of `datm serve` (written for the lead to run alone; loopback only, bounded).

Starts `datm serve --model M --pool P --port 0`, then sends real gettext sentences of this
machine's catalogs (`/usr/share/locale/<lang>/LC_MESSAGES/*.mo`: msgstr for XX→En, msgid
for En→XX) from `--clients` concurrent clients (stdlib threads, LibreTranslate `POST
/translate`, one sentence per request) in three phases:

  mixed   every direction the pool serves directly, shuffled (several adapters per batch)
  single  the same number of requests, all on the first XX→En direction (one adapter)
  seq     `datm translate --pool` called once per sentence, one after the other, on the
          first `--seq-n` sentences of the mixed phase (the CLI today: model load per call)

and an A/B of the cost of mixing adapters, on identical work: the ALMA prompts of the mixed
phase's sentences as OpenAI completions (`--ab-tokens` new tokens, no stop, so nearly every
row generates exactly that many), first spread over 4 adapters (prompt i on adapter i mod 4),
then all on the first of them:

  adapters4, adapters1

For each phase: requests, failures, sentences/s, generated tokens/s (from /metrics),
latency p50/p99; for the server: peak RSS and RSS at each quarter of the run (flat = no
growth under load). Goals (issue 14): mixed ≥ 3× seq sentences/s; adapters1/adapters4
tokens/s ratio ≤ 1.15; 0 failures; RSS flat.

    python3 bench/serve/load_test.py --datm target/release/datm \
        --model gemma-3-270m-q4_k_m.gguf --pool runs/quickstart/pool/dat.toml [--clients 64] \
        [--requests 512] [--seq-n 32] [--max-seconds 900] [--max-new-tokens N] \
        [--out bench/serve/results.json]
"""

import argparse
import gettext
import glob
import json
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def catalog_pairs(lang, n):
    """Up to `n` (english, translation) one-line message pairs (3–25 words) of `lang`."""
    out = []
    for path in sorted(glob.glob(f"/usr/share/locale/{lang}/LC_MESSAGES/*.mo")):
        try:
            with open(path, "rb") as fh:
                cat = gettext.GNUTranslations(fh)._catalog
        except Exception:
            continue
        for k, v in sorted((k, v) for k, v in cat.items() if isinstance(k, str) and isinstance(v, str)):
            if k and v and "\n" not in k + v and "%" not in k + v and 3 <= len(k.split()) <= 25:
                out.append((k.strip(), v.strip()))
            if len(out) >= n:
                return out
    return out


def new_tokens(args):
    """`--max-new-tokens N` for the server and the CLI alike, when the run caps it."""
    return ["--max-new-tokens", str(args.max_new_tokens)] if args.max_new_tokens else []


def start_server(args):
    cmd = [args.datm, "serve", "--model", args.model, "--pool", args.pool, "--port", "0",
           "--max-queue", str(4 * args.clients), "--timeout-s", str(args.timeout_s)] + new_tokens(args)
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        sys.stderr.write(line)
        m = re.match(r"datm: serving on (\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, m.group(1)
    sys.exit("datm serve exited before listening")


class RssSampler(threading.Thread):
    """Samples the server's VmRSS (kB) every 0.25 s."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    kb = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
                self.samples.append(kb)
            except (OSError, StopIteration):
                return
            time.sleep(0.25)


def get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read().decode()


def generated_tokens(url):
    m = re.search(r"^datm_generated_tokens_total (\S+)$", get(url + "/metrics"), re.M)
    return float(m.group(1)) if m else 0.0


def post_timed(url, path, payload):
    """POSTs `payload` as JSON to `url + path`: (HTTP status, or -1 without a response; seconds)."""
    req = urllib.request.Request(url + path, json.dumps(payload).encode(),
                                 {"Content-Type": "application/json"})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            status = r.status
            r.read()
    except urllib.error.HTTPError as e:
        status = e.code
    except OSError:
        status = -1
    return status, time.perf_counter() - t


def translate(url, src, tgt, text):
    return post_timed(url, "/translate", {"q": text, "source": src, "target": tgt, "format": "text"})


def complete(url, model, prompt, max_tokens):
    return post_timed(url, "/v1/completions", {"model": model, "prompt": prompt, "max_tokens": max_tokens})


def alma_prompt(names, src, tgt, text):
    """ALMA's prompt (the server's translation prompt, without its truncation)."""
    s, t = names[src], names[tgt]
    return f"Translate this from {s} to {t}:\n{s}: {text}\n{t}:"


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None


def run_phase(url, name, work, clients, deadline, send=translate):
    tokens_before = generated_tokens(url)
    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(
            lambda w: send(url, *w) if time.time() < deadline else (0, 0.0), work))
    secs = time.perf_counter() - t
    done = [r for r in results if r[0] != 0]
    lat = [r[1] for r in done if r[0] == 200]
    tokens = generated_tokens(url) - tokens_before
    return {
        "phase": name, "requests": len(done), "failed": sum(r[0] != 200 for r in done),
        "seconds": round(secs, 2), "sentences_per_s": round(len(lat) / secs, 3),
        "tokens_per_s": round(tokens / secs, 1),
        "p50_s": percentile(lat, 0.5), "p99_s": percentile(lat, 0.99),
    }


def sequential(args, work):
    t = time.perf_counter()
    failed = 0
    with tempfile.TemporaryDirectory() as d:
        for i, (src, tgt, text) in enumerate(work):
            path = f"{d}/{i}.txt"
            with open(path, "w") as f:
                f.write(text + "\n")
            r = subprocess.run([args.datm, "translate", "--model", args.model, "--pool", args.pool,
                                "--src", src, "--tgt", tgt, "-i", path] + new_tokens(args),
                               capture_output=True)
            failed += r.returncode != 0
    secs = time.perf_counter() - t
    return {"phase": "seq", "requests": len(work), "failed": failed, "seconds": round(secs, 2),
            "sentences_per_s": round((len(work) - failed) / secs, 3)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datm", default="target/release/datm")
    ap.add_argument("--model", required=True)
    ap.add_argument("--pool", required=True)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--requests", type=int, default=512)
    ap.add_argument("--seq-n", type=int, default=32)
    ap.add_argument("--ab-tokens", type=int, default=32)
    # A sentence whose beams never emit a newline or EOS decodes all 512 new tokens: with
    # the study's small pool that takes about 110 s alone on a 2-core CPU (`datm translate`),
    # longer beside other rows, so the server's default 120 s would fail it.
    ap.add_argument("--timeout-s", type=float, default=900)
    ap.add_argument("--max-seconds", type=float, default=900)
    # Both sides' cap on new tokens (default: theirs, the paper's 512). A slow CPU may cap
    # it, so that rows whose beams never stop do not decide the run's length.
    ap.add_argument("--max-new-tokens", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    args = ap.parse_args()
    deadline = time.time() + args.max_seconds
    proc, url = start_server(args)
    rss = RssSampler(proc.pid)
    rss.start()
    try:
        langs = json.loads(get(url + "/languages"))
        directions = [(l["code"], t) for l in langs for t in l["targets"] if "en" in (l["code"], t)]
        rng = random.Random(args.seed)
        pairs = {}
        for src, tgt in directions:
            xx = tgt if src == "en" else src
            pairs.setdefault(xx, catalog_pairs(xx, args.requests))
        def sentence(src, tgt):
            en, xx = rng.choice(pairs[tgt if src == "en" else src])
            return (src, tgt, en if src == "en" else xx)
        usable = [d for d in directions if pairs[d[1] if d[0] == "en" else d[0]]]
        mixed = [sentence(*rng.choice(usable)) for _ in range(args.requests)]
        first = next(d for d in usable if d[1] == "en")
        single = [sentence(*first) for _ in range(args.requests)]
        translate(url, *mixed[0])  # warm-up
        phases = [run_phase(url, "mixed", mixed, args.clients, deadline),
                  run_phase(url, "single", single, args.clients, deadline)]
        phases.append(sequential(args, mixed[:args.seq_n]))
        names = {l["code"]: l["name"] for l in langs}
        adapters = [m["id"] for m in json.loads(get(url + "/v1/models"))["data"]
                    if m["id"] != "base"][:4]
        prompts = [alma_prompt(names, *w) for w in mixed]
        four = [(adapters[i % len(adapters)], p, args.ab_tokens) for i, p in enumerate(prompts)]
        one = [(adapters[0], p, args.ab_tokens) for p in prompts]
        phases.append(run_phase(url, "adapters4", four, args.clients, deadline, complete))
        phases.append(run_phase(url, "adapters1", one, args.clients, deadline, complete))
    finally:
        proc.terminate()
        proc.wait(timeout=600)
        rss.stop.set()
    s = rss.samples
    quarters = [s[min(len(s) - 1, i * len(s) // 4)] for i in range(4)] + [s[-1]] if s else []
    result = {
        "model": args.model, "pool": args.pool, "clients": args.clients,
        "max_new_tokens": args.max_new_tokens,
        "directions": [f"{a}-{b}" for a, b in usable], "phases": phases,
        "peak_rss_mib": round(max(s) / 1024, 1) if s else None,
        "rss_quarters_mib": [round(q / 1024, 1) for q in quarters],
        "mixed_vs_seq": round(phases[0]["sentences_per_s"] / max(phases[2]["sentences_per_s"], 1e-9), 2),
        "single_vs_mixed_tokens": round(phases[1]["tokens_per_s"] / max(phases[0]["tokens_per_s"], 1e-9), 3),
        "ab_adapters": adapters,
        "adapters1_vs_adapters4_tokens": round(
            phases[4]["tokens_per_s"] / max(phases[3]["tokens_per_s"], 1e-9), 3),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
