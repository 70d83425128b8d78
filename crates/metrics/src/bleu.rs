//! BLEU exactly as sacrebleu 2.6.0 computes it (`sacrebleu/metrics/bleu.py`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::ngrams::{clipped_matches, count, id_bits, intern, Grams, Vocab};
use crate::npnum::Num;
use crate::significance::SampleScore;
use crate::text::{py_lower, py_rstrip, py_split};
use crate::tokenizers::{default_tokenizer_name, Tokenizer};
use crate::{Metric, Score, Stats};

/// sacrebleu's `my_log(0)`.
const LOG_ZERO: f64 = -9_999_999_999.0;

/// BLEU smoothing (Chen & Cherry 2014).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmoothMethod {
    /// No smoothing.
    None,
    /// Method 1: a zero match count becomes `value` (default 0.1).
    Floor,
    /// Method 2: add `value` (default 1) to matches and totals of orders above 1.
    AddK,
    /// Method 3 (NIST/mteval): the k-th zero precision becomes `1/(2^k · total)`.
    Exp,
}

impl SmoothMethod {
    /// Every method, by sacrebleu name.
    pub const ALL: [(&'static str, SmoothMethod); 4] = [
        ("none", SmoothMethod::None),
        ("floor", SmoothMethod::Floor),
        ("add-k", SmoothMethod::AddK),
        ("exp", SmoothMethod::Exp),
    ];

    /// Parses sacrebleu's name (`none`, `floor`, `add-k`, `exp`).
    pub fn parse(name: &str) -> Result<Self> {
        match Self::ALL.iter().find(|(n, _)| *n == name) {
            Some(&(_, m)) => Ok(m),
            None => bail!("unknown smoothing method {name:?}; valid: none, floor, add-k, exp"),
        }
    }

    /// sacrebleu's name of the method.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map(|(n, _)| *n)
            .unwrap_or("exp")
    }

    /// The default smoothing value (`None` for methods without one).
    pub fn default_value(self) -> Option<f64> {
        match self {
            SmoothMethod::Floor => Some(0.1),
            SmoothMethod::AddK => Some(1.0),
            SmoothMethod::None | SmoothMethod::Exp => None,
        }
    }
}

/// BLEU settings, with sacrebleu's defaults.
#[derive(Debug, Clone)]
pub struct BleuOptions {
    /// Lowercase hypotheses and references first.
    pub lowercase: bool,
    /// Tokenizer name; `None` picks sacrebleu's default for `trg_lang` (`13a` if unknown).
    pub tokenize: Option<String>,
    /// Model file for model-based tokenizers (`ja-mecab`, `flores200`, …).
    pub tok_model: Option<PathBuf>,
    /// Smoothing method.
    pub smooth_method: SmoothMethod,
    /// Smoothing value for `floor`/`add-k`; `None` uses the method's default.
    pub smooth_value: Option<f64>,
    /// Highest n-gram order (4).
    pub max_ngram_order: usize,
    /// Average only over the orders that have n-grams (for sentence-level BLEU).
    pub effective_order: bool,
    /// Target language code, used only to choose the default tokenizer.
    pub trg_lang: Option<String>,
}

impl Default for BleuOptions {
    fn default() -> Self {
        BleuOptions {
            lowercase: false,
            tokenize: None,
            tok_model: None,
            smooth_method: SmoothMethod::Exp,
            smooth_value: None,
            max_ngram_order: 4,
            effective_order: false,
            trg_lang: None,
        }
    }
}

/// The BLEU metric. Statistics: `[hyp_len, ref_len, correct_1..N, total_1..N]`.
#[derive(Debug, Clone)]
pub struct Bleu {
    opts: BleuOptions,
    tokenizer: Tokenizer,
}

/// Everything sacrebleu's `BLEUScore` holds.
#[derive(Debug, Clone, PartialEq)]
pub struct BleuDetails {
    /// The BLEU score (0–100).
    pub score: f64,
    /// Matched n-grams per order (after add-k smoothing, as sacrebleu reports them).
    pub counts: Vec<f64>,
    /// Hypothesis n-grams per order (after add-k smoothing).
    pub totals: Vec<f64>,
    /// Precisions per order, in percent.
    pub precisions: Vec<f64>,
    /// Brevity penalty.
    pub bp: f64,
    /// Hypothesis length in tokens.
    pub sys_len: i64,
    /// Effective reference length in tokens.
    pub ref_len: i64,
}

