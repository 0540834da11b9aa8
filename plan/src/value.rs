//! Types and values of fields, parameters and expressions.
//!
//! The types are those of dataset schemas (`datasets/*.toml`). Money and
//! ratios are [`Decimal`]: exact, never binary floating point. `float`
//! exists only because a schema may declare it, and never mixes with
//! `decimal` silently.

use crate::date::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;

/// The type of a field, parameter or expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Type {
    /// Text.
    #[serde(rename = "string")]
    Str,
    /// A 64-bit integer.
    Int,
    /// An exact decimal (28 significant digits).
    Decimal,
    /// A binary floating-point number; not for money.
    Float,
    /// A calendar date.
    Date,
    /// True or false.
    Bool,
}

impl Type {
    /// All types, for error messages.
    pub const ALL: [Type; 6] = [
        Type::Str,
        Type::Int,
        Type::Decimal,
        Type::Float,
        Type::Date,
        Type::Bool,
    ];

    /// The name used in schemas and model.toml (`string`, `int`…).
    pub fn name(self) -> &'static str {
        match self {
            Type::Str => "string",
            Type::Int => "int",
            Type::Decimal => "decimal",
            Type::Float => "float",
            Type::Date => "date",
            Type::Bool => "bool",
        }
    }

    /// The type called `name` in schemas and model.toml.
    pub fn from_name(name: &str) -> Option<Type> {
        Type::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether arithmetic applies.
    pub fn is_numeric(self) -> bool {
        matches!(self, Type::Int | Type::Decimal | Type::Float)
    }

    /// The type's name in Chinese, for explanations.
    pub fn chinese(self) -> &'static str {
        match self {
            Type::Str => "文本",
            Type::Int => "整数",
            Type::Decimal => "精确小数",
            Type::Float => "浮点数",
            Type::Date => "日期",
            Type::Bool => "是/否",
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What kind of personal data a field holds (the schema's `personal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersonalKind {
    /// A citizen ID number.
    Id,
    /// A person's name.
    Name,
    /// A phone number.
    Phone,
    /// Other personal data (addresses, certificate numbers…).
    Other,
}

impl PersonalKind {
    /// The name used in schemas.
    pub fn name(self) -> &'static str {
        match self {
            PersonalKind::Id => "id",
            PersonalKind::Name => "name",
            PersonalKind::Phone => "phone",
            PersonalKind::Other => "other",
        }
    }
}

/// One value of a row, a parameter or a constant.
///
/// Rows are arrays of these reused from row to row: [`Value::set_str`]
/// and [`Value::assign`] keep a text slot's allocation, so reading a
/// dataset allocates only while the longest value of each column grows.
///
/// The explicit tag byte (`repr(u8)`) makes telling the kinds apart one
/// load and compare, where the default layout hides the tag in the text's
/// capacity and every `match` decodes it: values are matched on every
/// field of every row.
#[derive(Debug, Clone, PartialEq, Default)]
#[repr(u8)]
pub enum Value {
    /// No value (an empty cell, or the missing side of a left join).
    #[default]
    Null,
    /// Text.
    Str(String),
    /// An integer.
    Int(i64),
    /// An exact decimal.
    Decimal(Decimal),
    /// A floating-point number.
    Float(f64),
    /// A calendar date.
    Date(Date),
    /// A boolean.
    Bool(bool),
}

impl Value {
    /// The value's type, `None` for null.
    pub fn ty(&self) -> Option<Type> {
        Some(match self {
            Value::Null => return None,
            Value::Str(_) => Type::Str,
            Value::Int(_) => Type::Int,
            Value::Decimal(_) => Type::Decimal,
            Value::Float(_) => Type::Float,
            Value::Date(_) => Type::Date,
            Value::Bool(_) => Type::Bool,
        })
    }

    /// Whether the value is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether the value may stand in a slot of type `ty`: null or of
    /// that type.
    #[inline]
    pub fn fits(&self, ty: Type) -> bool {
        let tag = self.tag();
        tag == 0 || tag == Value::tag_of(ty)
    }

    /// The kind of value as a small number: 0 for null, else
    /// [`Value::tag_of`] its type (the enum's tag byte, so reading it is
    /// one load).
    #[inline]
    pub(crate) fn tag(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Str(_) => 1,
            Value::Int(_) => 2,
            Value::Decimal(_) => 3,
            Value::Float(_) => 4,
            Value::Date(_) => 5,
            Value::Bool(_) => 6,
        }
    }

    /// The tag of a value of type `ty`.
    #[inline]
    pub(crate) fn tag_of(ty: Type) -> u8 {
        match ty {
            Type::Str => 1,
            Type::Int => 2,
            Type::Decimal => 3,
            Type::Float => 4,
            Type::Date => 5,
            Type::Bool => 6,
        }
    }

    /// Sets the value to the text `s`, reusing this slot's text buffer.
    #[inline]
    pub fn set_str(&mut self, s: &str) {
        match self {
            Value::Str(buf) => {
                buf.clear();
                buf.push_str(s);
            }
            other => *other = Value::Str(s.to_owned()),
        }
    }

    /// Sets the value to a copy of `other`, reusing this slot's text buffer.
    #[inline]
    pub fn assign(&mut self, other: &Value) {
        // A slot of the same kind has its payload overwritten in place (a
        // whole new value would be built on the stack and copied over).
        match (&mut *self, other) {
            (Value::Int(a), Value::Int(b)) => *a = *b,
            (Value::Decimal(a), Value::Decimal(b)) => *a = *b,
            (Value::Date(a), Value::Date(b)) => *a = *b,
            (Value::Bool(a), Value::Bool(b)) => *a = *b,
            (this, Value::Str(s)) => this.set_str(s),
            (this, Value::Null) => *this = Value::Null,
            (this, Value::Int(v)) => *this = Value::Int(*v),
            (this, Value::Decimal(v)) => *this = Value::Decimal(*v),
            (this, Value::Float(v)) => *this = Value::Float(*v),
            (this, Value::Date(v)) => *this = Value::Date(*v),
            (this, Value::Bool(v)) => *this = Value::Bool(*v),
        }
    }

    /// Parses `text` as a value of type `ty` (a parameter's value as
    /// model.toml or a run request writes it).
    pub fn parse(ty: Type, text: &str) -> Option<Value> {
        let t = text.trim();
        Some(match ty {
            Type::Str => Value::Str(text.to_owned()),
            Type::Int => Value::Int(t.parse().ok()?),
            Type::Decimal => Value::Decimal(parse_decimal(t)?),
            Type::Float => Value::Float(t.parse().ok().filter(|f: &f64| f.is_finite())?),
            Type::Date => Value::Date(Date::parse(t)?),
            Type::Bool => Value::Bool(match t {
                "true" => true,
                "false" => false,
                _ => return None,
            }),
        })
    }

    /// Orders two key values: null first, then by value; values of
    /// different types (which the type checker rules out) by type.
    #[inline]
    pub fn cmp_key(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => cmp_bytes(a.as_bytes(), b.as_bytes()),
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Decimal(a), Value::Decimal(b)) => a.cmp(b),
            (Value::Date(a), Value::Date(b)) => a.cmp(b),
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => a.total_cmp(b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) => 2,
            Value::Decimal(_) => 3,
            Value::Float(_) => 4,
            Value::Date(_) => 5,
            Value::Str(_) => 6,
        }
    }
}

