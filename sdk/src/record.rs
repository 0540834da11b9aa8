//! The record encoding shared by host and models.
//!
//! Records are encoded once, at ingest, and handed to models exactly as
//! stored. The layout is field-indexed so that a model reading 3 fields of a
//! 20-field record jumps straight to them:
//!
//! ```text
//! record := n: u16 | offset[n]: u16 | value*      (little endian)
//! value  := tag: u8 | payload
//! ```
//!
//! `offset[i]` is the position of field `i`'s value from the start of the
//! record, or 0 when the field is absent (projected away by the host). Field
//! names are not repeated per record: they come once per dataset from the
//! host (`fields`). Payloads:
//!
//! | tag | type | payload |
//! |---|---|---|
//! | 0 | null | none |
//! | 1, 2 | bool false, true | none |
//! | 3 | int | i64 little endian |
//! | 4 | float | f64 little endian |
//! | 5 | string | u32 LE length, UTF-8 bytes |
//! | 6 | decimal | u8 length, ASCII text such as `-12.50` (exact) |
//! | 7 | date | 10 ASCII bytes `YYYY-MM-DD` |
//!
//! Decimals and dates are kept as text so that a model can read them as
//! `&str`, `String`, [`crate::Decimal`] or [`crate::Date`] without the host
//! choosing a binary layout for it.
//!
//! ```
//! use jiandu_sdk::record::{encode, RecordRef, Value};
//! // A fund_payments record: credit_code, levy_year, amount, paid_on.
//! let bytes = encode(&[
//!     Some(Value::Str("91350100M000100Y43")),
//!     Some(Value::Int(2024)),
//!     Some(Value::Decimal("1234.50")),
//!     Some(Value::Date("2024-07-15")),
//! ])?;
//! let rec = RecordRef::new(&bytes)?;
//! assert_eq!(rec.field(2)?, Some(Value::Decimal("1234.50")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

/// Largest encoded record: offsets are 16-bit.
///
/// ```
/// use jiandu_sdk::record::{encode, EncodeError, Value, MAX_RECORD_BYTES};
/// let note = "x".repeat(MAX_RECORD_BYTES);
/// let too_large = encode(&[Some(Value::Str(&note))]);
/// assert!(matches!(too_large, Err(EncodeError::TooLarge(_))));
/// ```
pub const MAX_RECORD_BYTES: usize = u16::MAX as usize;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const FLOAT: u8 = 4;
const STR: u8 = 5;
const DEC: u8 = 6;
const DATE: u8 = 7;

/// A decoded field value, borrowing from the record bytes. It displays
/// as its text (null as nothing).
///
/// ```
/// use jiandu_sdk::record::Value;
/// assert_eq!(Value::Decimal("1234.50").to_string(), "1234.50");
/// assert_eq!(Value::Bool(true).to_string(), "true");
/// assert_eq!(Value::Null.to_string(), "");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// Null.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Text.
    Str(&'a str),
    /// Exact decimal as text.
    Decimal(&'a str),
    /// `YYYY-MM-DD`.
    Date(&'a str),
}

impl Value<'_> {
    /// The value as text, as a person would write it (`None` for null).
    ///
    /// ```
    /// use jiandu_sdk::record::Value;
    /// assert_eq!(Value::Int(2024).to_text().as_deref(), Some("2024"));
    /// assert_eq!(Value::Date("2024-06-30").to_text().as_deref(), Some("2024-06-30"));
    /// assert_eq!(Value::Null.to_text(), None);
    /// ```
    pub fn to_text(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Str(s) | Value::Decimal(s) | Value::Date(s) => Some((*s).to_string()),
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) | Value::Decimal(s) | Value::Date(s) => f.write_str(s),
        }
    }
}

/// A record that does not follow the encoding.
///
/// ```
/// use jiandu_sdk::record::{DecodeError, RecordRef};
/// // A header announcing 6 fields, without their offsets.
/// let err = RecordRef::new(&[6, 0]).err().unwrap();
/// assert_eq!(err, DecodeError("offset table runs past the end"));
/// assert_eq!(err.to_string(), "malformed record: offset table runs past the end");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed record: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Why a record could not be encoded.
///
/// ```
/// use jiandu_sdk::record::{encode, EncodeError, Value};
/// let err = encode(&[Some(Value::Date("2024-7-15"))]).unwrap_err();
/// assert_eq!(err, EncodeError::BadDate);
/// assert_eq!(err.to_string(), "date is not YYYY-MM-DD");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// More than 65535 fields: how many there were.
    TooManyFields(usize),
    /// Larger than [`MAX_RECORD_BYTES`]: the size reached when the limit
    /// was passed.
    TooLarge(usize),
    /// A decimal text longer than 255 bytes: its length.
    DecimalTooLong(usize),
    /// A date text that is not 10 bytes long; its characters are not
    /// checked here.
    BadDate,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooManyFields(n) => write!(f, "{n} fields (at most 65535)"),
            EncodeError::TooLarge(n) => {
                write!(
                    f,
                    "record is {n} bytes encoded (at most {MAX_RECORD_BYTES})"
                )
            }
            EncodeError::DecimalTooLong(n) => write!(f, "decimal of {n} characters (at most 255)"),
            EncodeError::BadDate => f.write_str("date is not YYYY-MM-DD"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Encodes one record from its field values, in schema order. `None` marks a
/// field as absent (not sent to the model), which differs from
/// `Some(Value::Null)`.
///
/// ```
/// use jiandu_sdk::record::{encode_into, RecordRef, Value};
/// // Two employers records in one buffer, with their offsets.
/// let (mut batch, mut offsets) = (Vec::new(), vec![0]);
/// for (code, name) in [("91350100M000100Y43", "某某科技有限公司"), ("91350200MA2XN4B71K", "某某贸易有限公司")] {
///     encode_into(&mut batch, &[Some(Value::Str(code)), Some(Value::Str(name))])?;
///     offsets.push(batch.len());
/// }
/// let second = RecordRef::new(&batch[offsets[1]..offsets[2]])?;
/// assert_eq!(second.field(1)?, Some(Value::Str("某某贸易有限公司")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_into(out: &mut Vec<u8>, values: &[Option<Value<'_>>]) -> Result<(), EncodeError> {
    encode_with(out, values.len(), |i| match values[i] {
        Some(v) => Part::Value(v),
        None => Part::Absent,
    })
}

