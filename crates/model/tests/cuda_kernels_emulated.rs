//! The CUDA kernels of `cuda/fused.cu` run on the CPU (each block's threads as host threads,
//! `tools/cuda_emulation`) against PyTorch's autograd, in f32, bf16 and f16, with datm's launch
//! shapes and with small blocks: `tools/check_cuda_kernels_emulated.py`. This proves the
//! kernels' indexing, reductions and formulas on a machine without a GPU; the PTX itself is
//! checked on a GPU by `datm check-kernels --device cuda`.

use std::path::Path;
use std::process::Command;

#[test]
fn cuda_kernels_match_pytorch_when_emulated_on_the_cpu() {
    if !datm_testkit::program("c++", "g++") {
        return;
    }
    let Some(py) = datm_testkit::python_with("torch") else {
        return;
    };
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/check_cuda_kernels_emulated.py");
    let out = Command::new(py).arg(script).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("60 of 60 emulated kernel checks pass"),
        "{stdout}"
    );
}
