//! `Plural-Forms` headers: `nplurals=N; plural=EXPR;` with EXPR a C expression in `n`.
//!
//! Import uses the rule to find which `msgstr[i]` holds the singular (the form for `n = 1`;
//! in Arabic, for instance, that is `msgstr[1]`, not `msgstr[0]`) and which holds a general
//! plural (the form for `n = 5`).

/// A parsed plural rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluralForms {
    /// Number of plural forms.
    pub nplurals: usize,
    expr: Expr,
}

/// A C expression over `n`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    N,
    Num(u64),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// Binary operators, in C's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    /// Binding power (higher binds tighter).
    fn power(self) -> u8 {
        use BinOp::*;
        match self {
            Or => 2,
            And => 3,
            Eq | Ne => 4,
            Lt | Gt | Le | Ge => 5,
            Add | Sub => 6,
            Mul | Div | Rem => 7,
        }
    }

    /// Applies the operator; `None` on division by zero.
    fn apply(self, a: u64, b: u64) -> Option<u64> {
        use BinOp::*;
        Some(match self {
            Or => u64::from(a != 0 || b != 0),
            And => u64::from(a != 0 && b != 0),
            Eq => u64::from(a == b),
            Ne => u64::from(a != b),
            Lt => u64::from(a < b),
            Gt => u64::from(a > b),
            Le => u64::from(a <= b),
            Ge => u64::from(a >= b),
            Add => a.wrapping_add(b),
            Sub => a.wrapping_sub(b),
            Mul => a.wrapping_mul(b),
            Div => a.checked_div(b)?,
            Rem => a.checked_rem(b)?,
        })
    }
}

impl Expr {
    /// Evaluates the expression for `n`.
    fn eval(&self, n: u64) -> Option<u64> {
        Some(match self {
            Expr::N => n,
            Expr::Num(v) => *v,
            Expr::Not(e) => u64::from(e.eval(n)? == 0),
            Expr::Neg(e) => e.eval(n)?.wrapping_neg(),
            Expr::Bin(op, a, b) => op.apply(a.eval(n)?, b.eval(n)?)?,
            Expr::Cond(c, a, b) => {
                if c.eval(n)? != 0 {
                    a.eval(n)?
                } else {
                    b.eval(n)?
                }
            }
        })
    }
}

/// Tokens of the expression language.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    N,
    Num(u64),
    Op(BinOp),
    Not,
    Minus,
    Question,
    Colon,
    LParen,
    RParen,
}

/// Splits an expression into tokens.
fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let two = b.get(i..i + 2).unwrap_or(&[]);
        let (tok, len) = match (b[i], two) {
            (c, _) if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            (c, _) if c.is_ascii_digit() => {
                let end = b[i..]
                    .iter()
                    .position(|c| !c.is_ascii_digit())
                    .map_or(b.len(), |p| i + p);
                let v = s[i..end]
                    .parse()
                    .map_err(|_| format!("number too large at {i}"))?;
                (Tok::Num(v), end - i)
            }
            (_, b"||") => (Tok::Op(BinOp::Or), 2),
            (_, b"&&") => (Tok::Op(BinOp::And), 2),
            (_, b"==") => (Tok::Op(BinOp::Eq), 2),
            (_, b"!=") => (Tok::Op(BinOp::Ne), 2),
            (_, b"<=") => (Tok::Op(BinOp::Le), 2),
            (_, b">=") => (Tok::Op(BinOp::Ge), 2),
            (b'n', _) => (Tok::N, 1),
            (b'<', _) => (Tok::Op(BinOp::Lt), 1),
            (b'>', _) => (Tok::Op(BinOp::Gt), 1),
            (b'+', _) => (Tok::Op(BinOp::Add), 1),
            (b'-', _) => (Tok::Minus, 1),
            (b'*', _) => (Tok::Op(BinOp::Mul), 1),
            (b'/', _) => (Tok::Op(BinOp::Div), 1),
            (b'%', _) => (Tok::Op(BinOp::Rem), 1),
            (b'!', _) => (Tok::Not, 1),
            (b'?', _) => (Tok::Question, 1),
            (b':', _) => (Tok::Colon, 1),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            _ => {
                return Err(format!(
                    "unexpected character {:?} in plural expression",
                    s[i..].chars().next().unwrap_or('?')
                ))
            }
        };
        out.push(tok);
        i += len;
    }
    Ok(out)
}