/// One field of a record being encoded by [`encode_parts_into`].
///
/// ```
/// use jiandu_sdk::record::{encode, encode_parts_into, Part, RecordRef, Value};
/// let stored = encode(&[Some(Value::Str("91350100M000100Y43")), Some(Value::Str("张三"))])?;
/// let stored = RecordRef::new(&stored)?;
/// // The credit code copied as encoded, the legal representative masked,
/// // a third field not sent.
/// let mut out = Vec::new();
/// encode_parts_into(
///     &mut out,
///     &[Part::Raw(stored.raw(0)?.unwrap()), Part::Value(Value::Str("张*")), Part::Absent],
/// )?;
/// let rec = RecordRef::new(&out)?;
/// assert_eq!(rec.field(0)?, Some(Value::Str("91350100M000100Y43")));
/// assert_eq!(rec.field(1)?, Some(Value::Str("张*")));
/// assert!(!rec.has(2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub enum Part<'a> {
    /// Not sent (offset 0).
    Absent,
    /// A value to encode.
    Value(Value<'a>),
    /// A value already encoded, as [`RecordRef::raw`] returns it: copied
    /// without decoding.
    Raw(&'a [u8]),
}

/// Encodes one record from parts, in field order.
///
/// ```
/// use jiandu_sdk::record::{encode_parts_into, Part, RecordRef, Value};
/// let mut out = Vec::new();
/// encode_parts_into(&mut out, &[Part::Value(Value::Int(2024)), Part::Absent])?;
/// assert_eq!(RecordRef::new(&out)?.int(0), Some(2024));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_parts_into(out: &mut Vec<u8>, parts: &[Part<'_>]) -> Result<(), EncodeError> {
    encode_with(out, parts.len(), |i| parts[i])
}

