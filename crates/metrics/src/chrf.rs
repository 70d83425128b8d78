//! chrF and chrF++ exactly as sacrebleu 2.6.0 computes them (`sacrebleu/metrics/chrf.py`).

use anyhow::{bail, Result};

use crate::ngrams::{clipped_matches, count, id_bits, intern, Grams, Vocab, CHAR_BITS};
use crate::npnum::Num;
use crate::significance::SampleScore;
use crate::text::{is_py_space, py_lower, py_split};
use crate::{Metric, Score, Stats};

/// Python's `string.punctuation`, which chrF++ splits off word edges.
const PUNCTS: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// sacrebleu's epsilon for empty precisions/recalls.
const EPS: f64 = 1e-16;

/// chrF settings, with sacrebleu's defaults (chrF2: 6 character orders, no word orders).
#[derive(Debug, Clone)]
pub struct ChrfOptions {
    /// Character n-gram order (6).
    pub char_order: usize,
    /// Word n-gram order (0; chrF++ uses 2).
    pub word_order: usize,
    /// Recall weight β (2).
    pub beta: u32,
    /// Lowercase first.
    pub lowercase: bool,
    /// Keep whitespace inside character n-grams.
    pub whitespace: bool,
    /// Average per-order F-scores with ε smoothing (chrF++.py/NLTK/Moses) instead of
    /// sacrebleu's default effective-order averaging of precision and recall.
    pub eps_smoothing: bool,
}

impl Default for ChrfOptions {
    fn default() -> Self {
        ChrfOptions {
            char_order: 6,
            word_order: 0,
            beta: 2,
            lowercase: false,
            whitespace: false,
            eps_smoothing: false,
        }
    }
}

impl ChrfOptions {
    /// chrF++ (word order 2), otherwise the defaults.
    pub fn chrf_plus_plus() -> Self {
        ChrfOptions {
            word_order: 2,
            ..Self::default()
        }
    }
}

/// The chrF metric. Statistics: `[hyp, ref, match]` per character order, then per word order.
#[derive(Debug, Clone)]
pub struct Chrf {
    opts: ChrfOptions,
}

/// A segment's n-grams, sorted per order: character orders first, then word orders.
struct SegmentNgrams<'a> {
    chars: Grams<'a>,
    n_chars: usize,
    words: Grams<'a>,
    n_words: usize,
}

impl Chrf {
    /// Builds chrF; the orders must not both be zero.
    pub fn new(opts: ChrfOptions) -> Result<Self> {
        if opts.char_order + opts.word_order == 0 {
            bail!("chrF needs a positive character or word n-gram order");
        }
        Ok(Chrf { opts })
    }

    /// The options this metric was built with.
    pub fn options(&self) -> &ChrfOptions {
        &self.opts
    }

    fn order(&self) -> usize {
        self.opts.char_order + self.opts.word_order
    }

    /// The code points n-grams are taken from (whitespace removed unless kept).
    fn chars(&self, s: &str) -> Vec<u32> {
        let keep = |c: &char| self.opts.whitespace || !is_py_space(*c);
        s.chars().filter(keep).map(u32::from).collect()
    }

    fn ngrams<'a>(&self, chars: &'a [u32], words: &'a [u32], word_bits: u32) -> SegmentNgrams<'a> {
        SegmentNgrams {
            chars: Grams::new(chars, self.opts.char_order, CHAR_BITS),
            n_chars: chars.len(),
            words: Grams::new(words, self.opts.word_order, word_bits),
            n_words: words.len(),
        }
    }

    /// `[hyp, ref, match]` per order against one reference (characters, then words).
    fn match_stats(&self, h: &SegmentNgrams, r: &SegmentNgrams) -> Stats {
        let mut stats = Stats::with_capacity(3 * self.order());
        let sides = [
            (
                &h.chars,
                h.n_chars,
                &r.chars,
                r.n_chars,
                self.opts.char_order,
            ),
            (
                &h.words,
                h.n_words,
                &r.words,
                r.n_words,
                self.opts.word_order,
            ),
        ];
        for (hg, hn, rg, rn, max_order) in sides {
            for k in 1..=max_order {
                let (n_hyp, n_ref) = (count(hn, k), count(rn, k));
                let matches = clipped_matches(hg, &[rg], k);
                // sacrebleu counts no hypothesis n-grams when the reference has none.
                let n_hyp = if n_ref == 0 { 0 } else { n_hyp };
                stats.extend([n_hyp as f64, n_ref as f64, matches as f64]);
            }
        }
        stats
    }