/// The deepest nesting of parser calls an expression may need. Real rules (Arabic's, the
/// most complex in gettext's own table) need under 40; the cap keeps a hostile header from
/// overflowing the stack in the parser, in evaluation and in dropping the tree.
pub const MAX_DEPTH: usize = 200;

/// A precedence-climbing parser over tokens.
struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    /// Parser calls now active (see [`MAX_DEPTH`]).
    depth: usize,
}

impl Parser {
    /// Runs `f` one nesting level deeper, refusing to go past [`MAX_DEPTH`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("expression nested deeper than {MAX_DEPTH} levels"));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: Tok) -> Result<(), String> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            other => Err(format!("expected {want:?}, found {other:?}")),
        }
    }

    /// A full expression, including the conditional operator (right-associative).
    fn conditional(&mut self) -> Result<Expr, String> {
        self.nested(Self::conditional_at)
    }

    fn conditional_at(&mut self) -> Result<Expr, String> {
        let cond = self.binary(0)?;
        if self.peek() != Some(&Tok::Question) {
            return Ok(cond);
        }
        self.pos += 1;
        let a = self.conditional()?;
        self.expect(Tok::Colon)?;
        let b = self.conditional()?;
        Ok(Expr::Cond(Box::new(cond), Box::new(a), Box::new(b)))
    }

    /// Binary operators binding tighter than `min`.
    fn binary(&mut self, min: u8) -> Result<Expr, String> {
        self.nested(|p| p.binary_at(min))
    }

    fn binary_at(&mut self, min: u8) -> Result<Expr, String> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op(op)) => *op,
                Some(Tok::Minus) => BinOp::Sub,
                _ => break,
            };
            if op.power() <= min {
                break;
            }
            self.pos += 1;
            let rhs = self.binary(op.power())?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    /// Unary operators and atoms.
    fn unary(&mut self) -> Result<Expr, String> {
        self.nested(Self::unary_at)
    }

    fn unary_at(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Tok::N) => Ok(Expr::N),
            Some(Tok::Num(v)) => Ok(Expr::Num(v)),
            Some(Tok::Not) => Ok(Expr::Not(Box::new(self.unary()?))),
            Some(Tok::Minus) => Ok(Expr::Neg(Box::new(self.unary()?))),
            Some(Tok::LParen) => {
                let e = self.conditional()?;
                self.expect(Tok::RParen)?;
                Ok(e)
            }
            other => Err(format!("expected n, a number or '(', found {other:?}")),
        }
    }
}

/// The start of `text` for an error message: at most 80 characters, then `…`.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

impl PluralForms {
    /// gettext's default rule: `nplurals=2; plural=n != 1;`.
    pub fn germanic() -> PluralForms {
        PluralForms {
            nplurals: 2,
            expr: Expr::Bin(BinOp::Ne, Box::new(Expr::N), Box::new(Expr::Num(1))),
        }
    }

