//! Parallel corpora for datm: prompts, corpus model, readers/writers and gettext import.
//!
//! - [`prompt`]: ALMA's prompt template, training text and output cleaning (one place).
//! - [`Pair`]: one English-centric segment pair (`en` and the other language's text).

pub mod prompt;

pub use prompt::{Example, PromptTemplate};

/// One English-centric segment pair: the English text and its translation.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Pair {
    /// The non-English side.
    pub xx: String,
    /// The English side.
    pub en: String,
}
