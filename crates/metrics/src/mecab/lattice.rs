//! The word lattice and MeCab's one-best Viterbi search (`Tokenizer::lookup`,
//! `Viterbi::viterbi`, `connect`), reproduced step by step so that ties break as in
//! MeCab: candidate lists are built and scanned in MeCab's linked-list orders.

use anyhow::{bail, Result};

use super::chars::CharInfo;
use super::dictionary::{Hit, Token};
use super::MeCab;

/// MeCab looks words up in at most this many bytes from a position.
const MAX_LOOKUP_BYTES: usize = 65535;
/// Initial best cost in `connect`: a path must cost less to be kept.
const COST_LIMIT: i64 = 2_147_483_647;
const NIL: usize = usize::MAX;

/// A word proposed at a position.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    token: Token,
    /// Byte offset of the surface (after any skipped leading spaces).
    surface: usize,
    /// Surface length in bytes.
    length: usize,
    /// Length including the skipped spaces.
    rlength: usize,
}

/// A candidate connected to its best left neighbour.
#[derive(Debug, Clone, Copy)]
struct Node {
    cand: Candidate,
    cost: i64,
    prev: usize,
    /// Next node in the list of nodes ending at the same position.
    enext: usize,
}

impl MeCab {
    /// Space-penalty part of mecab-ko's connection cost (0 for plain MeCab).
    fn space_penalty(&self, c: &Candidate) -> i32 {
        if c.rlength == c.length {
            return 0;
        }
        self.space_penalties
            .iter()
            .find(|(posid, _)| *posid == c.token.posid)
            .map_or(0, |&(_, cost)| cost)
    }

    /// Appends the unknown-word candidates of category `info.default_type()` spanning
    /// `begin2..begin3` (MeCab's `ADDUNKNWON`).
    fn add_unknown(&self, info: CharInfo, at: (usize, usize, usize), out: &mut Vec<Candidate>) {
        let (begin, begin2, begin3) = at;
        let (first, count) = self.unk_tokens[info.default_type()];
        out.extend((first..first + count).map(|i| Candidate {
            token: self.unk.token(i),
            surface: begin2,
            length: begin3 - begin2,
            rlength: begin3 - begin,
        }));
    }

    /// MeCab's `Tokenizer::lookup` at byte `begin`: the candidates in creation order
    /// (MeCab's `bnext` list is the reverse). `hits` is scratch space.
    fn lookup(&self, s: &[u8], begin: usize, hits: &mut Vec<Hit>, out: &mut Vec<Candidate>) {
        out.clear();
        let end = s.len().min(begin + MAX_LOOKUP_BYTES);
        // begin < end, so at least one character is examined and `fail`/`mblen` are set.
        let seek = self
            .chars
            .seek_to_other_type(s, begin, end, self.space, usize::MAX);
        let (begin2, cinfo) = (seek.pos, seek.fail);
        if begin2 == end {
            // Only spaces remain: MeCab's candidates here would end past the sentence,
            // where neither later positions nor EOS look.
            return;
        }
        hits.clear();
        self.sys.common_prefix_search(&s[begin2..end], hits);
        for &hit in hits.iter() {
            out.extend(self.sys.tokens(hit).map(|token| Candidate {
                token,
                surface: begin2,
                length: hit.len,
                rlength: begin2 - begin + hit.len,
            }));
        }
        if !out.is_empty() && !cinfo.invoke() {
            return;
        }
        // begin2 < end and the decoder never reads past `end`, so begin3 <= end here.
        let mut begin3 = begin2 + seek.mblen;
        let mut group_end = None;
        if cinfo.group() {
            // MeCab scans the whole run (quadratic on long runs). Past both the grouping
            // limit and the unknown-word length its end no longer matters: the group word
            // is too long either way and the loop below never reaches it.
            let cap = self.max_grouping_size.max(cinfo.length()) + 1;
            let run = self.chars.seek_to_other_type(s, begin3, end, cinfo, cap);
            if run.clen <= self.max_grouping_size {
                self.add_unknown(cinfo, (begin, begin2, run.pos), out);
            }
            group_end = Some(run.pos);
        }
        for _ in 1..=cinfo.length() {
            if begin3 > end {
                break;
            }
            if Some(begin3) == group_end {
                continue;
            }
            self.add_unknown(cinfo, (begin, begin2, begin3), out);
            let (next, mblen) = self.chars.info_at(s, begin3, end);
            if !cinfo.is_kind_of(next) {
                break;
            }
            begin3 += mblen;
        }
        if out.is_empty() {
            self.add_unknown(cinfo, (begin, begin2, begin3), out);
        }
    }

    /// MeCab's `connect` for one right node: the best node in the list starting at
    /// `head` (first strictly cheapest wins) as (index, path cost).
    fn best_left(&self, nodes: &[Node], head: usize, right: &Candidate) -> Option<(usize, i64)> {
        let local = right.token.wcost as i32 + self.space_penalty(right);
        let mut best = None;
        let mut best_cost = COST_LIMIT;
        let mut l = head;
        while l != NIL {
            let left = &nodes[l];
            let cost = left.cost
                + (self
                    .matrix
                    .cost(left.cand.token.right_id, right.token.left_id)
                    + local) as i64;
            if cost < best_cost {
                best = Some(l);
                best_cost = cost;
            }
            l = left.enext;
        }
        best.map(|b| (b, best_cost))
    }

    /// One-best segmentation of `s` (no NUL bytes): surfaces as byte ranges.
    pub(super) fn viterbi(&self, s: &[u8]) -> Result<Vec<(usize, usize)>> {
        let len = s.len();
        let bos = Candidate {
            token: Token::default(),
            surface: 0,
            length: 0,
            rlength: 0,
        };
        let mut nodes = vec![Node {
            cand: bos,
            cost: 0,
            prev: NIL,
            enext: NIL,
        }];
        let mut end_head = vec![NIL; len + 1];
        end_head[0] = 0;
        let (mut cands, mut hits) = (Vec::new(), Vec::new());
        for pos in 0..len {
            if end_head[pos] == NIL {
                continue;
            }
            self.lookup(s, pos, &mut hits, &mut cands);
            for cand in cands.iter().rev() {
                let Some((prev, cost)) = self.best_left(&nodes, end_head[pos], cand) else {
                    bail!("MeCab cannot segment this line: path cost overflow (too long sentence)");
                };
                let x = pos + cand.rlength;
                if x > len {
                    continue;
                }
                nodes.push(Node {
                    cand: *cand,
                    cost,
                    prev,
                    enext: end_head[x],
                });
                end_head[x] = nodes.len() - 1;
            }
        }
        let last = (0..=len).rev().find(|&p| end_head[p] != NIL).unwrap_or(0);
        let Some((mut n, _)) = self.best_left(&nodes, end_head[last], &bos) else {
            bail!("MeCab cannot segment this line: path cost overflow (too long sentence)");
        };
        let mut words = Vec::new();
        while n != 0 {
            let c = &nodes[n].cand;
            words.push((c.surface, c.surface + c.length));
            n = nodes[n].prev;
        }
        words.reverse();
        Ok(words)
    }
}
