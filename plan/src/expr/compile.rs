//! Compiling typed expressions into closures over a row.
//!
//! Each node becomes a boxed closure of its exact Rust type (`i64`,
//! [`Decimal`], [`Date`], `bool`, `f64`, or text borrowed from the row),
//! with parameters already folded in as constants. Evaluating a numeric,
//! date or boolean expression allocates nothing; text is borrowed from the
//! row or from the program's constants and copied only by `+`, `string()`
//! and `yuan()`.

use super::check::{Func, TExpr, TNode};
use super::BinaryOp;
use crate::date::{hour_of, parse_timestamp, Date};
use crate::error::EvalError;
use crate::span::Pos;
use crate::value::{Type, Value};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use std::borrow::Cow;

/// What an expression reads: the current row and the program's constant
/// texts.
pub(crate) struct Env<'a> {
    pub row: &'a [Value],
    pub pool: &'a [String],
}

/// An evaluation error. Boxed: errors are rare, and a one-word error keeps
/// the results of ints, dates and conditions in registers rather than
/// written to memory and read back by every caller.
pub(crate) type Fail = Box<EvalError>;

/// The error at `pos`.
#[cold]
#[inline(never)]
pub(crate) fn fail(pos: Pos, message: impl Into<String>) -> Fail {
    Box::new(EvalError::new(pos, message))
}

/// A value or null, or an error.
pub(crate) type Res<T> = Result<Option<T>, Fail>;
/// A compiled expression of a copyable type.
pub(crate) type F<T> = Box<dyn Fn(&Env<'_>) -> Res<T>>;
/// A compiled condition (null counts as false).
pub(crate) type CondF = Box<dyn Fn(&Env<'_>) -> Result<bool, Fail>>;
/// A compiled text expression.
pub(crate) type StrF = Box<dyn for<'a> Fn(&Env<'a>) -> Res<Cow<'a, str>>>;

/// A compiled expression of any type.
pub(crate) enum Compiled {
    Int(F<i64>),
    Dec(F<Decimal>),
    Float(F<f64>),
    Date(F<Date>),
    Bool(F<bool>),
    Str(StrF),
    /// `yuan(x)`: text written straight into its slot, not built as a
    /// new string first.
    Yuan(F<Decimal>),
}

impl Compiled {
    /// Evaluates into `out`, reusing its text buffer.
    pub fn eval_into(&self, env: &Env<'_>, out: &mut Value) -> Result<(), Fail> {
        // A slot that already holds a value of the type (a derived
        // column, row after row) has only its payload overwritten: writing
        // a whole new value goes through a copy of it on the stack, which
        // costs more than the arithmetic of a simple expression.
        match self {
            Compiled::Int(f) => match (f(env)?, &mut *out) {
                (Some(x), Value::Int(slot)) => *slot = x,
                (v, out) => *out = v.map_or(Value::Null, Value::Int),
            },
            Compiled::Dec(f) => match (f(env)?, &mut *out) {
                (Some(x), Value::Decimal(slot)) => *slot = x,
                (v, out) => *out = v.map_or(Value::Null, Value::Decimal),
            },
            Compiled::Float(f) => *out = f(env)?.map_or(Value::Null, Value::Float),
            Compiled::Date(f) => match (f(env)?, &mut *out) {
                (Some(x), Value::Date(slot)) => *slot = x,
                (v, out) => *out = v.map_or(Value::Null, Value::Date),
            },
            Compiled::Bool(f) => match (f(env)?, &mut *out) {
                (Some(x), Value::Bool(slot)) => *slot = x,
                (v, out) => *out = v.map_or(Value::Null, Value::Bool),
            },
            Compiled::Str(f) => match f(env)? {
                Some(s) => out.set_str(&s),
                None => *out = Value::Null,
            },
            Compiled::Yuan(f) => match (f(env)?, &mut *out) {
                (Some(x), Value::Str(slot)) => {
                    slot.clear();
                    write_yuan(slot, x);
                }
                (Some(x), out) => {
                    let mut s = String::new();
                    write_yuan(&mut s, x);
                    *out = Value::Str(s);
                }
                (None, out) => *out = Value::Null,
            },
        }
        Ok(())
    }

    /// Whether the value is null.
    pub fn is_null(&self, env: &Env<'_>) -> Result<bool, Fail> {
        Ok(match self {
            Compiled::Int(f) => f(env)?.is_none(),
            Compiled::Dec(f) => f(env)?.is_none(),
            Compiled::Float(f) => f(env)?.is_none(),
            Compiled::Date(f) => f(env)?.is_none(),
            Compiled::Bool(f) => f(env)?.is_none(),
            Compiled::Str(f) => f(env)?.is_none(),
            Compiled::Yuan(f) => f(env)?.is_none(),
        })
    }

    /// Writes the value as evidence text into `out` (cleared first); null
    /// writes nothing.
    pub fn write_text(&self, env: &Env<'_>, out: &mut String) -> Result<(), Fail> {
        use std::fmt::Write;
        out.clear();
        let _ = match self {
            Compiled::Int(f) => f(env)?.map(|v| {
                write_int(out, v);
                Ok(())
            }),
            Compiled::Dec(f) => f(env)?.map(|v| {
                write_decimal(out, v);
                Ok(())
            }),
            Compiled::Float(f) => f(env)?.map(|v| write!(out, "{v}")),
            Compiled::Date(f) => f(env)?.map(|v| write!(out, "{v}")),
            Compiled::Bool(f) => f(env)?.map(|v| write!(out, "{v}")),
            Compiled::Str(f) => {
                if let Some(s) = f(env)? {
                    out.push_str(&s);
                }
                None
            }
            Compiled::Yuan(f) => {
                if let Some(v) = f(env)? {
                    write_yuan(out, v);
                }
                None
            }
        };
        Ok(())
    }
}

/// What compilation needs: the run's parameter values, and the program's
/// constant texts it adds to.
pub(crate) struct Cx<'a> {
    pub params: &'a [Value],
    pub pool: &'a mut Vec<String>,
}

/// Compiles any expression.
pub(crate) fn compile(t: &TExpr, cx: &mut Cx<'_>) -> Compiled {
    match t.ty {
        Type::Int => Compiled::Int(scalar(t, cx)),
        Type::Decimal => Compiled::Dec(scalar(t, cx)),
        Type::Float => Compiled::Float(scalar(t, cx)),
        Type::Date => Compiled::Date(scalar(t, cx)),
        Type::Bool => Compiled::Bool(scalar(t, cx)),
        Type::Str => match &t.node {
            TNode::Call(Func::Yuan, args) if !t.is_const() => {
                Compiled::Yuan(scalar::<Decimal>(&args[0], cx))
            }
            _ => Compiled::Str(text(t, cx)),
        },
    }
}

/// Zero without a sign: `-0.00` is shown as `0.00`.
#[inline]
fn unsigned_zero(x: Decimal) -> Decimal {
    if x.is_zero() && x.is_sign_negative() {
        zero_at(x.scale())
    } else {
        x
    }
}

/// Zero with `scale` decimals.
#[inline]
fn zero_at(scale: u32) -> Decimal {
    Decimal::new(0, scale)
}

/// A sum or difference `r` of `x` and `y` with the scale of the operand
/// that has more decimals (`0.00 + -3` is `-3.00`, as `1.00 + -3` is):
/// the arithmetic leaves it so except where an operand is zero. A zero
/// result has no sign.
#[inline]
pub(crate) fn sum_scale(r: Decimal, x: Decimal, y: Decimal) -> Decimal {
    let scale = x.scale().max(y.scale());
    if r.scale() >= scale {
        return unsigned_zero(r);
    }
    let mut r = unsigned_zero(r);
    r.rescale(scale);
    r
}

/// Appends `x` in yuan as `yuan()` has it: rounded half up, with two
/// decimals (`{:.2}`).
pub(crate) fn write_yuan(out: &mut String, x: Decimal) {
    use std::fmt::Write;
    let v = unsigned_zero(round_half_up(x, 2));
    if v.scale() == 2 {
        write_decimal(out, v);
    } else {
        // Too large to carry two decimals: `{:.2}` pads the text.
        let _ = write!(out, "{v:.2}");
    }
}

