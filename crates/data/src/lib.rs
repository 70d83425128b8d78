//! Parallel corpora for datm: prompts, the corpus model, readers/writers and gettext import.
//!
//! - [`prompt`]: ALMA's prompt template, training text and output cleaning (one place).
//! - [`corpus`]: [`Corpus`] — English-centric [`Pair`]s per language and [`Split`];
//!   `corpus.pairs(direction, split)` / `corpus.examples(direction, split)`.
//! - [`formats`]: ALMA JSON (byte-identical to Python's `json.dump`), JSONL, aligned text,
//!   TSV, and the ALMA directory layout ([`read_layout`], [`write_layout`]).
//! - [`gettext`]: `.mo`/`.po` parsing and [`gettext::import::import_gettext`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod corpus;
pub mod error;
pub mod formats;
pub mod gettext;
pub mod prompt;

pub use corpus::{Corpus, DirectionStats, Pair, Split};
pub use error::{DataError, Location, Result};
pub use formats::{read_flores, read_layout, read_set, write_layout, write_set, Format};
pub use prompt::{Example, PromptTemplate};
