//! Type checking of expressions against the columns of a step's input and
//! the model's parameters, producing a typed tree ([`TExpr`]) in which
//! every implicit conversion is explicit.

use super::{BinaryOp, Expr, ExprKind, UnaryOp, FUNCTIONS};
use crate::catalog::{Catalog, Param};
use crate::date::Date;
use crate::error::Located;
use crate::span::Pos;
use crate::value::{PersonalKind, Type, Value};

/// A column of a step's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// Whether it may be null.
    pub nullable: bool,
    /// Whether it holds personal data (as a pseudonym unless granted).
    pub personal: Option<PersonalKind>,
}

/// What an expression may refer to.
pub(crate) struct Scope<'a> {
    pub columns: &'a [Column],
    pub params: &'a [Param],
    /// The model's datasets, when known: an unknown field that one of
    /// them has but the model does not declare gets the advice to declare
    /// it.
    pub datasets: Option<&'a Catalog>,
}

/// A typed expression.
#[derive(Debug, Clone)]
pub(crate) struct TExpr {
    pub ty: Type,
    pub nullable: bool,
    pub personal: Option<PersonalKind>,
    pub node: TNode,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub(crate) enum TNode {
    /// A literal (or a null of the expression's type).
    Const(Value),
    Field(usize),
    Param(usize),
    Not(Box<TExpr>),
    Neg(Box<TExpr>),
    /// `+ - * / %` with both operands of the expression's type.
    Arith(BinaryOp, Box<TExpr>, Box<TExpr>),
    /// Text `+` text.
    Concat(Box<TExpr>, Box<TExpr>),
    /// A comparison of two operands of the same type.
    Cmp(BinaryOp, Box<TExpr>, Box<TExpr>),
    And(Box<TExpr>, Box<TExpr>),
    Or(Box<TExpr>, Box<TExpr>),
    Cond(Box<TExpr>, Box<TExpr>, Box<TExpr>),
    In(Box<TExpr>, Vec<TExpr>),
    /// `has(x)` / `x != null` (true) and `x == null` (false).
    IsNull(Box<TExpr>, bool),
    /// A conversion to the expression's type.
    Cast(Box<TExpr>),
    Call(Func, Vec<TExpr>),
}

/// The functions that are not conversions or null tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    DaysBetween,
    AddDays,
    AddMonths,
    YearsBefore,
    WithinYearsBefore,
    Year,
    Month,
    Day,
    ParseDate,
    Hour,
    RoundHalfUp,
    Yuan,
    Floor,
    Ceil,
    Abs,
    Min,
    Max,
    Coalesce,
    StartsWith,
    EndsWith,
    Contains,
    Len,
    InList,
    AnyInList,
    Join,
    TimestampDate,
    TimestampHour,
}

impl TExpr {
    fn new(
        ty: Type,
        nullable: bool,
        personal: Option<PersonalKind>,
        node: TNode,
        pos: Pos,
    ) -> TExpr {
        TExpr {
            ty,
            nullable,
            personal,
            node,
            pos,
        }
    }

    /// Whether the expression reads no field (parameters and literals only).
    pub fn is_const(&self) -> bool {
        match &self.node {
            TNode::Const(_) | TNode::Param(_) => true,
            TNode::Field(_) => false,
            TNode::Not(a) | TNode::Neg(a) | TNode::IsNull(a, _) | TNode::Cast(a) => a.is_const(),
            TNode::Arith(_, a, b)
            | TNode::Concat(a, b)
            | TNode::Cmp(_, a, b)
            | TNode::And(a, b)
            | TNode::Or(a, b) => a.is_const() && b.is_const(),
            TNode::Cond(a, b, c) => a.is_const() && b.is_const() && c.is_const(),
            TNode::In(a, l) => a.is_const() && l.iter().all(TExpr::is_const),
            TNode::Call(_, args) => args.iter().all(TExpr::is_const),
        }
    }

    fn is_literal(&self) -> bool {
        matches!(self.node, TNode::Const(_))
    }

    fn cast(self, ty: Type) -> TExpr {
        if self.ty == ty {
            return self;
        }
        let (nullable, personal, pos) = (self.nullable, self.personal, self.pos);
        TExpr::new(ty, nullable, personal, TNode::Cast(Box::new(self)), pos)
    }
}

fn either(a: Option<PersonalKind>, b: Option<PersonalKind>) -> Option<PersonalKind> {
    a.or(b)
}

