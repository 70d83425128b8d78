//! Python-compatible number and JSON formatting, so output is byte-identical to sacrebleu's.

use crate::Score;

/// Python's `f"{x:.{width}f}"` (correctly rounded, half-to-even on the exact binary value).
pub fn fixed(x: f64, width: usize) -> String {
    if x.is_nan() {
        "nan".to_string()
    } else {
        format!("{x:.width$}")
    }
}

/// Python's `repr(float)`: shortest round-trip digits, `1e-05`/`1e+16` style exponents
/// outside `[1e-4, 1e16)`, and a trailing `.0` for integral values.
pub fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_string(); // as json.dumps writes it
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let e = format!("{x:e}"); // shortest digits, e.g. "-4.853e1"
    let (mantissa, exp) = e.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let (sign, mantissa) = mantissa
        .strip_prefix('-')
        .map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..16).contains(&exp) {
        let mut m = digits[..1].to_string();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
    } else {
        format!(
            "{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    };
    format!("{sign}{body}")
}

/// A JSON value as Python's `json.dumps` prints it (object keys keep insertion order).
#[derive(Debug, Clone, PartialEq)]
pub enum PyJson {
    /// A string.
    Str(String),
    /// A float (printed with `repr`).
    Float(f64),
    /// An integer.
    Int(i64),
    /// An object with ordered keys.
    Obj(Vec<(String, PyJson)>),
    /// A list.
    List(Vec<PyJson>),
}

impl PyJson {
    /// `json.dumps(self, indent=indent, ensure_ascii=ensure_ascii)`.
    pub fn dumps(&self, indent: usize, ensure_ascii: bool) -> String {
        let mut out = String::new();
        self.write(&mut out, indent, 0, ensure_ascii);
        out
    }

    fn write(&self, out: &mut String, indent: usize, level: usize, ascii: bool) {
        let pad = |out: &mut String, level: usize| {
            out.push('\n');
            out.push_str(&" ".repeat(indent * level));
        };
        match self {
            PyJson::Str(s) => write_json_str(out, s, ascii),
            PyJson::Float(x) => out.push_str(&py_float_repr(*x)),
            PyJson::Int(i) => out.push_str(&i.to_string()),
            PyJson::Obj(items) if items.is_empty() => out.push_str("{}"),
            PyJson::List(items) if items.is_empty() => out.push_str("[]"),
            PyJson::Obj(items) => {
                out.push('{');
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(out, level + 1);
                    write_json_str(out, k, ascii);
                    out.push_str(": ");
                    v.write(out, indent, level + 1, ascii);
                }
                pad(out, level);
                out.push('}');
            }
            PyJson::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(out, level + 1);
                    v.write(out, indent, level + 1, ascii);
                }
                pad(out, level);
                out.push(']');
            }
        }
    }
}

fn write_json_str(out: &mut String, s: &str, ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ascii && (c as u32) > 0x7E) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A bootstrap confidence estimate: the mean of the resampled scores and half the 95% range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Confidence {
    /// Mean of the bootstrap scores.
    pub mean: f64,
    /// Half-width of the 95% interval.
    pub ci: f64,
}

/// sacrebleu's `Score.format(width, score_only, signature, is_json)`, with the optional
/// confidence estimate (`-ci`). The JSON form takes its signature fields from `signature`.
pub fn format_score(
    score: &Score,
    width: usize,
    score_only: bool,
    signature: &str,
    is_json: bool,
    confidence: Option<Confidence>,
) -> String {
    let mut sc = fixed(score.score, width);
    let mut d: Vec<(String, PyJson)> = vec![
        ("name".into(), PyJson::Str(score.name.clone())),
        ("score".into(), PyJson::Float(parse_fixed(&sc))),
        ("signature".into(), PyJson::Str(signature.to_string())),
    ];
    if let Some(c) = confidence.filter(|c| c.mean > 0.0) {
        let (mean, var) = (fixed(c.mean, width), fixed(c.ci, width));
        let conf = format!("μ = {mean} ± {var}");
        sc.push_str(&format!(" ({conf})"));
        d.push(("confidence_mean".into(), PyJson::Float(parse_fixed(&mean))));
        d.push(("confidence_var".into(), PyJson::Float(parse_fixed(&var))));
        d.push(("confidence".into(), PyJson::Str(conf)));
    }
    let mut full = if signature.is_empty() {
        score.name.clone()
    } else {
        format!("{}|{signature}", score.name)
    };
    full = format!("{full} = {sc}");
    if !score.verbose_tail.is_empty() {
        full.push(' ');
        full.push_str(&score.verbose_tail);
        d.push((
            "verbose_score".into(),
            PyJson::Str(score.verbose_tail.clone()),
        ));
    }
    if score_only {
        return sc;
    }
    if is_json {
        for param in signature.split('|') {
            let (k, v) = param.split_once(':').unwrap_or((param, ""));
            match d.iter_mut().find(|(key, _)| key == k) {
                Some(slot) => slot.1 = PyJson::Str(v.to_string()),
                None => d.push((k.to_string(), PyJson::Str(v.to_string()))),
            }
        }
        return PyJson::Obj(d).dumps(1, false);
    }
    full
}

/// `float(s)` for a string `fixed` produced.
fn parse_fixed(s: &str) -> f64 {
    s.parse().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (48.5, "48.5"),
            (100.0, "100.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e16, "1e+16"),
            (123456789012345.6, "123456789012345.6"),
            (48.530827009929865, "48.530827009929865"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
        ];
        for (x, want) in cases {
            assert_eq!(py_float_repr(x), want);
        }
        assert_eq!(fixed(0.125, 2), "0.12");
        assert_eq!(fixed(2.675, 2), "2.67");
    }

    #[test]
    fn json_matches_python() {
        let j = PyJson::Obj(vec![
            ("a".into(), PyJson::Str("μ \"x\"\n".into())),
            (
                "b".into(),
                PyJson::List(vec![PyJson::Int(1), PyJson::Float(2.0)]),
            ),
        ]);
        assert_eq!(
            j.dumps(1, false),
            "{\n \"a\": \"μ \\\"x\\\"\\n\",\n \"b\": [\n  1,\n  2.0\n ]\n}"
        );
        assert_eq!(PyJson::Str("μ".into()).dumps(4, true), "\"\\u03bc\"");
    }
}