fn encode_with<'v>(
    out: &mut Vec<u8>,
    n: usize,
    part: impl Fn(usize) -> Part<'v>,
) -> Result<(), EncodeError> {
    if n > u16::MAX as usize {
        return Err(EncodeError::TooManyFields(n));
    }
    let start = out.len();
    out.extend_from_slice(&(n as u16).to_le_bytes());
    let table = out.len();
    out.resize(table + 2 * n, 0);
    for i in 0..n {
        let value = match part(i) {
            Part::Absent => continue,
            Part::Value(v) => v,
            Part::Raw(bytes) => {
                let pos = out.len() - start;
                if pos > MAX_RECORD_BYTES {
                    out.truncate(start);
                    return Err(EncodeError::TooLarge(pos));
                }
                out[table + 2 * i..table + 2 * i + 2].copy_from_slice(&(pos as u16).to_le_bytes());
                out.extend_from_slice(bytes);
                continue;
            }
        };
        let pos = out.len() - start;
        if pos > MAX_RECORD_BYTES {
            out.truncate(start);
            return Err(EncodeError::TooLarge(pos));
        }
        out[table + 2 * i..table + 2 * i + 2].copy_from_slice(&(pos as u16).to_le_bytes());
        match value {
            Value::Null => out.push(NULL),
            Value::Bool(false) => out.push(FALSE),
            Value::Bool(true) => out.push(TRUE),
            Value::Int(x) => {
                out.push(INT);
                out.extend_from_slice(&x.to_le_bytes());
            }
            Value::Float(x) => {
                out.push(FLOAT);
                out.extend_from_slice(&x.to_le_bytes());
            }
            Value::Str(s) => {
                out.push(STR);
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Value::Decimal(s) => {
                if s.len() > 255 {
                    out.truncate(start);
                    return Err(EncodeError::DecimalTooLong(s.len()));
                }
                out.push(DEC);
                out.push(s.len() as u8);
                out.extend_from_slice(s.as_bytes());
            }
            Value::Date(s) => {
                if s.len() != 10 {
                    out.truncate(start);
                    return Err(EncodeError::BadDate);
                }
                out.push(DATE);
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
    let len = out.len() - start;
    if len > MAX_RECORD_BYTES {
        out.truncate(start);
        return Err(EncodeError::TooLarge(len));
    }
    Ok(())
}

/// Encodes one record into a new buffer.
///
/// ```
/// use jiandu_sdk::record::{encode, RecordRef, Value};
/// let bytes = encode(&[Some(Value::Str("91350100M000100Y43")), None, Some(Value::Null)])?;
/// let rec = RecordRef::new(&bytes)?;
/// assert_eq!(rec.field(1)?, None); // absent
/// assert_eq!(rec.field(2)?, Some(Value::Null));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode(values: &[Option<Value<'_>>]) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_into(&mut out, values)?;
    Ok(out)
}

/// A view of one encoded record.
///
/// ```
/// use jiandu_sdk::record::{encode, RecordRef, Value};
/// // fund_payments: credit_code, levy_year, payment_id (not sent), amount,
/// // paid_on, synthetic.
/// let bytes = encode(&[
///     Some(Value::Str("91350100M000100Y43")),
///     Some(Value::Int(2024)),
///     None,
///     Some(Value::Decimal("1234.50")),
///     Some(Value::Date("2024-07-15")),
///     Some(Value::Bool(false)),
/// ])?;
/// let rec = RecordRef::new(&bytes)?;
/// assert_eq!(rec.field(4)?, Some(Value::Date("2024-07-15")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct RecordRef<'a> {
    bytes: &'a [u8],
    n: usize,
}

impl<'a> RecordRef<'a> {
    /// Checks the header and wraps the bytes. Field values are checked when
    /// they are read.
    ///
    /// ```
    /// # use jiandu_sdk::record::{encode, RecordRef, Value};
    /// # let bytes = encode(&[
    /// #     Some(Value::Str("91350100M000100Y43")),
    /// #     Some(Value::Int(2024)),
    /// #     None,
    /// #     Some(Value::Decimal("1234.50")),
    /// #     Some(Value::Date("2024-07-15")),
    /// #     Some(Value::Bool(false)),
    /// # ])?;
    /// # let rec = RecordRef::new(&bytes)?;
    /// assert_eq!(RecordRef::new(&bytes)?.len(), 6);
    /// assert!(RecordRef::new(&[1]).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn new(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < 2 {
            return Err(DecodeError("shorter than its header"));
        }
        let n = u16::from_le_bytes([bytes[0], bytes[1]]) as usize;
        if bytes.len() < 2 + 2 * n {
            return Err(DecodeError("offset table runs past the end"));
        }
        Ok(RecordRef { bytes, n })
    }

    /// Number of field slots (present or absent).
    ///
    /// ```
    /// # use jiandu_sdk::record::{encode, RecordRef, Value};
    /// # let bytes = encode(&[
    /// #     Some(Value::Str("91350100M000100Y43")),
    /// #     Some(Value::Int(2024)),
    /// #     None,
    /// #     Some(Value::Decimal("1234.50")),
    /// #     Some(Value::Date("2024-07-15")),
    /// #     Some(Value::Bool(false)),
    /// # ])?;
    /// # let rec = RecordRef::new(&bytes)?;
    /// assert_eq!(rec.len(), 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the record has no field slots.
    ///
    /// ```
    /// # use jiandu_sdk::record::{encode, RecordRef, Value};
    /// # let bytes = encode(&[
    /// #     Some(Value::Str("91350100M000100Y43")),
    /// #     Some(Value::Int(2024)),
    /// #     None,
    /// #     Some(Value::Decimal("1234.50")),
    /// #     Some(Value::Date("2024-07-15")),
    /// #     Some(Value::Bool(false)),
    /// # ])?;
    /// # let rec = RecordRef::new(&bytes)?;
    /// assert!(!rec.is_empty());
    /// assert!(RecordRef::new(&encode(&[])?)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The raw bytes of the record.
    ///
    /// ```
    /// # use jiandu_sdk::record::{encode, RecordRef, Value};
    /// # let bytes = encode(&[
    /// #     Some(Value::Str("91350100M000100Y43")),
    /// #     Some(Value::Int(2024)),
    /// #     None,
    /// #     Some(Value::Decimal("1234.50")),
    /// #     Some(Value::Date("2024-07-15")),
    /// #     Some(Value::Bool(false)),
    /// # ])?;
    /// # let rec = RecordRef::new(&bytes)?;
    /// assert_eq!(rec.as_bytes(), &bytes[..]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether field `i` is present, without decoding it.
    ///
    /// ```
    /// # use jiandu_sdk::record::{encode, RecordRef, Value};
    /// # let bytes = encode(&[
    /// #     Some(Value::Str("91350100M000100Y43")),
    /// #     Some(Value::Int(2024)),
    /// #     None,
    /// #     Some(Value::Decimal("1234.50")),
    /// #     Some(Value::Date("2024-07-15")),
    /// #     Some(Value::Bool(false)),
    /// # ])?;
    /// # let rec = RecordRef::new(&bytes)?;
    /// assert!(rec.has(0));
    /// assert!(!rec.has(2)); // payment_id not sent
    /// assert!(!rec.has(6)); // out of range
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn has(&self, i: usize) -> bool {
        self.offset(i).is_some()
    }

    /// Field `i`, or `None` when it is absent or out of range.
    ///
    /// ```
    /// # use jiandu_sdk::record::{encode, RecordRef, Value};
    /// # let bytes = encode(&[
    /// #     Some(Value::Str("91350100M000100Y43")),
    /// #     Some(Value::Int(2024)),
    /// #     None,
    /// #     Some(Value::Decimal("1234.50")),
    /// #     Some(Value::Date("2024-07-15")),
    /// #     Some(Value::Bool(false)),
    /// # ])?;
    /// # let rec = RecordRef::new(&bytes)?;
    /// assert_eq!(rec.field(3)?, Some(Value::Decimal("1234.50")));
    /// assert_eq!(rec.field(2)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn field(&self, i: usize) -> Result<Option<Value<'a>>, DecodeError> {
        match self.offset(i) {
            Some(off) => decode_value(self.bytes, off).map(Some),
            None => Ok(None),
        }
    }

    /// Where field `i`'s value starts; `None` when it is absent or out of
    /// range (the header was checked by [`RecordRef::new`]).
    #[inline(always)]
    fn offset(&self, i: usize) -> Option<usize> {
        if i >= self.n {
            return None;
        }
        let at = 2 + 2 * i;
        let pair = self.bytes.get(at..at + 2)?;
        let off = u16::from_le_bytes([pair[0], pair[1]]) as usize;
        (off != 0).then_some(off)
    }

    /// Where field `i`'s text lies in [`RecordRef::as_bytes`] (start, end)
    /// when it is stored as a decimal; `None` otherwise (absent, another
    /// type, or cut short). The reading of an amount, kept to a few checks.
    ///
    /// ```
    /// # use jiandu_sdk::record::{encode, RecordRef, Value};
    /// # let bytes = encode(&[
    /// #     Some(Value::Str("91350100M000100Y43")),
    /// #     Some(Value::Int(2024)),
    /// #     None,
    /// #     Some(Value::Decimal("1234.50")),
    /// #     Some(Value::Date("2024-07-15")),
    /// #     Some(Value::Bool(false)),
    /// # ])?;
    /// # let rec = RecordRef::new(&bytes)?;
    /// let (start, end) = rec.decimal_span(3).unwrap();
    /// assert_eq!(&rec.as_bytes()[start..end], b"1234.50");
    /// assert_eq!(rec.decimal_span(0), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn decimal_span(&self, i: usize) -> Option<(usize, usize)> {
        let off = self.offset(i)?;
        let head = self.bytes.get(off..off + 2)?;
        if head[0] != DEC {
            return None;
        }
        let start = off + 2;
        let end = start + head[1] as usize;
        (end <= self.bytes.len()).then_some((start, end))
    }
}

