//! Prompt templates and output cleaning, all in one place.
//!
//! [`PromptTemplate::Alma`] is ALMA's zero-shot prompt (`utils/utils.py::get_prompt`):
//!
//! ```text
//! Translate this from {Src} to {Tgt}:\n{Src}: {text}\n{Tgt}:
//! ```
//!
//! with `{Src}`/`{Tgt}` the English language names ([`datm_lang::Lang::name`]). The training text is
//! the prompt followed directly by the target (no space is inserted after `{Tgt}:`; ALMA's
//! data carries whatever leading space the target has, usually none). End-of-sequence tokens
//! are the tokenizer's business, not part of the text.
//!
//! [`PromptTemplate::XAlmaChat`] is X-ALMA's `--chat_style`: the same ALMA prompt as the user
//! turn of a Llama-2 chat template (`[INST] … [/INST]`), with the BOS/EOS tokens left to the
//! tokenizer.
//!
//! Output cleaning is ALMA's `clean_outputstring`, ported exactly (see
//! [`clean_outputstring`]).

use datm_lang::Direction;

/// One training or evaluation example: a direction and the two sides of a pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Example {
    /// Translation direction (`src` is in `direction.src`).
    pub direction: Direction,
    /// Source-side text.
    pub src: String,
    /// Target-side text (the reference).
    pub tgt: String,
}

impl Example {
    /// The prompt for this example under `template`.
    pub fn prompt(&self, template: PromptTemplate) -> String {
        template.prompt(self.direction, &self.src)
    }

    /// The full training text (prompt + target) under `template`.
    pub fn training_text(&self, template: PromptTemplate) -> String {
        template.training_text(self.direction, &self.src, &self.tgt)
    }
}

/// The prompt formats datm knows. `Alma` is the default and the paper's.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum PromptTemplate {
    /// ALMA's plain zero-shot prompt.
    #[default]
    Alma,
    /// X-ALMA's chat style: the ALMA prompt wrapped as a Llama-2 `[INST]` user turn.
    XAlmaChat,
}

/// Opening of a Llama-2 chat user turn (after BOS).
const INST_OPEN: &str = "[INST] ";
/// Closing of a Llama-2 chat user turn.
const INST_CLOSE: &str = " [/INST]";

impl PromptTemplate {
    /// Parses a template name: `alma` or `x-alma-chat`.
    pub fn from_name(name: &str) -> Option<PromptTemplate> {
        match name.trim().to_ascii_lowercase().as_str() {
            "alma" => Some(PromptTemplate::Alma),
            "x-alma-chat" | "xalma-chat" | "chat" => Some(PromptTemplate::XAlmaChat),
            _ => None,
        }
    }

    /// The prompt given to the model for translating `src_text` in `direction`.
    ///
    /// ```
    /// # use datm_data::prompt::PromptTemplate;
    /// let d = "de-en".parse().unwrap();
    /// assert_eq!(
    ///     PromptTemplate::Alma.prompt(d, "Hallo Welt"),
    ///     "Translate this from German to English:\nGerman: Hallo Welt\nEnglish:"
    /// );
    /// ```
    pub fn prompt(self, direction: Direction, src_text: &str) -> String {
        self.prompt_with_shots(direction, &[], src_text)
    }

    /// A few-shot prompt (ALMA's `get_prompt_few_shot`): each `(source, target)` shot as
    /// `\n{Src}: source\n{Tgt}: target` between the instruction and the text. With no shots
    /// this is [`PromptTemplate::prompt`].
    pub fn prompt_with_shots(
        self,
        direction: Direction,
        shots: &[(&str, &str)],
        src_text: &str,
    ) -> String {
        let alma = alma_prompt(direction, shots, src_text);
        match self {
            PromptTemplate::Alma => alma,
            PromptTemplate::XAlmaChat => format!("{INST_OPEN}{}{INST_CLOSE}", py_strip(&alma)),
        }
    }

    /// The text a model is trained on: the prompt followed by the target.
    ///
    /// ALMA appends the target with nothing in between; the chat template puts one space
    /// between `[/INST]` and the assistant turn, as Llama-2's chat template does.
    pub fn training_text(self, direction: Direction, src_text: &str, tgt_text: &str) -> String {
        let prompt = self.prompt(direction, src_text);
        match self {
            PromptTemplate::Alma => prompt + tgt_text,
            PromptTemplate::XAlmaChat => format!("{prompt} {}", py_strip(tgt_text)),
        }
    }

    /// The marker after which the translation starts: `"\n{Tgt}:"`, plus `" [/INST]"` in
    /// chat style (ALMA's `get_key_suffix`).
    pub fn key_word(self, direction: Direction) -> String {
        let base = format!("\n{}:", direction.tgt.name());
        match self {
            PromptTemplate::Alma => base,
            PromptTemplate::XAlmaChat => base + INST_CLOSE,
        }
    }

    /// Cleans a generation that continues the prompt (the decoded new tokens only).
    ///
    /// This equals ALMA's `clean_outputstring(prompt + generated, key_word, 1)`: the text up
    /// to the next `"\n{Tgt}:"`, first non-blank line, stripped.
    pub fn clean_output(self, direction: Direction, generated: &str) -> String {
        // Prepending the key word reproduces the split ALMA sees on prompt + generation:
        // the prompt ends with the key word and the key word cannot overlap itself.
        let full = format!("{}{generated}", self.key_word(direction));
        clean_outputstring(&full, &self.key_word(direction), 1)
    }

    /// Cleans a full decoded sequence (prompt + generation) of a prompt with `shots`
    /// examples, as ALMA does (`split_idx = shots + 1`).
    pub fn clean_decoded(self, direction: Direction, shots: usize, decoded: &str) -> String {
        clean_outputstring(decoded, &self.key_word(direction), shots + 1)
    }
}