/// Orders byte strings as slices do, eight bytes at a time: keys are
/// compared on every row of a join or a group, and in the sandbox
/// `memcmp` is a loop over single bytes.
///
/// Words are loaded little-endian, as wasm loads them: a big-endian load
/// would be a byte swap, which wasm lacks (some forty instructions a
/// word). Equal words, the common case, need no order; unequal ones are
/// ordered by their lowest differing byte, the first in the string.
#[inline]
fn cmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let y = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        if x != y {
            return first_difference(x, y);
        }
        i += 8;
    }
    if i < n {
        if n >= 8 {
            // The last eight bytes, overlapping what was compared equal:
            // the first difference is among those not yet compared.
            let x = u64::from_le_bytes(a[n - 8..n].try_into().expect("8 bytes"));
            let y = u64::from_le_bytes(b[n - 8..n].try_into().expect("8 bytes"));
            if x != y {
                return first_difference(x, y);
            }
        } else {
            while i < n {
                if a[i] != b[i] {
                    return a[i].cmp(&b[i]);
                }
                i += 1;
            }
        }
    }
    a.len().cmp(&b.len())
}

/// The order of two unequal words loaded little-endian from byte strings:
/// that of their lowest differing byte.
#[inline]
fn first_difference(x: u64, y: u64) -> Ordering {
    let shift = (x ^ y).trailing_zeros() & !7;
    ((x >> shift) as u8).cmp(&((y >> shift) as u8))
}

/// Parses an exact decimal written with digits, an optional sign and an
/// optional fraction (no exponent); `None` when it has more digits than a
/// decimal holds.
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let mut parts = body.splitn(2, '.');
    let int = parts.next()?;
    let frac = parts.next().unwrap_or("");
    let ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !ok(int) || !ok(frac) {
        return None;
    }
    // `from_str_exact` refuses what it would have to round.
    Decimal::from_str_exact(s.strip_prefix('+').unwrap_or(s)).ok()
}