impl<'a> RecordRef<'a> {
    /// Field `i` still encoded (tag and payload), without checking its
    /// text: for copying it into another record. `None` when absent.
    ///
    /// ```
    /// # use jiandu_sdk::record::{encode, RecordRef, Value};
    /// # let bytes = encode(&[
    /// #     Some(Value::Str("91350100M000100Y43")),
    /// #     Some(Value::Int(2024)),
    /// #     None,
    /// #     Some(Value::Decimal("1234.50")),
    /// #     Some(Value::Date("2024-07-15")),
    /// #     Some(Value::Bool(false)),
    /// # ])?;
    /// # let rec = RecordRef::new(&bytes)?;
    /// // The date's tag and its 10 bytes.
    /// assert_eq!(rec.raw(4)?.map(<[u8]>::len), Some(11));
    /// assert_eq!(rec.raw(2)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn raw(&self, i: usize) -> Result<Option<&'a [u8]>, DecodeError> {
        let Some(off) = self.offset(i) else {
            return Ok(None);
        };
        let len = value_len(self.bytes, off)?;
        take(self.bytes, off, len).map(Some)
    }
}

impl<'a> RecordRef<'a> {
    /// Field `i` when it is stored as a boolean; `None` otherwise.
    ///
    /// ```
    /// # use jiandu_sdk::record::{encode, RecordRef, Value};
    /// # let bytes = encode(&[
    /// #     Some(Value::Str("91350100M000100Y43")),
    /// #     Some(Value::Int(2024)),
    /// #     None,
    /// #     Some(Value::Decimal("1234.50")),
    /// #     Some(Value::Date("2024-07-15")),
    /// #     Some(Value::Bool(false)),
    /// # ])?;
    /// # let rec = RecordRef::new(&bytes)?;
    /// assert_eq!(rec.bool(5), Some(false));
    /// assert_eq!(rec.bool(0), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn bool(&self, i: usize) -> Option<bool> {
        match self.bytes.get(self.offset(i)?) {
            Some(&TRUE) => Some(true),
            Some(&FALSE) => Some(false),
            _ => None,
        }
    }
}

/// What a field is stored as: its tag, without its value
/// ([`RecordRef::kind`]).
///
/// ```
/// use jiandu_sdk::record::{encode, Kind, RecordRef, Value};
/// let bytes = encode(&[Some(Value::Int(2024)), Some(Value::Date("2024-07-15"))])?;
/// let rec = RecordRef::new(&bytes)?;
/// assert_eq!((rec.kind(0)?, rec.kind(1)?), (Some(Kind::Int), Some(Kind::Date)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A null value.
    Null,
    /// `true` or `false`.
    Bool,
    /// A 64-bit integer.
    Int,
    /// A 64-bit float.
    Float,
    /// Text.
    Str,
    /// An exact decimal, as text.
    Decimal,
    /// A date, `YYYY-MM-DD`.
    Date,
}