/// Appends `v` as `{v}` writes it (its own scale kept), digit by digit
/// when the mantissa fits 64 bits: evidence writes several amounts per
/// lead, and the formatting machinery costs more than the digits. The
/// text is put together in a buffer and appended at once (pushing it
/// character by character cost more than the digits).
pub(crate) fn write_decimal(out: &mut String, v: Decimal) {
    use std::fmt::Write;
    let mag = u64::try_from(v.mantissa().unsigned_abs());
    // Zero keeps the sign `Display` gives it.
    let Ok(mag @ 1..) = mag else {
        let _ = write!(out, "{v}");
        return;
    };
    let mut digits = [0u8; 20];
    let at = put_digits(&mut digits, mag);
    let digits = &digits[at..];
    let scale = v.scale() as usize;
    // Sign, "0.", up to 28 zeros and 20 digits.
    let mut text = [0u8; 64];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        text[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    if v.is_sign_negative() {
        put(b"-");
    }
    if digits.len() > scale {
        let point = digits.len() - scale;
        put(&digits[..point]);
        if scale > 0 {
            put(b".");
            put(&digits[point..]);
        }
    } else {
        put(b"0.");
        (digits.len()..scale).for_each(|_| put(b"0"));
        put(digits);
    }
    push_ascii(out, &text[..n]);
}

/// Appends `v` as `{v}` writes it, without the formatting machinery
/// (evidence writes counts and days on every lead).
pub(crate) fn write_int(out: &mut String, v: i64) {
    let mut text = [0u8; 21];
    let mut at = put_digits(&mut text, v.unsigned_abs());
    if v == 0 {
        at -= 1;
        text[at] = b'0';
    } else if v < 0 {
        at -= 1;
        text[at] = b'-';
    }
    push_ascii(out, &text[at..]);
}

/// Writes the decimal digits of `x` (none for zero) at the end of `buf`;
/// returns where they start. Two digits a division.
fn put_digits(buf: &mut [u8], mut x: u64) -> usize {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut at = buf.len();
    while x >= 10 {
        let pair = (x % 100) as usize * 2;
        x /= 100;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if x > 0 {
        at -= 1;
        buf[at] = b'0' + x as u8;
    }
    at
}

/// Appends text made of ASCII bytes.
fn push_ascii(out: &mut String, bytes: &[u8]) {
    out.push_str(std::str::from_utf8(bytes).expect("digits, signs and points are ASCII"));
}

/// Compiles a condition: null counts as false. Conjunctions, negations,
/// comparisons and boolean fields give the condition directly, without
/// the detour through a nullable boolean.
pub(crate) fn condition(t: &TExpr, cx: &mut Cx<'_>) -> CondF {
    if !t.is_const() {
        match &t.node {
            TNode::And(a, b) => {
                let (a, b) = (condition(a, cx), condition(b, cx));
                return Box::new(move |env| Ok(a(env)? && b(env)?));
            }
            TNode::Or(a, b) => {
                let (a, b) = (condition(a, cx), condition(b, cx));
                return Box::new(move |env| Ok(a(env)? || b(env)?));
            }
            TNode::Not(a) => {
                let a = condition(a, cx);
                return Box::new(move |env| Ok(!a(env)?));
            }
            TNode::Field(i) => {
                let (i, pos) = (*i, t.pos);
                return Box::new(move |env| match &env.row[i] {
                    Value::Bool(b) => Ok(*b),
                    Value::Null => Ok(false),
                    v => Err(internal(pos, v)),
                });
            }
            TNode::Cmp(op @ (BinaryOp::Eq | BinaryOp::Ne), a, b) if a.ty == Type::Str => {
                // A text field against a text constant, read in place.
                let constant = match &b.node {
                    TNode::Const(v) => Some(v),
                    TNode::Param(p) => Some(&cx.params[*p]),
                    _ => None,
                };
                if let (TNode::Field(i), Some(Value::Str(c))) = (&a.node, constant) {
                    let (i, pos, c, ne) = (*i, a.pos, c.clone(), *op == BinaryOp::Ne);
                    return Box::new(move |env| match &env.row[i] {
                        Value::Str(s) => Ok((*s == c) != ne),
                        Value::Null => Ok(ne),
                        v => Err(internal(pos, v)),
                    });
                }
            }
            TNode::Cmp(op, a, b) if a.ty != Type::Str => {
                let op = *op;
                return match a.ty {
                    Type::Int => cond_cmp::<i64>(op, a, b, cx),
                    Type::Decimal => cond_cmp::<Decimal>(op, a, b, cx),
                    Type::Float => cond_cmp::<f64>(op, a, b, cx),
                    Type::Date => cond_cmp::<Date>(op, a, b, cx),
                    _ => cond_cmp::<bool>(op, a, b, cx),
                };
            }
            _ => {}
        }
    }
    let f: F<bool> = scalar(t, cx);
    Box::new(move |env| Ok(f(env)? == Some(true)))
}

fn cond_cmp<T: Scalar>(op: BinaryOp, a: &TExpr, b: &TExpr, cx: &mut Cx<'_>) -> CondF {
    let (a, b) = (arg::<T>(a, cx), arg::<T>(b, cx));
    // One closure per operator, so that the comparison is inlined; a
    // comparison with null is false, `!=` the negation of `==`.
    // `f` is a function item, its own type: each `with` is compiled for
    // one operator, which a function pointer would call indirectly.
    fn with<T: Scalar>(
        a: Arg<T>,
        b: Arg<T>,
        ne: bool,
        f: impl Fn(&T, &T) -> bool + Copy + 'static,
    ) -> CondF {
        // A field against a constant, the commonest filter, reads the
        // field in place.
        if let (Arg::Field(i, pos), Arg::Const(Some(c))) = (&a, &b) {
            let (i, pos, c) = (*i, *pos, *c);
            return Box::new(move |env| match &env.row[i] {
                Value::Null => Ok(ne),
                v => match T::get(v) {
                    Some(x) => Ok(f(&x, &c)),
                    None => Err(internal(pos, v)),
                },
            });
        }
        Box::new(move |env| {
            Ok(match (a.eval(env)?, b.eval(env)?) {
                (Some(x), Some(y)) => f(&x, &y),
                _ => ne,
            })
        })
    }
    match op {
        BinaryOp::Eq => with(a, b, false, T::eq),
        BinaryOp::Ne => with(a, b, true, T::ne),
        BinaryOp::Lt => with(a, b, false, T::lt),
        BinaryOp::Le => with(a, b, false, T::le),
        BinaryOp::Gt => with(a, b, false, T::gt),
        BinaryOp::Ge => with(a, b, false, T::ge),
        _ => Box::new(move |env| Ok(compare(op, a.eval(env)?, b.eval(env)?))),
    }
}

/// An operand of an operator: a constant or a field is read in place,
/// without a call through a closure (most operands are one or the other).
pub(crate) enum Arg<T> {
    Const(Option<T>),
    Field(usize, Pos),
    /// An integer field converted to `T` (the checker's implicit
    /// widening of an int operand), read in place.
    IntField(usize, Pos),
    Expr(F<T>),
}

impl<T: Scalar> Arg<T> {
    #[inline(always)]
    pub(crate) fn eval(&self, env: &Env<'_>) -> Res<T> {
        match self {
            Arg::Const(v) => Ok(*v),
            Arg::Field(i, pos) => match &env.row[*i] {
                Value::Null => Ok(None),
                v => T::get(v).map(Some).ok_or_else(|| internal(*pos, v)),
            },
            Arg::IntField(i, pos) => match &env.row[*i] {
                Value::Null => Ok(None),
                Value::Int(x) => Ok(T::from_int(*x)),
                v => Err(internal(*pos, v)),
            },
            Arg::Expr(f) => f(env),
        }
    }
}

/// Compiles an operand; constant parts are computed here, once.
pub(crate) fn arg<T: Scalar>(t: &TExpr, cx: &mut Cx<'_>) -> Arg<T> {
    let value = |v: &Value| -> Option<Arg<T>> {
        if v.is_null() {
            Some(Arg::Const(None))
        } else {
            T::get(v).map(|x| Arg::Const(Some(x)))
        }
    };
    if let TNode::Cast(a) = &t.node {
        if let (true, Type::Int, TNode::Field(i)) = (T::FROM_INT, a.ty, &a.node) {
            return Arg::IntField(*i, a.pos);
        }
    }
    let folded = match &t.node {
        TNode::Field(i) => return Arg::Field(*i, t.pos),
        TNode::Const(v) => value(v),
        TNode::Param(i) => value(&cx.params[*i]),
        _ if t.is_const() => {
            let f = scalar_node::<T>(t, cx);
            let env = Env {
                row: &[],
                pool: cx.pool,
            };
            // An error is left for the run to report at its position.
            f(&env).ok().map(Arg::Const)
        }
        _ => None,
    };
    folded.unwrap_or_else(|| Arg::Expr(scalar(t, cx)))
}

#[cold]
#[inline(never)]
fn internal(pos: Pos, v: &Value) -> Fail {
    fail(
        pos,
        format!(
            "a value of type {} where the plan was checked for another type",
            v.ty().map_or("null", Type::name)
        ),
    )
}

/// A copyable value type of the language.
pub(crate) trait Scalar: Copy + PartialOrd + 'static {
    /// Whether [`Scalar::from_int`] converts, as the checker's cast of an
    /// int to this type does.
    const FROM_INT: bool = false;
    fn get(v: &Value) -> Option<Self>;
    /// The cast of an int to this type (only called when `FROM_INT`).
    fn from_int(_: i64) -> Option<Self> {
        None
    }
    /// The nodes only this type has.
    fn specific(t: &TExpr, cx: &mut Cx<'_>) -> F<Self>;
}

fn constant<T: Scalar>(v: &Value, pos: Pos) -> F<T> {
    if v.is_null() {
        return Box::new(|_| Ok(None));
    }
    match T::get(v) {
        Some(x) => Box::new(move |_| Ok(Some(x))),
        None => {
            let e = internal(pos, v);
            Box::new(move |_| Err(e.clone()))
        }
    }
}

/// Compiles the nodes every type has, then the type's own. A part made
/// of parameters and literals only is computed once, here.
pub(crate) fn scalar<T: Scalar>(t: &TExpr, cx: &mut Cx<'_>) -> F<T> {
    let f = scalar_node::<T>(t, cx);
    if t.is_const() && !matches!(t.node, TNode::Const(_) | TNode::Param(_)) {
        let env = Env {
            row: &[],
            pool: cx.pool,
        };
        // An error (say, a division by zero in parameters) is left for the
        // run to report at its position.
        if let Ok(v) = f(&env) {
            return Box::new(move |_| Ok(v));
        }
    }
    f
}

fn scalar_node<T: Scalar>(t: &TExpr, cx: &mut Cx<'_>) -> F<T> {
    let pos = t.pos;
    match &t.node {
        TNode::Const(v) => constant(v, pos),
        TNode::Param(i) => constant(&cx.params[*i], pos),
        TNode::Field(i) => {
            let i = *i;
            Box::new(move |env| match &env.row[i] {
                Value::Null => Ok(None),
                v => T::get(v).map(Some).ok_or_else(|| internal(pos, v)),
            })
        }
        TNode::Cond(c, a, b) => {
            let c = condition(c, cx);
            let (a, b) = (arg::<T>(a, cx), arg::<T>(b, cx));
            Box::new(move |env| if c(env)? { a.eval(env) } else { b.eval(env) })
        }
        TNode::Call(f @ (Func::Min | Func::Max | Func::Coalesce), args) => {
            let (a, b) = (arg::<T>(&args[0], cx), arg::<T>(&args[1], cx));
            match f {
                Func::Coalesce => Box::new(move |env| match a.eval(env)? {
                    Some(x) => Ok(Some(x)),
                    None => b.eval(env),
                }),
                Func::Min => lift2(a, b, |x, y| Ok(if y < x { y } else { x }), pos),
                _ => lift2(a, b, |x, y| Ok(if y > x { y } else { x }), pos),
            }
        }
        _ => T::specific(t, cx),
    }
}

fn lift1<A: Scalar, R: 'static>(
    a: Arg<A>,
    f: impl Fn(A) -> Result<R, String> + 'static,
    pos: Pos,
) -> F<R> {
    Box::new(move |env| match a.eval(env)? {
        Some(x) => f(x).map(Some).map_err(|m| fail(pos, m)),
        None => Ok(None),
    })
}

fn lift2<A: Scalar, B: Scalar, R: 'static>(
    a: Arg<A>,
    b: Arg<B>,
    f: impl Fn(A, B) -> Result<R, String> + 'static,
    pos: Pos,
) -> F<R> {
    Box::new(move |env| {
        let Some(x) = a.eval(env)? else {
            return Ok(None);
        };
        let Some(y) = b.eval(env)? else {
            return Ok(None);
        };
        f(x, y).map(Some).map_err(|m| fail(pos, m))
    })
}

