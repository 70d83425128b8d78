//! `datm data`: import, convert and inspect parallel corpora.
//!
//! - `datm data import-gettext --out DIR`: English-centric corpora from gettext catalogs.
//! - `datm data import-text --out DIR --split test --direction de-en a.de a.en` (or
//!   `--flores FLORES_DIR --flores-split devtest`): add a set to a corpus directory.
//! - `datm data stats DIR`: pairs per direction and split (`--json` for machines).
//! - `datm data convert IN OUT --to jsonl`: rewrite a corpus layout in another format.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use datm_data::corpus::english_centric;
use datm_data::gettext::import::{discover, import_catalogs, ImportOptions, ImportReport};
use datm_data::{
    read_flores, read_layout, read_set, write_layout, Corpus, DirectionStats, Format, Split,
};
use datm_lang::Direction;
use indicatif::{ProgressBar, ProgressStyle};

/// Import, convert and inspect parallel corpora.
#[derive(clap::Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(clap::Subcommand)]
enum DataCommand {
    /// Build English-centric corpora (ALMA layout) from a tree of gettext .mo/.po catalogs.
    ImportGettext(ImportArgs),
    /// Add a set from aligned text, TSV, JSON or JSONL files, or a Flores-style folder, to a
    /// corpus directory (ALMA layout, created if missing).
    ImportText(ImportTextArgs),
    /// Print pairs per direction and split of a corpus directory.
    Stats(StatsArgs),
    /// Rewrite a corpus directory in another format (json, jsonl, tsv, text).
    Convert(ConvertArgs),
}

/// The size of a held-out split: a fraction of English sentences, or a per-language count.
#[derive(Debug, Clone, Copy, PartialEq)]
enum SplitSize {
    /// Hash zone as a fraction of English sentences, e.g. 0.05.
    Fraction(f64),
    /// At most N pairs per language, taken from the default 5% zone.
    Count(usize),
}

impl FromStr for SplitSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(n) = s.parse::<usize>() {
            if n >= 1 {
                return Ok(SplitSize::Count(n));
            }
        }
        match s.parse::<f64>() {
            Ok(f) if (0.0..1.0).contains(&f) => Ok(SplitSize::Fraction(f)),
            _ => Err(format!(
                "{s:?}: expected a fraction in [0, 1) such as 0.05, or a count such as 500"
            )),
        }
    }
}

impl SplitSize {
    /// Default hash-zone fraction when a count is given.
    const DEFAULT_FRACTION: f64 = 0.05;

    /// The zone fraction and the optional cap.
    fn zone_and_cap(self) -> (f64, Option<usize>) {
        match self {
            SplitSize::Fraction(f) => (f, None),
            SplitSize::Count(n) => (Self::DEFAULT_FRACTION, Some(n)),
        }
    }
}

#[derive(clap::Args)]
struct ImportArgs {
    /// Root of the locale tree ({locale}/LC_MESSAGES/*.mo|.po, or {locale}.po files).
    #[arg(long, default_value = "/usr/share/locale")]
    locale_dir: PathBuf,
    /// Only these languages (comma-separated paper codes); default: all 49.
    #[arg(long)]
    langs: Option<String>,
    /// Output directory (ALMA layout: {xx}en/train.{xx}-en.json, …).
    #[arg(long)]
    out: PathBuf,
    /// Minimum English words per pair (placeholders do not count).
    #[arg(long, default_value_t = 3)]
    min_words: usize,
    /// Maximum characters on either side.
    #[arg(long, default_value_t = 400)]
    max_chars: usize,
    /// Validation split: a fraction of English sentences (0.05), or a per-language cap (500) on a
    /// 5% zone whose excess is left out (never moved to train).
    #[arg(long, default_value = "0.05")]
    valid: SplitSize,
    /// Test split: a fraction of English sentences (0.05), or a per-language cap (500) on a
    /// 5% zone whose excess is left out (never moved to train).
    #[arg(long, default_value = "0.05")]
    test: SplitSize,
    /// Output format: json (ALMA), jsonl, tsv or text.
    #[arg(long, default_value = "json")]
    format: String,
}

