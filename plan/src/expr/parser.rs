//! Recursive descent over the tokens, bounded in depth so that a hostile
//! plan cannot overflow the stack of the parser, the checker or the
//! evaluator (all of which recurse over the tree).

use super::lexer::{lex, Tok};
use super::{BinaryOp, Expr, ExprKind, UnaryOp};
use crate::error::Located;
use crate::span::Origin;
use crate::value::parse_decimal;

/// How deeply expressions may nest (parentheses, operators, calls): far
/// beyond any rule, far below any stack.
pub const MAX_DEPTH: u32 = 64;

/// The longest expression text accepted, in bytes.
pub const MAX_LEN: usize = 16 * 1024;

/// Parses an expression written at `origin`.
///
/// ```
/// use jiandu_plan::expr::{parse, ExprKind};
/// use jiandu_plan::span::{Origin, Pos};
/// let e = parse("staff * $ratio - d", &Origin::exact(Pos::new(1, 1))).unwrap();
/// assert!(matches!(e.kind, ExprKind::Binary(..)));
/// ```
pub fn parse(text: &str, origin: &Origin) -> Result<Expr, crate::error::PlanError> {
    parse_located(text, origin).map_err(|e| e.in_file(""))
}

pub(crate) fn parse_located(text: &str, origin: &Origin) -> Result<Expr, Located> {
    if text.len() > MAX_LEN {
        return Err(Located::new(
            origin.start,
            format!(
                "expected an expression of at most {MAX_LEN} bytes, found {} bytes",
                text.len()
            ),
        ));
    }
    let toks = lex(text, origin)?;
    let mut p = Parser {
        text,
        origin,
        toks,
        i: 0,
        nesting: 0,
    };
    let (e, _) = p.expr()?;
    if p.peek() != &Tok::End {
        let mut e = p.unexpected("an operator or the end of the expression");
        // Words other languages use for the operators.
        if let Tok::Ident(word) = p.peek() {
            let hint = match word.to_ascii_lowercase().as_str() {
                "and" => Some("`&&`"),
                "or" => Some("`||`"),
                "not" => Some("`!`"),
                "is" => Some("`==` (or `has(x)` for a value that is there)"),
                _ => None,
            };
            if let Some(op) = hint {
                e.message.push_str(&format!(" (write {op})"));
            }
        }
        return Err(e);
    }
    Ok(e)
}

struct Parser<'t> {
    text: &'t str,
    origin: &'t Origin,
    toks: Vec<(Tok, usize)>,
    i: usize,
    nesting: u32,
}