/// Checks `e` and requires its type to be `want`.
pub(crate) fn check_as(
    e: &Expr,
    scope: &Scope<'_>,
    want: Type,
    what: &str,
) -> Result<TExpr, Located> {
    let t = check(e, scope)?;
    if t.ty == want {
        Ok(t)
    } else if want == Type::Decimal && t.ty == Type::Int {
        Ok(t.cast(Type::Decimal))
    } else {
        Err(Located::new(
            e.pos,
            format!("{what}: expected {want}, found {}", t.ty),
        ))
    }
}

/// Checks an expression.
pub(crate) fn check(e: &Expr, scope: &Scope<'_>) -> Result<TExpr, Located> {
    let pos = e.pos;
    Ok(match &e.kind {
        ExprKind::Int(v) => TExpr::new(Type::Int, false, None, TNode::Const(Value::Int(*v)), pos),
        ExprKind::Decimal(v) => TExpr::new(Type::Decimal, false, None, TNode::Const(Value::Decimal(*v)), pos),
        ExprKind::Str(s) => TExpr::new(Type::Str, false, None, TNode::Const(Value::Str(s.clone())), pos),
        ExprKind::Bool(b) => TExpr::new(Type::Bool, false, None, TNode::Const(Value::Bool(*b)), pos),
        ExprKind::Null => {
            return Err(Located::new(
                pos,
                "expected a value: `null` may only be compared (`x == null`) or be a branch of `?:`; use has(x) or coalesce(x, y)",
            ))
        }
        ExprKind::Field(name) => {
            let Some((i, c)) = scope.columns.iter().enumerate().find(|(_, c)| &c.name == name) else {
                return Err(Located::new(pos, unknown_field(name, scope)));
            };
            TExpr::new(c.ty, c.nullable, c.personal, TNode::Field(i), pos)
        }
        ExprKind::Param(name) => {
            let Some((i, p)) = scope.params.iter().enumerate().find(|(_, p)| &p.name == name) else {
                let known: Vec<&str> = scope.params.iter().map(|p| p.name.as_str()).collect();
                return Err(Located::new(
                    pos,
                    format!(
                        "unknown parameter `{name}`; expected one of model.toml's [params]: {}",
                        if known.is_empty() { "(none)".to_string() } else { known.join(", ") }
                    ),
                ));
            };
            TExpr::new(p.ty, false, None, TNode::Param(i), pos)
        }
        ExprKind::Unary(UnaryOp::Not, a) => {
            let a = check(a, scope)?;
            want_bool(&a, "`!`")?;
            TExpr::new(Type::Bool, false, None, TNode::Not(Box::new(a)), pos)
        }
        ExprKind::Unary(UnaryOp::Neg, a) => {
            let a = check(a, scope)?;
            if !a.ty.is_numeric() {
                return Err(Located::new(a.pos, format!("`-`: expected a number, found {}", a.ty)));
            }
            TExpr::new(a.ty, a.nullable, a.personal, TNode::Neg(Box::new(a)), pos)
        }
        ExprKind::Binary(op, a, b) => binary(*op, a, b, pos, scope)?,
        ExprKind::Cond(c, a, b) => {
            let c = check(c, scope)?;
            want_bool(&c, "the condition of `?:`")?;
            let (a, b) = match (&a.kind, &b.kind) {
                (ExprKind::Null, ExprKind::Null) => {
                    return Err(Located::new(pos, "`?:`: expected a value in at least one branch, found null in both"))
                }
                (ExprKind::Null, _) => {
                    let b = check(b, scope)?;
                    (null_of(&b, a.pos), b)
                }
                (_, ExprKind::Null) => {
                    let a = check(a, scope)?;
                    let n = null_of(&a, b.pos);
                    (a, n)
                }
                _ => {
                    let (a, b) = (check(a, scope)?, check(b, scope)?);
                    unify(a, b, "the branches of `?:`")?
                }
            };
            let ty = a.ty;
            let nullable = a.nullable || b.nullable;
            let personal = either(a.personal, b.personal);
            TExpr::new(ty, nullable, personal, TNode::Cond(Box::new(c), Box::new(a), Box::new(b)), pos)
        }
        ExprKind::In(x, items) => {
            let mut x = check(x, scope)?;
            let mut list = Vec::new();
            for item in items {
                let t = check(item, scope)?;
                let (nx, nt) = unify(x, t, "`in`: the value and the list items")?;
                x = nx;
                list.push(nt);
            }
            // A later item may have widened the value (int → decimal):
            // widen the earlier items the same way.
            let list = list.into_iter().map(|t| t.cast(x.ty)).collect::<Vec<_>>();
            if x.personal.is_some() && list.iter().any(TExpr::is_literal) {
                return Err(Located::new(pos, pseudonym_message(&x, scope)));
            }
            TExpr::new(Type::Bool, false, None, TNode::In(Box::new(x), list), pos)
        }
        ExprKind::Call(name, args) => call(name, args, pos, scope)?,
    })
}

