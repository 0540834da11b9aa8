//! Tokens of the expression language.

use crate::error::Located;
use crate::span::Origin;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// Digits, possibly with a fraction: kept as text until the parser
    /// knows whether it is an integer or a decimal.
    Number(String),
    Str(String),
    Ident(String),
    Dollar,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Question,
    Colon,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Bang,
    AndAnd,
    OrOr,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    End,
}

impl Tok {
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Number(n) => format!("number `{n}`"),
            Tok::Str(_) => "a text literal".into(),
            Tok::Ident(i) => format!("`{i}`"),
            Tok::End => "the end of the expression".into(),
            other => format!("`{}`", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::Dollar => "$",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::Question => "?",
            Tok::Colon => ":",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Bang => "!",
            Tok::AndAnd => "&&",
            Tok::OrOr => "||",
            Tok::EqEq => "==",
            Tok::NotEq => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            _ => "",
        }
    }
}

/// Splits `text` into tokens with their byte offsets; the last is `End`.
pub(super) fn lex(text: &str, origin: &Origin) -> Result<Vec<(Tok, usize)>, Located> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    let err = |at: usize, m: String| Located::new(origin.at(text, at), m);
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = |s: &str| text[i..].starts_with(s);
        let tok = if c.is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < b.len() && (b[i].is_ascii_alphabetic() || b[i] == b'_') {
                return Err(err(
                    start,
                    format!("expected a number, found `{}`", word_at(text, start)),
                ));
            }
            out.push((Tok::Number(text[start..i].to_owned()), start));
            continue;
        } else if c == b'"' || c == b'\'' {
            let (s, end) = string(text, i, c).map_err(|(at, m)| err(at, m))?;
            i = end;
            out.push((Tok::Str(s), start));
            continue;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Ident(text[start..i].to_owned()), start));
            continue;
        } else if two("&&") {
            Tok::AndAnd
        } else if two("||") {
            Tok::OrOr
        } else if two("==") {
            Tok::EqEq
        } else if two("!=") {
            Tok::NotEq
        } else if two("<=") {
            Tok::Le
        } else if two(">=") {
            Tok::Ge
        } else {
            let t = match c {
                b'$' => Tok::Dollar,
                b'(' => Tok::LParen,
                b')' => Tok::RParen,
                b'[' => Tok::LBracket,
                b']' => Tok::RBracket,
                b',' => Tok::Comma,
                b'.' => Tok::Dot,
                b'?' => Tok::Question,
                b':' => Tok::Colon,
                b'+' => Tok::Plus,
                b'-' => Tok::Minus,
                b'*' => Tok::Star,
                b'/' => Tok::Slash,
                b'%' => Tok::Percent,
                b'!' => Tok::Bang,
                b'<' => Tok::Lt,
                b'>' => Tok::Gt,
                _ => {
                    let ch = text[i..].chars().next().unwrap_or('?');
                    let hint = match ch {
                        '=' => " (compare with `==`)",
                        '&' => " (and is `&&`)",
                        '|' => " (or is `||`)",
                        '（' | '）' | '，' | '“' | '”' => {
                            " (a full-width character: use ASCII punctuation)"
                        }
                        _ => "",
                    };
                    return Err(err(
                        i,
                        format!("expected a field, a literal or an operator, found `{ch}`{hint}"),
                    ));
                }
            };
            i += 1;
            out.push((t, start));
            continue;
        };
        i += 2;
        out.push((tok, start));
    }
    out.push((Tok::End, text.len()));
    Ok(out)
}

fn word_at(text: &str, at: usize) -> &str {
    let end = text[at..]
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .map_or(text.len(), |e| at + e);
    &text[at..end]
}

/// A text literal in `quote`s starting at `start`: its value and the
/// offset after it. Escapes: `\\`, `\"`, `\'`, `\n`, `\t`.
fn string(text: &str, start: usize, quote: u8) -> Result<(String, usize), (usize, String)> {
    let mut out = String::new();
    let mut chars = text[start + 1..].char_indices();
    while let Some((k, ch)) = chars.next() {
        let at = start + 1 + k;
        match ch {
            c if c as u32 == u32::from(quote) => return Ok((out, at + 1)),
            '\\' => match chars.next() {
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, '\'')) => out.push('\''),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, other)) => {
                    return Err((
                        at,
                        format!(
                            "expected one of the escapes \\\\ \\\" \\' \\n \\t, found `\\{other}`"
                        ),
                    ))
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err((
        start,
        format!("expected a closing {} for this text", quote as char),
    ))
}
