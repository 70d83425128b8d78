//! The parts of SentencePiece's `ModelProto` (`sentencepiece_model.proto`, proto2) that
//! segmentation reads, as hand-written `prost` messages. Fields this module does not
//! declare (training parameters, self-test data, the denormalizer) are skipped when
//! decoding and dropped when encoding.
//!
//! Optional fields are `Option`s; the accessor methods `prost` derives (`score()`,
//! `add_dummy_prefix()`, …) apply the `.proto` defaults.

/// A whole `.model` file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// The vocabulary, in id order.
    #[prost(message, repeated, tag = "1")]
    pub pieces: Vec<SentencePiece>,
    /// Training parameters (the model type and a few encoding switches live here).
    #[prost(message, optional, tag = "2")]
    pub trainer_spec: Option<TrainerSpec>,
    /// How input text is normalized before segmentation.
    #[prost(message, optional, tag = "3")]
    pub normalizer_spec: Option<NormalizerSpec>,
}

/// One vocabulary entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SentencePiece {
    /// The piece's text (`▁` stands for a space).
    #[prost(string, optional, tag = "1")]
    pub piece: Option<String>,
    /// Its score: a log probability (unigram) or the merge priority (BPE).
    #[prost(float, optional, tag = "2")]
    pub score: Option<f32>,
    /// Its [`PieceType`] as the raw enum number (default `NORMAL` = 1).
    #[prost(int32, optional, tag = "3", default = "1")]
    pub r#type: Option<i32>,
}

/// `ModelProto.SentencePiece.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceType {
    /// An ordinary piece.
    Normal = 1,
    /// The unknown piece (`<unk>`); exactly one per model.
    Unknown = 2,
    /// A control symbol such as `<s>`; never produced by segmentation.
    Control = 3,
    /// A user-defined symbol, always kept whole.
    UserDefined = 4,
    /// A piece the segmenter must not emit.
    Unused = 5,
    /// A byte piece `<0xXX>` for byte fallback.
    Byte = 6,
}

impl SentencePiece {
    /// The piece's type, or `None` for a number the format does not define.
    pub fn piece_type(&self) -> Option<PieceType> {
        Some(match self.r#type() {
            1 => PieceType::Normal,
            2 => PieceType::Unknown,
            3 => PieceType::Control,
            4 => PieceType::UserDefined,
            5 => PieceType::Unused,
            6 => PieceType::Byte,
            _ => return None,
        })
    }
}

/// The subset of `TrainerSpec` that affects segmentation.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TrainerSpec {
    /// `UNIGRAM` = 1 (the default), `BPE` = 2, `WORD` = 3, `CHAR` = 4.
    #[prost(int32, optional, tag = "3", default = "1")]
    pub model_type: Option<i32>,
    /// Puts the space marker at the end of words instead of the start (default false).
    #[prost(bool, optional, tag = "24")]
    pub treat_whitespace_as_suffix: Option<bool>,
    /// Spells unknown characters as `<0xXX>` byte pieces (default false).
    #[prost(bool, optional, tag = "35")]
    pub byte_fallback: Option<bool>,
}

/// `NormalizerSpec`: the normalization rules and whitespace handling.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NormalizerSpec {
    /// Name of the rule set (`nmt_nfkc`, `identity`, …); informative only.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// The compiled rules: a darts-clone double array and the replacement strings.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub precompiled_charsmap: Option<Vec<u8>>,
    /// Prepends a space to the input (default true).
    #[prost(bool, optional, tag = "3", default = "true")]
    pub add_dummy_prefix: Option<bool>,
    /// Drops leading and trailing spaces and collapses runs of spaces (default true).
    #[prost(bool, optional, tag = "4", default = "true")]
    pub remove_extra_whitespaces: Option<bool>,
    /// Writes spaces as `▁` (U+2581) (default true).
    #[prost(bool, optional, tag = "5", default = "true")]
    pub escape_whitespaces: Option<bool>,
}
