"""The CUDA kernels of crates/model/cuda/fused.cu, run on the CPU, against PyTorch.

Builds tools/cuda_emulation/emulate.cpp (each CUDA block's threads as host threads, see
there) with the C++ compiler, launches every kernel in f32, bf16 and f16 with the launch
shapes datm's fused_cuda.rs uses and with small blocks (so each thread strides over several
elements), and compares each output with PyTorch's autograd on the same inputs: RMSNorm
(LLaMA's and Gemma's rounding) forward and input gradient, the gated SiLU/GELU-tanh
activations and their two gradients, RoPE both ways, softmax and its gradient, the row
cross-entropy and its gradient. Differences are relative to the reference's largest value.

    python tools/check_cuda_kernels_emulated.py [--cxx c++] [--lib OUT.so]

Prints one line per check and exits 1 if any fails. The GPU itself is checked by
`datm check-kernels --device cuda` (tools/gpu_check.sh).
"""

import argparse
import ctypes
import pathlib
import subprocess
import sys
import tempfile

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
EMULATION = ROOT / "tools" / "cuda_emulation"
DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}
# The kernels round once on the way out; PyTorch sums in another order.
TOLERANCE = {"f32": 2e-5, "bf16": 1e-2, "f16": 1.5e-3}


def build(cxx, out):
    cmd = [cxx, "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-I", str(EMULATION),
           str(EMULATION / "emulate.cpp"), "-o", str(out)]
    subprocess.run(cmd, check=True)
    lib = ctypes.CDLL(str(out))
    lib.emu_launch.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint,
                               ctypes.POINTER(ctypes.c_void_p)]
    return lib


class Kernels:
    def __init__(self, lib):
        self.lib = lib

    def launch(self, name, grid, block, *args):
        """Runs kernel `name`; tensors pass as device pointers, ctypes scalars as values."""
        held = [ctypes.c_void_p(a.data_ptr()) if isinstance(a, torch.Tensor) else a for a in args]
        ptrs = (ctypes.c_void_p * len(held))(*[ctypes.cast(ctypes.pointer(h), ctypes.c_void_p)
                                               for h in held])
        if self.lib.emu_launch(name.encode(), grid, block, ptrs) != 0:
            raise SystemExit(f"emu_launch refused {name} (grid {grid}, block {block})")