const OVERFLOW: &str = "the result is out of range (overflow)";
const DIV_ZERO: &str = "division by zero";

fn unsupported<T: 'static>(t: &TExpr) -> F<T> {
    // The checker admits no other node of this type; a typed error keeps
    // the evaluator total should that ever change.
    let e = fail(t.pos, format!("expression not supported for type {}", t.ty));
    Box::new(move |_| Err(e.clone()))
}

impl Scalar for i64 {
    fn get(v: &Value) -> Option<Self> {
        match v {
            Value::Int(x) => Some(*x),
            _ => None,
        }
    }

    fn specific(t: &TExpr, cx: &mut Cx<'_>) -> F<Self> {
        let pos = t.pos;
        match &t.node {
            TNode::Neg(a) => lift1(
                arg::<i64>(a, cx),
                |x| x.checked_neg().ok_or_else(|| OVERFLOW.into()),
                pos,
            ),
            TNode::Arith(op, a, b) => {
                let (a, b) = (arg::<i64>(a, cx), arg::<i64>(b, cx));
                match op {
                    BinaryOp::Add => lift2(
                        a,
                        b,
                        |x, y| x.checked_add(y).ok_or_else(|| OVERFLOW.into()),
                        pos,
                    ),
                    BinaryOp::Sub => lift2(
                        a,
                        b,
                        |x, y| x.checked_sub(y).ok_or_else(|| OVERFLOW.into()),
                        pos,
                    ),
                    BinaryOp::Mul => lift2(
                        a,
                        b,
                        |x, y| x.checked_mul(y).ok_or_else(|| OVERFLOW.into()),
                        pos,
                    ),
                    BinaryOp::Rem => lift2(
                        a,
                        b,
                        |x, y| {
                            if y == 0 {
                                Err(DIV_ZERO.into())
                            } else {
                                x.checked_rem(y).ok_or_else(|| OVERFLOW.into())
                            }
                        },
                        pos,
                    ),
                    _ => unsupported(t),
                }
            }
            TNode::Call(f, args) => {
                let date = |cx: &mut Cx<'_>| arg::<Date>(&args[0], cx);
                match f {
                    Func::DaysBetween => lift2(
                        date(cx),
                        arg::<Date>(&args[1], cx),
                        |a, b| Ok(a.days_until(b)),
                        pos,
                    ),
                    Func::Year => lift1(date(cx), |d| Ok(i64::from(d.ymd().0)), pos),
                    Func::Month => lift1(date(cx), |d| Ok(i64::from(d.ymd().1)), pos),
                    Func::Day => lift1(date(cx), |d| Ok(i64::from(d.ymd().2)), pos),
                    Func::Floor | Func::Ceil => {
                        let up = *f == Func::Ceil;
                        lift1(
                            arg::<Decimal>(&args[0], cx),
                            move |x| {
                                let r = if up { x.ceil() } else { x.floor() };
                                r.to_i64().ok_or_else(|| OVERFLOW.into())
                            },
                            pos,
                        )
                    }
                    Func::Abs => lift1(
                        arg::<i64>(&args[0], cx),
                        |x| x.checked_abs().ok_or_else(|| OVERFLOW.into()),
                        pos,
                    ),
                    Func::TimestampHour => {
                        let s = text(&args[0], cx);
                        Box::new(move |env| {
                            Ok(s(env)?
                                .and_then(|s| parse_timestamp(&s))
                                .map(|(_, h)| i64::from(h)))
                        })
                    }
                    Func::Hour | Func::Len => {
                        let s = text(&args[0], cx);
                        let hour = *f == Func::Hour;
                        Box::new(move |env| {
                            let Some(s) = s(env)? else { return Ok(None) };
                            if hour {
                                hour_of(&s)
                                    .map(|h| Some(i64::from(h)))
                                    .ok_or_else(|| fail(pos, format!("hour: expected a timestamp YYYY-MM-DD HH:MM, found \"{s}\"")))
                            } else {
                                Ok(Some(s.chars().count() as i64))
                            }
                        })
                    }
                    _ => unsupported(t),
                }
            }
            _ => unsupported(t),
        }
    }
}

