//! datm's loss, gradients and AdamW steps against PyTorch + PEFT on tiny LLaMA and Gemma-3
//! models (`tests/fixtures/train/{llama,gemma3}`, made by `tools/make_train_fixtures.py`),
//! on the CPU fast paths (fused ops, frozen-weight matmul): three optimizer steps over one
//! batch of four sequences in two micro-batches, with clipping and the inverse-sqrt warm-up.

mod support;

#[test]
fn llama_matches_peft() {
    support::parity("llama");
}

#[test]
fn gemma3_matches_peft() {
    support::parity("gemma3");
}
