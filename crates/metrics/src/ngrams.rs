//! N-gram counting by sorting: no hashing, exact, and cheap for sentence-sized inputs.

/// All n-grams (windows) of order `n` of `seq`, sorted so equal n-grams are adjacent.
pub(crate) fn sorted_ngrams<T: Ord>(seq: &[T], n: usize) -> Vec<&[T]> {
    if n == 0 || seq.len() < n {
        return Vec::new();
    }
    let mut v: Vec<&[T]> = seq.windows(n).collect();
    v.sort_unstable();
    v
}

/// How many times `g` occurs in the sorted list `list`.
fn count_in<T: Ord>(list: &[&[T]], g: &[T]) -> usize {
    let lo = list.partition_point(|x| *x < g);
    let hi = lo + list[lo..].partition_point(|x| *x <= g);
    hi - lo
}

/// Clipped matches `Σ_g min(count_hyp(g), max_k count_ref_k(g))` for sorted n-gram lists.
pub(crate) fn clipped_matches<'a, T: Ord + 'a, R: AsRef<[&'a [T]]>>(
    hyp: &[&[T]],
    refs: &[R],
) -> usize {
    let mut matches = 0;
    let mut i = 0;
    while i < hyp.len() {
        let g = hyp[i];
        let run = hyp[i..].partition_point(|x| *x <= g);
        let best = refs
            .iter()
            .map(|r| count_in(r.as_ref(), g))
            .max()
            .unwrap_or(0);
        matches += run.min(best);
        i += run;
    }
    matches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_uses_max_over_references() {
        let hyp = ["a", "a", "a", "b", "c"];
        let r1 = ["a", "b", "b"];
        let r2 = ["a", "a", "x"];
        let h = sorted_ngrams(&hyp, 1);
        let refs = [sorted_ngrams(&r1, 1), sorted_ngrams(&r2, 1)];
        assert_eq!(clipped_matches(&h, &refs), 3); // a:min(3,2) + b:1
        let h2 = sorted_ngrams(&hyp, 2);
        assert_eq!(h2.len(), 4);
        assert!(sorted_ngrams(&hyp, 6).is_empty());
    }
}
