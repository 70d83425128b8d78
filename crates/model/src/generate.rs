//! Decoding: greedy, sampling (temperature, top-k, top-p, seed) and beam search with the
//! semantics of HF transformers' `generate` (5.x `_beam_search`): top `max(2, 1 + n_eos)·beams`
//! candidates per step, hypotheses finished by EOS or by `max_new_tokens` scored by
//! `sum_logprobs / new_len^length_penalty` (`new_len` counts generated tokens, EOS included),
//! `early_stopping` true / false (HF's heuristic) / "never".
//!
//! Each prompt is prefilled once on its own (no padding, the LM head only on its last
//! position), its cache is copied to its beams, and all prompts of a batch are then decoded
//! together, rows left-padded and masked, each at its own positions, so batched results are
//! those of decoding each prompt alone.
//!
//! **Stops.** Besides EOS and `max_new_tokens`, a row finishes when a [`StopCriterion`] holds
//! for its generated text (special tokens skipped). [`StopString`] is HF's `stop_strings`: the
//! string occurs in the text at a place that overlaps the newest token. As in HF, beam search
//! treats a candidate that hits a stop exactly like one that hits EOS (the token is kept).
//! Unlike HF, only the generated text is searched, so a stop string cannot start inside the
//! prompt.

use std::sync::Arc;

use anyhow::{bail, ensure, Context, Result};
use candle_core::Tensor;
use rand::{Rng, SeedableRng};

use crate::lora::Adapters;
use crate::model::Model;
use crate::nn::KvCache;
use crate::tokenizer::Tokenizer;

/// Decides from a row's generated text whether the row is finished.
pub trait StopCriterion: Send + Sync + std::fmt::Debug {
    /// `before` is the generated text without the newest token, `after` with it.
    fn is_stop(&self, before: &str, after: &str) -> bool;
}

/// HF's `stop_strings`: the row is finished once the string occurs in its text at a place
/// that overlaps the newest token (an empty string never matches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopString(pub String);

impl StopCriterion for StopString {
    fn is_stop(&self, before: &str, after: &str) -> bool {
        let s = self.0.as_str();
        if s.is_empty() {
            return false;
        }
        // Bytes the newest token left unchanged; a match must end past them.
        let common = before
            .char_indices()
            .zip(after.chars())
            .find(|((_, a), b)| a != b)
            .map_or(before.len().min(after.len()), |((i, _), _)| i);
        let mut start = (common + 1).saturating_sub(s.len());
        while !after.is_char_boundary(start) {
            start += 1;
        }
        after[start..].contains(s)
    }
}

/// HF's `early_stopping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    /// Stop a prompt as soon as `num_beams` hypotheses are finished.
    True,
    /// HF's default heuristic: stop when the best running beam, scored at the current length,
    /// cannot beat the worst finished hypothesis.
    #[default]
    False,
    /// Canonical beam search: with a positive length penalty, assume running beams may reach
    /// `max_new_tokens`.
    Never,
}

/// Decoding settings (HF `GenerationConfig` names and defaults).
#[derive(Debug, Clone)]
pub struct GenerationConfig {
    /// Upper bound on generated tokens (EOS included).
    pub max_new_tokens: usize,
    /// Beams; 1 = greedy or sampling.
    pub num_beams: usize,
    /// Sample instead of taking the argmax (only with `num_beams == 1`).
    pub do_sample: bool,
    /// Sampling temperature.
    pub temperature: f64,
    /// Nucleus sampling mass (1.0 = off).
    pub top_p: f64,
    /// Keep only the k most likely tokens when sampling (0 = off).
    pub top_k: usize,
    /// Seed of the sampler.
    pub seed: u64,
    /// Beam-score length exponent.
    pub length_penalty: f64,
    /// Beam stopping rule.
    pub early_stopping: EarlyStopping,
    /// EOS ids; `None` = the model's (generation_config.json, then config.json).
    pub eos_token_ids: Option<Vec<u32>>,
    /// Adapter applied to these requests (`None` = base model).
    pub adapter: Option<String>,
    /// Prompts decoded together.
    pub batch_size: usize,
    /// Stop criteria besides EOS (none by default).
    pub stops: Vec<Arc<dyn StopCriterion>>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            max_new_tokens: 256,
            num_beams: 1,
            do_sample: false,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::False,
            eos_token_ids: None,
            adapter: None,
            batch_size: 8,
            stops: Vec::new(),
        }
    }
}