    /// The f-score of (summed) statistics, in percent (sacrebleu's `_compute_f_score`).
    fn f_score(&self, stats: &[f64]) -> f64 {
        let stats: Vec<Num> = stats.iter().map(|&v| Num::Py(v)).collect();
        self.f_score_num(&stats).f64()
    }

    /// `_compute_f_score` on Python floats or numpy float32 statistics.
    fn f_score_num(&self, stats: &[Num]) -> Num {
        let factor = Num::Py(f64::from(self.opts.beta).powi(2));
        let one_plus = Num::Py(1.0) + factor;
        let (zero, eps) = (Num::Py(0.0), Num::Py(EPS));
        let (mut score, mut avg_prec, mut avg_rec, mut eff) = (zero, zero, zero, 0usize);
        for t in stats.chunks_exact(3).take(self.order()) {
            let (n_hyp, n_ref, n_match) = (t[0], t[1], t[2]);
            let prec = if n_hyp.f64() > 0.0 {
                n_match / n_hyp
            } else {
                eps
            };
            let rec = if n_ref.f64() > 0.0 {
                n_match / n_ref
            } else {
                eps
            };
            let denom = factor * prec + rec;
            score = score
                + if denom.f64() > 0.0 {
                    one_plus * prec * rec / denom
                } else {
                    eps
                };
            if n_hyp.f64() > 0.0 && n_ref.f64() > 0.0 {
                avg_prec = avg_prec + prec;
                avg_rec = avg_rec + rec;
                eff += 1;
            }
        }
        if self.opts.eps_smoothing {
            return Num::Py(100.0) * score / Num::Py(self.order() as f64);
        }
        if eff == 0 {
            (avg_prec, avg_rec) = (zero, zero);
        } else {
            avg_prec = avg_prec / Num::Py(eff as f64);
            avg_rec = avg_rec / Num::Py(eff as f64);
        }
        if (avg_prec + avg_rec).f64() != 0.0 {
            let score = one_plus * avg_prec * avg_rec / (factor * avg_prec + avg_rec);
            Num::Py(100.0) * score
        } else {
            zero
        }
    }
}

/// chrF++'s word splitting: a trailing (else leading) ASCII punctuation mark of a
/// multi-character token becomes its own token.
fn split_punctuation(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for w in py_split(s) {
        let mut it = w.chars();
        let first = it.next().unwrap_or(' ');
        let Some(last) = it.next_back() else {
            out.push(w);
            continue;
        };
        if PUNCTS.contains(last) {
            let cut = w.len() - last.len_utf8();
            out.extend([&w[..cut], &w[cut..]]);
        } else if PUNCTS.contains(first) {
            let cut = first.len_utf8();
            out.extend([&w[..cut], &w[cut..]]);
        } else {
            out.push(w);
        }
    }
    out
}

impl Metric for Chrf {
    fn name(&self) -> String {
        format!("chrF{}{}", self.opts.beta, "+".repeat(self.opts.word_order))
    }

    fn segment_stats(&self, hyp: &str, refs: &[&str]) -> Result<Stats> {
        let prep = |s: &str| {
            if self.opts.lowercase {
                py_lower(s)
            } else {
                s.to_string()
            }
        };
        let hyp = prep(hyp);
        let refs: Vec<String> = refs.iter().map(|r| prep(r)).collect();
        let mut vocab = Vocab::default();
        let hyp_words = intern(&mut vocab, split_punctuation(&hyp).into_iter());
        let ref_words: Vec<Vec<u32>> = refs
            .iter()
            .map(|r| intern(&mut vocab, split_punctuation(r).into_iter()))
            .collect();
        let word_bits = id_bits(vocab.len() as u32);
        let hyp_chars = self.chars(&hyp);
        let h = self.ngrams(&hyp_chars, &hyp_words, word_bits);
        let (mut best, mut best_f) = (Stats::new(), -1.0);
        for (r, words) in refs.iter().zip(&ref_words) {
            let ref_chars = self.chars(r);
            let rn = self.ngrams(&ref_chars, words, word_bits);
            let stats = self.match_stats(&h, &rn);
            let f = self.f_score(&stats);
            if f > best_f {
                (best, best_f) = (stats, f);
            }
        }
        Ok(best)
    }