impl<'a> RecordRef<'a> {
    /// What field `i` is stored as, reading its tag only; `None` when the
    /// field is absent.
    ///
    /// ```
    /// # use jiandu_sdk::record::{encode, Kind, RecordRef, Value};
    /// # let bytes = encode(&[
    /// #     Some(Value::Str("91350100M000100Y43")),
    /// #     Some(Value::Int(2024)),
    /// #     None,
    /// #     Some(Value::Decimal("1234.50")),
    /// # ])?;
    /// # let rec = RecordRef::new(&bytes)?;
    /// assert_eq!(rec.kind(3)?, Some(Kind::Decimal));
    /// assert_eq!(rec.kind(2)?, None); // absent
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn kind(&self, i: usize) -> Result<Option<Kind>, DecodeError> {
        let Some(off) = self.offset(i) else {
            return Ok(None);
        };
        Ok(Some(match self.bytes.get(off) {
            Some(&NULL) => Kind::Null,
            Some(&FALSE | &TRUE) => Kind::Bool,
            Some(&INT) => Kind::Int,
            Some(&FLOAT) => Kind::Float,
            Some(&STR) => Kind::Str,
            Some(&DEC) => Kind::Decimal,
            Some(&DATE) => Kind::Date,
            Some(_) => return Err(DecodeError("unknown type tag")),
            None => return Err(DecodeError("offset past the end")),
        }))
    }

    /// Field `i` when it is stored as an integer; `None` otherwise (absent,
    /// null, another type or malformed: [`RecordRef::field`] tells which).
    ///
    /// ```
    /// # use jiandu_sdk::record::{encode, RecordRef, Value};
    /// # let bytes = encode(&[
    /// #     Some(Value::Str("91350100M000100Y43")),
    /// #     Some(Value::Int(2024)),
    /// #     None,
    /// #     Some(Value::Decimal("1234.50")),
    /// #     Some(Value::Date("2024-07-15")),
    /// #     Some(Value::Bool(false)),
    /// # ])?;
    /// # let rec = RecordRef::new(&bytes)?;
    /// assert_eq!(rec.int(1), Some(2024));
    /// assert_eq!(rec.int(3), None); // a decimal
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn int(&self, i: usize) -> Option<i64> {
        let off = self.offset(i)?;
        match self.bytes.get(off..off + 9) {
            Some([INT, v @ ..]) => Some(i64::from_le_bytes(v.try_into().expect("8 bytes"))),
            _ => None,
        }
    }
}

impl<'a> RecordRef<'a> {
    /// Field `i` when it is stored as a decimal of at most 18 digits
    /// (`[±]digits[.digits]`, as ingest stores amounts), read from its
    /// bytes without a UTF-8 pass; `None` otherwise (absent, another type,
    /// longer or other text, negative zero: [`RecordRef::field`] gives the
    /// text for a general parser).
    ///
    /// ```
    /// # use jiandu_sdk::record::{encode, RecordRef, Value};
    /// # use jiandu_sdk::Decimal;
    /// # let bytes = encode(&[
    /// #     Some(Value::Str("91350100M000100Y43")),
    /// #     Some(Value::Int(2024)),
    /// #     None,
    /// #     Some(Value::Decimal("1234.50")),
    /// # ])?;
    /// # let rec = RecordRef::new(&bytes)?;
    /// assert_eq!(rec.decimal(3), Some(Decimal::new(123450, 2)));
    /// assert_eq!(rec.decimal(1), None); // an integer
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn decimal(&self, i: usize) -> Option<crate::Decimal> {
        let (start, end) = self.decimal_span(i)?;
        crate::rows::parse_decimal_in(self.bytes, start, end)
    }

    /// Field `i` when it is stored as text or as a date (a date's text);
    /// `None` otherwise (absent, null, another type, malformed or not
    /// UTF-8: [`RecordRef::field`] tells which). ASCII text, as codes and
    /// keys are, is handed out without a UTF-8 pass.
    ///
    /// ```
    /// # use jiandu_sdk::record::{encode, RecordRef, Value};
    /// # let bytes = encode(&[
    /// #     Some(Value::Str("91350100M000100Y43")),
    /// #     Some(Value::Int(2024)),
    /// #     None,
    /// #     Some(Value::Decimal("1234.50")),
    /// #     Some(Value::Date("2024-07-15")),
    /// #     Some(Value::Bool(false)),
    /// # ])?;
    /// # let rec = RecordRef::new(&bytes)?;
    /// assert_eq!(rec.str(0), Some("91350100M000100Y43"));
    /// assert_eq!(rec.str(4), Some("2024-07-15"));
    /// assert_eq!(rec.str(3), None); // a decimal
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn str(&self, i: usize) -> Option<&'a str> {
        let off = self.offset(i)?;
        let bytes = match *self.bytes.get(off)? {
            STR => {
                let len = self.bytes.get(off + 1..off + 5)?;
                let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
                self.bytes.get(off + 5..(off + 5).checked_add(len)?)?
            }
            DATE => self.bytes.get(off + 1..off + 11)?,
            _ => return None,
        };
        crate::rows::utf8(bytes)
    }
}