impl Scalar for Decimal {
    const FROM_INT: bool = true;

    #[inline]
    fn from_int(x: i64) -> Option<Self> {
        Some(Decimal::from(x))
    }

    fn get(v: &Value) -> Option<Self> {
        match v {
            Value::Decimal(x) => Some(*x),
            _ => None,
        }
    }

    fn specific(t: &TExpr, cx: &mut Cx<'_>) -> F<Self> {
        let pos = t.pos;
        match &t.node {
            TNode::Neg(a) => lift1(arg::<Decimal>(a, cx), |x| Ok(unsigned_zero(-x)), pos),
            TNode::Arith(op, a, b) => {
                let (a, b) = (arg::<Decimal>(a, cx), arg::<Decimal>(b, cx));
                match op {
                    BinaryOp::Add => lift2(
                        a,
                        b,
                        |x, y| {
                            let r = x.checked_add(y).ok_or_else(|| OVERFLOW.to_string())?;
                            Ok(sum_scale(r, x, y))
                        },
                        pos,
                    ),
                    BinaryOp::Sub => lift2(
                        a,
                        b,
                        |x, y| {
                            let r = x.checked_sub(y).ok_or_else(|| OVERFLOW.to_string())?;
                            Ok(sum_scale(r, x, y))
                        },
                        pos,
                    ),
                    BinaryOp::Mul => lift2(
                        a,
                        b,
                        |x, y| {
                            let r = x.checked_mul(y).ok_or_else(|| OVERFLOW.to_string())?;
                            Ok(if r.is_zero() {
                                zero_at((x.scale() + y.scale()).min(28))
                            } else {
                                r
                            })
                        },
                        pos,
                    ),
                    BinaryOp::Div => lift2(
                        a,
                        b,
                        |x, y| {
                            if y.is_zero() {
                                Err(DIV_ZERO.into())
                            } else {
                                x.checked_div(y).ok_or_else(|| OVERFLOW.into())
                            }
                        },
                        pos,
                    ),
                    _ => unsupported(t),
                }
            }
            TNode::Cast(a) => match a.ty {
                Type::Int => lift1(arg::<i64>(a, cx), |x| Ok(Decimal::from(x)), pos),
                // The shortest text that reads back as the same float: the
                // decimal a person would write for it.
                Type::Float => lift1(
                    arg::<f64>(a, cx),
                    |x| {
                        x.to_string()
                            .parse::<Decimal>()
                            .map_err(|_| format!("{x} does not fit a decimal"))
                    },
                    pos,
                ),
                _ => unsupported(t),
            },
            TNode::Call(Func::RoundHalfUp, args) => {
                let places = match &args[1].node {
                    TNode::Const(Value::Int(p)) => *p as u32,
                    _ => return unsupported(t),
                };
                if let TNode::Arith(BinaryOp::Div, a, b) = &args[0].node {
                    if !args[0].is_const() {
                        return round_quotient(arg(a, cx), arg(b, cx), places, args[0].pos);
                    }
                }
                lift1(
                    arg::<Decimal>(&args[0], cx),
                    move |x| Ok(round_half_up(x, places)),
                    pos,
                )
            }
            TNode::Call(Func::Abs, args) => {
                lift1(arg::<Decimal>(&args[0], cx), |x| Ok(x.abs()), pos)
            }
            _ => unsupported(t),
        }
    }
}

/// Rounds half away from zero (四舍五入) to exactly `places` decimals.
pub fn round_half_up(x: Decimal, places: u32) -> Decimal {
    // A mantissa of at most 64 bits (money times a ratio, the usual
    // case) rounds in one division of machine words; a longer one (a
    // quotient carried to 28 digits) in one division of 128-bit words,
    // still far cheaper than the general rounding.
    let cut = x.scale().wrapping_sub(places);
    if cut == 0 {
        // Already `places` decimals (an amount in fen, to the fen).
        return x;
    }
    if (1..=28).contains(&cut) {
        let m = x.mantissa().unsigned_abs();
        let q = if let (Ok(m), true) = (u64::try_from(m), cut <= 19) {
            let d = 10u64.pow(cut);
            let (q, r) = (m / d, m % d);
            // `r * 2 >= d`, without overflow.
            u128::from(q + u64::from(r >= d - r))
        } else {
            let d = POW10[cut as usize];
            let (q, r) = (m / d, m % d);
            q + u128::from(r >= d - r)
        };
        // Zero keeps the general path's sign. `q` is at most the 96-bit
        // mantissa divided by ten, plus one: it fits.
        if q != 0 {
            return Decimal::from_parts(
                q as u32,
                (q >> 32) as u32,
                (q >> 64) as u32,
                x.is_sign_negative(),
                places,
            );
        }
    }
    round_half_up_general(x, places)
}

/// Powers of ten up to 10^38, the largest a `u128` holds.
const POW10: [u128; 39] = {
    let mut p = [1u128; 39];
    let mut i = 1;
    while i < 39 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// `round_half_up(a / b, places)` (an average rounded to the fen, say):
/// the quotient rounded straight from the operands when
/// [`quotient_rounded`] can, else divided to 28 digits and rounded, as
/// the two functions apart do. Errors are the division's, at its `pos`.
fn round_quotient(a: Arg<Decimal>, b: Arg<Decimal>, places: u32, pos: Pos) -> F<Decimal> {
    Box::new(move |env| {
        let Some(x) = a.eval(env)? else {
            return Ok(None);
        };
        let Some(y) = b.eval(env)? else {
            return Ok(None);
        };
        if y.is_zero() {
            return Err(fail(pos, DIV_ZERO));
        }
        if let Some(r) = quotient_rounded(x, y, places) {
            return Ok(Some(r));
        }
        let q = x.checked_div(y).ok_or_else(|| fail(pos, OVERFLOW))?;
        Ok(Some(round_half_up(q, places)))
    })
}

/// `round_half_up(x / y, places)` computed exactly in integers, when the
/// operands' mantissas fit 64 bits, the divisor (scaled) is at most
/// 10^12 and the quotient below 10^11; `None` otherwise (or for a zero
/// result, whose sign the general path decides).
///
/// It equals rounding the 28-digit quotient: that quotient then carries
/// at least 16 decimals, so it is within 10^-16 of the exact one, while
/// an exact quotient not on a rounding midpoint is more than that away
/// from it (its distance is a multiple of 1 / (2 · den · 10^places), and
/// `2 · den · 10^places < 10^16` is required); one on a midpoint has at
/// most `places + 1` decimals and is exact in both.
fn quotient_rounded(x: Decimal, y: Decimal, places: u32) -> Option<Decimal> {
    const DEN_MAX: u128 = 1_000_000_000_000;
    let mx = u128::from(u64::try_from(x.mantissa().unsigned_abs()).ok()?);
    let my = u128::from(u64::try_from(y.mantissa().unsigned_abs()).ok()?);
    if my == 0 || places > 16 {
        return None;
    }
    // x / y · 10^places = mx · 10^e / my.
    let e = (y.scale() + places) as i32 - x.scale() as i32;
    let (num, den) = match e {
        0..=19 => (mx * POW10[e as usize], my),
        -12..=-1 => (mx, my * POW10[(-e) as usize]),
        _ => return None,
    };
    if den > DEN_MAX || 2 * den * POW10[places as usize] >= POW10[16] {
        return None;
    }
    // In 64-bit words when the dividend fits (a 128-bit division is a
    // call to a long routine).
    let (q, r) = match u64::try_from(num) {
        Ok(n) => {
            let d = den as u64;
            (u128::from(n / d), u128::from(n % d))
        }
        Err(_) => (num / den, num % den),
    };
    // Half away from zero: up when `2r >= den`.
    let q = q + u128::from(r >= den - r);
    if q == 0 || q >= POW10[11 + places as usize] {
        return None;
    }
    Some(Decimal::from_parts(
        q as u32,
        (q >> 32) as u32,
        (q >> 64) as u32,
        x.is_sign_negative() != y.is_sign_negative(),
        places,
    ))
}

#[inline(never)]
fn round_half_up_general(x: Decimal, places: u32) -> Decimal {
    let mut r = x.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero);
    // Rounding leaves at most `places` decimals; pad to exactly that many.
    if r.scale() < places {
        r.rescale(places);
    }
    r
}

