//! The model runtime: LLaMA-family and Gemma-3 decoders with LoRA, loaded from HF
//! safetensors directories or GGUF files, tokenizers, and decoding (greedy, sampling, beam).

pub mod weights;
