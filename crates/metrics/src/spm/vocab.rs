//! The vocabulary of a model, checked and indexed as SentencePiece 0.2.3's
//! `ModelInterface::InitializePieces` does.

use std::collections::HashMap;

use anyhow::{bail, Result};

use super::normalizer::first_char_len;
use super::proto::{PieceType, SentencePiece};
use super::trie::Trie;

/// A piece id as the reference uses it: `-1` stands for an unknown character in a
/// byte-fallback model that has no `<unk>` piece.
pub(crate) type Id = i32;

/// Longest piece the reference accepts, in bytes (exclusive).
const MAX_PIECE_BYTES: usize = 8000;

/// What segmentation needs to know about one piece.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    /// The piece's score.
    pub(crate) score: f32,
    /// The piece's type.
    pub(crate) kind: PieceType,
}

/// Pieces by id and by text.
#[derive(Debug, Clone)]
pub(crate) struct Vocab {
    entries: Vec<Entry>,
    /// Normal, user-defined and unused pieces: the ones segmentation may produce.
    segmentable: HashMap<String, Id>,
    user_defined: Trie,
    unk_id: Id,
}

impl Vocab {
    /// Checks and indexes the pieces. `one_namespace` (BPE) makes a text shared by a
    /// segmentable and a reserved (unknown, control, byte) piece an error, as it is
    /// for the reference's BPE model.
    pub(crate) fn new(
        pieces: &[SentencePiece],
        byte_fallback: bool,
        one_namespace: bool,
    ) -> Result<Self> {
        let mut entries = Vec::with_capacity(pieces.len());
        let mut segmentable = HashMap::new();
        let mut reserved = HashMap::new();
        let mut user_defined = Vec::new();
        let mut unk = None;
        let mut bytes_seen = [false; 256];
        for (index, piece) in pieces.iter().enumerate() {
            let id = Id::try_from(index)?;
            let (text, kind) = checked_piece(piece, id, byte_fallback)?;
            entries.push(Entry {
                score: piece.score(),
                kind,
            });
            if text == "\0" && kind == PieceType::Unused {
                continue;
            }
            let is_segmentable = matches!(
                kind,
                PieceType::Normal | PieceType::UserDefined | PieceType::Unused
            );
            let map = if is_segmentable || one_namespace {
                &mut segmentable
            } else {
                &mut reserved
            };
            if map.insert(text.to_string(), id).is_some() {
                bail!("piece {id} ({text:?}) is defined twice");
            }
            match kind {
                PieceType::UserDefined => user_defined.push((text, id)),
                PieceType::Unknown if unk.is_some() => {
                    bail!("piece {id} ({text:?}) is a second unknown piece")
                }
                PieceType::Unknown => unk = Some(id),
                PieceType::Byte => bytes_seen[byte_of_piece(text, byte_fallback, id)?] = true,
                _ => {}
            }
        }
        if unk.is_none() && !byte_fallback {
            bail!("the model has no unknown piece (<unk>)");
        }
        if byte_fallback && bytes_seen.contains(&false) {
            bail!("byte_fallback is on but some of the 256 byte pieces <0x00>..<0xFF> are missing");
        }
        if one_namespace {
            segmentable.retain(|_, id| {
                matches!(
                    entries[*id as usize].kind,
                    PieceType::Normal | PieceType::UserDefined | PieceType::Unused
                )
            });
        }
        let user_defined = Trie::new(user_defined.iter().map(|&(t, id)| (t, id as u32)));
        Ok(Self {
            entries,
            segmentable,
            user_defined,
            unk_id: unk.unwrap_or(-1),
        })
    }

    /// All entries, by id.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The pieces segmentation may produce, with their ids.
    pub(crate) fn segmentable(&self) -> impl Iterator<Item = (&str, u32)> {
        self.segmentable
            .iter()
            .map(|(t, &id)| (t.as_str(), id as u32))
    }

    /// The id of a normal, user-defined or unused piece.
    pub(crate) fn lookup(&self, text: &str) -> Option<Id> {
        self.segmentable.get(text).copied()
    }

    /// The id of a normal or user-defined piece, else the unknown id (`PieceToId`
    /// followed by the char and word models' mapping of unused pieces to unknown).
    pub(crate) fn usable_or_unk(&self, text: &str) -> Id {
        match self.lookup(text) {
            Some(id) if self.kind(id) != PieceType::Unused => id,
            _ => self.unk_id,
        }
    }

    /// The type of piece `id` (`-1` counts as unknown).
    pub(crate) fn kind(&self, id: Id) -> PieceType {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.entries.get(i))
            .map_or(PieceType::Unknown, |e| e.kind)
    }

    /// The score of piece `id`.
    pub(crate) fn score(&self, id: Id) -> f32 {
        self.entries[id as usize].score
    }

    /// The id of the unknown piece (`-1` when the model has none).
    pub(crate) fn unk_id(&self) -> Id {
        self.unk_id
    }

    /// The user-defined symbols.
    pub(crate) fn user_defined(&self) -> &Trie {
        &self.user_defined
    }

    /// `PrefixMatcher::PrefixMatch`: the byte length of the longest user-defined symbol
    /// starting `text` and `true`, or of its first character and `false`.
    pub(crate) fn prefix_match(&self, text: &str) -> (usize, bool) {
        match self.user_defined.longest_prefix(text.as_bytes()) {
            Some((len, _)) => (len, true),
            None => (first_char_len(text), false),
        }
    }
}

/// A piece's text and type after the reference's checks (a NUL piece in a
/// byte-fallback model counts as unused, as `SentencePieceProcessor::Load` makes it).
fn checked_piece(piece: &SentencePiece, id: Id, byte_fallback: bool) -> Result<(&str, PieceType)> {
    let text = piece.piece();
    let Some(mut kind) = piece.piece_type() else {
        bail!(
            "piece {id} ({text:?}) has type {:?}, which is not a SentencePiece piece type",
            piece.r#type
        );
    };
    if byte_fallback && text == "\0" {
        kind = PieceType::Unused;
    }
    if text.is_empty() {
        bail!("piece {id} is empty");
    }
    if text.len() >= MAX_PIECE_BYTES {
        bail!(
            "piece {id} is {} bytes long (the limit is {MAX_PIECE_BYTES})",
            text.len()
        );
    }
    if text.contains('\0') && !(text == "\0" && kind == PieceType::Unused) {
        bail!("piece {id} ({text:?}) contains a NUL character");
    }
    Ok((text, kind))
}

/// The byte a `<0xXX>` piece stands for.
fn byte_of_piece(text: &str, byte_fallback: bool, id: Id) -> Result<usize> {
    if !byte_fallback {
        bail!("piece {id} ({text:?}) is a byte piece although byte_fallback is off");
    }
    let hex = text.strip_prefix("<0x").and_then(|t| t.strip_suffix('>'));
    let upper_hex =
        |h: &&str| h.len() == 2 && h.bytes().all(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F'));
    match hex.filter(upper_hex).map(|h| u8::from_str_radix(h, 16)) {
        Some(Ok(b)) => Ok(usize::from(b)),
        _ => bail!("piece {id} ({text:?}) is a byte piece but not of the form <0xXX>"),
    }
}