/// The result for one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The prompt's token ids.
    pub prompt_ids: Vec<u32>,
    /// Generated tokens, EOS included if produced.
    pub token_ids: Vec<u32>,
    /// Beam score (`sum_logprobs / len^length_penalty`); sum of log-probabilities otherwise.
    pub score: f64,
}

/// Decodes every prompt (token ids) and returns one [`Generation`] per prompt, in order.
/// `on_done` is called with the number of prompts finished so far. Up to `batch_size`
/// prompts are decoded together; a finished prompt's place is taken by the next one at the
/// following step (continuous batching), and each prompt's result is the one it would have
/// alone.
pub fn generate(
    model: &Model,
    prompts: &[Vec<u32>],
    cfg: &GenerationConfig,
    on_done: &mut dyn FnMut(usize),
) -> Result<Vec<Generation>> {
    let mut results: Vec<Option<Generation>> = vec![None; prompts.len()];
    let mut done = 0;
    generate_each(model, prompts, cfg, &mut |i, g| {
        results[i] = Some(g);
        done += 1;
        on_done(done);
        Ok(())
    })?;
    results
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .context("a prompt was not decoded")
}

/// [`generate`] handing each prompt's [`Generation`] to `on_finished` with the prompt's
/// index as soon as it is finished (prompts finish out of order); an error it returns
/// stops the decoding.
pub fn generate_each(
    model: &Model,
    prompts: &[Vec<u32>],
    cfg: &GenerationConfig,
    on_finished: &mut dyn FnMut(usize, Generation) -> Result<()>,
) -> Result<()> {
    cfg.validate()?;
    ensure!(cfg.batch_size >= 1, "batch_size must be at least 1");
    model.check_adapters(Adapters::All(cfg.adapter.as_deref()))?;
    if let Some(i) = prompts.iter().position(Vec::is_empty) {
        bail!("prompt {i} is empty (no tokens)");
    }
    let shared = Arc::new(cfg.clone());
    let mut decoder = Decoder::new(model, cfg.seed);
    let (mut queued, mut done) = (0, 0);
    while done < prompts.len() {
        let room = cfg.batch_size - decoder.len();
        let admit = (queued..prompts.len().min(queued + room))
            .map(|i| DecodeRequest {
                id: i as u64,
                prompt: prompts[i].clone(),
                cfg: shared.clone(),
            })
            .collect::<Vec<_>>();
        queued += admit.len();
        decoder.add(admit)?;
        for (id, g) in decoder.step()? {
            done += 1;
            on_finished(id as usize, g)?;
        }
    }
    Ok(())
}

impl GenerationConfig {
    /// Checks the settings that do not depend on the model.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.num_beams >= 1, "num_beams must be at least 1");
        ensure!(
            self.max_new_tokens >= 1,
            "max_new_tokens must be at least 1"
        );
        if self.do_sample && self.num_beams > 1 {
            bail!("beam sampling (do_sample with num_beams > 1) is not supported");
        }
        if self.do_sample {
            ensure!(
                self.temperature > 0.0,
                "temperature must be positive when sampling"
            );
        }
        Ok(())
    }

    /// Candidates kept per row and step: the best token (greedy, sampling) or HF's
    /// `max(2, 1 + n_eos)·beams` (beam search).
    fn candidates(&self, eos: usize) -> usize {
        if self.num_beams == 1 {
            1
        } else {
            (1 + eos).max(2) * self.num_beams
        }
    }
}

