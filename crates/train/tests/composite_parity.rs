//! The composite, device-generic training path (what a GPU runs: candle's differentiable
//! ops instead of the fused CPU ones, the plain matmul instead of the frozen-weight one)
//! against PyTorch + PEFT on the same fixtures and tolerances as `peft_parity.rs`, on the
//! CPU. Its own test binary with one test: the switch is process-wide.

mod support;

#[test]
fn composite_path_matches_peft() {
    datm_model::fused::set_cpu_fast_paths(false);
    support::parity("llama");
    support::parity("gemma3");
    datm_model::fused::set_cpu_fast_paths(true);
}
