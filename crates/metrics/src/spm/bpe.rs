//! BPE segmentation as SentencePiece 0.2.3's `bpe::Model::SampleEncode` (without
//! dropout) does it: start from characters (user-defined symbols whole and frozen),
//! repeatedly merge the adjacent pair whose concatenation is the highest-scoring piece
//! (leftmost on ties), then split merged pieces that are marked unused back into the
//! pieces they were made of; what cannot be split back is unknown.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use super::proto::PieceType;
use super::vocab::{Id, Vocab};

/// Nesting limit of the unused-piece splitting, as in the reference.
const MAX_RESEGMENT_DEPTH: usize = 100;

/// One symbol of the evolving segmentation: a byte range of the line and its
/// neighbours in the linked list (`None` at either end).
#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    end: usize,
    prev: Option<usize>,
    next: Option<usize>,
    frozen: bool,
}

/// A candidate merge of symbols `left` and `right` into a piece of `size` bytes.
struct Candidate {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    /// Higher score first (IEEE total order, as the reference compares the bits),
    /// then the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

/// The merge state of one line.
struct Merger<'a> {
    text: &'a str,
    vocab: &'a Vocab,
    symbols: Vec<Symbol>,
    agenda: BinaryHeap<Candidate>,
    /// For merged pieces that are unused: the two pieces they were made of.
    unmerge: HashMap<&'a str, (&'a str, &'a str)>,
}

/// Segments a normalized line into `(piece, id)` pairs.
pub(crate) fn encode<'a>(vocab: &'a Vocab, text: &'a str) -> Vec<(&'a str, Id)> {
    let mut merger = Merger {
        text,
        vocab,
        symbols: initial_symbols(vocab, text),
        agenda: BinaryHeap::new(),
        unmerge: HashMap::new(),
    };
    for i in 1..merger.symbols.len() {
        merger.propose(Some(i - 1), Some(i));
    }
    while let Some(top) = merger.agenda.pop() {
        merger.apply(&top);
    }
    merger.finish()
}

/// The line split into characters, or user-defined symbols (which never merge).
fn initial_symbols(vocab: &Vocab, text: &str) -> Vec<Symbol> {
    let mut symbols: Vec<Symbol> = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let (len, frozen) = vocab.prefix_match(&text[start..]);
        let index = symbols.len();
        symbols.push(Symbol {
            start,
            end: start + len,
            prev: index.checked_sub(1),
            next: (start + len < text.len()).then_some(index + 1),
            frozen,
        });
        start += len;
    }
    symbols
}

impl<'a> Merger<'a> {
    fn piece(&self, i: usize) -> &'a str {
        &self.text[self.symbols[i].start..self.symbols[i].end]
    }

    /// Queues the merge of two neighbours when their concatenation is a piece.
    fn propose(&mut self, left: Option<usize>, right: Option<usize>) {
        let (Some(l), Some(r)) = (left, right) else {
            return;
        };
        let (ls, rs) = (self.symbols[l], self.symbols[r]);
        if ls.frozen || rs.frozen {
            return;
        }
        let merged = &self.text[ls.start..rs.end];
        let Some(id) = self.vocab.lookup(merged) else {
            return;
        };
        self.agenda.push(Candidate {
            score: self.vocab.score(id),
            left: l,
            right: r,
            size: merged.len(),
        });
        if self.vocab.kind(id) == PieceType::Unused {
            self.unmerge.insert(merged, (self.piece(l), self.piece(r)));
        }
    }

    /// Performs a queued merge unless it went stale.
    fn apply(&mut self, top: &Candidate) {
        let (l, r) = (self.symbols[top.left], self.symbols[top.right]);
        let (l_len, r_len) = (l.end - l.start, r.end - r.start);
        if l_len == 0 || r_len == 0 || l_len + r_len != top.size {
            return;
        }
        let next = r.next;
        let left = &mut self.symbols[top.left];
        left.end = left.start + top.size;
        left.next = next;
        if let Some(n) = next {
            self.symbols[n].prev = Some(top.left);
        }
        let right = &mut self.symbols[top.right];
        right.end = right.start;
        let prev = self.symbols[top.left].prev;
        self.propose(prev, Some(top.left));
        self.propose(Some(top.left), next);
    }

    /// The final pieces, with unused merged pieces split back.
    fn finish(&self) -> Vec<(&'a str, Id)> {
        let mut out = Vec::new();
        let mut index = (!self.symbols.is_empty()).then_some(0);
        while let Some(i) = index {
            self.resegment(self.piece(i), &mut out, 0);
            index = self.symbols[i].next;
        }
        out
    }

    /// Emits a final symbol, splitting unused pieces back into their parts.
    fn resegment(&self, piece: &'a str, out: &mut Vec<(&'a str, Id)>, depth: usize) {
        let id = self.vocab.lookup(piece);
        if depth > MAX_RESEGMENT_DEPTH {
            out.push((piece, id.unwrap_or(self.vocab.unk_id())));
            return;
        }
        let Some(id) = id else {
            out.push((piece, self.vocab.unk_id()));
            return;
        };
        if self.vocab.kind(id) != PieceType::Unused {
            out.push((piece, id));
            return;
        }
        match self.unmerge.get(piece) {
            Some(&(left, right)) => {
                self.resegment(left, out, depth + 1);
                self.resegment(right, out, depth + 1);
            }
            None => out.push((piece, self.vocab.unk_id())),
        }
    }
}
