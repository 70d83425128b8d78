//! The composite, device-generic training path (what a GPU runs: candle's differentiable
//! ops instead of the fused CPU ones, the plain matmul instead of the frozen-weight one)
//! against PyTorch + PEFT on the same fixtures and tolerances as `peft_parity.rs`, on the
//! CPU, without and with activation checkpointing. Its own test binary with one test: the
//! switch is process-wide.

mod support;

#[test]
fn composite_path_matches_peft() {
    datm_model::fused::set_cpu_fast_paths(false);
    for checkpointing in [false, true] {
        support::parity("llama", checkpointing);
        support::parity("gemma3", checkpointing);
    }
    datm_model::fused::set_cpu_fast_paths(true);
}