fn null_of(other: &TExpr, pos: Pos) -> TExpr {
    TExpr::new(other.ty, true, None, TNode::Const(Value::Null), pos)
}

fn want_bool(t: &TExpr, what: &str) -> Result<(), Located> {
    if t.ty == Type::Bool {
        Ok(())
    } else {
        Err(Located::new(
            t.pos,
            format!("{what}: expected bool, found {}", t.ty),
        ))
    }
}

fn unknown_field(name: &str, scope: &Scope<'_>) -> String {
    let known: Vec<&str> = scope.columns.iter().map(|c| c.name.as_str()).collect();
    let hint = if scope.params.iter().any(|p| p.name == name) {
        format!(" (`{name}` is a parameter: write `${name}`)")
    } else if FUNCTIONS.iter().any(|(f, _)| *f == name) {
        format!(" (`{name}` is a function: call it as `{name}(…)`)")
    } else if let Some(ds) = scope.datasets.and_then(|c| {
        c.datasets
            .values()
            .find(|d| d.undeclared.iter().any(|f| f == name))
    }) {
        format!(
            " (`{name}` is a field of `{}` that this model does not declare: {})",
            ds.name,
            crate::check::declare_advice(ds)
        )
    } else {
        String::new()
    };
    format!(
        "unknown field `{name}`{hint}; expected one of: {}",
        known.join(", ")
    )
}

fn pseudonym_message(t: &TExpr, scope: &Scope<'_>) -> String {
    let field = match &t.node {
        TNode::Field(i) => format!("`{}`", scope.columns[*i].name),
        _ => "this value".into(),
    };
    format!(
        "{field} is personal data ({}): the model sees a pseudonym, so it never equals text written in the plan; compare it with another personal field or test has(…)",
        t.personal.map_or("other", PersonalKind::name)
    )
}

/// Brings two operands to one type: the same type, or numbers widened
/// (int → decimal, int → float; a decimal literal → float). A decimal
/// value never mixes with a float silently.
fn unify(a: TExpr, b: TExpr, what: &str) -> Result<(TExpr, TExpr), Located> {
    if a.ty == b.ty {
        return Ok((a, b));
    }
    let target = match (a.ty, b.ty) {
        (Type::Int, Type::Decimal) | (Type::Decimal, Type::Int) => Type::Decimal,
        (Type::Int, Type::Float) | (Type::Float, Type::Int) => Type::Float,
        (Type::Decimal, Type::Float) if a.is_literal() => Type::Float,
        (Type::Float, Type::Decimal) if b.is_literal() => Type::Float,
        (Type::Decimal, Type::Float) | (Type::Float, Type::Decimal) => {
            return Err(Located::new(
                b.pos,
                format!("{what}: expected {}, found {}; decimal and float never mix silently: convert one with decimal(x) or float(x)", a.ty, b.ty),
            ))
        }
        _ => {
            // A date written as text: the usual slip.
            let hint = match (a.ty, b.ty) {
                (Type::Date, Type::Str) | (Type::Str, Type::Date) => {
                    "; write a date as date('2024-01-01'), or read a text as one with date(x)"
                }
                _ => "",
            };
            return Err(Located::new(
                b.pos,
                format!("{what}: expected {}, found {}{hint}", a.ty, b.ty),
            ));
        }
    };
    Ok((a.cast(target), b.cast(target)))
}