impl Scalar for f64 {
    const FROM_INT: bool = true;

    #[inline]
    fn from_int(x: i64) -> Option<Self> {
        Some(x as f64)
    }

    fn get(v: &Value) -> Option<Self> {
        match v {
            Value::Float(x) => Some(*x),
            _ => None,
        }
    }

    fn specific(t: &TExpr, cx: &mut Cx<'_>) -> F<Self> {
        let pos = t.pos;
        let finite = |x: f64| {
            if x.is_finite() {
                Ok(x)
            } else {
                Err(String::from(OVERFLOW))
            }
        };
        match &t.node {
            TNode::Neg(a) => lift1(arg::<f64>(a, cx), |x| Ok(-x), pos),
            TNode::Arith(op, a, b) => {
                let (a, b) = (arg::<f64>(a, cx), arg::<f64>(b, cx));
                match op {
                    BinaryOp::Add => lift2(a, b, move |x, y| finite(x + y), pos),
                    BinaryOp::Sub => lift2(a, b, move |x, y| finite(x - y), pos),
                    BinaryOp::Mul => lift2(a, b, move |x, y| finite(x * y), pos),
                    BinaryOp::Div => lift2(
                        a,
                        b,
                        move |x, y| {
                            if y == 0.0 {
                                Err(DIV_ZERO.into())
                            } else {
                                finite(x / y)
                            }
                        },
                        pos,
                    ),
                    _ => unsupported(t),
                }
            }
            TNode::Cast(a) => match a.ty {
                Type::Int => lift1(arg::<i64>(a, cx), |x| Ok(x as f64), pos),
                Type::Decimal => lift1(
                    arg::<Decimal>(a, cx),
                    |x| x.to_f64().ok_or_else(|| OVERFLOW.into()),
                    pos,
                ),
                _ => unsupported(t),
            },
            TNode::Call(Func::Abs, args) => lift1(arg::<f64>(&args[0], cx), |x| Ok(x.abs()), pos),
            _ => unsupported(t),
        }
    }
}

impl Scalar for Date {
    fn get(v: &Value) -> Option<Self> {
        match v {
            Value::Date(x) => Some(*x),
            _ => None,
        }
    }

    fn specific(t: &TExpr, cx: &mut Cx<'_>) -> F<Self> {
        let pos = t.pos;
        let TNode::Call(f, args) = &t.node else {
            return unsupported(t);
        };
        let range = |d: Date, n: i64| format!("{d} moved by {n} is outside the years 0001–9999");
        match f {
            Func::AddDays => lift2(
                arg::<Date>(&args[0], cx),
                arg::<i64>(&args[1], cx),
                move |d, n| d.add_days(n).ok_or_else(|| range(d, n)),
                pos,
            ),
            Func::AddMonths => lift2(
                arg::<Date>(&args[0], cx),
                arg::<i64>(&args[1], cx),
                move |d, n| d.add_months(n).ok_or_else(|| range(d, n)),
                pos,
            ),
            Func::YearsBefore => lift2(
                arg::<Date>(&args[0], cx),
                arg::<i64>(&args[1], cx),
                move |d, n| d.years_before(n).ok_or_else(|| range(d, n)),
                pos,
            ),
            Func::TimestampDate => {
                let s = text(&args[0], cx);
                Box::new(move |env| Ok(s(env)?.and_then(|s| parse_timestamp(&s)).map(|(d, _)| d)))
            }
            Func::ParseDate => {
                let s = text(&args[0], cx);
                Box::new(move |env| {
                    let Some(s) = s(env)? else { return Ok(None) };
                    Date::parse(&s).map(Some).ok_or_else(|| {
                        fail(pos, format!("date: expected YYYY-MM-DD, found \"{s}\""))
                    })
                })
            }
            _ => unsupported(t),
        }
    }
}

fn compare<T: PartialOrd>(op: BinaryOp, a: Option<T>, b: Option<T>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        // A comparison with null is false; `!=` is the negation of `==`.
        return op == BinaryOp::Ne;
    };
    match op {
        BinaryOp::Eq => a == b,
        BinaryOp::Ne => a != b,
        BinaryOp::Lt => a < b,
        BinaryOp::Le => a <= b,
        BinaryOp::Gt => a > b,
        BinaryOp::Ge => a >= b,
        _ => false,
    }
}

fn cmp_scalar<T: Scalar>(op: BinaryOp, a: &TExpr, b: &TExpr, cx: &mut Cx<'_>) -> F<bool> {
    let (a, b) = (arg::<T>(a, cx), arg::<T>(b, cx));
    Box::new(move |env| Ok(Some(compare(op, a.eval(env)?, b.eval(env)?))))
}

fn in_scalar<T: Scalar>(x: &TExpr, list: &[TExpr], cx: &mut Cx<'_>) -> F<bool> {
    let x = scalar::<T>(x, cx);
    let list: Vec<F<T>> = list.iter().map(|t| scalar::<T>(t, cx)).collect();
    Box::new(move |env| {
        let Some(v) = x(env)? else {
            return Ok(Some(false));
        };
        for item in &list {
            if item(env)? == Some(v) {
                return Ok(Some(true));
            }
        }
        Ok(Some(false))
    })
}

impl Scalar for bool {
    fn get(v: &Value) -> Option<Self> {
        match v {
            Value::Bool(x) => Some(*x),
            _ => None,
        }
    }

    fn specific(t: &TExpr, cx: &mut Cx<'_>) -> F<Self> {
        let pos = t.pos;
        match &t.node {
            TNode::Not(a) => {
                let a = condition(a, cx);
                Box::new(move |env| Ok(Some(!a(env)?)))
            }
            TNode::And(a, b) => {
                let (a, b) = (condition(a, cx), condition(b, cx));
                Box::new(move |env| Ok(Some(a(env)? && b(env)?)))
            }
            TNode::Or(a, b) => {
                let (a, b) = (condition(a, cx), condition(b, cx));
                Box::new(move |env| Ok(Some(a(env)? || b(env)?)))
            }
            TNode::IsNull(a, not_null) => {
                let a = compile(a, cx);
                let not_null = *not_null;
                Box::new(move |env| Ok(Some(a.is_null(env)? != not_null)))
            }
            TNode::Cmp(op, a, b) => match a.ty {
                Type::Int => cmp_scalar::<i64>(*op, a, b, cx),
                Type::Decimal => cmp_scalar::<Decimal>(*op, a, b, cx),
                Type::Float => cmp_scalar::<f64>(*op, a, b, cx),
                Type::Date => cmp_scalar::<Date>(*op, a, b, cx),
                Type::Bool => cmp_scalar::<bool>(*op, a, b, cx),
                Type::Str => {
                    let (a, b, op) = (text(a, cx), text(b, cx), *op);
                    Box::new(move |env| Ok(Some(compare(op, a(env)?, b(env)?))))
                }
            },
            TNode::In(x, list) => match x.ty {
                Type::Int => in_scalar::<i64>(x, list, cx),
                Type::Decimal => in_scalar::<Decimal>(x, list, cx),
                Type::Float => in_scalar::<f64>(x, list, cx),
                Type::Date => in_scalar::<Date>(x, list, cx),
                Type::Bool => in_scalar::<bool>(x, list, cx),
                Type::Str => {
                    let x = text(x, cx);
                    let list: Vec<StrF> = list.iter().map(|t| text(t, cx)).collect();
                    Box::new(move |env| {
                        let Some(v) = x(env)? else {
                            return Ok(Some(false));
                        };
                        for item in &list {
                            if item(env)?.as_deref() == Some(&*v) {
                                return Ok(Some(true));
                            }
                        }
                        Ok(Some(false))
                    })
                }
            },
            TNode::Call(Func::WithinYearsBefore, args) => {
                let (x, r, n) = (
                    scalar::<Date>(&args[0], cx),
                    scalar::<Date>(&args[1], cx),
                    scalar::<i64>(&args[2], cx),
                );
                Box::new(move |env| {
                    let (Some(x), Some(r), Some(n)) = (x(env)?, r(env)?, n(env)?) else {
                        return Ok(Some(false));
                    };
                    let from = r.years_before(n).ok_or_else(|| {
                        fail(
                            pos,
                            format!("{r} minus {n} years is outside the years 0001–9999"),
                        )
                    })?;
                    Ok(Some(from <= x && x <= r))
                })
            }
            TNode::Call(
                f @ (Func::StartsWith
                | Func::EndsWith
                | Func::Contains
                | Func::InList
                | Func::AnyInList),
                args,
            ) => {
                let (s, p, f) = (text(&args[0], cx), text(&args[1], cx), *f);
                Box::new(move |env| {
                    let (Some(s), Some(p)) = (s(env)?, p(env)?) else {
                        return Ok(Some(false));
                    };
                    Ok(Some(match f {
                        Func::StartsWith => s.starts_with(&*p),
                        Func::EndsWith => s.ends_with(&*p),
                        Func::Contains => s.contains(&*p),
                        Func::InList => p.split([',', '，']).any(|item| item.trim() == s.trim()),
                        _ => any_in_list(&s, &p),
                    }))
                })
            }
            _ => unsupported(t),
        }
    }
}