impl fmt::Display for Value {
    /// Evidence text: null is empty, dates `YYYY-MM-DD`, decimals as
    /// computed (round them with `round_half_up` or `yuan` in the plan).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Str(s) => f.write_str(s),
            Value::Int(v) => write!(f, "{v}"),
            Value::Decimal(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Date(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_slots_keep_their_buffer() {
        let mut v = Value::Str(String::with_capacity(64));
        let before = match &v {
            Value::Str(s) => s.as_ptr(),
            _ => unreachable!(),
        };
        v.set_str("91350100M000100Y43");
        v.assign(&Value::Str("x".into()));
        match &v {
            Value::Str(s) => {
                assert_eq!(s, "x");
                assert_eq!(s.as_ptr(), before);
            }
            _ => panic!("not text"),
        }
    }

    #[test]
    fn assign_copies_any_value_into_a_slot_of_any_kind() {
        let values = [
            Value::Null,
            Value::Str("甲".into()),
            Value::Int(-7),
            Value::Decimal(Decimal::new(12345, 2)),
            Value::Float(0.5),
            Value::Date(Date::parse("2024-02-29").unwrap()),
            Value::Bool(true),
        ];
        for from in &values {
            for to in &values {
                let mut slot = to.clone();
                slot.assign(from);
                assert_eq!(&slot, from, "{from:?} into {to:?}");
            }
        }
    }

    #[test]
    fn keys_order_nulls_first_then_by_value() {
        let s = |x: &str| Value::Str(x.into());
        assert_eq!(s("91a").cmp_key(&s("91b")), Ordering::Less);
        assert_eq!(s("91b").cmp_key(&s("91b")), Ordering::Equal);
        assert_eq!(s("91").cmp_key(&s("9")), Ordering::Greater);
        assert_eq!(Value::Null.cmp_key(&s("")), Ordering::Less);
        assert_eq!(s("").cmp_key(&Value::Null), Ordering::Greater);
        assert_eq!(Value::Int(2).cmp_key(&Value::Int(10)), Ordering::Less);
    }

    #[test]
    fn text_keys_order_as_their_bytes() {
        let keys: [&str; 20] = [
            "",
            "9",
            "91350100M000100Y42",
            "91350100M000100Z43",
            "91350100M000100Y43A",
            "91350100M000100Y53",
            "91350100M00010",
            "91350100M000",
            "91350100M001",
            "91350100M",
            "91350100M000100Y43",
            "91350100M000100Y43",
            "91350100M000100Y44",
            "91350100M000100Y4",
            "91350100",
            "9135010",
            "913501",
            "91350100M000100Y43\u{ff}",
            "张三",
            "张三丰",
        ];
        for a in keys {
            for b in keys {
                assert_eq!(
                    cmp_bytes(a.as_bytes(), b.as_bytes()),
                    a.cmp(b),
                    "{a:?} {b:?}"
                );
                let (x, y) = (Value::Str(a.into()), Value::Str(b.into()));
                assert_eq!(x.cmp_key(&y), a.cmp(b), "{a:?} {b:?}");
            }
        }
    }

    /// Every length to three words, a difference at every place, and
    /// later bytes that differ the other way (the first difference decides,
    /// not the word's value): the order of slices.
    #[test]
    fn byte_order_is_decided_by_the_first_difference_at_any_place() {
        for len in 0..=24usize {
            let base: Vec<u8> = (0..len).map(|i| b'0' + (i % 10) as u8).collect();
            for at in 0..len {
                for (lo, hi) in [(b'1', b'2'), (0x7f, 0x80), (0x00, 0xff)] {
                    let (mut a, mut b) = (base.clone(), base.clone());
                    a[at] = lo;
                    b[at] = hi;
                    // Behind the difference, the other way round.
                    for k in at + 1..len {
                        a[k] = 0xff;
                        b[k] = 0x00;
                    }
                    assert_eq!(cmp_bytes(&a, &b), Ordering::Less, "{a:?} {b:?}");
                    assert_eq!(cmp_bytes(&b, &a), Ordering::Greater, "{a:?} {b:?}");
                    // A prefix orders first.
                    assert_eq!(cmp_bytes(&a[..at], &a), a[..at].cmp(&a[..]));
                }
            }
            assert_eq!(cmp_bytes(&base, &base), Ordering::Equal);
        }
    }

    #[test]
    fn a_value_fits_its_own_type_and_null_fits_all() {
        let values = [
            Value::Str("a".into()),
            Value::Int(1),
            Value::Decimal(Decimal::ONE),
            Value::Float(1.0),
            Value::Date(Date::parse("2024-01-01").unwrap()),
            Value::Bool(true),
        ];
        for v in &values {
            for t in Type::ALL {
                assert_eq!(v.fits(t), v.ty() == Some(t), "{v:?} in {t}");
                assert!(Value::Null.fits(t));
            }
        }
    }

    #[test]
    fn decimals_parse_exactly_or_not_at_all() {
        assert_eq!(parse_decimal("0.015"), Some(Decimal::new(15, 3)));
        assert_eq!(parse_decimal("-2"), Some(Decimal::from(-2)));
        assert_eq!(parse_decimal("1e5"), None);
        assert_eq!(parse_decimal("."), None);
        assert_eq!(parse_decimal("99999999999999999999999999999999999"), None);
    }

    #[test]
    fn parameter_text_parses_by_type() {
        assert_eq!(Value::parse(Type::Int, "2024"), Some(Value::Int(2024)));
        assert_eq!(Value::parse(Type::Bool, "yes"), None);
        assert_eq!(
            Value::parse(Type::Date, "2024-06-30"),
            Date::parse("2024-06-30").map(Value::Date)
        );
        assert_eq!(Value::parse(Type::Float, "NaN"), None);
    }
}