impl<'a> RecordRef<'a> {
    /// The bytes of text, decimal or date field `i`, not checked as UTF-8:
    /// for comparing keys without decoding. `None` when the field is
    /// absent or not text.
    ///
    /// ```
    /// # use jiandu_sdk::record::{encode, RecordRef, Value};
    /// # let bytes = encode(&[
    /// #     Some(Value::Str("91350100M000100Y43")),
    /// #     Some(Value::Int(2024)),
    /// #     None,
    /// #     Some(Value::Decimal("1234.50")),
    /// #     Some(Value::Date("2024-07-15")),
    /// #     Some(Value::Bool(false)),
    /// # ])?;
    /// # let rec = RecordRef::new(&bytes)?;
    /// assert_eq!(rec.text_bytes(0)?, Some(&b"91350100M000100Y43"[..]));
    /// assert_eq!(rec.text_bytes(3)?, Some(&b"1234.50"[..]));
    /// assert_eq!(rec.text_bytes(1)?, None); // an integer
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn text_bytes(&self, i: usize) -> Result<Option<&'a [u8]>, DecodeError> {
        let Some(off) = self.offset(i) else {
            return Ok(None);
        };
        let tag = *self
            .bytes
            .get(off)
            .ok_or(DecodeError("offset past the end"))?;
        let at = off + 1;
        Ok(Some(match tag {
            STR => {
                let len = u32::from_le_bytes(take(self.bytes, at, 4)?.try_into().expect("4 bytes"));
                take(self.bytes, at + 4, len as usize)?
            }
            DEC => {
                let len = *self
                    .bytes
                    .get(at)
                    .ok_or(DecodeError("value runs past the end"))?;
                take(self.bytes, at + 1, len as usize)?
            }
            DATE => take(self.bytes, at, 10)?,
            _ => return Ok(None),
        }))
    }
}

/// Appends the record made of `rec`'s fields at `positions`, in that
/// order, copying each value still encoded: the host's projection of a
/// stored record onto the fields a model declared. A field absent in `rec`
/// stays absent.
///
/// Values that follow each other in `rec` as they do in the output (kept
/// fields side by side, the usual case) are copied as one range: exactly
/// their bytes, nothing from the fields between them.
///
/// ```
/// use jiandu_sdk::record::{encode, project_into, RecordRef, Value};
/// // employers as stored: credit_code, name, entity_type, status, legal_rep.
/// let stored = encode(&[
///     Some(Value::Str("91350100M000100Y43")),
///     Some(Value::Str("某某科技有限公司")),
///     Some(Value::Str("企业")),
///     Some(Value::Str("存续")),
///     Some(Value::Str("张三")),
/// ])?;
/// // A model that declared credit_code, name and entity_type.
/// let mut out = Vec::new();
/// project_into(&mut out, &RecordRef::new(&stored)?, &[0, 1, 2])?;
/// let rec = RecordRef::new(&out)?;
/// assert_eq!(rec.len(), 3);
/// assert_eq!(rec.field(2)?, Some(Value::Str("企业")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[inline]
pub fn project_into(
    out: &mut Vec<u8>,
    rec: &RecordRef<'_>,
    positions: &[usize],
) -> Result<(), DecodeError> {
    let start = out.len();
    let n = positions.len();
    let bytes = rec.bytes;
    out.reserve(2 + 2 * n + bytes.len());
    out.extend_from_slice(&(n as u16).to_le_bytes());
    let table = out.len();
    out.resize(table + 2 * n, 0);
    // Where the next value goes, from the start of the output record, and
    // the source range not yet copied.
    let mut pos = 2 + 2 * n;
    let mut pending = 0..0;
    for (slot, &i) in positions.iter().enumerate() {
        let Some(off) = rec.offset(i) else {
            continue;
        };
        let len = match value_len(bytes, off) {
            Ok(len) if off.checked_add(len).is_some_and(|end| end <= bytes.len()) => len,
            Ok(_) => {
                out.truncate(start);
                return Err(DecodeError("value runs past the end"));
            }
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        };
        // A subset of a record's values, under a table no longer than its
        // own, fits wherever the record did; a stored record larger than
        // that is refused here.
        if pos + len > MAX_RECORD_BYTES {
            out.truncate(start);
            return Err(DecodeError("record larger than its encoding allows"));
        }
        out[table + 2 * slot..table + 2 * slot + 2].copy_from_slice(&(pos as u16).to_le_bytes());
        pos += len;
        if pending.end == off && !pending.is_empty() {
            pending.end = off + len;
        } else {
            out.extend_from_slice(&bytes[pending]);
            pending = off..off + len;
        }
    }
    out.extend_from_slice(&bytes[pending]);
    Ok(())
}

