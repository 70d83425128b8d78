//! The embedding cache across scoring calls: systems scored one after another on one test
//! set embed its sources and references once, and score exactly as without the cache.

use datm_comet::{score, score_cached, Comet, EmbeddingCache};
use std::collections::HashSet;

mod support;
use support::{lines, load};

fn model() -> Comet {
    load("sparsemax")
}

fn distinct<'a>(texts: impl IntoIterator<Item = &'a Vec<String>>) -> usize {
    texts.into_iter().flatten().collect::<HashSet<_>>().len()
}

#[test]
fn systems_scored_in_turn_embed_the_test_set_once() {
    let model = model();
    let (src, refs) = (lines("src.txt"), lines("ref.txt"));
    // Three systems; the third outputs the references themselves.
    let systems = [lines("hyp1.txt"), lines("hyp2.txt"), refs.clone()];
    let mut cache = EmbeddingCache::new(usize::MAX);
    let mut separately = 0;
    for (i, hyps) in systems.iter().enumerate() {
        let hyps = std::slice::from_ref(hyps);
        let before = cache.embedded();
        let mut reports = Vec::new();
        let mut progress = |done, total| reports.push((done, total));
        let cached = score_cached(
            &model,
            &mut cache,
            &src,
            Some(&refs),
            hyps,
            8,
            &mut progress,
        )
        .unwrap();
        assert_eq!(cached, score(&model, &src, Some(&refs), hyps, 8).unwrap());
        separately += distinct([&src, &refs, &hyps[0]]);
        let all = distinct([&src, &refs].into_iter().chain(&systems[..=i]));
        assert_eq!(cache.embedded(), all, "after system {i}");
        // One report per batch of the sentences embedded by this call (8 or more each, on
        // the CPU grown to `min_batch_tokens`), the last complete; none when there were
        // none (the third system's are all cached).
        let new = all - before;
        assert_eq!(reports.is_empty(), new == 0, "system {i}");
        let mut done = 0;
        for (k, &(d, total)) in reports.iter().enumerate() {
            assert_eq!(total, new, "system {i}");
            assert!(
                d >= done + 8 || (k + 1 == reports.len() && d > done),
                "{reports:?}"
            );
            done = d;
        }
        assert_eq!(done, new, "system {i}");
    }
    assert_eq!(cache.embedded() + cache.reused(), separately);
    assert_eq!(cache.len(), cache.embedded());
    // Every source and reference was embedded once, not once per system.
    let test_set = distinct([&src, &refs]);
    assert!(cache.reused() >= 2 * test_set, "{}", cache.reused());
}

#[test]
fn a_bounded_cache_drops_the_least_recently_used_and_scores_the_same() {
    let model = model();
    let (src, refs) = (lines("src.txt"), lines("ref.txt"));
    let systems = [lines("hyp1.txt"), lines("hyp2.txt")];
    let mut roomy = EmbeddingCache::new(usize::MAX);
    let full: Vec<_> = systems
        .iter()
        .map(|h| {
            score_cached(
                &model,
                &mut roomy,
                &src,
                Some(&refs),
                std::slice::from_ref(h),
                4,
                &mut |_, _| {},
            )
        })
        .collect::<Result<_, _>>()
        .unwrap();
    // Room for about a third of one call's sentences.
    let max = roomy.bytes() / 8;
    let mut small = EmbeddingCache::new(max);
    for (h, want) in systems.iter().zip(&full) {
        let got = score_cached(
            &model,
            &mut small,
            &src,
            Some(&refs),
            std::slice::from_ref(h),
            4,
            &mut |_, _| {},
        );
        assert_eq!(&got.unwrap(), want);
        assert!(small.bytes() <= max, "{} > {max}", small.bytes());
        assert!(!small.is_empty());
    }
    assert!(small.embedded() > roomy.embedded());
}