/// Whether some item of `items` (split at `, ; ， ； |` or spaces,
/// trimmed) is one of the comma-separated items of `list`; empty items
/// match nothing.
pub(crate) fn any_in_list(items: &str, list: &str) -> bool {
    let wanted: Vec<&str> = list
        .split([',', '，'])
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    items
        .split([',', ';', '，', '；', '|', ' '])
        .map(str::trim)
        .any(|t| !t.is_empty() && wanted.contains(&t))
}

fn sf<G>(g: G) -> StrF
where
    G: for<'a> Fn(&Env<'a>) -> Res<Cow<'a, str>> + 'static,
{
    Box::new(g)
}

fn pooled(v: &Value, cx: &mut Cx<'_>, pos: Pos) -> StrF {
    match v {
        Value::Null => sf(|_| Ok(None)),
        Value::Str(s) => {
            let i = cx.pool.len();
            cx.pool.push(s.clone());
            sf(move |env| Ok(Some(Cow::Borrowed(env.pool[i].as_str()))))
        }
        other => {
            let e = internal(pos, other);
            sf(move |_| Err(e.clone()))
        }
    }
}

/// Compiles a text expression.
pub(crate) fn text(t: &TExpr, cx: &mut Cx<'_>) -> StrF {
    let pos = t.pos;
    match &t.node {
        TNode::Const(v) => pooled(v, cx, pos),
        TNode::Param(i) => {
            let v = cx.params[*i].clone();
            pooled(&v, cx, pos)
        }
        TNode::Field(i) => {
            let i = *i;
            sf(move |env| {
                let row: &[Value] = env.row;
                match &row[i] {
                    Value::Str(s) => Ok(Some(Cow::Borrowed(s.as_str()))),
                    Value::Null => Ok(None),
                    v => Err(internal(pos, v)),
                }
            })
        }
        TNode::Cond(c, a, b) => {
            let (c, a, b) = (condition(c, cx), text(a, cx), text(b, cx));
            sf(move |env| if c(env)? { a(env) } else { b(env) })
        }
        TNode::Concat(a, b) => {
            let (a, b) = (text(a, cx), text(b, cx));
            sf(move |env| {
                let (Some(x), Some(y)) = (a(env)?, b(env)?) else {
                    return Ok(None);
                };
                Ok(Some(Cow::Owned(format!("{x}{y}"))))
            })
        }
        TNode::Call(f @ (Func::Min | Func::Max | Func::Coalesce), args) => {
            let (a, b, f) = (text(&args[0], cx), text(&args[1], cx), *f);
            sf(move |env| {
                let x = a(env)?;
                if f == Func::Coalesce {
                    return match x {
                        Some(x) => Ok(Some(x)),
                        None => b(env),
                    };
                }
                let (Some(x), Some(y)) = (x, b(env)?) else {
                    return Ok(None);
                };
                let take_y = if f == Func::Min { y < x } else { y > x };
                Ok(Some(if take_y { y } else { x }))
            })
        }
        TNode::Call(Func::Join, args) => {
            let parts: Vec<StrF> = args.iter().map(|a| text(a, cx)).collect();
            sf(move |env| {
                let Some(sep) = parts[0](env)? else {
                    return Ok(None);
                };
                let mut out: Option<String> = None;
                for p in &parts[1..] {
                    if let Some(v) = p(env)? {
                        match &mut out {
                            Some(o) => {
                                o.push_str(&sep);
                                o.push_str(&v);
                            }
                            None => out = Some(v.into_owned()),
                        }
                    }
                }
                Ok(out.map(Cow::Owned))
            })
        }
        TNode::Call(Func::Yuan, args) => {
            let x = scalar::<Decimal>(&args[0], cx);
            sf(move |env| {
                Ok(x(env)?.map(|v| {
                    let mut s = String::new();
                    write_yuan(&mut s, v);
                    Cow::Owned(s)
                }))
            })
        }
        TNode::Cast(a) => {
            let a = compile(a, cx);
            sf(move |env| {
                let mut s = String::new();
                if a.is_null(env)? {
                    return Ok(None);
                }
                a.write_text(env, &mut s)?;
                Ok(Some(Cow::Owned(s)))
            })
        }
        _ => {
            let e = fail(pos, "expression not supported for text");
            sf(move |_| Err(e.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Param;

    /// Decimals and `yuan()` written digit by digit read as `Display`
    /// writes them, whatever the scale, sign and size.
    #[test]
    fn decimals_are_written_as_display_writes_them() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut values = vec![
            Decimal::ZERO,
            Decimal::new(-0, 2),
            Decimal::MAX,
            Decimal::MIN,
        ];
        for _ in 0..3000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let m = seed >> (seed % 64);
            let (scale, negative) = ((seed >> 8) as u32 % 29, seed & 1 == 1);
            values.push(Decimal::from_parts(
                m as u32,
                (m >> 32) as u32,
                0,
                negative,
                scale,
            ));
            values.push(Decimal::from_parts(
                m as u32,
                (m >> 32) as u32,
                7,
                negative,
                scale,
            ));
        }
        let mut out = String::new();
        for x in [
            0,
            1,
            -1,
            7,
            10,
            -10,
            99,
            100,
            123_456_789,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ] {
            out.clear();
            write_int(&mut out, x);
            assert_eq!(out, x.to_string());
        }
        for v in values {
            out.clear();
            write_decimal(&mut out, v);
            assert_eq!(out, v.to_string(), "{v:?}");
            out.clear();
            write_yuan(&mut out, v);
            assert_eq!(out, format!("{:.2}", round_half_up(v, 2)), "{v:?}");
        }
    }

    /// The word-sized rounding gives the general one's value, scale and
    /// sign, at every cut, for mantissas around the midpoints and the
    /// edges of 64 bits.
    #[test]
    fn rounding_in_machine_words_is_the_general_rounding() {
        let mut mantissas: Vec<u64> =
            vec![0, 1, 4, 5, 6, 9, 10, 15, 25, 35, 44, 45, 46, 49, 50, 51];
        mantissas.extend([u64::MAX, u64::MAX - 1, u64::MAX / 2, 1 << 32, (1 << 32) - 1]);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            mantissas.push(seed >> (seed % 60));
            // Ending in 5 (a midpoint at some cut) or 49…9 (just below).
            mantissas.push((seed % 1_000_000_000) / 10 * 10 + 5);
            mantissas.push((seed % 1_000_000_000) / 100 * 100 + 49);
        }
        // Mantissas of 96 bits too (quotients carried to 28 digits), with
        // midpoints and just-below-midpoints at every cut.
        let mut wide: Vec<u128> = mantissas
            .iter()
            .map(|&m| (u128::from(m) << 32 | u128::from(m >> 20)) & ((1 << 96) - 1))
            .collect();
        wide.extend([(1u128 << 96) - 1, (1u128 << 96) - 2, 1 << 64, (1 << 64) - 1]);
        for cut in 1..=28u32 {
            let d = 10u128.pow(cut);
            for k in [
                1u128,
                7,
                123_456_789,
                79_228_162_514_264_337_593 / d.min(1 << 60),
            ] {
                for m in [k * d + d / 2, k * d + d / 2 - 1, k * d + d / 2 + 1] {
                    if m < 1 << 96 {
                        wide.push(m);
                    }
                }
            }
        }
        let all = mantissas.iter().map(|&m| u128::from(m)).chain(wide);
        for m in all {
            for scale in 0..=28u32 {
                for places in 0..=6u32 {
                    for negative in [false, true] {
                        let x = Decimal::from_parts(
                            m as u32,
                            (m >> 32) as u32,
                            (m >> 64) as u32,
                            negative,
                            scale,
                        );
                        let (fast, general) =
                            (round_half_up(x, places), round_half_up_general(x, places));
                        assert_eq!(
                            (fast.to_string(), fast.scale()),
                            (general.to_string(), general.scale()),
                            "{x} to {places} places"
                        );
                    }
                }
            }
        }
    }
    #[test]
    fn a_quotient_rounded_in_integers_is_the_quotient_divided_then_rounded() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut cases = Vec::new();
        for _ in 0..20_000 {
            let x = next() >> (next() % 64);
            let y = (next() >> (next() % 64)).max(1);
            cases.push((x, y));
            // Near midpoints: x = y · (k + 1/2) / 10^places, give or take one.
            let y = next() % 100_000 + 1;
            let k = next() % 1_000_000;
            for d in [0, 1, u64::MAX] {
                cases.push(((2 * k + 1) * y / 2 + d % 2, y));
                cases.push(((k * y + y / 2).wrapping_add(d), y));
            }
        }
        cases.extend([
            (0, 1),
            (1, 3),
            (2, 3),
            (5, 10),
            (15, 10),
            (u64::MAX, 1),
            (1, u64::MAX),
        ]);
        let mut fast = 0;
        for &(mx, my) in &cases {
            for (sx, sy) in [
                (2, 0),
                (0, 0),
                (2, 2),
                (0, 2),
                (6, 0),
                (2, 3),
                (28, 0),
                (0, 28),
            ] {
                for places in [0, 1, 2, 4, 16, 17] {
                    for (nx, ny) in [(false, false), (true, false), (false, true)] {
                        let x = Decimal::from_parts(mx as u32, (mx >> 32) as u32, 0, nx, sx);
                        let y = Decimal::from_parts(my as u32, (my >> 32) as u32, 0, ny, sy);
                        let Some(r) = quotient_rounded(x, y, places) else {
                            continue;
                        };
                        fast += 1;
                        let general = round_half_up(x.checked_div(y).unwrap(), places);
                        assert_eq!(
                            (r.to_string(), r.scale()),
                            (general.to_string(), general.scale()),
                            "round_half_up({x} / {y}, {places})"
                        );
                    }
                }
            }
        }
        assert!(fast > 100_000, "{fast} cases took the fast path");
    }

    #[test]
    fn round_half_up_of_a_quotient_keeps_nulls_and_the_division_error() {
        let r = |n: i64, x: &str| eval("round_half_up(x / n, 2)", &row(n, x));
        assert_eq!(r(3, "100"), Ok(dec("33.33")));
        assert_eq!(r(3, "200"), Ok(dec("66.67")));
        assert_eq!(r(-8, "1"), Ok(dec("-0.13")));
        assert_eq!(r(400, "0.01"), Ok(dec("0.00")));
        assert_eq!(r(-400, "0.01"), Ok(dec("0.00")));
        assert_eq!(r(8, "2"), Ok(dec("0.25")));
        // Beyond the integer path: divided to 28 digits, then rounded.
        assert_eq!(
            r(7, "79228162514264337593543950335"),
            Ok(dec("11318308930609191084791992905"))
        );
        assert_eq!(
            eval("round_half_up(x / 3, 2)", &row(0, "1")),
            Ok(dec("0.33"))
        );
        let mut null_x = row(2, "0");
        null_x[1] = Value::Null;
        assert_eq!(eval("round_half_up(x / n, 2)", &null_x), Ok(Value::Null));
        let err = r(0, "1").unwrap_err();
        assert!(err.contains("division by zero"), "{err}");
    }

    use crate::expr::check::{check, Column, Scope};
    use crate::expr::parser::parse_located;
    use crate::span::{Origin, Pos};

    fn columns() -> Vec<Column> {
        let col = |name: &str, ty: Type| Column {
            name: name.into(),
            ty,
            nullable: true,
            personal: None,
        };
        vec![
            col("n", Type::Int),
            col("x", Type::Decimal),
            col("s", Type::Str),
            col("d", Type::Date),
        ]
    }

    fn params() -> Vec<Param> {
        vec![Param {
            name: "r".into(),
            ty: Type::Decimal,
            default: Value::Decimal(Decimal::new(15, 3)),
            unit: None,
            description: None,
        }]
    }

    /// Evaluates `text` on one row; the value or the error message.
    fn eval(text: &str, row: &[Value]) -> Result<Value, String> {
        let e = parse_located(text, &Origin::exact(Pos::new(1, 1))).map_err(|e| e.message)?;
        let (cols, params) = (columns(), params());
        let t = check(
            &e,
            &Scope {
                columns: &cols,
                params: &params,
                datasets: None,
            },
        )
        .map_err(|e| e.message)?;
        let values: Vec<Value> = params.iter().map(|p| p.default.clone()).collect();
        let mut pool = Vec::new();
        let c = compile(
            &t,
            &mut Cx {
                params: &values,
                pool: &mut pool,
            },
        );
        let mut out = Value::Null;
        c.eval_into(&Env { row, pool: &pool }, &mut out)
            .map_err(|e| e.message)?;
        Ok(out)
    }

    fn row(n: i64, x: &str) -> Vec<Value> {
        vec![
            Value::Int(n),
            Value::Decimal(x.parse().unwrap()),
            Value::Str("甲".into()),
            Value::Date(crate::date::Date::parse("2024-02-29").unwrap()),
        ]
    }

    fn dec(s: &str) -> Value {
        Value::Decimal(s.parse().unwrap())
    }

    #[test]
    fn integer_division_is_exact() {
        assert_eq!(eval("n / 2", &row(7, "0")), Ok(dec("3.5")));
        assert_eq!(eval("n % 4", &row(7, "0")), Ok(Value::Int(3)));
    }

    #[test]
    fn int_and_decimal_mix_exactly() {
        // 200 × 0.015 − 1 is exactly 2; no binary residue.
        assert_eq!(eval("n * $r - 1", &row(200, "0")), Ok(dec("2.000")));
        assert_eq!(eval("x * 3 == 0.3", &row(0, "0.1")), Ok(Value::Bool(true)));
        // An int field widened in place, on either side, null or not.
        assert_eq!(eval("x / n", &row(8, "1")), Ok(dec("0.125")));
        assert_eq!(eval("n - x", &row(8, "0.5")), Ok(dec("7.5")));
        let nulls = vec![Value::Null, Value::Null, Value::Null, Value::Null];
        let no_n = vec![Value::Null, dec("1"), Value::Null, Value::Null];
        assert_eq!(eval("x + n", &no_n), Ok(Value::Null));
        assert_eq!(eval("n * $r", &nulls), Ok(Value::Null));
        let text_n = vec![Value::Str("8".into()), dec("1"), Value::Null, Value::Null];
        assert!(eval("x + n", &text_n)
            .unwrap_err()
            .contains("a value of type string"));
    }

    #[test]
    fn a_text_field_compared_with_a_constant_in_a_condition() {
        let r = row(0, "0");
        assert_eq!(eval("s == '甲' && n == 0", &r), Ok(Value::Bool(true)));
        assert_eq!(eval("s != '甲' || n == 1", &r), Ok(Value::Bool(false)));
        assert_eq!(eval("!(s == '乙')", &r), Ok(Value::Bool(true)));
        let nulls = vec![Value::Null, Value::Null, Value::Null, Value::Null];
        assert_eq!(eval("s == '甲' || n == 1", &nulls), Ok(Value::Bool(false)));
        assert_eq!(eval("s != '甲' && true", &nulls), Ok(Value::Bool(true)));
        let wrong = vec![Value::Null, Value::Null, Value::Int(1), Value::Null];
        assert!(eval("s == '甲' || n == 1", &wrong)
            .unwrap_err()
            .contains("a value of type int"));
    }

    #[test]
    fn a_field_compared_with_a_constant_is_false_when_null_and_fails_on_another_type() {
        assert_eq!(eval("x > 0.5", &row(0, "0.6")), Ok(Value::Bool(true)));
        assert_eq!(
            eval("x > 0.5 && n == 0", &row(0, "0.4")),
            Ok(Value::Bool(false))
        );
        let nulls = vec![Value::Null, Value::Null, Value::Null, Value::Null];
        assert_eq!(eval("x > 0.5 || n != 0", &nulls), Ok(Value::Bool(true)));
        assert_eq!(eval("x > 0.5 || n == 0", &nulls), Ok(Value::Bool(false)));
        // A row whose `x` holds text, which the executor's read refuses
        // before any expression sees it, is still an error here.
        let wrong = vec![
            Value::Int(0),
            Value::Str("0.6".into()),
            Value::Null,
            Value::Null,
        ];
        assert!(eval("x > 0.5 || n == 1", &wrong)
            .unwrap_err()
            .contains("a value of type string"));
    }

    #[test]
    fn rounding_is_half_away_from_zero_to_exact_places() {
        assert_eq!(
            eval("round_half_up(x, 2)", &row(0, "2.345")),
            Ok(dec("2.35"))
        );
        assert_eq!(
            eval("round_half_up(x, 2)", &row(0, "-2.345")),
            Ok(dec("-2.35"))
        );
        assert_eq!(eval("round_half_up(x, 2)", &row(0, "7")), Ok(dec("7.00")));
        assert_eq!(
            eval("yuan(x)", &row(0, "12345.675")),
            Ok(Value::Str("12345.68".into()))
        );
        assert_eq!(eval("ceil(x)", &row(0, "1.01")), Ok(Value::Int(2)));
    }

    #[test]
    fn zero_has_no_sign_and_a_sum_keeps_the_decimals_of_its_operands() {
        let shown = |text: &str, x: &str| match eval(text, &row(3, x)).unwrap() {
            Value::Decimal(d) => d.to_string(),
            Value::Str(s) => s,
            v => panic!("{v:?}"),
        };
        assert_eq!(shown("-x", "0.00"), "0.00");
        assert_eq!(shown("yuan(-x)", "0.00"), "0.00");
        assert_eq!(shown("yuan(x)", "-0.001"), "0.00");
        assert_eq!(shown("x - x", "2.50"), "0.00");
        assert_eq!(shown("x + -3", "0.00"), "-3.00");
        assert_eq!(shown("x + -3", "1.00"), "-2.00");
        assert_eq!(shown("x - 3", "0.000"), "-3.000");
        assert_eq!(shown("x * -3", "0.00"), "0.00");
        assert_eq!(shown("x * 1.5", "0.00"), "0.000");
        assert_eq!(shown("x * n", "1.25"), "3.75");
        assert_eq!(shown("x + 1000000", "0.000"), "1000000.000");
    }

    #[test]
    fn division_by_zero_and_overflow_are_errors_not_panics() {
        assert_eq!(eval("x / n", &row(0, "1")), Err("division by zero".into()));
        assert_eq!(eval("n % 0", &row(1, "1")), Err("division by zero".into()));
        assert!(eval("n + 9223372036854775807", &row(1, "0"))
            .unwrap_err()
            .contains("overflow"));
        assert!(eval("x * x * x", &row(0, "79228162514264337593543950335"))
            .unwrap_err()
            .contains("overflow"));
        assert!(eval("add_days(d, 9999999)", &row(0, "0"))
            .unwrap_err()
            .contains("outside the years"));
        assert!(eval("date(s)", &row(0, "0"))
            .unwrap_err()
            .contains("expected YYYY-MM-DD"));
    }

    #[test]
    fn nulls_propagate_through_arithmetic_and_fail_comparisons() {
        let nulls = vec![Value::Null, Value::Null, Value::Null, Value::Null];
        assert_eq!(eval("n + 1", &nulls), Ok(Value::Null));
        assert_eq!(eval("n > 0", &nulls), Ok(Value::Bool(false)));
        assert_eq!(eval("n != 0", &nulls), Ok(Value::Bool(true)));
        assert_eq!(eval("!(n > 0)", &nulls), Ok(Value::Bool(true)));
        assert_eq!(eval("coalesce(x, 0)", &nulls), Ok(dec("0")));
        assert_eq!(eval("has(s) ? 1 : null", &nulls), Ok(Value::Null));
    }

    #[test]
    fn dates_follow_the_domain_rules() {
        let r = row(0, "0");
        assert_eq!(
            eval("string(years_before(d, 1))", &r),
            Ok(Value::Str("2023-02-28".into()))
        );
        assert_eq!(
            eval("days_between(date('2024-06-30'), date('2024-12-31'))", &r),
            Ok(Value::Int(184))
        );
        assert_eq!(
            eval("within_years_before(date('2023-02-28'), d, 1)", &r),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            eval("within_years_before(date('2023-02-27'), d, 1)", &r),
            Ok(Value::Bool(false))
        );
        assert_eq!(eval("year(d) * 100 + month(d)", &r), Ok(Value::Int(202402)));
    }

    #[test]
    fn text_functions_and_lists() {
        let r = row(0, "0");
        assert_eq!(eval("s in ['乙', '甲']", &r), Ok(Value::Bool(true)));
        assert_eq!(eval("in_list(s, '乙, 甲')", &r), Ok(Value::Bool(true)));
        assert_eq!(
            eval("s.starts_with('甲') && len(s + '乙') == 2", &r),
            Ok(Value::Bool(true))
        );
        assert_eq!(eval("min(s, 'a')", &r), Ok(Value::Str("a".into())));
    }

    #[test]
    fn join_leaves_out_null_parts_and_is_null_when_all_are() {
        let r = row(1, "0");
        assert_eq!(
            eval("join('; ', n > 0 ? 'a' : null, s, n > 5 ? 'c' : null)", &r),
            Ok(Value::Str("a; 甲".into()))
        );
        assert_eq!(eval("join('; ', n > 5 ? 'c' : null)", &r), Ok(Value::Null));
        assert_eq!(
            eval("coalesce(join(',', n > 5 ? 'c' : null), '无')", &r),
            Ok(Value::Str("无".into()))
        );
        assert!(eval("join('; ')", &r)
            .unwrap_err()
            .contains("at least one part"));
        assert!(eval("join('; ', n)", &r)
            .unwrap_err()
            .contains("expected string"));
        assert!(eval("join(s, 'a')", &r).unwrap_err().contains("never null"));
    }

    #[test]
    fn timestamps_in_department_formats_or_null() {
        let ts = |t: &str| vec![Value::Null, Value::Null, Value::Str(t.into()), Value::Null];
        assert_eq!(
            eval("string(timestamp_date(s))", &ts("2024/12/31 08:05")),
            Ok(Value::Str("2024-12-31".into()))
        );
        assert_eq!(
            eval("timestamp_hour(s)", &ts("2024/12/31 08:05")),
            Ok(Value::Int(8))
        );
        assert_eq!(
            eval("timestamp_hour(s)", &ts("2024-12-31T23:59")),
            Ok(Value::Int(23))
        );
        assert_eq!(
            eval("timestamp_hour(s)", &ts("2024-12-31")),
            Ok(Value::Null)
        );
        assert_eq!(
            eval("timestamp_date(s)", &ts("2024-12-31")),
            Ok(Value::Null)
        );
        assert_eq!(
            eval("timestamp_hour(s)", &ts("2024-12-31 24:00")),
            Ok(Value::Null)
        );
        assert_eq!(
            eval("has(timestamp_date(s))", &ts("2024-13-01 10:00")),
            Ok(Value::Bool(false))
        );
    }

    #[test]
    fn any_in_list_splits_tags_at_the_usual_separators() {
        let tags = |t: &str| vec![Value::Null, Value::Null, Value::Str(t.into()), Value::Null];
        assert_eq!(
            eval("any_in_list(s, '伪装')", &tags("口罩;伪装")),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            eval("any_in_list(s, '伪装,帽子')", &tags("口罩 | 帽子")),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            eval("any_in_list(s, '伪装')", &tags("伪装者")),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            eval("any_in_list(s, '伪装')", &tags("")),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            eval(
                "any_in_list(s, '伪装')",
                &[Value::Null, Value::Null, Value::Null, Value::Null]
            ),
            Ok(Value::Bool(false))
        );
    }

    #[test]
    fn parameter_only_parts_are_computed_once_at_compile() {
        // A division by zero among parameters alone is still reported at run.
        assert_eq!(
            eval("$r / 0 > x", &row(0, "1")),
            Err("division by zero".into())
        );
        assert_eq!(eval("$r * 100 == 1.5", &row(0, "1")), Ok(Value::Bool(true)));
    }
}