/// One prompt for a [`Decoder`], with its own settings (adapter, beams, limits, stops).
#[derive(Debug, Clone)]
pub struct DecodeRequest {
    /// The caller's key, returned with the result.
    pub id: u64,
    /// Prompt token ids.
    pub prompt: Vec<u32>,
    /// Decoding settings (`batch_size` is not used).
    pub cfg: Arc<GenerationConfig>,
}

/// Continuous batching: prompts join at step boundaries ([`Decoder::add`]), each step
/// generates one token for every row in one forward pass ([`Decoder::step`]), and finished
/// prompts leave. Prompts may use different adapters (the base matmuls run once for all
/// rows, each row gets its own adapter's delta) and different settings. Each prompt is
/// prefilled alone, its rows are left-padded and masked, and decoding a prompt never depends
/// on its neighbours, so its result is the one [`generate`] gives it alone.
///
/// After an error the decoder's state is unspecified: drop it.
pub struct Decoder<'m> {
    model: &'m Model,
    tokenizer: Option<&'m Tokenizer>,
    slots: Vec<Slot>,
    cache: KvCache,
    /// Row-major logits of the current rows, one buffer reused across steps.
    logits: Vec<f32>,
    vocab: usize,
    /// Sampling draws, shared by the rows in row order.
    rng: rand::rngs::StdRng,
}

/// A prompt in flight.
struct Slot {
    id: u64,
    prompt: Vec<u32>,
    cfg: Arc<GenerationConfig>,
    eos: Vec<u32>,
    search: Search,
    /// Steps taken (the number of tokens chosen so far).
    step: usize,
    /// Rows of the cache and the logits it holds: 1 until a beam prompt's first step, then
    /// `num_beams`.
    rows: usize,
}

impl<'m> Decoder<'m> {
    /// An empty decoder; `seed` seeds the sampler.
    pub fn new(model: &'m Model, seed: u64) -> Self {
        Decoder {
            model,
            tokenizer: model.tokenizer().ok(),
            slots: Vec::new(),
            cache: model.new_cache(0),
            logits: Vec::new(),
            vocab: 0,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
        }
    }

    /// Prompts in flight.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no prompt is in flight.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Rows in flight (a beam prompt has one per beam).
    pub fn rows(&self) -> usize {
        self.cache.rows()
    }

    /// Distinct adapters of the prompts in flight (the base model counting as one).
    pub fn adapters(&self) -> usize {
        let names: std::collections::BTreeSet<Option<&str>> = self
            .slots
            .iter()
            .map(|s| s.cfg.adapter.as_deref())
            .collect();
        names.len()
    }

    /// Prefills `requests` (each alone) and adds them to the batch; they take their first
    /// token at the next [`Decoder::step`].
    pub fn add(&mut self, requests: Vec<DecodeRequest>) -> Result<()> {
        if requests.is_empty() {
            return Ok(());
        }
        for r in &requests {
            r.cfg.validate()?;
            ensure!(!r.prompt.is_empty(), "empty prompt (no tokens)");
            self.model
                .check_adapters(Adapters::All(r.cfg.adapter.as_deref()))?;
            if !r.cfg.stops.is_empty() {
                self.model.tokenizer()?;
            }
        }
        let mut caches = Vec::with_capacity(requests.len() + 1);
        let mut hidden = Vec::with_capacity(requests.len());
        for r in &requests {
            let mut cache = self.model.new_cache(1);
            let adapter = Adapters::All(r.cfg.adapter.as_deref());
            let prompt = std::slice::from_ref(&r.prompt);
            hidden.push(self.model.step_hidden(prompt, &mut cache, adapter)?);
            caches.push(cache);
        }
        // The prompts' first logits come from one pass over the LM head.
        let mut logits = Vec::new();
        self.model
            .head_into(&Tensor::cat(&hidden, 0)?, &mut logits)?;
        self.vocab = logits.len() / requests.len();
        self.logits.extend_from_slice(&logits);
        let old = std::mem::replace(&mut self.cache, self.model.new_cache(0));
        if old.rows() > 0 {
            caches.insert(0, old);
        }
        self.cache = KvCache::stack(&caches)?;
        let model_eos = self.model.eos_token_ids();
        self.slots
            .extend(requests.into_iter().map(|r| Slot::new(r, model_eos)));
        Ok(())
    }