fn binary(op: BinaryOp, a: &Expr, b: &Expr, pos: Pos, scope: &Scope<'_>) -> Result<TExpr, Located> {
    use BinaryOp::*;
    if matches!(op, Eq | Ne) {
        let null_test = match (&a.kind, &b.kind) {
            (ExprKind::Null, ExprKind::Null) => {
                return Err(Located::new(
                    pos,
                    "expected a value on one side of the comparison, found null on both",
                ))
            }
            (ExprKind::Null, _) => Some(b),
            (_, ExprKind::Null) => Some(a),
            _ => None,
        };
        if let Some(x) = null_test {
            let x = check(x, scope)?;
            return Ok(TExpr::new(
                Type::Bool,
                false,
                None,
                TNode::IsNull(Box::new(x), op == Ne),
                pos,
            ));
        }
    }
    let (a, b) = (check(a, scope)?, check(b, scope)?);
    match op {
        And | Or => {
            want_bool(&a, &format!("`{}`", op.symbol()))?;
            want_bool(&b, &format!("`{}`", op.symbol()))?;
            let node = if op == And {
                TNode::And(Box::new(a), Box::new(b))
            } else {
                TNode::Or(Box::new(a), Box::new(b))
            };
            Ok(TExpr::new(Type::Bool, false, None, node, pos))
        }
        Eq | Ne | Lt | Le | Gt | Ge => {
            let what = format!("`{}`", op.symbol());
            if (a.personal.is_some() && b.is_literal()) || (b.personal.is_some() && a.is_literal())
            {
                let p = if a.personal.is_some() { &a } else { &b };
                return Err(Located::new(pos, pseudonym_message(p, scope)));
            }
            let (a, b) = unify(a, b, &format!("{what}: both sides"))?;
            if matches!(op, Lt | Le | Gt | Ge) && a.ty == Type::Bool {
                return Err(Located::new(
                    pos,
                    format!("{what}: expected numbers, dates or text, found bool"),
                ));
            }
            Ok(TExpr::new(
                Type::Bool,
                false,
                None,
                TNode::Cmp(op, Box::new(a), Box::new(b)),
                pos,
            ))
        }
        Add if a.ty == Type::Str && b.ty == Type::Str => {
            let (nullable, personal) = (a.nullable || b.nullable, either(a.personal, b.personal));
            Ok(TExpr::new(
                Type::Str,
                nullable,
                personal,
                TNode::Concat(Box::new(a), Box::new(b)),
                pos,
            ))
        }
        Add | Sub | Mul | Div | Rem => {
            let what = format!("`{}`", op.symbol());
            for t in [&a, &b] {
                if !t.ty.is_numeric() {
                    let hint = match t.ty {
                        Type::Date => "; for dates use days_between(a, b) or add_days(d, n)",
                        Type::Str if op == Add => "; `+` joins text only with text",
                        _ => "",
                    };
                    return Err(Located::new(
                        t.pos,
                        format!("{what}: expected a number, found {}{hint}", t.ty),
                    ));
                }
            }
            let (mut a, mut b) = unify(a, b, &format!("{what}: both sides"))?;
            if op == Rem && a.ty != Type::Int {
                return Err(Located::new(
                    pos,
                    format!("`%`: expected int on both sides, found {}", a.ty),
                ));
            }
            // Division is exact: integers divide as decimals (7 / 2 is 3.5).
            if op == Div && a.ty == Type::Int {
                a = a.cast(Type::Decimal);
                b = b.cast(Type::Decimal);
            }
            let (ty, nullable, personal) = (
                a.ty,
                a.nullable || b.nullable,
                either(a.personal, b.personal),
            );
            Ok(TExpr::new(
                ty,
                nullable,
                personal,
                TNode::Arith(op, Box::new(a), Box::new(b)),
                pos,
            ))
        }
    }
}

fn signature(name: &str) -> &'static str {
    FUNCTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, s)| s)
}