impl BleuDetails {
    /// sacrebleu's verbose tail: `82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)`.
    pub fn verbose(&self) -> String {
        let prec: Vec<String> = self.precisions.iter().map(|p| format!("{p:.1}")).collect();
        let ratio = if self.ref_len != 0 {
            self.sys_len as f64 / self.ref_len as f64
        } else {
            0.0
        };
        format!(
            "{} (BP = {:.3} ratio = {:.3} hyp_len = {} ref_len = {})",
            prec.join("/"),
            self.bp,
            ratio,
            self.sys_len,
            self.ref_len
        )
    }
}

impl Bleu {
    /// Builds BLEU; fails for an unknown or unavailable tokenizer, a zero n-gram order,
    /// or a smoothing value that is not finite.
    pub fn new(opts: BleuOptions) -> Result<Self> {
        if opts.max_ngram_order == 0 {
            bail!("--max-ngram-order must be at least 1");
        }
        if opts.smooth_value.is_some_and(|v| !v.is_finite()) {
            bail!("the smoothing value must be a finite number");
        }
        let name = match &opts.tokenize {
            Some(t) => t.as_str(),
            None => default_tokenizer_name(opts.trg_lang.as_deref().unwrap_or("")),
        };
        let tokenizer =
            Tokenizer::new(name, opts.tok_model.as_deref()).with_context(|| {
                match (&opts.tokenize, &opts.trg_lang) {
                    (None, Some(lang)) => format!(
                        "{name:?} is sacrebleu's default tokenizer for target language {lang:?}; \
                     choose another with -tok"
                    ),
                    _ => format!("BLEU tokenizer {name:?}"),
                }
            })?;
        Ok(Bleu { opts, tokenizer })
    }

    /// The options this metric was built with.
    pub fn options(&self) -> &BleuOptions {
        &self.opts
    }

    /// Lowercases (if asked), right-strips and tokenizes a segment.
    fn preprocess(&self, s: &str) -> Result<String> {
        let lowered;
        let s = if self.opts.lowercase {
            lowered = py_lower(s);
            lowered.as_str()
        } else {
            s
        };
        Ok(self.tokenizer.tokenize(py_rstrip(s))?.into_owned())
    }

    /// The full score breakdown from summed statistics (sacrebleu's `compute_bleu`).
    pub fn details(&self, stats: &[f64]) -> BleuDetails {
        let stats: Vec<Num> = stats.iter().map(|&v| Num::Py(v)).collect();
        self.details_num(&stats).0
    }

    /// `compute_bleu` on Python floats or numpy float32 statistics; also returns the
    /// score with its numeric type.
    fn details_num(&self, stats: &[Num]) -> (BleuDetails, Num) {
        let n = self.opts.max_ngram_order;
        let mut correct = stats[2..2 + n].to_vec();
        let mut total = stats[2 + n..2 + 2 * n].to_vec();
        let (sys_len, ref_len) = (stats[0].f64().trunc(), stats[1].f64().trunc());
        let k = self
            .opts
            .smooth_value
            .or(self.opts.smooth_method.default_value());
        let k = Num::Py(k.unwrap_or(0.0));
        let bp = if sys_len < ref_len {
            if sys_len > 0.0 {
                (1.0 - ref_len / sys_len).exp()
            } else {
                0.0
            }
        } else {
            1.0
        };
        let mut precisions = vec![Num::Py(0.0); n];
        let details = |score: f64, correct: &[Num], total: &[Num], precisions: &[Num]| {
            let f = |v: &[Num]| v.iter().map(|x| x.f64()).collect();
            BleuDetails {
                score,
                counts: f(correct),
                totals: f(total),
                precisions: f(precisions),
                bp,
                sys_len: sys_len as i64,
                ref_len: ref_len as i64,
            }
        };
        if correct.iter().all(|c| c.f64() == 0.0) {
            return (details(0.0, &correct, &total, &precisions), Num::Py(0.0));
        }
        let method = self.opts.smooth_method;
        let hundred = Num::Py(100.0);
        let mut smooth_mteval = Num::Py(1.0);
        let mut eff_order = n;
        for i in 0..n {
            if method == SmoothMethod::AddK && i > 0 {
                correct[i] = correct[i] + k;
                total[i] = total[i] + k;
            }
            if total[i].f64() == 0.0 {
                break;
            }
            if self.opts.effective_order {
                eff_order = i + 1;
            }
            if correct[i].f64() == 0.0 {
                match method {
                    SmoothMethod::Exp => {
                        smooth_mteval = smooth_mteval * Num::Py(2.0);
                        precisions[i] = hundred / (smooth_mteval * total[i]);
                    }
                    SmoothMethod::Floor => precisions[i] = hundred * k / total[i],
                    SmoothMethod::None | SmoothMethod::AddK => {}
                }
            } else {
                precisions[i] = hundred * correct[i] / total[i];
            }
        }
        let log_sum = precisions[..eff_order].iter().fold(0.0, |acc, p| {
            let p = p.f64();
            acc + if p == 0.0 { LOG_ZERO } else { p.ln() }
        });
        let score = bp * (log_sum / eff_order as f64).exp();
        (
            details(score, &correct, &total, &precisions),
            Num::Py(score),
        )
    }
}

