"""`--cpu-path` for the benchmarks: datm's kernel path forced (`DATM_CPU`), and with `avx2` or
`avx2vnni` PyTorch held to AVX2 as well (`ATEN_CPU_CAPABILITY`, oneDNN's and MKL's limits), so
that both sides run the instructions of a CPU without AVX-512 (PyTorch's f32 `generate` has no
use for VNNI). The scripts record the capability torch then reports."""

PATHS = ["scalar", "avx2", "avx2vnni", "avx512", "amx", "neon"]

HELD_TO_AVX2 = ("avx2", "avx2vnni")

TORCH_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
              "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def add_argument(ap):
    """Adds `--cpu-path` to the argument parser `ap`."""
    ap.add_argument("--cpu-path", default=None, choices=PATHS,
                    help="force datm's kernel path (DATM_CPU); avx2 and avx2vnni also hold PyTorch to AVX2")


def environment(path):
    """The variables `--cpu-path PATH` sets (none without one): set them before torch is
    imported or a PyTorch child starts."""
    if not path:
        return {}
    return {"DATM_CPU": path, **(TORCH_AVX2 if path in HELD_TO_AVX2 else {})}
