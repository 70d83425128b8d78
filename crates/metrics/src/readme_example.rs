//! sacrebleu README's example system with its two reference streams: the unit tests of
//! BLEU and chrF score it against the values sacrebleu prints.

/// The hypotheses.
pub const HYPS: [&str; 3] = [
    "The dog bit the man.",
    "It wasn't surprising.",
    "The man had just bitten him.",
];

/// The first reference stream.
pub const R1: [&str; 3] = [
    "The dog bit the man.",
    "It was not unexpected.",
    "The man bit him first.",
];

/// The second reference stream.
pub const R2: [&str; 3] = [
    "The dog had bit the man.",
    "No one was surprised.",
    "The man had bitten the dog.",
];

/// Both reference streams, per segment.
pub fn two_refs() -> Vec<Vec<&'static str>> {
    (0..3).map(|i| vec![R1[i], R2[i]]).collect()
}
