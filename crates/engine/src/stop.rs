//! The stop rule of translation: finish a row as soon as ALMA's output cleaning is decided.

use datm_data::prompt::py_strip;
use datm_model::generate::StopCriterion;

/// Finishes a translation row at the end of its first non-blank line.
///
/// ALMA's cleaning keeps the first non-blank of the generation's lines 0 and 1, else line 2
/// (and a `"\n{Tgt}:"` marker always starts a new line), so once line 0 or 1 is closed and
/// non-blank, or three lines are closed, nothing generated later can change the cleaned
/// output: greedy outputs clean to the same text with or without this stop. Beam search treats
/// the stop like EOS, as HF's `stop_strings` does, so its hypotheses may differ.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineStop;

impl StopCriterion for LineStop {
    fn is_stop(&self, _before: &str, after: &str) -> bool {
        cleaning_is_decided(after)
    }
}

/// Whether ALMA's cleaning of `generated` equals that of every continuation of it.
fn cleaning_is_decided(generated: &str) -> bool {
    let closed = generated.matches('\n').count();
    closed >= 3
        || generated
            .split('\n')
            .take(closed.min(2))
            .any(|line| !py_strip(line).is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datm_data::PromptTemplate;
    use datm_lang::Direction;

    /// A tiny deterministic generator (xorshift) so the property test needs no dependency.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn stopping_never_changes_the_cleaned_output() {
        let pieces = [
            "a", " ", "\n", "English:", "German:", "\u{3000}", "Hallo", "[/INST]", " B",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for template in [PromptTemplate::Alma, PromptTemplate::XAlmaChat] {
            for direction in ["de-en", "en-de"] {
                let d: Direction = direction.parse().unwrap();
                for _ in 0..3000 {
                    let len = 1 + next(&mut state) % 10;
                    let parts: Vec<&str> = (0..len)
                        .map(|_| pieces[(next(&mut state) % pieces.len() as u64) as usize])
                        .collect();
                    let full = parts.concat();
                    // The shortest prefix (in pieces, as tokens arrive) at which the rule fires.
                    let stop = (1..=parts.len())
                        .map(|n| parts[..n].concat())
                        .find(|p| cleaning_is_decided(p))
                        .unwrap_or_else(|| full.clone());
                    assert_eq!(
                        template.clean_output(d, &stop),
                        template.clean_output(d, &full),
                        "{template:?} {d}: {full:?} stopped at {stop:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn stops_after_the_first_non_blank_line() {
        assert!(!cleaning_is_decided(" Hello"));
        assert!(cleaning_is_decided(" Hello\n"));
        assert!(!cleaning_is_decided("\n \n"));
        assert!(cleaning_is_decided("\n Hi\n"));
        assert!(cleaning_is_decided("\n\n\n"));
    }
}