/// ALMA's zero-shot prompt text.
fn alma_prompt(direction: Direction, shots: &[(&str, &str)], src_text: &str) -> String {
    let src = direction.src.name();
    let tgt = direction.tgt.name();
    let mut out = format!("Translate this from {src} to {tgt}:");
    for (s, t) in shots {
        out.push_str(&format!("\n{src}: {s}\n{tgt}: {t}"));
    }
    out.push_str(&format!("\n{src}: {src_text}\n{tgt}:"));
    out
}

/// Exact port of ALMA's `clean_outputstring(output, key_word, logger, split_idx)`.
///
/// Takes piece `split_idx` of `output.split(key_word)`, splits it into lines and returns the
/// first of lines 0, 1 that is not blank, else line 2 (all stripped as Python's `str.strip`).
/// If that fails for lack of pieces or lines, falls back to the first line of piece 2, and
/// finally to the empty string.
pub fn clean_outputstring(output: &str, key_word: &str, split_idx: usize) -> String {
    let pieces: Vec<&str> = output.split(key_word).collect();
    if let Some(piece) = pieces.get(split_idx) {
        let lines: Vec<&str> = piece.split('\n').collect();
        for (i, line) in lines.iter().enumerate().take(3) {
            let stripped = py_strip(line);
            if !stripped.is_empty() || i == 2 {
                return stripped.to_string();
            }
        }
    }
    pieces
        .get(2)
        .map(|p| py_strip(p.split('\n').next().unwrap_or("")).to_string())
        .unwrap_or_default()
}

/// Python's `str.strip()` with no arguments: Unicode whitespace plus the ASCII information
/// separators U+001C–U+001F, which Python counts as whitespace and Rust does not.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_whitespace)
}

/// Whether Python's `str.isspace` holds for `c`.
pub fn is_py_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(s: &str) -> Direction {
        s.parse().unwrap()
    }

    #[test]
    fn alma_prompt_and_training_text() {
        let t = PromptTemplate::Alma;
        let p = t.prompt(dir("en-zh"), "Open the file");
        assert_eq!(
            p,
            "Translate this from English to Chinese:\nEnglish: Open the file\nChinese:"
        );
        assert_eq!(
            t.training_text(dir("en-zh"), "Open the file", "打开文件"),
            format!("{p}打开文件")
        );
        let ex = Example {
            direction: dir("no-en"),
            src: "Hei".into(),
            tgt: " Hi".into(),
        };
        assert_eq!(
            ex.training_text(t),
            "Translate this from Norwegian to English:\nNorwegian: Hei\nEnglish: Hi"
        );
    }

    #[test]
    fn chat_template_wraps_the_alma_prompt() {
        let t = PromptTemplate::XAlmaChat;
        let d = dir("de-en");
        assert_eq!(
            t.prompt(d, "Hallo"),
            "[INST] Translate this from German to English:\nGerman: Hallo\nEnglish: [/INST]"
        );
        assert_eq!(
            t.training_text(d, "Hallo", "Hello"),
            t.prompt(d, "Hallo") + " Hello"
        );
        assert_eq!(t.key_word(d), "\nEnglish: [/INST]");
        assert_eq!(t.clean_output(d, " Hello\nGerman: x"), "Hello");
        assert_eq!(PromptTemplate::from_name("x-alma-chat"), Some(t));
        assert_eq!(
            PromptTemplate::from_name("ALMA"),
            Some(PromptTemplate::Alma)
        );
        assert_eq!(PromptTemplate::from_name("nope"), None);
    }

    #[test]
    fn clean_output_follows_alma() {
        let t = PromptTemplate::Alma;
        let d = dir("de-en");
        assert_eq!(
            t.clean_output(d, " Hello world.\nGerman: more"),
            "Hello world."
        );
        // Blank first line: ALMA moves to the next line, then the one after.
        assert_eq!(t.clean_output(d, "\n  Hello\n"), "Hello");
        assert_eq!(t.clean_output(d, " \n \n Third \nfourth"), "Third");
        // Line 2 is returned even when blank.
        assert_eq!(t.clean_output(d, " \n \n \nfourth"), "");
        // Generation that repeats the key word: cut there.
        assert_eq!(t.clean_output(d, " A\nEnglish: B"), "A");
        // Generation that starts with the key word and no lines to move on: piece 2.
        assert_eq!(t.clean_output(d, "\nEnglish: B\nC"), "B");
        assert_eq!(t.clean_output(d, ""), "");
        // Python strip removes U+001F and Unicode spaces.
        assert_eq!(t.clean_output(d, "\u{1f}\u{3000}Hi\u{a0}"), "Hi");
    }

    #[test]
    fn clean_decoded_matches_alma_on_full_text() {
        let t = PromptTemplate::Alma;
        let d = dir("en-de");
        let full = t.prompt(d, "Hello") + " Hallo\nEnglish: Hello";
        assert_eq!(t.clean_decoded(d, 0, &full), "Hallo");
        let shots = [("Good day", "Guten Tag"), ("Thanks", "Danke")];
        let p = t.prompt_with_shots(d, &shots, "Hello");
        assert_eq!(
            p,
            "Translate this from English to German:\nEnglish: Good day\nGerman: Guten Tag\nEnglish: Thanks\nGerman: Danke\nEnglish: Hello\nGerman:"
        );
        assert_eq!(t.clean_decoded(d, 2, &(p + " Hallo\nEnglish: x")), "Hallo");
        assert_eq!(clean_outputstring("no key here", "\nGerman:", 1), "");
        assert_eq!(clean_outputstring("a\nX:\nX: b\nc", "\nX:", 1), "b");
    }
}