/// A node and the depth of its tree: operators and calls, leaves not
/// counted.
type Node = (Expr, u32);

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].0
    }

    fn pos_at(&self, i: usize) -> crate::span::Pos {
        self.origin
            .at(self.text, self.toks[i.min(self.toks.len() - 1)].1)
    }

    fn bump(&mut self) -> (Tok, crate::span::Pos) {
        let pos = self.pos_at(self.i);
        let t = self.toks[self.i].0.clone();
        if t != Tok::End {
            self.i += 1;
        }
        (t, pos)
    }

    fn unexpected(&self, expected: &str) -> Located {
        Located::new(
            self.pos_at(self.i),
            format!("expected {expected}, found {}", self.peek().describe()),
        )
    }

    fn ident(&mut self, what: &str) -> Result<String, Located> {
        match self.peek() {
            Tok::Ident(name) => {
                let name = name.clone();
                self.bump();
                Ok(name)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn expect(&mut self, t: Tok, what: &str) -> Result<(), Located> {
        if self.peek() == &t {
            self.bump();
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    /// Checks a new node's depth.
    fn node(&self, kind: ExprKind, pos: crate::span::Pos, depth: u32) -> Result<Node, Located> {
        if depth > MAX_DEPTH {
            return Err(too_deep(pos));
        }
        Ok((Expr { kind, pos }, depth))
    }

    /// One level deeper: a parenthesis, a call's argument, a unary
    /// operator. The expression itself is the first level, which does not
    /// count: 64 nested parentheses are within the limit, 65 are not.
    fn enter(&mut self) -> Result<(), Located> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH + 1 {
            return Err(too_deep(self.pos_at(self.i)));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Node, Located> {
        self.enter()?;
        let r = self.cond();
        self.nesting -= 1;
        r
    }

    fn cond(&mut self) -> Result<Node, Located> {
        let (c, dc) = self.binary(1)?;
        if self.peek() != &Tok::Question {
            return Ok((c, dc));
        }
        let (_, pos) = self.bump();
        let (a, da) = self.expr()?;
        self.expect(Tok::Colon, "`:` and the value when the condition is false")?;
        let (b, db) = self.expr()?;
        let depth = dc.max(da).max(db) + 1;
        self.node(
            ExprKind::Cond(Box::new(c), Box::new(a), Box::new(b)),
            pos,
            depth,
        )
    }

    fn binary_op(&self) -> Option<BinaryOp> {
        Some(match self.peek() {
            Tok::OrOr => BinaryOp::Or,
            Tok::AndAnd => BinaryOp::And,
            Tok::EqEq => BinaryOp::Eq,
            Tok::NotEq => BinaryOp::Ne,
            Tok::Lt => BinaryOp::Lt,
            Tok::Le => BinaryOp::Le,
            Tok::Gt => BinaryOp::Gt,
            Tok::Ge => BinaryOp::Ge,
            Tok::Plus => BinaryOp::Add,
            Tok::Minus => BinaryOp::Sub,
            Tok::Star => BinaryOp::Mul,
            Tok::Slash => BinaryOp::Div,
            Tok::Percent => BinaryOp::Rem,
            _ => return None,
        })
    }

    /// Operators of precedence `min` and tighter, left-associative;
    /// comparisons do not chain (`a < b < c` is refused).
    fn binary(&mut self, min: u8) -> Result<Node, Located> {
        if min > 5 {
            return self.unary();
        }
        let (mut left, mut depth) = self.binary(min + 1)?;
        loop {
            if min == 3 && matches!(self.peek(), Tok::Ident(w) if w == "in") {
                let (_, pos) = self.bump();
                self.expect(Tok::LBracket, "`[` starting the list after `in`")?;
                let mut items = Vec::new();
                let mut d = depth;
                while self.peek() != &Tok::RBracket {
                    let (item, di) = self.expr()?;
                    d = d.max(di);
                    items.push(item);
                    if self.peek() == &Tok::Comma {
                        self.bump();
                    } else if self.peek() != &Tok::RBracket {
                        return Err(self.unexpected("`,` or `]`"));
                    }
                }
                self.bump();
                let (e, dd) = self.node(ExprKind::In(Box::new(left), items), pos, d + 1)?;
                left = e;
                depth = dd;
                if min == 3 {
                    return Ok((left, depth));
                }
                continue;
            }
            let Some(op) = self.binary_op() else { break };
            if op.precedence() != min {
                break;
            }
            let (_, pos) = self.bump();
            let (right, dr) = self.binary(min + 1)?;
            let (e, dd) = self.node(
                ExprKind::Binary(op, Box::new(left), Box::new(right)),
                pos,
                depth.max(dr) + 1,
            )?;
            left = e;
            depth = dd;
            if min == 3 {
                if let Some(next) = self.binary_op() {
                    if next.precedence() == 3 {
                        return Err(
                            self.unexpected("`&&` between two comparisons (they do not chain)")
                        );
                    }
                }
                break;
            }
        }
        Ok((left, depth))
    }

    fn unary(&mut self) -> Result<Node, Located> {
        let op = match self.peek() {
            Tok::Bang => UnaryOp::Not,
            Tok::Minus => UnaryOp::Neg,
            _ => return self.postfix(),
        };
        let (_, pos) = self.bump();
        self.enter()?;
        let inner = self.unary();
        self.nesting -= 1;
        let (e, d) = inner?;
        // `-2` and `-0.5` are literals, so that the smallest integer and
        // constant folding need no special case.
        match (op, &e.kind) {
            (UnaryOp::Neg, ExprKind::Int(v)) => Ok((
                Expr {
                    kind: ExprKind::Int(-v),
                    pos,
                },
                d,
            )),
            (UnaryOp::Neg, ExprKind::Decimal(v)) => Ok((
                Expr {
                    kind: ExprKind::Decimal(-v),
                    pos,
                },
                d,
            )),
            _ => self.node(ExprKind::Unary(op, Box::new(e)), pos, d + 1),
        }
    }

    fn postfix(&mut self) -> Result<Node, Located> {
        let (mut e, mut depth) = self.primary()?;
        while self.peek() == &Tok::Dot {
            self.bump();
            let pos = self.pos_at(self.i);
            let name = self.ident("a function name after `.`")?;
            if self.peek() != &Tok::LParen {
                return Err(self.unexpected(&format!("`(` after `.{name}`: fields are not nested, methods are called as `x.{name}(…)`")));
            }
            let (mut args, d) = self.args()?;
            args.insert(0, e);
            let (n, dd) = self.node(ExprKind::Call(name, args), pos, depth.max(d) + 1)?;
            e = n;
            depth = dd;
        }
        Ok((e, depth))
    }

    /// `( a, b, … )`, after the function name.
    fn args(&mut self) -> Result<(Vec<Expr>, u32), Located> {
        self.expect(Tok::LParen, "`(`")?;
        let mut args = Vec::new();
        let mut depth = 0;
        while self.peek() != &Tok::RParen {
            let (a, d) = self.expr()?;
            depth = depth.max(d);
            args.push(a);
            if self.peek() == &Tok::Comma {
                self.bump();
            } else if self.peek() != &Tok::RParen {
                return Err(self.unexpected("`,` or `)`"));
            }
        }
        self.bump();
        Ok((args, depth))
    }

    fn primary(&mut self) -> Result<Node, Located> {
        let (t, pos) = self.bump();
        let kind = match t {
            Tok::Number(n) => number(&n).map_err(|m| Located::new(pos, m))?,
            Tok::Str(s) => ExprKind::Str(s),
            Tok::Dollar => ExprKind::Param(self.ident("a parameter name after `$`")?),
            Tok::LParen => {
                let (e, d) = self.expr()?;
                self.expect(Tok::RParen, "`)`")?;
                return Ok((e, d));
            }
            Tok::Ident(w) => match w.as_str() {
                "true" => ExprKind::Bool(true),
                "false" => ExprKind::Bool(false),
                "null" => ExprKind::Null,
                "params" if self.peek() == &Tok::Dot => {
                    self.bump();
                    ExprKind::Param(self.ident("a parameter name after `params.`")?)
                }
                _ if self.peek() == &Tok::LParen => {
                    if w == "count" && self.toks.get(self.i + 1).map(|t| &t.0) == Some(&Tok::Star) {
                        return Err(Located::new(
                            self.pos_at(self.i + 1),
                            "expected `)` or a condition: `count()` counts the rows, `count(condition)` those where it holds (SQL's `count(*)` is `count()`)",
                        ));
                    }
                    let (args, d) = self.args()?;
                    return self.node(ExprKind::Call(w, args), pos, d + 1);
                }
                _ => ExprKind::Field(w),
            },
            Tok::End => {
                self.i = self.toks.len() - 1;
                return Err(Located::new(
                    pos,
                    "expected a value, found the end of the expression",
                ));
            }
            other => {
                return Err(Located::new(
                    pos,
                    format!(
                        "expected a field, a literal, `$param`, a function call or `(`, found {}",
                        other.describe()
                    ),
                ))
            }
        };
        // A leaf adds no level: a node's depth counts the operators and
        // calls on its longest path, as the limit's message does.
        Ok((Expr { kind, pos }, 0))
    }
}

/// The tree is deeper than [`MAX_DEPTH`]. A flat chain `a + b + c + …`
/// is as deep as it has operators (each `+` holds the ones before it), so
/// the message speaks of operators chained or nested, not only of
/// parentheses: the checker, the printer and the compiler all recurse
/// over the tree, and the guest's stack is small.
fn too_deep(pos: crate::span::Pos) -> Located {
    Located::new(
        pos,
        format!("expected at most {MAX_DEPTH} operators, calls or parentheses chained or nested, found more; split the expression over several derive steps"),
    )
}

fn number(text: &str) -> Result<ExprKind, String> {
    if text.contains('.') {
        parse_decimal(text).map(ExprKind::Decimal).ok_or_else(|| {
            format!("expected a decimal of at most 28 significant digits, found `{text}`")
        })
    } else {
        text.parse::<i64>().map(ExprKind::Int).map_err(|_| {
            format!(
                "expected an integer of at most {}, found `{text}` (for a decimal number, write it with a point: `{text}.0`)",
                i64::MAX
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Pos;

    fn p(s: &str) -> Result<Expr, Located> {
        parse_located(s, &Origin::exact(Pos::new(3, 10)))
    }

    fn show(s: &str) -> String {
        super::super::print::canonical(&p(s).unwrap())
    }

    #[test]
    fn precedence_follows_cel() {
        assert_eq!(show("a + b * c"), "a + b * c");
        assert_eq!(show("(a + b) * c"), "(a + b) * c");
        assert_eq!(show("a || b && !c"), "a || b && !c");
        assert_eq!(show("x < 1 ? 2 : 3 + 4"), "x < 1 ? 2 : 3 + 4");
        assert_eq!(show("a - (b - c)"), "a - (b - c)");
        assert_eq!(
            show("kind in ['盗窃', \"抢夺\"]"),
            "kind in [\"盗窃\", \"抢夺\"]"
        );
        assert_eq!(show("params.ratio * $ratio"), "$ratio * $ratio");
        assert_eq!(show("name.starts_with('张')"), "starts_with(name, \"张\")");
    }

    #[test]
    fn errors_point_into_the_file() {
        let e = p("year == $").unwrap_err();
        assert_eq!(e.pos, Pos::new(3, 19));
        assert!(e.message.contains("parameter name"), "{}", e.message);
        let e = p("a = 1").unwrap_err();
        assert_eq!(e.pos, Pos::new(3, 12));
        assert!(e.message.contains("`==`"), "{}", e.message);
        let e = p("a < b < c").unwrap_err();
        assert!(e.message.contains("do not chain"), "{}", e.message);
        let e = p("count(*)").unwrap_err();
        assert!(
            e.message.contains("`count()` counts the rows"),
            "{}",
            e.message
        );
        let e = p("a > 1 and b < 2").unwrap_err();
        assert!(e.message.ends_with("(write `&&`)"), "{}", e.message);
        let e = p("a > 1 OR b < 2").unwrap_err();
        assert!(e.message.ends_with("(write `||`)"), "{}", e.message);
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        const TOO_DEEP: &str = "expected at most 64 operators, calls or parentheses chained or nested, found more; split the expression over several derive steps";
        let deep = "(".repeat(5_000) + "1" + &")".repeat(5_000);
        assert_eq!(p(&deep).unwrap_err().message, TOO_DEEP);
        let nots = "!".repeat(10_000) + "x";
        assert_eq!(p(&nots).unwrap_err().message, TOO_DEEP);
        let chain = vec!["a"; 1000].join(" + ");
        assert_eq!(p(&chain).unwrap_err().message, TOO_DEEP);
        assert!(p(&vec!["a"; 60].join(" + ")).is_ok());
        // 65 terms are 64 operators: still within the limit; 66 are not.
        assert!(p(&vec!["a"; 65].join(" + ")).is_ok());
        let e = p(&vec!["a"; 66].join(" + ")).unwrap_err();
        assert_eq!(e.message, TOO_DEEP);
        // 64 levels of nesting, each kind, as the docs say; 65 are not.
        for n in [64, 65] {
            let parens = "(".repeat(n) + "1" + &")".repeat(n);
            let nots = "!".repeat(n) + "x";
            let calls = "abs(".repeat(n) + "x" + &")".repeat(n);
            for e in [parens, nots, calls] {
                assert_eq!(p(&e).is_ok(), n == 64, "{n}: {e}");
            }
        }
    }

    #[test]
    fn huge_literals_are_refused() {
        assert!(p("99999999999999999999")
            .unwrap_err()
            .message
            .contains("integer of at most"));
        assert!(p("1.00000000000000000000000000000001")
            .unwrap_err()
            .message
            .contains("28 significant"));
        assert_eq!(
            p("-9223372036854775807").unwrap().kind,
            ExprKind::Int(-i64::MAX)
        );
        let long = "a".repeat(MAX_LEN + 1);
        assert!(p(&long).unwrap_err().message.contains("at most"));
    }
}
