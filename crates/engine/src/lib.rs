//! The translation engine every command and the server call: load a base model once (device,
//! dtype), keep PEFT adapters resident by id, build ALMA prompts (truncated as in training),
//! decode batches, and clean outputs as ALMA does.
//!
//! - [`Engine::load`] with a [`LoadSpec`] ([`parse_device`], [`parse_dtype`] read the CLI forms).
//! - [`Engine::attach`] / [`Engine::detach`]: adapters by id.
//! - [`Engine::generate_texts`]: token prompts → token ids and text (`datm generate`);
//!   [`Engine::open_journal`] and [`Engine::generate_texts_journaled`] keep a long job's
//!   finished prompts on disk as they finish ([`JobJournal`]), so that a stopped job resumes.
//! - [`Engine::translate`]: sources of one direction → cleaned translations, with
//!   [`Translation`] settings; [`Engine::translation_prompt`], [`Translation::generation`] and
//!   [`Translation::clean`] are the same steps one at a time, for callers that batch requests
//!   themselves (the server).
//! - [`LineStop`]: the stop rule for translation — a row is finished once ALMA's cleaning
//!   can no longer change, which is at the end of its first non-blank line.

#![forbid(unsafe_code)]

mod engine;
mod journal;
mod load;
mod stop;
mod translation;

pub use datm_model::parse_device;
pub use engine::{Engine, TextGeneration};
pub use journal::JobJournal;
pub use load::{parse_dtype, LoadSpec};
pub use stop::LineStop;
pub use translation::Translation;