    fn compute(&self, stats: &[f64]) -> Score {
        Score {
            name: self.name(),
            score: self.f_score(stats),
            verbose_tail: String::new(),
        }
    }

    fn compute_f32(&self, stats: &[f32]) -> SampleScore {
        let stats: Vec<Num> = stats.iter().map(|&v| Num::F32(v)).collect();
        self.f_score_num(&stats).sample()
    }

    fn signature_fields(&self) -> Vec<(&'static str, &'static str, String)> {
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
        vec![
            (
                "case",
                "c",
                if self.opts.lowercase { "lc" } else { "mixed" }.to_string(),
            ),
            ("eff", "e", yes_no(!self.opts.eps_smoothing)),
            ("nc", "nc", self.opts.char_order.to_string()),
            ("nw", "nw", self.opts.word_order.to_string()),
            ("space", "s", yes_no(self.opts.whitespace)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{corpus_score, sentence_score};

    use crate::readme_example::{two_refs, HYPS, R1};

    fn chrf(f: impl FnOnce(&mut ChrfOptions)) -> Chrf {
        let mut o = ChrfOptions::default();
        f(&mut o);
        Chrf::new(o).unwrap()
    }

    #[test]
    fn readme_corpus() {
        let two = two_refs();
        let one: Vec<Vec<&str>> = (0..3).map(|i| vec![R1[i]]).collect();
        assert_eq!(
            corpus_score(&chrf(|_| {}), &HYPS, &two).unwrap().score,
            59.72751782684763
        );
        let pp = Chrf::new(ChrfOptions::chrf_plus_plus()).unwrap();
        assert_eq!(
            corpus_score(&pp, &HYPS, &two).unwrap().score,
            59.15310444399262
        );
        assert_eq!(
            corpus_score(&chrf(|_| {}), &HYPS, &one).unwrap().score,
            50.043063606582294
        );
        assert_eq!(pp.name(), "chrF2++");
    }

    #[test]
    fn beta3_vectors() {
        let eps = chrf(|o| {
            o.beta = 3;
            o.eps_smoothing = true
        });
        let eff = chrf(|o| o.beta = 3);
        let s = |m: &Chrf, h: &str, r: &str| sentence_score(m, h, &[r]).unwrap().score;
        assert!((s(&eps, "aa", "ab") - 8.3333).abs() < 1e-4);
        assert!((s(&eps, "a", "a") - 16.6667).abs() < 1e-4);
        assert!((s(&eps, "a b c", "abc") - 50.0).abs() < 1e-9);
        assert!((s(&eff, "a", "a") - 100.0).abs() < 1e-9);
        assert!((s(&eff, "aa", "ab") - 25.0).abs() < 1e-9);
        let c = corpus_score(&eff, &["a", "b"], &[vec!["a"], vec!["c"]]).unwrap();
        assert!((c.score - 50.0).abs() < 1e-9);
    }

    #[test]
    fn sentence_vectors() {
        let h = "Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře.";
        let r =
            ["Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře."];
        let eps = chrf(|o| o.eps_smoothing = true);
        assert!((sentence_score(&eps, h, &r).unwrap().score - 39.14078509431498).abs() < 1e-9);
        assert!(
            (sentence_score(&chrf(|_| {}), h, &r).unwrap().score - 39.14081690316369).abs() < 1e-9
        );
        let pp = Chrf::new(ChrfOptions::chrf_plus_plus()).unwrap();
        assert!((sentence_score(&pp, h, &r).unwrap().score - 40.3769131075315).abs() < 1e-9);
    }

    #[test]
    fn punctuation_split() {
        assert_eq!(
            split_punctuation("(hi) a. ,b x"),
            ["(hi", ")", "a", ".", ",", "b", "x"]
        );
    }
}