def row_block(n):
    """fused_cuda.rs's row_launch: a warp multiple of threads up to 1024."""
    return min(max((n + 31) // 32 * 32, 32), 1024)


def flat_grid(length):
    """fused_cuda.rs's flat_launch grid for 256-thread blocks."""
    return min(max((length + 255) // 256, 1), 65536)


def sample(shape, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) * 4 - 2).to(dtype)


def rel(got, want):
    return ((got.float() - want.float()).abs().max() / want.float().abs().max().clamp_min(1e-12)).item()


def i32(v):
    return ctypes.c_int(v)


def u64(v):
    return ctypes.c_uint64(v)


def f32(v):
    return ctypes.c_float(v)


def leaf(t):
    """A fresh f32 copy of `t` that collects its own gradient."""
    return t.detach().float().clone().requires_grad_()


def rounded(t, dt):
    return t.to(dt).float()


def rms_norm_checks(k, sfx, dt, block):
    rows, n, eps = 3, 1100, 1e-6
    x, w, g = sample((rows, n), 1, dt), sample((n,), 2), sample((rows, n), 3, dt)
    for cast in (1, 0):
        xf = leaf(x)
        normed = xf / torch.sqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
        wr = rounded(w, dt) if cast else w
        y = (rounded(normed, dt) * wr) if cast else normed * wr
        (normed * wr * g.float()).sum().backward()
        out, dx = torch.empty_like(x), torch.empty_like(x)
        k.launch(f"rms_norm_fwd_{sfx}", rows, block or row_block(n), x, w, out, i32(n), f32(eps), i32(cast))
        k.launch(f"rms_norm_bwd_{sfx}", rows, block or row_block(n), x, g, w, dx, i32(n), f32(eps), i32(cast))
        name = "LLaMA" if cast else "Gemma"
        yield f"rms-norm ({name})", rel(out, y.detach()), rel(dx, xf.grad)


def gated_checks(k, sfx, dt, block):
    rows, n = 4, 300
    gate, up, d = sample((rows, n), 4, dt), sample((rows, n), 5, dt), sample((rows, n), 6, dt)
    acts = {0: ("Silu", torch.nn.functional.silu),
            1: ("GeluTanh", lambda v: torch.nn.functional.gelu(v, approximate="tanh"))}
    for code, (name, act) in acts.items():
        gf, uf = leaf(gate), leaf(up)
        a = act(gf)
        y = rounded(a, dt) * uf
        (a * uf * d.float()).sum().backward()
        out, both = torch.empty_like(gate), torch.empty((rows, 2 * n), dtype=dt)
        length = rows * n
        grid = 3 if block else flat_grid(length)
        k.launch(f"gated_fwd_{sfx}", grid, block or 256, gate, up, out, u64(length), i32(code))
        k.launch(f"gated_bwd_{sfx}", grid, block or 256, gate, up, d, both, u64(length), i32(n),
                 i32(code))
        yield f"gated {name}, ∂gate", rel(out, y.detach()), rel(both[:, :n], gf.grad)
        yield f"gated {name}, ∂up", rel(out, y.detach()), rel(both[:, n:], uf.grad)


def rope_checks(k, sfx, dt, block):
    rows, heads, q, d = 2, 3, 5, 64
    x, cos, sin = sample((rows, heads, q, d), 7, dt), sample((rows, q, d // 2), 8), sample((rows, q, d // 2), 9)
    c, s = rounded(cos, dt).unsqueeze(1), rounded(sin, dt).unsqueeze(1)
    lo, hi = x.float()[..., : d // 2], x.float()[..., d // 2:]
    for sign, name in ((1.0, "rope"), (-1.0, "rope (backward)")):
        want = torch.cat([lo * c - hi * sign * s, hi * c + lo * sign * s], -1)
        out = torch.empty_like(x)
        vectors = rows * heads * q
        grid = 3 if block else flat_grid(vectors * d // 2)
        k.launch(f"rope_{sfx}", grid, block or 256, x, cos, sin, out, u64(vectors), i32(heads),
                 i32(q), i32(d), f32(sign))
        yield name, rel(out, want), 0.0


def softmax_checks(k, sfx, dt, block):
    rows, n = 3, 1300
    x, d = sample((rows, n), 10, dt), sample((rows, n), 11, dt)
    want = torch.softmax(x.float(), -1)
    y = torch.empty_like(x)
    k.launch(f"softmax_fwd_{sfx}", rows, block or row_block(n), x, y, i32(n))
    yf = y.float()
    want_dx = yf * (d.float() - (yf * d.float()).sum(-1, keepdim=True))
    dx = torch.empty_like(x)
    k.launch(f"softmax_bwd_{sfx}", rows, block or row_block(n), y, d, dx, i32(n))
    yield "softmax", rel(y, want), rel(dx, want_dx)


def cross_entropy_checks(k, sfx, dt, block):
    rows, vocab = 4, 5000
    z = sample((rows, vocab), 12, dt)
    targets = torch.tensor([(i * 797 + 13) % vocab for i in range(rows)], dtype=torch.int32)
    g = sample((rows,), 13)
    zf = leaf(z)
    loss = torch.nn.functional.cross_entropy(zf, targets.long(), reduction="none")
    (loss * g).sum().backward()
    out, dz = torch.empty(rows), torch.empty_like(z)
    k.launch(f"cross_entropy_fwd_{sfx}", rows, block or row_block(vocab), z, targets, out, i32(vocab))
    k.launch(f"cross_entropy_bwd_{sfx}", rows, block or row_block(vocab), z, targets, g, dz, i32(vocab))
    yield "cross-entropy", rel(out, loss.detach()), rel(dz, zf.grad)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cxx", default="c++")
    ap.add_argument("--lib", help="where to build the emulation library (default: a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        k = Kernels(build(args.cxx, args.lib or pathlib.Path(tmp) / "emulated_kernels.so"))
        failed = total = 0
        print(f"{'kernel':<24} {'dtype':<5} {'block':<6} {'value err':>10} {'grad err':>10}")
        for sfx, dt in DTYPES.items():
            # datm's launch shapes, then 64-thread blocks (and 3-block grids for the
            # element-wise kernels) so every thread strides.
            for block in (None, 64):
                for checks in (rms_norm_checks, gated_checks, rope_checks, softmax_checks,
                               cross_entropy_checks):
                    for name, value_err, grad_err in checks(k, sfx, dt, block):
                        ok = value_err <= TOLERANCE[sfx] and grad_err <= TOLERANCE[sfx]
                        total += 1
                        failed += not ok
                        print(f"{name:<24} {sfx:<5} {block or 'datm':<6} {value_err:>10.2e} "
                              f"{grad_err:>10.2e} {'ok' if ok else 'FAILED'}")
        print(f"{total - failed} of {total} emulated kernel checks pass")
        sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
