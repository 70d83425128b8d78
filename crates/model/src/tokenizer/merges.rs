//! BPE merges implied by a vocabulary (GGUF SentencePiece files carry scores, not merges).

/// The merges a vocabulary implies, best first, exactly as HF transformers'
/// `generate_merges(vocab, vocab_scores)` orders them: every split of every scored token into two
/// vocabulary pieces (within a token ordered by the pieces' ids), then a stable sort by descending
/// (score, left length, right length), lengths in characters.
///
/// `vocab` maps tokens to ids; `scored` lists the tokens to split, in vocabulary order, with their
/// scores.
pub(crate) fn from_scores(vocab: &TokenIds, scored: &[(&str, f64)]) -> Vec<(String, String)> {
    struct Merge<'a> {
        left: &'a str,
        right: &'a str,
        score: f64,
        left_len: usize,
        right_len: usize,
    }
    let mut merges = Vec::new();
    let mut local: Vec<(u32, u32, Merge)> = Vec::new();
    for (token, score) in scored {
        let chars = token.chars().count();
        local.clear();
        local.extend(
            token
                .char_indices()
                .enumerate()
                .skip(1)
                .filter_map(|(left_len, (at, _))| {
                    let (left, right) = token.split_at(at);
                    let (l, r) = (vocab.get(left)?, vocab.get(right)?);
                    let merge = Merge {
                        left,
                        right,
                        score: *score,
                        left_len,
                        right_len: chars - left_len,
                    };
                    Some((*l, *r, merge))
                }),
        );
        local.sort_by_key(|(l, r, _)| (*l, *r));
        merges.extend(local.drain(..).map(|(_, _, m)| m));
    }
    merges.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.left_len.cmp(&a.left_len))
            .then(b.right_len.cmp(&a.right_len))
    });
    merges
        .into_iter()
        .map(|m| (m.left.to_string(), m.right.to_string()))
        .collect()
}

/// Token → id, borrowing the tokens, with a fast (not DoS-resistant) hash: a vocabulary has a
/// quarter of a million tokens, and deriving merges looks up every split of each.
pub(crate) type TokenIds<'a> = foldhash::HashMap<&'a str, u32>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_score_then_lengths() {
        let tokens = ["a", "b", "c", "ab", "bc", "abc"];
        let vocab: TokenIds = tokens
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, i as u32))
            .collect();
        let scored: Vec<(&str, f64)> = tokens
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, -(i as f64)))
            .collect();
        let merges = from_scores(&vocab, &scored);
        let got: Vec<String> = merges.iter().map(|(l, r)| format!("{l} {r}")).collect();
        // "ab" (score -3), "bc" (-4), then "abc" (-5) split as "ab c" (left 2) before "a bc".
        assert_eq!(got, ["a b", "b c", "ab c", "a bc"]);
    }
}