/// sacrebleu's `_get_closest_ref_len`: the closest length, the shorter one on ties,
/// and -1 without references.
fn closest_ref_len(hyp_len: usize, ref_lens: &[usize]) -> i64 {
    let mut best: Option<(usize, usize)> = None;
    for &r in ref_lens {
        let diff = hyp_len.abs_diff(r);
        best = match best {
            Some((d, l)) if d < diff || (d == diff && l <= r) => Some((d, l)),
            _ => Some((diff, r)),
        };
    }
    best.map_or(-1, |(_, l)| l as i64)
}

impl Metric for Bleu {
    fn name(&self) -> String {
        "BLEU".to_string()
    }

    fn segment_stats(&self, hyp: &str, refs: &[&str]) -> Result<Stats> {
        let n = self.opts.max_ngram_order;
        let hyp = self.preprocess(hyp)?;
        let refs = refs
            .iter()
            .map(|r| self.preprocess(r))
            .collect::<Result<Vec<String>>>()?;
        let mut vocab = Vocab::default();
        let hyp_ids = intern(&mut vocab, py_split(&hyp));
        let ref_ids: Vec<Vec<u32>> = refs
            .iter()
            .map(|r| intern(&mut vocab, py_split(r)))
            .collect();
        let bits = id_bits(vocab.len() as u32);
        let ref_lens: Vec<usize> = ref_ids.iter().map(Vec::len).collect();
        let mut stats = vec![0.0; 2 + 2 * n];
        stats[0] = hyp_ids.len() as f64;
        stats[1] = closest_ref_len(hyp_ids.len(), &ref_lens) as f64;
        let h = Grams::new(&hyp_ids, n, bits);
        let r: Vec<Grams> = ref_ids.iter().map(|t| Grams::new(t, n, bits)).collect();
        let r: Vec<&Grams> = r.iter().collect();
        for order in 1..=n {
            stats[1 + order] = clipped_matches(&h, &r, order) as f64;
            stats[1 + n + order] = count(hyp_ids.len(), order) as f64;
        }
        Ok(stats)
    }

    fn compute(&self, stats: &[f64]) -> Score {
        let d = self.details(stats);
        Score {
            name: self.name(),
            score: d.score,
            verbose_tail: d.verbose(),
        }
    }

    fn compute_f32(&self, stats: &[f32]) -> SampleScore {
        let stats: Vec<Num> = stats.iter().map(|&v| Num::F32(v)).collect();
        self.details_num(&stats).1.sample()
    }

    fn signature_fields(&self) -> Vec<(&'static str, &'static str, String)> {
        let method = self.opts.smooth_method;
        let smooth = match method.default_value() {
            Some(def) => format!(
                "{}[{:.2}]",
                method.name(),
                self.opts.smooth_value.unwrap_or(def)
            ),
            None => method.name().to_string(),
        };
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
        vec![
            (
                "case",
                "c",
                if self.opts.lowercase { "lc" } else { "mixed" }.to_string(),
            ),
            ("eff", "e", yes_no(self.opts.effective_order)),
            ("tok", "tok", self.tokenizer.signature().to_string()),
            ("smooth", "s", smooth),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{corpus_score, sentence_score};

    use crate::readme_example::{two_refs, HYPS, R1};

    fn bleu(f: impl FnOnce(&mut BleuOptions)) -> Bleu {
        let mut o = BleuOptions::default();
        f(&mut o);
        Bleu::new(o).unwrap()
    }

    fn corpus(b: &Bleu, refs: &[Vec<&str>]) -> f64 {
        corpus_score(b, &HYPS, refs).unwrap().score
    }

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} != {b}");
    }

    #[test]
    fn readme_corpus_two_refs() {
        let b = bleu(|_| {});
        let refs = two_refs();
        let stats = crate::sum_stats(&crate::corpus_stats(&b, &HYPS, &refs).unwrap());
        let d = b.details(&stats);
        assert_eq!(d.score, 48.530827009929865);
        assert_eq!(d.counts, [14.0, 7.0, 5.0, 3.0]);
        assert_eq!(d.totals, [17.0, 14.0, 11.0, 8.0]);
        assert_eq!((d.sys_len, d.ref_len), (17, 18));
        assert_eq!(d.bp, 0.9428731438548749);
        close(
            corpus(&bleu(|o| o.tokenize = Some("none".into())), &refs),
            49.1919566,
            1e-6,
        );
        close(
            corpus(&bleu(|o| o.tokenize = Some("intl".into())), &refs),
            43.91623493,
            1e-6,
        );
        close(
            corpus(&bleu(|o| o.smooth_method = SmoothMethod::None), &refs),
            48.530827,
            1e-6,
        );
        let by_order = [77.65, 60.50, 53.93, 48.53, 46.14, 43.28];
        for (i, want) in by_order.iter().enumerate() {
            close(
                corpus(&bleu(|o| o.max_ngram_order = i + 1), &refs),
                *want,
                5e-3,
            );
        }
        let empty = corpus_score(&b, &["", "", ""], &refs).unwrap();
        assert_eq!(empty.score, 0.0);
    }