    /// Chooses the next token of every prompt, then runs the forward pass of every row that
    /// goes on. Returns the prompts that finished at this step with their results.
    pub fn step(&mut self) -> Result<Vec<(u64, Generation)>> {
        if self.slots.is_empty() {
            return Ok(Vec::new());
        }
        let logits = std::mem::take(&mut self.logits);
        let rows: Vec<&[f32]> = logits.chunks_exact(self.vocab).collect();
        let row_k: Vec<usize> = self
            .slots
            .iter()
            .flat_map(|s| std::iter::repeat_n(s.cfg.candidates(s.eos.len()), s.rows))
            .collect();
        ensure!(
            row_k.len() == rows.len(),
            "decoder holds {} logit rows for {} rows",
            rows.len(),
            row_k.len()
        );
        let summaries = crate::pool::par_map(rows.len(), |r| RowSummary::new(rows[r], row_k[r]));
        let mut next_idx = Vec::new();
        let mut next_tok = Vec::new();
        let mut finished = Vec::new();
        let mut going = Vec::with_capacity(self.slots.len());
        let mut r = 0;
        for mut slot in std::mem::take(&mut self.slots) {
            let n = slot.rows;
            let conts = slot.advance(
                &rows[r..r + n],
                &summaries[r..r + n],
                self.tokenizer,
                &mut self.rng,
            )?;
            if conts.is_empty() {
                finished.push((slot.id, slot.into_generation()?));
            } else {
                for &(src, tok) in &conts {
                    next_idx.push(r + if n == 1 { 0 } else { src });
                    next_tok.push(vec![tok]);
                }
                slot.rows = conts.len();
                going.push(slot);
            }
            r += n;
        }
        self.slots = going;
        self.logits = logits;
        self.keep_rows(&next_idx, false)?;
        if !self.slots.is_empty() {
            let adapters = self.row_adapters();
            let adapters: Vec<Option<&str>> = adapters.iter().map(|a| a.as_deref()).collect();
            self.model.step_into(
                &next_tok,
                &mut self.cache,
                Adapters::PerRow(&adapters),
                &mut self.logits,
            )?;
        }
        Ok(finished)
    }

    /// Drops the prompts for which `keep(id)` is false (a client that went away).
    pub fn retain(&mut self, mut keep: impl FnMut(u64) -> bool) -> Result<()> {
        let mut idx = Vec::new();
        let mut r = 0;
        let mut kept = Vec::with_capacity(self.slots.len());
        for slot in std::mem::take(&mut self.slots) {
            let rows = r..r + slot.rows;
            r = rows.end;
            if keep(slot.id) {
                idx.extend(rows);
                kept.push(slot);
            }
        }
        self.slots = kept;
        self.keep_rows(&idx, true)
    }

    /// Keeps (reorders, duplicates) the cache rows `idx`, and with `logits` the logit rows
    /// too; an empty selection frees the cache.
    fn keep_rows(&mut self, idx: &[usize], logits: bool) -> Result<()> {
        if idx.is_empty() {
            self.cache = self.model.new_cache(0);
            self.logits.clear();
            return Ok(());
        }
        let identity =
            idx.len() == self.cache.rows() && idx.iter().enumerate().all(|(i, &j)| i == j);
        if identity {
            return Ok(());
        }
        self.cache.select_rows(idx)?;
        self.cache.trim_padding()?;
        if logits {
            let v = self.vocab;
            self.logits = idx
                .iter()
                .flat_map(|&i| self.logits[i * v..(i + 1) * v].iter().copied())
                .collect();
        }
        Ok(())
    }

