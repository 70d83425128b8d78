//! BPE merges implied by a vocabulary (GGUF SentencePiece files carry scores, not merges).

/// The merges a vocabulary implies, best first, exactly as HF transformers'
/// `generate_merges(vocab, vocab_scores)` orders them: every split of every scored token into two
/// vocabulary pieces, then a stable sort by descending (score, left length, right length),
/// lengths in characters.
///
/// HF lists a token's splits by the pieces' ids before that sort, but the sort orders them
/// anyway (a token's splits differ in left length), so they are listed here in the sort's
/// order, longest left piece first: where scores fall from token to token (Gemma ranks its
/// tokens by position), the list is then already in order, which the stable sort finds in
/// one pass.
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
    let mut bounds = Vec::new();
    for (token, score) in scored {
        bounds.clear();
        bounds.extend(token.char_indices().map(|(at, _)| at));
        let chars = bounds.len();
        // `bounds[left_len]` ends a left piece of `left_len` characters.
        let splits = bounds.iter().enumerate().skip(1).rev();
        merges.extend(splits.filter_map(|(left_len, &at)| {
            let (left, right) = token.split_at(at);
            (vocab.contains_key(left) && vocab.contains_key(right)).then_some(Merge {
                left,
                right,
                score: *score,
                left_len,
                right_len: chars - left_len,
            })
        }));
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

    /// HF's procedure as written: each token's splits sorted by the pieces' ids, then one
    /// stable sort of them all by descending (score, left length, right length).
    fn hf_generate_merges(vocab: &TokenIds, scored: &[(&str, f64)]) -> Vec<(String, String)> {
        let mut merges = Vec::new();
        for (token, score) in scored {
            let bounds: Vec<usize> = token.char_indices().map(|(at, _)| at).collect();
            let mut local: Vec<_> = (1..bounds.len())
                .map(|n| {
                    (
                        &token[..bounds[n]],
                        &token[bounds[n]..],
                        n,
                        bounds.len() - n,
                    )
                })
                .filter(|(l, r, ..)| vocab.contains_key(l) && vocab.contains_key(r))
                .collect();
            local.sort_by_key(|(l, r, ..)| (vocab[l], vocab[r]));
            merges.extend(
                local
                    .into_iter()
                    .map(|(l, r, ll, rl)| (l, r, *score, ll, rl)),
            );
        }
        merges.sort_by(|a, b| b.2.total_cmp(&a.2).then(b.3.cmp(&a.3)).then(b.4.cmp(&a.4)));
        merges
            .into_iter()
            .map(|(l, r, ..)| (l.to_string(), r.to_string()))
            .collect()
    }

    /// Ties of score between tokens, scores out of order and pieces whose ids run against
    /// their lengths: the order of HF's procedure, sort or no sort.
    #[test]
    fn equals_hf_procedure_with_ties() {
        let tokens = [
            "abcd", "cd", "a", "d", "bcd", "b", "ab", "c", "abc", "bc", "é", "éa", "aé", "éaé",
        ];
        let vocab: TokenIds = tokens
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, i as u32))
            .collect();
        for scores in [
            vec![
                -1.0, -2.0, 0.0, 0.0, -2.0, 0.0, -1.0, 0.0, -2.0, -1.0, 0.0, -3.0, -3.0, -3.0,
            ],
            (0..tokens.len()).map(|i| -(i as f64)).collect(),
            (0..tokens.len()).map(|i| (i % 3) as f64).collect(),
        ] {
            let scored: Vec<(&str, f64)> = tokens.iter().copied().zip(scores).collect();
            let got = from_scores(&vocab, &scored);
            assert_eq!(got, hf_generate_merges(&vocab, &scored), "{scored:?}");
            assert!(got.len() > 10);
        }
    }
}
