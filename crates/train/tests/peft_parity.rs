//! datm's loss, gradients and AdamW steps against PyTorch + PEFT on tiny LLaMA and Gemma-3
//! models (`tests/fixtures/train/{llama,gemma3}`, made by `tools/make_train_fixtures.py`),
//! on the CPU fast paths (fused ops, frozen-weight matmul): three optimizer steps over one
//! batch of four sequences in two micro-batches, with clipping and the inverse-sqrt warm-up;
//! also with activation checkpointing (`--gradient-checkpointing`).

mod support;

#[test]
fn llama_matches_peft() {
    support::parity("llama", false);
}

#[test]
fn gemma3_matches_peft() {
    support::parity("gemma3", false);
}

#[test]
fn checkpointed_llama_matches_peft() {
    support::parity("llama", true);
}

#[test]
fn checkpointed_gemma3_matches_peft() {
    support::parity("gemma3", true);
}