    /// The adapter of every row, in row order.
    fn row_adapters(&self) -> Vec<Option<String>> {
        self.slots
            .iter()
            .flat_map(|s| std::iter::repeat_n(s.cfg.adapter.clone(), s.rows))
            .collect()
    }
}

impl Slot {
    fn new(r: DecodeRequest, model_eos: &[u32]) -> Slot {
        let eos = r
            .cfg
            .eos_token_ids
            .clone()
            .unwrap_or_else(|| model_eos.to_vec());
        let width = r.cfg.num_beams;
        let search = if width == 1 {
            Search::Single(SingleState {
                tokens: Vec::new(),
                score: 0.0,
                done: false,
            })
        } else {
            let mut running = vec![
                Hyp {
                    tokens: Vec::new(),
                    score: -1e9
                };
                width
            ];
            running[0].score = 0.0;
            Search::Beam(BeamState {
                running,
                finished: Vec::new(),
                heuristic_unsatisfied: true,
                done: false,
            })
        };
        Slot {
            id: r.id,
            prompt: r.prompt,
            cfg: r.cfg,
            eos,
            search,
            step: 0,
            rows: 1,
        }
    }

    /// Takes one step on this prompt's rows; returns the continuations, (source row, token)
    /// per row, or nothing when the prompt is finished.
    fn advance(
        &mut self,
        rows: &[&[f32]],
        summaries: &[RowSummary],
        tokenizer: Option<&Tokenizer>,
        rng: &mut rand::rngs::StdRng,
    ) -> Result<Continuations> {
        self.step += 1;
        let ends = Ends {
            eos: &self.eos,
            stops: Stops {
                tokenizer: tokenizer.filter(|_| !self.cfg.stops.is_empty()),
                criteria: &self.cfg.stops,
            },
        };
        match &mut self.search {
            Search::Single(s) => {
                single_step(s, rows[0], &summaries[0], &self.cfg, &ends, self.step, rng)
            }
            Search::Beam(b) => {
                // At the first step one row (the prefill) stands for all beams.
                let last = summaries.len() - 1;
                let group: Vec<&RowSummary> = (0..self.cfg.num_beams)
                    .map(|i| &summaries[i.min(last)])
                    .collect();
                beam_step(b, &group, &self.cfg, &ends, self.step)
            }
        }
    }

    fn into_generation(self) -> Result<Generation> {
        let (token_ids, score) = match self.search {
            Search::Single(s) => (s.tokens, s.score),
            Search::Beam(b) => {
                let best = b
                    .finished
                    .into_iter()
                    .next()
                    .context("beam search ended without a finished hypothesis")?;
                (best.tokens, best.score as f64)
            }
        };
        Ok(Generation {
            prompt_ids: self.prompt,
            token_ids,
            score,
        })
    }
}

/// The stop criteria with the tokenizer that turns tokens into the text they judge.
struct Stops<'a> {
    /// `None` when there are no criteria (nothing is decoded then).
    tokenizer: Option<&'a Tokenizer>,
    criteria: &'a [Arc<dyn StopCriterion>],
}

impl Stops<'_> {
    /// Whether appending `tok` to the generated `tokens` meets a stop criterion.
    fn hit(&self, tokens: &[u32], tok: u32) -> Result<bool> {
        let Some(t) = self.tokenizer else {
            return Ok(false);
        };
        let before = t.decode(tokens, true)?;
        let mut ids = tokens.to_vec();
        ids.push(tok);
        let after = t.decode(&ids, true)?;
        Ok(self.criteria.iter().any(|c| c.is_stop(&before, &after)))
    }
}

/// What ends a row besides `max_new_tokens`: an EOS token or a stop.
struct Ends<'a> {
    eos: &'a [u32],
    stops: Stops<'a>,
}

impl Ends<'_> {
    /// Whether the row `tokens` is finished once `tok` is appended.
    fn hit(&self, tokens: &[u32], tok: u32) -> Result<bool> {
        Ok(self.eos.contains(&tok) || self.stops.hit(tokens, tok)?)
    }
}

/// Per-prompt search state.
enum Search {
    Single(SingleState),
    Beam(BeamState),
}