    #[test]
    fn readme_corpus_one_ref() {
        let refs: Vec<Vec<&str>> = R1.iter().map(|r| vec![*r]).collect();
        assert_eq!(corpus(&bleu(|_| {}), &refs), 45.06750632106114);
        let addk = bleu(|o| o.smooth_method = SmoothMethod::AddK);
        close(corpus(&addk, &refs), 49.69770530031035, 1e-9);
    }

    #[test]
    fn verbose_line_matches_sacrebleu() {
        let b = bleu(|_| {});
        let s = corpus_score(&b, &HYPS, &two_refs()).unwrap();
        assert_eq!(
            s.verbose_tail,
            "82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)"
        );
    }

    #[test]
    fn sentence_bleu_vectors() {
        let eff = |f: &dyn Fn(&mut BleuOptions)| {
            bleu(|o| {
                o.effective_order = true;
                f(o)
            })
        };
        let same = sentence_score(
            &eff(&|_| {}),
            "The dog bit the man.",
            &["The dog bit the man."],
        )
        .unwrap();
        assert_eq!(same.score, 100.00000000000004);
        let sys = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;";
        let rf = ["producţia de zahăr brut se exprimă în zahăr alb;"];
        let cases: Vec<(Bleu, f64)> = vec![
            (eff(&|_| {}), 8.493),
            (eff(&|o| o.smooth_method = SmoothMethod::None), 0.0),
            (eff(&|o| o.smooth_method = SmoothMethod::Floor), 4.51688),
            (
                eff(&|o| {
                    o.smooth_method = SmoothMethod::Floor;
                    o.smooth_value = Some(0.5)
                }),
                10.10,
            ),
            (eff(&|o| o.smooth_method = SmoothMethod::AddK), 14.882),
            (
                eff(&|o| {
                    o.smooth_method = SmoothMethod::AddK;
                    o.smooth_value = Some(2.0)
                }),
                21.389,
            ),
            (eff(&|o| o.tokenize = Some("none".into())), 7.347),
            (eff(&|o| o.tokenize = Some("char".into())), 40.8759),
            (
                eff(&|o| {
                    o.tokenize = Some("char".into());
                    o.lowercase = true
                }),
                42.0267,
            ),
        ];
        for (b, want) in cases {
            close(sentence_score(&b, sys, &rf).unwrap().score, want, 1e-3);
        }
        for (_, m) in SmoothMethod::ALL {
            let b = eff(&|o| o.smooth_method = m);
            assert_eq!(
                sentence_score(&b, "this is a cat", &["okay thanks"])
                    .unwrap()
                    .score,
                0.0
            );
        }
    }

    #[test]
    fn degenerate_cases() {
        let raw = bleu(|o| {
            o.smooth_method = SmoothMethod::Floor;
            o.smooth_value = Some(0.01);
            o.tokenize = Some("none".into());
            o.effective_order = true;
        });
        let cases = [
            ("this is a fest", "this is a test", 0.223606797749979),
            ("test", "a test", 0.3678794411714425),
            ("a little test", "a test", 0.03218297948685433),
        ];
        for (h, r, want) in cases {
            close(
                corpus_score(&raw, &[h], &[vec![r]]).unwrap().score / 100.0,
                want,
                1e-12,
            );
        }
        let plain = bleu(|o| o.smooth_method = SmoothMethod::None);
        let stats = [11.0, 11.0, 9.0, 7.0, 5.0, 3.0, 10.0, 8.0, 6.0, 4.0];
        close(plain.details(&stats).score, 83.75922397, 1e-8);
    }

    #[test]
    fn signature_and_ties() {
        let b = bleu(|o| o.smooth_method = SmoothMethod::Floor);
        let sig = b.signature_fields();
        assert_eq!(sig[3].2, "floor[0.10]");
        assert_eq!(closest_ref_len(5, &[4, 6]), 4);
        assert_eq!(closest_ref_len(5, &[6, 4]), 4);
        assert_eq!(closest_ref_len(5, &[]), -1);
    }
}
