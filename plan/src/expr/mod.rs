//! The row expression language: CEL's syntax, closed and typed.
//!
//! ```text
//! year == $levy_year - 1 && paid_on <= params.as_of
//! insured && monthly_wage >= $min_monthly_wage ? (grade <= 2 ? 2 : 1) : 0
//! round_half_up(min(wage_total / staff, $local_avg_wage * $wage_cap_multiple), 2)
//! status in ["存续", "在业"] && !has(cancelled_on)
//! ```
//!
//! An expression is parsed ([`parse`]) into an [`Expr`] tree whose nodes
//! keep their line and column, type-checked against the fields of the
//! step's input and the model's parameters (`check`, inside this crate),
//! and compiled into typed closures over a reusable row (`compile`) once
//! the run's parameter values are known. Its functions are listed in
//! [`FUNCTIONS`]; there are no others, no loops, no variables, and nothing
//! an expression can reach beyond the row and the parameters.
//!
//! Nulls (an empty cell, the missing side of a left join) propagate
//! through arithmetic and functions; a comparison with a null is false
//! (`!=` is the negation of `==`); in a condition (`&&`, `||`, `!`, `?:`,
//! a filter) a null counts as false. `has(x)`, `x == null` and
//! `coalesce(x, y)` test and replace them.

mod lexer;
pub(crate) mod parser;

pub(crate) mod check;
pub(crate) mod compile;
pub mod print;

use crate::span::Pos;
use rust_decimal::Decimal;

pub use parser::{parse, MAX_DEPTH, MAX_LEN};

/// A parsed expression with the position of each node.
#[derive(Debug, Clone)]
pub struct Expr {
    /// What the node is.
    pub kind: ExprKind,
    /// Where it starts (for an operator: the operator).
    pub pos: Pos,
}

impl PartialEq for Expr {
    /// Position is layout, not meaning.
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

/// The kinds of expression nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// An integer literal.
    Int(i64),
    /// A decimal literal, exact (`0.015`).
    Decimal(Decimal),
    /// A text literal.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A field of the step's input.
    Field(String),
    /// A parameter: `$name` or `params.name`.
    Param(String),
    /// `!x` or `-x`.
    Unary(UnaryOp, Box<Expr>),
    /// `a op b`.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `c ? a : b`.
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `x in [a, b, …]`.
    In(Box<Expr>, Vec<Expr>),
    /// `f(a, …)`, or `a.f(…)` which means the same.
    Call(String, Vec<Expr>),
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `!`
    Not,
    /// `-`
    Neg,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `||`
    Or,
    /// `&&`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
}

impl BinaryOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }

    /// Binding strength: higher binds tighter.
    pub(crate) fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => 5,
        }
    }
}

/// The functions of the language, with their signatures, as shown in
/// error messages and documentation. Every function can also be called as
/// a method on its first argument: `kind.starts_with("盗")`.
pub const FUNCTIONS: &[(&str, &str)] = &[
    ("days_between", "days_between(from: date, to: date) -> int: days from `from` to `to`"),
    ("add_days", "add_days(d: date, n: int) -> date"),
    ("add_months", "add_months(d: date, n: int) -> date: the same day, or the month's last"),
    ("years_before", "years_before(d: date, n: int) -> date: same calendar day n years earlier, 29 Feb -> 28 Feb"),
    ("within_years_before", "within_years_before(x: date, r: date, n: int) -> bool: years_before(r, n) <= x <= r"),
    ("year", "year(d: date) -> int"),
    ("month", "month(d: date) -> int"),
    ("day", "day(d: date) -> int"),
    ("date", "date(s: string) -> date: `YYYY-MM-DD`, or the date of a timestamp"),
    ("hour", "hour(ts: string) -> int: hour of a timestamp `YYYY-MM-DD HH:MM[:SS]`, in China Standard Time when it ends in a UTC offset"),
    ("round_half_up", "round_half_up(x: decimal, places: int) -> decimal: half away from zero"),
    ("yuan", "yuan(x: decimal) -> string: rounded half-up to the fen, two decimals"),
    ("floor", "floor(x: decimal) -> int"),
    ("ceil", "ceil(x: decimal) -> int"),
    ("abs", "abs(x: number) -> number"),
    ("min", "min(a, b): the smaller of two numbers, dates or texts"),
    ("max", "max(a, b): the larger of two numbers, dates or texts"),
    ("coalesce", "coalesce(x, y): x, or y when x is null"),
    ("has", "has(x) -> bool: x is not null"),
    ("decimal", "decimal(x: int | float) -> decimal"),
    ("float", "float(x: int | decimal) -> float"),
    ("string", "string(x) -> string"),
    ("starts_with", "starts_with(s: string, prefix: string) -> bool"),
    ("ends_with", "ends_with(s: string, suffix: string) -> bool"),
    ("contains", "contains(s: string, part: string) -> bool"),
    ("len", "len(s: string) -> int: characters"),
    ("in_list", "in_list(x: string, list: string) -> bool: x is one of the comma-separated items of list"),
    ("any_in_list", "any_in_list(items: string, list: string) -> bool: some item of `items` (split at , ; ， ； | or spaces) is one of the comma-separated items of list"),
    ("join", "join(sep: string, part: string, …) -> string: the parts that are not null, joined with sep; null when all are null"),
    ("timestamp_date", "timestamp_date(ts: string) -> date: the date of a timestamp `YYYY-MM-DD HH:MM[:SS]` (also `/` in the date, `T` before the time), in China Standard Time when it ends in a UTC offset (`Z`, `+00:00`); null when it is not one"),
    ("timestamp_hour", "timestamp_hour(ts: string) -> int: the hour (0–23) of such a timestamp; null when it is not one"),
];

/// The aggregate functions of a `group` step.
pub const AGGREGATES: &[(&str, &str)] = &[
    (
        "count",
        "count() -> int: rows; count(cond) -> int: rows where cond is true",
    ),
    (
        "sum",
        "sum(x: number) -> number: 0 for no rows; nulls skipped",
    ),
    ("min", "min(x) -> x: smallest non-null, null for none"),
    ("max", "max(x) -> x: largest non-null, null for none"),
    ("any", "any(cond) -> bool: some row's cond is true"),
    (
        "all",
        "all(cond) -> bool: every row's cond is true (true for no rows)",
    ),
    (
        "collect_distinct",
        "collect_distinct(x) -> string: distinct non-null values, sorted, joined with `,`; null for none",
    ),
    (
        "list",
        "list(x, sep) -> string: non-null values in the input's row order, joined with the text sep; null for none",
    ),
];

/// The names in a list, as an error message shows them: `a, b, c`.
pub(crate) fn names_of(list: &[(&str, &str)]) -> String {
    list.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}