struct SingleState {
    tokens: Vec<u32>,
    score: f64,
    done: bool,
}

#[derive(Clone)]
struct Hyp {
    tokens: Vec<u32>,
    score: f32,
}

struct BeamState {
    running: Vec<Hyp>,
    finished: Vec<Hyp>,
    heuristic_unsatisfied: bool,
    done: bool,
}

/// What a prompt wants next: (row of the previous step to continue from, token) per row.
type Continuations = Vec<(usize, u32)>;

/// Greedy / sampling step for one prompt; returns the continuation (empty when done).
fn single_step(
    s: &mut SingleState,
    logits: &[f32],
    summary: &RowSummary,
    cfg: &GenerationConfig,
    ends: &Ends,
    step: usize,
    rng: &mut rand::rngs::StdRng,
) -> Result<Continuations> {
    let tok = if cfg.do_sample {
        sample(logits, cfg, rng)
    } else {
        summary.top[0].0
    };
    s.done = step >= cfg.max_new_tokens || ends.hit(&s.tokens, tok)?;
    s.tokens.push(tok);
    s.score += log_prob(logits[tok as usize], summary.shift) as f64;
    Ok(if s.done { Vec::new() } else { vec![(0, tok)] })
}

/// One HF beam-search step for one prompt; returns the running beams' continuations
/// (source beam, token), or nothing once the prompt is done.
fn beam_step(
    b: &mut BeamState,
    rows: &[&RowSummary],
    cfg: &GenerationConfig,
    ends: &Ends,
    step: usize,
) -> Result<Continuations> {
    let nb = cfg.num_beams;
    let keep = (1 + ends.eos.len()).max(2) * nb;
    let at_max = step >= cfg.max_new_tokens;
    // Candidates: (accumulated score, beam, token), best first.
    let mut cands: Vec<(f32, usize, u32)> = Vec::with_capacity(keep * nb);
    for (beam, row) in rows.iter().enumerate() {
        let base = b.running[beam].score;
        for &(tok, v) in &row.top {
            cands.push((log_prob(v, row.shift) + base, beam, tok));
        }
    }
    // Ties: lower flattened index (beam·vocab + token) first.
    cands.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    cands.truncate(keep);
    // Whether each candidate ends its hypothesis (HF's stopping criteria on the candidate).
    let ended = cands
        .iter()
        .map(|&(_, beam, tok)| -> Result<bool> {
            Ok(at_max || ends.hit(&b.running[beam].tokens, tok)?)
        })
        .collect::<Result<Vec<bool>>>()?;
    // Finished hypotheses: only among the top `nb` candidates.
    let full = b.finished.len() == nb && cfg.early_stopping == EarlyStopping::True;
    if b.heuristic_unsatisfied && !full {
        let len_pen = (step as f32).powf(cfg.length_penalty as f32);
        let newly = cands.iter().zip(&ended).take(nb).filter(|c| *c.1);
        for (&(score, beam, tok), _) in newly {
            let mut tokens = b.running[beam].tokens.clone();
            tokens.push(tok);
            b.finished.push(Hyp {
                tokens,
                score: score / len_pen,
            });
        }
        // Stable: earlier (older) hypotheses win ties.
        b.finished.sort_by(|x, y| y.score.total_cmp(&x.score));
        b.finished.truncate(nb);
    }
    // Running beams for the next step: best non-finished candidates.
    let with_end = || cands.iter().copied().zip(ended.iter().copied());
    let mut next: Vec<(f32, usize, u32)> =
        with_end().filter(|c| !c.1).map(|c| c.0).take(nb).collect();
    if next.len() < nb {
        // HF would continue with finished candidates pushed to -1e9; only possible at the end.
        next.extend(
            with_end()
                .filter(|c| c.1)
                .map(|((s, be, t), _)| (s - 1e9, be, t))
                .take(nb - next.len()),
        );
    }
    let new_running: Vec<Hyp> = next
        .iter()
        .map(|&(score, beam, tok)| {
            let mut tokens = b.running[beam].tokens.clone();
            tokens.push(tok);
            Hyp { tokens, score }
        })
        .collect();
    b.running = new_running;
    // Stopping rules (evaluated with cur_len advanced by one).
    if b.heuristic_unsatisfied {
        let denom_len = if cfg.early_stopping == EarlyStopping::Never && cfg.length_penalty > 0.0 {
            cfg.max_new_tokens
        } else {
            step
        };
        let best_possible = b.running[0].score / (denom_len as f32).powf(cfg.length_penalty as f32);
        let all_finished = b.finished.len() == nb;
        let worst = b
            .finished
            .iter()
            .map(|h| h.score)
            .fold(f32::INFINITY, f32::min);
        b.heuristic_unsatisfied = !all_finished || best_possible > worst;
    }
    let all_finished = b.finished.len() == nb;
    let all_hit = ended.iter().all(|&e| e);
    b.done = !b.heuristic_unsatisfied
        || (all_finished && cfg.early_stopping == EarlyStopping::True)
        || all_hit;
    Ok(if b.done {
        Vec::new()
    } else {
        next.iter().map(|&(_, beam, tok)| (beam, tok)).collect()
    })
}