fn call(name: &str, args: &[Expr], pos: Pos, scope: &Scope<'_>) -> Result<TExpr, Located> {
    if crate::plan::AggFunc::from_name(name).is_some() && !matches!(name, "min" | "max")
        || (matches!(name, "min" | "max") && args.len() == 1)
    {
        return Err(Located::new(
            pos,
            format!("`{name}` is an aggregate: use it in a group step's `aggregates`"),
        ));
    }
    if !FUNCTIONS.iter().any(|(n, _)| *n == name) {
        return Err(Located::new(
            pos,
            format!(
                "unknown function `{name}`; expected one of: {}",
                super::names_of(FUNCTIONS)
            ),
        ));
    }
    if name == "join" {
        return join(args, pos, scope);
    }
    let arity = match name {
        "within_years_before" => 3,
        "days_between" | "add_days" | "add_months" | "years_before" | "round_half_up" | "min"
        | "max" | "coalesce" | "starts_with" | "ends_with" | "contains" | "in_list"
        | "any_in_list" => 2,
        _ => 1,
    };
    if args.len() != arity {
        return Err(Located::new(
            pos,
            format!(
                "`{name}` takes {arity} argument{}, found {}; expected {}",
                if arity == 1 { "" } else { "s" },
                args.len(),
                signature(name)
            ),
        ));
    }
    let mut t: Vec<TExpr> = Vec::with_capacity(args.len());
    // `coalesce(x, null)` and the like make no sense; null is refused by check.
    for a in args {
        t.push(check(a, scope)?);
    }
    let want = |i: usize, ty: Type, t: &[TExpr]| -> Result<(), Located> {
        if t[i].ty == ty {
            Ok(())
        } else {
            Err(Located::new(
                t[i].pos,
                format!(
                    "argument {} of `{name}`: expected {ty}, found {}; {}",
                    i + 1,
                    t[i].ty,
                    signature(name)
                ),
            ))
        }
    };
    let nullable = t.iter().any(|x| x.nullable);
    let personal = t.iter().find_map(|x| x.personal);
    let text_fn = |t: &[TExpr]| -> Result<(), Located> {
        if t[0].personal.is_some() {
            return Err(Located::new(t[0].pos, pseudonym_message(&t[0], scope)));
        }
        Ok(())
    };
    let make =
        |ty: Type, nullable: bool, personal: Option<PersonalKind>, f: Func, args: Vec<TExpr>| {
            TExpr::new(ty, nullable, personal, TNode::Call(f, args), pos)
        };
    Ok(match name {
        "days_between" => {
            want(0, Type::Date, &t)?;
            want(1, Type::Date, &t)?;
            make(Type::Int, nullable, None, Func::DaysBetween, t)
        }
        "add_days" | "add_months" | "years_before" => {
            want(0, Type::Date, &t)?;
            want(1, Type::Int, &t)?;
            let f = match name {
                "add_days" => Func::AddDays,
                "add_months" => Func::AddMonths,
                _ => Func::YearsBefore,
            };
            make(Type::Date, nullable, personal, f, t)
        }
        "within_years_before" => {
            want(0, Type::Date, &t)?;
            want(1, Type::Date, &t)?;
            want(2, Type::Int, &t)?;
            make(Type::Bool, false, None, Func::WithinYearsBefore, t)
        }
        "year" | "month" | "day" => {
            want(0, Type::Date, &t)?;
            let f = match name {
                "year" => Func::Year,
                "month" => Func::Month,
                _ => Func::Day,
            };
            make(Type::Int, nullable, personal, f, t)
        }
        "date" => {
            want(0, Type::Str, &t)?;
            if let TNode::Const(Value::Str(s)) = &t[0].node {
                let d = Date::parse(s).ok_or_else(|| {
                    Located::new(
                        t[0].pos,
                        format!("date: expected a date YYYY-MM-DD, found \"{s}\""),
                    )
                })?;
                return Ok(TExpr::new(
                    Type::Date,
                    false,
                    None,
                    TNode::Const(Value::Date(d)),
                    pos,
                ));
            }
            make(Type::Date, nullable, personal, Func::ParseDate, t)
        }
        "hour" => {
            want(0, Type::Str, &t)?;
            make(Type::Int, nullable, personal, Func::Hour, t)
        }
        "timestamp_date" => {
            want(0, Type::Str, &t)?;
            make(Type::Date, true, personal, Func::TimestampDate, t)
        }
        "timestamp_hour" => {
            want(0, Type::Str, &t)?;
            make(Type::Int, true, personal, Func::TimestampHour, t)
        }
        "round_half_up" => {
            let x = t.remove(0);
            let x = numeric_decimal(x, name)?;
            match &t[0].node {
                TNode::Const(Value::Int(p)) if (0..=28).contains(p) => {}
                _ => {
                    return Err(Located::new(
                        t[0].pos,
                        "argument 2 of `round_half_up`: expected a number of decimal places 0–28 written in the plan",
                    ))
                }
            }
            let places = t.remove(0);
            let (n, p) = (x.nullable, x.personal);
            make(Type::Decimal, n, p, Func::RoundHalfUp, vec![x, places])
        }
        "yuan" => {
            let x = numeric_decimal(t.remove(0), name)?;
            let (n, p) = (x.nullable, x.personal);
            make(Type::Str, n, p, Func::Yuan, vec![x])
        }
        "floor" | "ceil" => {
            let x = numeric_decimal(t.remove(0), name)?;
            let (n, p) = (x.nullable, x.personal);
            make(
                Type::Int,
                n,
                p,
                if name == "floor" {
                    Func::Floor
                } else {
                    Func::Ceil
                },
                vec![x],
            )
        }
        "abs" => {
            if !t[0].ty.is_numeric() {
                return Err(Located::new(
                    t[0].pos,
                    format!("argument 1 of `abs`: expected a number, found {}", t[0].ty),
                ));
            }
            let ty = t[0].ty;
            make(ty, nullable, personal, Func::Abs, t)
        }
        "min" | "max" | "coalesce" => {
            let b = t.pop().expect("arity checked");
            let a = t.pop().expect("arity checked");
            let (a, b) = unify(a, b, &format!("the arguments of `{name}`"))?;
            if name != "coalesce" && a.ty == Type::Bool {
                return Err(Located::new(
                    pos,
                    format!("`{name}`: expected numbers, dates or text, found bool"),
                ));
            }
            let (ty, personal) = (a.ty, either(a.personal, b.personal));
            let (f, nullable) = match name {
                "min" => (Func::Min, a.nullable || b.nullable),
                "max" => (Func::Max, a.nullable || b.nullable),
                _ => (Func::Coalesce, b.nullable),
            };
            make(ty, nullable, personal, f, vec![a, b])
        }
        "has" => {
            let x = t.remove(0);
            TExpr::new(
                Type::Bool,
                false,
                None,
                TNode::IsNull(Box::new(x), true),
                pos,
            )
        }
        "decimal" => {
            let x = t.remove(0);
            if !matches!(x.ty, Type::Int | Type::Float | Type::Decimal) {
                return Err(Located::new(
                    x.pos,
                    format!(
                        "argument 1 of `decimal`: expected int or float, found {}",
                        x.ty
                    ),
                ));
            }
            x.cast(Type::Decimal)
        }
        "float" => {
            let x = t.remove(0);
            if !x.ty.is_numeric() {
                return Err(Located::new(
                    x.pos,
                    format!(
                        "argument 1 of `float`: expected int or decimal, found {}",
                        x.ty
                    ),
                ));
            }
            x.cast(Type::Float)
        }
        "string" => t.remove(0).cast(Type::Str),
        "starts_with" | "ends_with" | "contains" | "in_list" | "any_in_list" => {
            want(0, Type::Str, &t)?;
            want(1, Type::Str, &t)?;
            text_fn(&t)?;
            let f = match name {
                "starts_with" => Func::StartsWith,
                "ends_with" => Func::EndsWith,
                "contains" => Func::Contains,
                "in_list" => Func::InList,
                _ => Func::AnyInList,
            };
            make(Type::Bool, false, None, f, t)
        }
        "len" => {
            want(0, Type::Str, &t)?;
            text_fn(&t)?;
            make(Type::Int, nullable, None, Func::Len, t)
        }
        other => unreachable!("function `{other}` is in FUNCTIONS but not checked"),
    })
}