#[derive(clap::Args)]
struct ImportTextArgs {
    /// Corpus directory to add to (ALMA layout, JSON).
    #[arg(long)]
    out: PathBuf,
    /// Split the set becomes: train, valid or test.
    #[arg(long)]
    split: String,
    /// Direction of the input files (source first), e.g. de-en.
    #[arg(long)]
    direction: Option<Direction>,
    /// Input format: text (two files: source, target), tsv, json or jsonl.
    #[arg(long, default_value = "text")]
    format: String,
    /// Keep the set for this direction only (default: it serves both directions).
    #[arg(long)]
    directed: bool,
    /// A Flores-style folder ({code}.{split} or deu_Latn.devtest files) instead of files.
    #[arg(long, conflicts_with = "direction")]
    flores: Option<PathBuf>,
    /// File suffix in the Flores folder (default: the --split value), e.g. devtest.
    #[arg(long)]
    flores_split: Option<String>,
    /// Languages to take from the Flores folder (default: all 49).
    #[arg(long)]
    langs: Option<String>,
    /// Input files.
    files: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct StatsArgs {
    /// Corpus directory (ALMA layout).
    dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ConvertArgs {
    /// Input corpus directory (any supported format).
    input: PathBuf,
    /// Output directory.
    output: PathBuf,
    /// Output format: json, jsonl, tsv or text.
    #[arg(long)]
    to: String,
}

/// Runs `datm data`.
pub fn run(args: DataArgs) -> anyhow::Result<()> {
    match args.command {
        DataCommand::ImportGettext(a) => import(a),
        DataCommand::ImportText(a) => import_text(a),
        DataCommand::Stats(a) => stats(a),
        DataCommand::Convert(a) => convert(a),
    }
}

/// Writes `text` to stdout; a closed pipe (`datm data stats | head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// The name of the import report written next to the corpus.
const REPORT_FILE: &str = "import-report.json";

fn import(a: ImportArgs) -> anyhow::Result<()> {
    let format = Format::from_name(&a.format)?;
    let langs = a.langs.as_deref().map(datm_lang::parse_list).transpose()?;
    let (valid_fraction, max_valid) = a.valid.zone_and_cap();
    let (test_fraction, max_test) = a.test.zone_and_cap();
    let opts = ImportOptions {
        langs,
        min_words: a.min_words,
        max_chars: a.max_chars,
        valid_fraction,
        test_fraction,
        max_valid,
        max_test,
    };
    let found = discover(&a.locale_dir, opts.langs.as_deref())?;
    let bar = ProgressBar::new(found.catalogs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} catalogs {elapsed} {wide_msg}")
            .expect("valid template"),
    );
    let (corpus, report) = import_catalogs(&found, &opts, &|p: &Path| {
        bar.inc(1);
        bar.set_message(p.display().to_string());
    })?;
    bar.finish_and_clear();
    write_layout(&corpus, &a.out, format)?;
    let report_path = a.out.join(REPORT_FILE);
    let json = serde_json::to_string_pretty(&report)? + "\n";
    datm_fsio::write_atomic(&report_path, json.as_bytes())?;
    emit(&format!(
        "{}{}wrote {} ({REPORT_FILE} has the details)\n",
        import_summary(&report, &corpus),
        stats_table(&corpus.stats()),
        a.out.display()
    ))
}

/// The human-readable summary of an import.
fn import_summary(report: &ImportReport, corpus: &Corpus) -> String {
    let mut out = format!(
        "catalogs: {} read, {} failed; skipped {} iso_* code lists, {} outside LC_MESSAGES, {} of other languages\n",
        report.catalogs_read,
        report.failed.len(),
        report.code_lists_skipped,
        report.other_categories_skipped,
        report.other_langs_skipped
    );
    for f in &report.failed {
        out += &format!("  skipped {}: {}\n", f.path, f.reason);
    }
    for w in &report.warnings {
        out += &format!("  warning {}: {}\n", w.path, w.reason);
    }
    let unmapped: Vec<&str> = report.unmapped_locales.keys().map(String::as_str).collect();
    out += &format!(
        "locales not used: {} ({})\n",
        unmapped.len(),
        unmapped.join(" ")
    );
    let d = &report.dropped;
    out += &format!(
        "entries dropped: {} fuzzy, {} untranslated, {} identical to English, {} too short, {} too long, {} missing plural form, {} under a bad plural rule\n",
        d.fuzzy, d.untranslated, d.identical, d.too_short, d.too_long, d.missing_plural_form, d.bad_plural_rule
    );
    let missing: Vec<&str> = datm_lang::non_english()
        .filter(|&l| {
            corpus
                .pairs(Direction::to_english(l), Split::Train)
                .is_empty()
        })
        .map(|l| l.code())
        .collect();
    out += &format!(
        "languages with training pairs: {} of 49 (+ English){}\n",
        49 - missing.len(),
        if missing.is_empty() {
            String::new()
        } else {
            format!("; missing: {}", missing.join(" "))
        }
    );
    out
}

/// Pairs per direction and split as an aligned text table with a total row.
fn stats_table(rows: &[DirectionStats]) -> String {
    let mut out = format!(
        "{:<10} {:>8} {:>8} {:>8}\n",
        "direction", "train", "valid", "test"
    );
    let (mut tr, mut va, mut te) = (0, 0, 0);
    for r in rows {
        out += &format!(
            "{:<10} {:>8} {:>8} {:>8}\n",
            r.direction.to_string(),
            r.train,
            r.valid,
            r.test
        );
        (tr, va, te) = (tr + r.train, va + r.valid, te + r.test);
    }
    out += &format!("{:<10} {:>8} {:>8} {:>8}\n", "total", tr, va, te);
    out
}

fn import_text(a: ImportTextArgs) -> anyhow::Result<()> {
    let split: Split = a.split.parse()?;
    let mut corpus = if a.out.is_dir() {
        read_layout(&a.out)?
    } else {
        Corpus::new()
    };
    match (&a.flores, a.direction) {
        (Some(dir), None) => {
            let langs = match &a.langs {
                Some(l) => datm_lang::parse_list(l)?,
                None => datm_lang::non_english().collect(),
            };
            let name = a.flores_split.as_deref().unwrap_or(&a.split);
            for lang in langs {
                corpus.set(lang, split, read_flores(dir, lang, name)?)?;
            }
        }
        (None, Some(direction)) => {
            let format = Format::from_name(&a.format)?;
            let lang = english_centric(direction)?;
            let pairs = read_set(format, &a.files, direction)?;
            if a.directed {
                corpus.set_directed(direction, split, pairs)?;
            } else {
                corpus.set(lang, split, pairs)?;
            }
        }
        _ => anyhow::bail!("give either --flores DIR or --direction with input files"),
    }
    let written = write_layout(&corpus, &a.out, Format::Json)?;
    emit(&format!(
        "wrote {} files under {}\n",
        written.len(),
        a.out.display()
    ))
}

fn stats(a: StatsArgs) -> anyhow::Result<()> {
    let corpus = read_layout(&a.dir)?;
    if corpus.is_empty() {
        anyhow::bail!(
            "{}: no corpus found (expected {{xx}}en/{{split}}.{{src}}-{{tgt}}.json folders)",
            a.dir.display()
        );
    }
    let rows = corpus.stats();
    if a.json {
        emit(&(serde_json::to_string_pretty(&rows)? + "\n"))
    } else {
        emit(&stats_table(&rows))
    }
}

fn convert(a: ConvertArgs) -> anyhow::Result<()> {
    let format = Format::from_name(&a.to)?;
    let corpus = read_layout(&a.input)?;
    let written = write_layout(&corpus, &a.output, format)?;
    emit(&format!(
        "wrote {} files under {}\n",
        written.len(),
        a.output.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sizes() {
        assert_eq!("0.05".parse::<SplitSize>(), Ok(SplitSize::Fraction(0.05)));
        assert_eq!("0".parse::<SplitSize>(), Ok(SplitSize::Fraction(0.0)));
        assert_eq!("500".parse::<SplitSize>(), Ok(SplitSize::Count(500)));
        assert!("1.5".parse::<SplitSize>().is_err());
        assert!("x".parse::<SplitSize>().is_err());
        assert_eq!(SplitSize::Count(7).zone_and_cap(), (0.05, Some(7)));
    }
}