/// What decoding needs from one row of logits, computed for all rows in parallel.
struct RowSummary {
    /// [`crate::vmath::log_softmax_shift`] of the row.
    shift: (f32, f32),
    /// The row's best tokens with their raw logits, best first. `log_softmax` is a per-row
    /// shift, so these are also the best log-probabilities.
    top: Vec<(u32, f32)>,
}

impl RowSummary {
    /// The summary of `row` with its `k` best tokens: the shift from the best one's logit
    /// (the row's largest), in one more pass over the row.
    fn new(row: &[f32], k: usize) -> Self {
        let top = crate::vmath::top_k(row, k);
        let shift = match top.first() {
            Some(&(_, max)) => crate::vmath::log_softmax_shift_with_max(row, max),
            None => crate::vmath::log_softmax_shift(row),
        };
        RowSummary { shift, top }
    }
}

/// One entry of torch's `log_softmax`: `(v − max) − log Σ exp(x − max)`.
fn log_prob(v: f32, (max, lse): (f32, f32)) -> f32 {
    (v - max) - lse
}

/// Samples a token after temperature, top-k and top-p warping (HF's order).
fn sample(logits: &[f32], cfg: &GenerationConfig, rng: &mut rand::rngs::StdRng) -> u32 {
    let scaled: Vec<f32> = logits.iter().map(|v| v / cfg.temperature as f32).collect();
    let mut order: Vec<(u32, f32)> = if cfg.top_k > 0 {
        crate::vmath::top_k(&scaled, cfg.top_k.min(scaled.len()))
    } else {
        let mut all: Vec<(u32, f32)> = scaled
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as u32, v))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1));
        all
    };
    let max = order[0].1;
    let mut probs: Vec<f64> = order
        .iter()
        .map(|&(_, v)| ((v - max) as f64).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    if cfg.top_p < 1.0 {
        // Keep the smallest prefix whose mass reaches top_p (at least one token).
        let mut mass = 0.0;
        let mut keep = 0;
        for p in &probs {
            keep += 1;
            mass += p;
            if mass >= cfg.top_p {
                break;
            }
        }
        order.truncate(keep);
        probs.truncate(keep);
    }
    let total: f64 = probs.iter().sum();
    let mut u = rng.gen::<f64>() * total;
    for (i, p) in probs.iter().enumerate() {
        if u < *p {
            return order[i].0;
        }
        u -= p;
    }
    order[order.len() - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_probs_normalise() {
        let x = [1.0f32, 2.0, 3.0];
        let shift = crate::vmath::log_softmax_shift(&x);
        let s: f32 = x.iter().map(|&v| log_prob(v, shift).exp()).sum();
        assert!((s - 1.0).abs() < 1e-6);
    }
}