/// `join(sep, part, …)`: text only, at least one part.
fn join(args: &[Expr], pos: Pos, scope: &Scope<'_>) -> Result<TExpr, Located> {
    if args.len() < 2 {
        return Err(Located::new(
            pos,
            format!(
                "`join` takes a separator and at least one part, found {} argument{}; expected {}",
                args.len(),
                if args.len() == 1 { "" } else { "s" },
                signature("join")
            ),
        ));
    }
    let mut t = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        // A part is usually conditional: `c ? '理由' : null`.
        let x = check(a, scope)?;
        if x.ty != Type::Str {
            return Err(Located::new(
                x.pos,
                format!(
                    "argument {} of `join`: expected string, found {}; convert with string(x); {}",
                    i + 1,
                    x.ty,
                    signature("join")
                ),
            ));
        }
        t.push(x);
    }
    if t[0].nullable {
        return Err(Located::new(
            t[0].pos,
            "argument 1 of `join`: expected a separator that is never null, e.g. '; '",
        ));
    }
    let nullable = t[1..].iter().all(|x| x.nullable);
    let personal = t.iter().find_map(|x| x.personal);
    Ok(TExpr::new(
        Type::Str,
        nullable,
        personal,
        TNode::Call(Func::Join, t),
        pos,
    ))
}

fn numeric_decimal(x: TExpr, name: &str) -> Result<TExpr, Located> {
    match x.ty {
        Type::Decimal => Ok(x),
        Type::Int => Ok(x.cast(Type::Decimal)),
        other => Err(Located::new(
            x.pos,
            format!(
                "argument 1 of `{name}`: expected decimal, found {other}{}",
                if other == Type::Float {
                    "; convert with decimal(x)"
                } else {
                    ""
                }
            ),
        )),
    }
}