/// Encoded length (tag included) of the value at `off`.
#[inline]
fn value_len(bytes: &[u8], off: usize) -> Result<usize, DecodeError> {
    let tag = *bytes.get(off).ok_or(DecodeError("offset past the end"))?;
    let at = off + 1;
    Ok(1 + match tag {
        NULL | FALSE | TRUE => 0,
        INT | FLOAT => 8,
        STR => 4 + u32::from_le_bytes(take(bytes, at, 4)?.try_into().expect("4 bytes")) as usize,
        DEC => {
            1 + *bytes
                .get(at)
                .ok_or(DecodeError("value runs past the end"))? as usize
        }
        DATE => 10,
        _ => return Err(DecodeError("unknown value tag")),
    })
}

#[inline]
fn take(bytes: &[u8], at: usize, len: usize) -> Result<&[u8], DecodeError> {
    bytes
        .get(at..at.checked_add(len).ok_or(DecodeError("length overflow"))?)
        .ok_or(DecodeError("value runs past the end"))
}

/// `bytes` as text, ASCII (codes, decimals, dates, most short texts)
/// checked eight bytes at a time, other text by the full UTF-8 check.
#[inline]
fn text(bytes: &[u8]) -> Result<&str, DecodeError> {
    crate::rows::utf8(bytes).ok_or(DecodeError("text is not UTF-8"))
}