    /// Parses a `Plural-Forms` value such as `nplurals=2; plural=(n != 1);`.
    pub fn parse(spec: &str) -> Result<PluralForms, String> {
        let field = |name: &str| -> Option<&str> {
            spec.split(';')
                .filter_map(|part| part.split_once('='))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim())
        };
        let nplurals: usize = field("nplurals")
            .ok_or("Plural-Forms lacks nplurals=")?
            .parse()
            .map_err(|_| format!("Plural-Forms: bad nplurals in {:?}", excerpt(spec)))?;
        if nplurals == 0 {
            return Err("Plural-Forms: nplurals must be at least 1".into());
        }
        // The expression itself contains '=' (==, !=, <=), so take everything after "plural=".
        // ("nplurals=" does not contain "plural=": an 's' comes before its '='.)
        let at = spec.find("plural=").ok_or("Plural-Forms lacks plural=")?;
        let text = spec[at + "plural=".len()..].split(';').next().unwrap_or("");
        let mut p = Parser {
            toks: tokenize(text)?,
            pos: 0,
            depth: 0,
        };
        let expr = p
            .conditional()
            .map_err(|e| format!("Plural-Forms {:?}: {e}", excerpt(text)))?;
        if p.pos != p.toks.len() {
            return Err(format!("Plural-Forms {:?}: trailing tokens", excerpt(text)));
        }
        Ok(PluralForms { nplurals, expr })
    }

    /// The form index for count `n`, if it evaluates inside `0..nplurals`.
    pub fn index(&self, n: u64) -> Option<usize> {
        let v = self.expr.eval(n)? as usize;
        (v < self.nplurals).then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_rules() {
        let en = PluralForms::parse("nplurals=2; plural=(n != 1);").unwrap();
        assert_eq!(
            (en.index(1), en.index(5), en.index(0)),
            (Some(0), Some(1), Some(1))
        );
        let ru = PluralForms::parse(
            "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);",
        )
        .unwrap();
        let got: Vec<_> = [1, 2, 5, 11, 21, 22, 112]
            .iter()
            .map(|&n| ru.index(n).unwrap())
            .collect();
        assert_eq!(got, [0, 1, 2, 2, 0, 1, 2]);
        let ar = PluralForms::parse(
            "nplurals=6; plural=n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : n%100>=11 ? 4 : 5;",
        )
        .unwrap();
        assert_eq!(
            (ar.index(1), ar.index(5), ar.index(0)),
            (Some(1), Some(3), Some(0))
        );
        let zh = PluralForms::parse("nplurals=1; plural=0;").unwrap();
        assert_eq!((zh.index(1), zh.index(5)), (Some(0), Some(0)));
        let fr = PluralForms::parse("nplurals=2; plural=n>1;").unwrap();
        assert_eq!(
            (fr.index(0), fr.index(1), fr.index(2)),
            (Some(0), Some(0), Some(1))
        );
        assert_eq!(PluralForms::germanic().index(1), Some(0));
    }

    #[test]
    fn arithmetic_precedence_and_errors() {
        let p = PluralForms::parse("nplurals=9; plural=1 + 2 * 3 - n / 2 % 3;").unwrap();
        assert_eq!(p.index(4), Some(5)); // 1 + 6 - (2 % 3) = 5
        assert!(PluralForms::parse("nplurals=2; plural=n !! 1;").is_err());
        assert!(PluralForms::parse("plural=n != 1;").is_err());
        assert!(PluralForms::parse("nplurals=2; plural=(n != 1;").is_err());
        let deep = format!(
            "nplurals=2; plural={}n{};",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        let err = PluralForms::parse(&deep).unwrap_err();
        assert!(err.contains("nested deeper than 200"), "{err}");
        assert!(err.len() < 200, "the message quotes only the start: {err}");
        let nots = format!("nplurals=2; plural={}n;", "!".repeat(100_000));
        assert!(PluralForms::parse(&nots).is_err());
        let chain = format!("nplurals=2; plural={}0;", "n ? 0 : ".repeat(100_000));
        assert!(PluralForms::parse(&chain).is_err());
        let div0 = PluralForms::parse("nplurals=2; plural=n / 0;").unwrap();
        assert_eq!(div0.index(1), None);
        let out = PluralForms::parse("nplurals=2; plural=n;").unwrap();
        assert_eq!(out.index(7), None);
    }
}