#[inline]
fn decode_value(bytes: &[u8], off: usize) -> Result<Value<'_>, DecodeError> {
    let tag = *bytes.get(off).ok_or(DecodeError("offset past the end"))?;
    let at = off + 1;
    Ok(match tag {
        NULL => Value::Null,
        FALSE => Value::Bool(false),
        TRUE => Value::Bool(true),
        INT => Value::Int(i64::from_le_bytes(
            take(bytes, at, 8)?.try_into().expect("8 bytes"),
        )),
        FLOAT => Value::Float(f64::from_le_bytes(
            take(bytes, at, 8)?.try_into().expect("8 bytes"),
        )),
        STR => {
            let len = u32::from_le_bytes(take(bytes, at, 4)?.try_into().expect("4 bytes"));
            Value::Str(text(take(bytes, at + 4, len as usize)?)?)
        }
        DEC => {
            let len = *bytes
                .get(at)
                .ok_or(DecodeError("value runs past the end"))?;
            Value::Decimal(text(take(bytes, at + 1, len as usize)?)?)
        }
        DATE => Value::Date(text(take(bytes, at, 10)?)?),
        _ => return Err(DecodeError("unknown value tag")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_type_and_absent_fields() {
        let values = [
            Some(Value::Str("91350100M000100Y43")),
            None,
            Some(Value::Int(-42)),
            Some(Value::Decimal("1234.50")),
            Some(Value::Date("2024-02-29")),
            Some(Value::Null),
            Some(Value::Bool(true)),
            Some(Value::Float(0.25)),
        ];
        let bytes = encode(&values).unwrap();
        let rec = RecordRef::new(&bytes).unwrap();
        assert_eq!(rec.len(), values.len());
        for (i, v) in values.iter().enumerate() {
            assert_eq!(rec.field(i).unwrap(), *v, "field {i}");
        }
        assert_eq!(rec.field(99).unwrap(), None);
        assert_eq!(
            (rec.bool(6), rec.bool(5), rec.bool(1)),
            (Some(true), None, None)
        );
        assert_eq!((rec.int(2), rec.int(5)), (Some(-42), None));
    }

    /// Text and dates read as text, ASCII or not; every other kind, an
    /// absent field and text that is not UTF-8 are `None`.
    #[test]
    fn str_reads_text_and_dates_only() {
        let values = [
            Some(Value::Str("91350100M000100Y43")),
            Some(Value::Str("某某公司 Ltd.")),
            Some(Value::Str("")),
            Some(Value::Date("2024-02-29")),
            Some(Value::Decimal("1234.50")),
            Some(Value::Int(7)),
            Some(Value::Null),
            None,
        ];
        let bytes = encode(&values).unwrap();
        let rec = RecordRef::new(&bytes).unwrap();
        let read: Vec<_> = (0..values.len() + 1).map(|i| rec.str(i)).collect();
        assert_eq!(
            read,
            [
                Some("91350100M000100Y43"),
                Some("某某公司 Ltd."),
                Some(""),
                Some("2024-02-29"),
                None,
                None,
                None,
                None,
                None
            ]
        );
        let mut bad = encode(&[Some(Value::Str("ab"))]).unwrap();
        let last = bad.len() - 1;
        bad[last] = 0xff;
        let rec = RecordRef::new(&bad).unwrap();
        assert_eq!(rec.str(0), None);
        assert!(rec.field(0).is_err());
        // Past the first eight bytes, and in text that is not ASCII.
        for text in ["91350100M000100Y43", "阿克苏某某有限公司（0）"] {
            let mut bad = encode(&[Some(Value::Str(text))]).unwrap();
            let rec = RecordRef::new(&bad).unwrap();
            assert_eq!(rec.field(0).unwrap(), Some(Value::Str(text)));
            let last = bad.len() - 2;
            bad[last] = 0xc3;
            let rec = RecordRef::new(&bad).unwrap();
            assert!(rec.field(0).is_err(), "{text}");
        }
    }

    #[test]
    fn raw_values_copy_into_a_projected_record() {
        let values = [
            Some(Value::Str("张三")),
            Some(Value::Int(7)),
            Some(Value::Decimal("0.015")),
            None,
            Some(Value::Date("2024-01-31")),
            Some(Value::Null),
        ];
        let bytes = encode(&values).unwrap();
        let rec = RecordRef::new(&bytes).unwrap();
        assert_eq!(rec.raw(3).unwrap(), None);
        let parts: Vec<Part<'_>> = [4, 0, 5, 2]
            .iter()
            .map(|&i| Part::Raw(rec.raw(i).unwrap().unwrap()))
            .chain([Part::Value(Value::Str("x")), Part::Absent])
            .collect();
        let mut out = Vec::new();
        encode_parts_into(&mut out, &parts).unwrap();
        let projected = RecordRef::new(&out).unwrap();
        let expect = [
            values[4],
            values[0],
            values[5],
            values[2],
            Some(Value::Str("x")),
            None,
        ];
        for (i, v) in expect.iter().enumerate() {
            assert_eq!(projected.field(i).unwrap(), *v, "field {i}");
        }
    }

    #[test]
    fn projection_copies_the_chosen_fields_in_order() {
        let values = [
            Some(Value::Str("a")),
            None,
            Some(Value::Int(3)),
            Some(Value::Decimal("1.50")),
        ];
        let bytes = encode(&values).unwrap();
        let rec = RecordRef::new(&bytes).unwrap();
        let mut out = b"prefix".to_vec();
        project_into(&mut out, &rec, &[3, 1, 0]).unwrap();
        let projected = RecordRef::new(&out[6..]).unwrap();
        assert_eq!(projected.len(), 3);
        assert_eq!(projected.field(0).unwrap(), values[3]);
        assert_eq!(projected.field(1).unwrap(), None);
        assert_eq!(projected.field(2).unwrap(), values[0]);
        assert_eq!(out[6..], encode(&[values[3], None, values[0]]).unwrap()[..]);
    }

    #[test]
    fn text_bytes_are_the_payload_of_text_fields_only() {
        let values = [
            Some(Value::Str("甲")),
            Some(Value::Decimal("1.50")),
            Some(Value::Date("2024-01-31")),
            Some(Value::Int(7)),
            None,
        ];
        let bytes = encode(&values).unwrap();
        let rec = RecordRef::new(&bytes).unwrap();
        assert_eq!(rec.text_bytes(0).unwrap(), Some("甲".as_bytes()));
        assert_eq!(rec.text_bytes(1).unwrap(), Some(&b"1.50"[..]));
        assert_eq!(rec.text_bytes(2).unwrap(), Some(&b"2024-01-31"[..]));
        assert_eq!(rec.text_bytes(3).unwrap(), None);
        assert_eq!(rec.text_bytes(4).unwrap(), None);
        assert_eq!(rec.text_bytes(9).unwrap(), None);
        assert_eq!(rec.int(3), Some(7));
        assert_eq!((rec.int(0), rec.int(4), rec.int(9)), (None, None, None));
        assert_eq!((rec.bool(0), rec.bool(3), rec.bool(9)), (None, None, None));
    }

    #[test]
    fn projection_equals_encoding_the_chosen_values_for_every_choice() {
        let values = [
            Some(Value::Str("91350100M000100Y43")),
            Some(Value::Int(2023)),
            None,
            Some(Value::Str("张三")),
            Some(Value::Decimal("9084.50")),
            Some(Value::Bool(true)),
            Some(Value::Null),
            Some(Value::Date("2024-06-30")),
        ];
        let bytes = encode(&values).unwrap();
        let rec = RecordRef::new(&bytes).unwrap();
        let n = values.len() + 1; // one position past the end: absent
        let mut choices: Vec<Vec<usize>> = vec![vec![]];
        for len in 1..=3 {
            let mut next = Vec::new();
            for c in choices.iter().filter(|c| c.len() == len - 1) {
                for i in 0..n {
                    next.push(c.iter().copied().chain([i]).collect());
                }
            }
            choices.extend(next);
        }
        for positions in choices {
            let mut out = vec![7u8];
            project_into(&mut out, &rec, &positions).unwrap();
            let chosen: Vec<_> = positions
                .iter()
                .map(|&i| values.get(i).copied().flatten())
                .collect();
            assert_eq!(out[1..], encode(&chosen).unwrap()[..], "{positions:?}");
        }
    }

    #[test]
    fn truncated_record_is_an_error_not_a_panic() {
        let bytes = encode(&[Some(Value::Str("hello")), Some(Value::Int(1))]).unwrap();
        for cut in 0..bytes.len() {
            let Ok(rec) = RecordRef::new(&bytes[..cut]) else {
                continue;
            };
            for i in 0..rec.len() {
                let _ = rec.field(i);
                let _ = rec.raw(i);
                let _ = rec.text_bytes(i);
            }
            let _ = project_into(&mut Vec::new(), &rec, &[0, 1, 0]);
        }
    }

    #[test]
    fn oversized_record_is_refused() {
        let big = "x".repeat(MAX_RECORD_BYTES);
        let err = encode(&[Some(Value::Str(&big))]).unwrap_err();
        assert!(matches!(err, EncodeError::TooLarge(_)));
    }
}
