//! Typed field access without deserializing: the fast path of a scan.
//!
//! [`crate::Scan`] builds one of the author's structs per record through
//! serde, which is convenient and, for a join over millions of records,
//! most of the work: every field goes through a visitor, every text field
//! becomes a `String`. [`Rows`] hands out each record as a [`Row`] that
//! borrows from the batch the host sent; the model reads the fields it
//! needs by a [`Field`] resolved once per scan, as `&str`, `i64`,
//! [`Decimal`] or [`Date`], and nothing is allocated per record.
//! [`KeyedRows`] merge-joins on a text or integer field, comparing keys as
//! stored bytes before anything is decoded.
//!
//! ```no_run
//! # use jiandu_sdk::{Context, Decimal, Result};
//! # fn run(ctx: &mut Context) -> Result<()> {
//! let mut payments = ctx.read("fund_payments").rows()?.keyed("credit_code")?;
//! let amount = payments.field("amount")?;
//! let mut employers = ctx.read("employers").rows()?;
//! let (code, name) = (employers.field("credit_code")?, employers.field("name")?);
//! while let Some(e) = employers.next_row()? {
//!     let mut paid = Decimal::ZERO;
//!     payments.each(e.str(code)?, |p| {
//!         paid += p.decimal(amount)?;
//!         Ok(())
//!     })?;
//!     if paid.is_zero() {
//!         ctx.info(format!("{} paid nothing", e.str(name)?));
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use crate::backend::Batch;
use crate::backend::Shared;
use crate::record::{RecordRef, Value};
use crate::{Date, Decimal, Error, Result};
use core::cmp::Ordering;
use core::str::FromStr;
use std::rc::Rc;

/// A field of one scan's dataset, resolved by name once
/// ([`Rows::field`]) and then read from every [`Row`] by position.
///
/// ```no_run
/// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
/// let mut payments = ctx.read("fund_payments").rows()?;
/// let (amount, paid_on) = (payments.field("amount")?, payments.field("paid_on")?);
/// while let Some(p) = payments.next_row()? {
///     let (amount, paid_on) = (p.decimal(amount)?, p.date(paid_on)?);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field(usize);

/// The records of one dataset, batch by batch, as borrowed [`Row`]s.
///
/// Memory stays flat however large the dataset: one batch is held at a
/// time. Not an `Iterator`, because each row borrows the batch:
/// `while let Some(row) = rows.next_row()? { … }`.
///
/// ```no_run
/// # use jiandu_sdk::Decimal;
/// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
/// let mut payments = ctx.read("fund_payments").rows()?;
/// let amount = payments.field("amount")?;
/// let mut total = Decimal::ZERO;
/// while let Some(p) = payments.next_row()? {
///     total += p.decimal(amount)?;
/// }
/// # Ok(()) }
/// ```
pub struct Rows {
    backend: Shared,
    dataset: Rc<str>,
    names: Rc<[String]>,
    handle: u32,
    batch: Batch,
    next: usize,
    done: bool,
}

impl Rows {
    pub(crate) fn new(backend: Shared, dataset: &str, names: Rc<[String]>, handle: u32) -> Self {
        Rows {
            backend,
            dataset: Rc::from(dataset),
            names,
            handle,
            batch: Batch::default(),
            next: 0,
            done: false,
        }
    }

    /// The field called `name`; an error names the dataset's fields when
    /// there is none (or the model did not declare it).
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// let employers = ctx.read("employers").rows()?;
    /// let code = employers.field("credit_code")?;
    /// # Ok(()) }
    /// ```
    pub fn field(&self, name: &str) -> Result<Field> {
        field_of(&self.dataset, &self.names, name)
    }

    /// The dataset's field names, in record order.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// let employers = ctx.read("employers").rows()?;
    /// ctx.debug(format_args!("employers: {}", employers.names().join(", ")));
    /// # Ok(()) }
    /// ```
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The next record, or `None` at the end of the dataset.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// let mut employers = ctx.read("employers").rows()?;
    /// let name = employers.field("name")?;
    /// while let Some(e) = employers.next_row()? {
    ///     let name: &str = e.str(name)?;
    /// }
    /// # Ok(()) }
    /// ```
    #[inline(always)]
    pub fn next_row(&mut self) -> Result<Option<Row<'_>>> {
        let Some(i) = self.advance()? else {
            return Ok(None);
        };
        Ok(Some(Row {
            rec: self.record_at(i)?,
            dataset: &self.dataset,
            names: &self.names,
        }))
    }

    /// The record the last [`Rows::next_row`] returned, read again; `None`
    /// before the first, at the end and after an error. For a reader that
    /// looks at some fields of a row first and at others only if the row
    /// is still wanted, without keeping a copy of it.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// let mut employers = ctx.read("employers").rows()?;
    /// let (code, name) = (employers.field("credit_code")?, employers.field("name")?);
    /// while let Some(e) = employers.next_row()? {
    ///     if e.str(code)?.starts_with("91") {
    ///         let again = employers.current()?.expect("a row was read");
    ///         ctx.info(again.str(name)?);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    #[inline(always)]
    pub fn current(&self) -> Result<Option<Row<'_>>> {
        if self.done || self.next == 0 || self.next >= self.batch.offsets.len() {
            return Ok(None);
        }
        Ok(Some(Row {
            rec: self.record_at(self.next - 1)?,
            dataset: &self.dataset,
            names: &self.names,
        }))
    }

    /// Moves to the next record and returns its position in the batch, or
    /// `None` at the end of the dataset.
    #[inline(always)]
    pub(crate) fn advance(&mut self) -> Result<Option<usize>> {
        if self.next + 1 >= self.batch.offsets.len() && !self.fill()? {
            return Ok(None);
        }
        self.next += 1;
        Ok(Some(self.next - 1))
    }

    /// Record `i` of the batch in hand, its bytes and header checked; the
    /// messages out of line.
    #[inline(always)]
    pub(crate) fn record_at(&self, i: usize) -> Result<RecordRef<'_>> {
        let offsets = &self.batch.offsets;
        let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
        match self.batch.data.get(start..end).map(RecordRef::new) {
            Some(Ok(rec)) => Ok(rec),
            _ => Err(self.bad_record(i)),
        }
    }

    #[cold]
    #[inline(never)]
    fn bad_record(&self, i: usize) -> Error {
        let why = match self.batch.record(i).map(RecordRef::new) {
            None => "bad batch offsets".to_string(),
            Some(Err(e)) => e.to_string(),
            Some(Ok(_)) => format!("bad record {i}"),
        };
        Error::msg(format!("scan `{}`: {why}", self.dataset))
    }

    /// The dataset's name.
    pub(crate) fn dataset(&self) -> &str {
        &self.dataset
    }

    /// Turns this scan into a merge-join stream on `key`, which must
    /// follow the order the scan runs in: the primary key's first field,
    /// or the index's field.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// // fund_payments' primary key starts with credit_code.
    /// let mut payments = ctx.read("fund_payments").rows()?.keyed("credit_code")?;
    /// // disabled_employees' index by_person is on person_id.
    /// let mut by_person = ctx.read("disabled_employees").by("by_person").rows()?.keyed("person_id")?;
    /// # Ok(()) }
    /// ```
    pub fn keyed(self, key: &str) -> Result<KeyedRows> {
        let key = self.field(key)?;
        Ok(KeyedRows {
            rows: self,
            key,
            last: None,
            asked: Vec::new(),
        })
    }

    /// Makes sure a record is waiting at `self.next`; `false` at the end.
    #[inline(never)]
    fn fill(&mut self) -> Result<bool> {
        while self.next >= self.batch.len() {
            if self.done {
                return Ok(false);
            }
            let next = self.backend.borrow_mut().next_batch(self.handle);
            match next {
                Ok(Some(batch)) => {
                    self.batch = batch;
                    self.next = 0;
                }
                Ok(None) => {
                    self.done = true;
                    self.batch = Batch::default();
                    return Ok(false);
                }
                Err(e) => {
                    self.done = true;
                    return Err(Error::msg(format!("scan `{}`: {e}", self.dataset)));
                }
            }
        }
        Ok(true)
    }
}

/// A scan dropped before its end is closed, so its handle is free again:
/// a model may stop reading early as often as it likes.
impl Drop for Rows {
    fn drop(&mut self) {
        if !self.done {
            if let Ok(mut backend) = self.backend.try_borrow_mut() {
                backend.close_scan(self.handle);
            }
        }
    }
}

pub(crate) fn field_of(dataset: &str, names: &[String], name: &str) -> Result<Field> {
    names
        .iter()
        .position(|n| n == name)
        .map(Field)
        .ok_or_else(|| {
            Error::msg(format!(
                "dataset `{dataset}` has no field `{name}` (fields: {})",
                names.join(", ")
            ))
        })
}

/// A sorted stream that hands out the records of one key at a time,
/// without copying them: the building block of a one-pass merge join.
///
/// Call [`KeyedRows::each`] with keys in ascending order; records with
/// smaller keys are skipped, records with that key are passed to the
/// closure. A key asked for twice after it found records, or a key below
/// the one before, is an error: the records it would have found were
/// already passed over, so a silent empty answer would be wrong.
///
/// ```no_run
/// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
/// let mut headcounts = ctx.read("social_insurance").rows()?.keyed("credit_code")?;
/// let (year, staff) = (headcounts.field("year")?, headcounts.field("staff")?);
/// let mut employers = ctx.read("employers").rows()?;
/// let code = employers.field("credit_code")?;
/// while let Some(e) = employers.next_row()? {
///     let mut staff_2023 = 0u32;
///     headcounts.each(e.str(code)?, |h| {
///         if h.i64(year)? == 2023 {
///             staff_2023 = h.int(staff)?;
///         }
///         Ok(())
///     })?;
/// }
/// # Ok(()) }
/// ```
pub struct KeyedRows {
    rows: Rows,
    key: Field,
    /// The key asked for last (as text) and whether it found records.
    last: Option<(Vec<u8>, bool)>,
    /// The text of the key being asked for (its buffer reused from call
    /// to call: this runs once per join key).
    asked: Vec<u8>,
}

impl KeyedRows {
    /// Another field of this stream's dataset.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// let payments = ctx.read("fund_payments").rows()?.keyed("credit_code")?;
    /// let amount = payments.field("amount")?;
    /// # Ok(()) }
    /// ```
    pub fn field(&self, name: &str) -> Result<Field> {
        self.rows.field(name)
    }

    /// Calls `f` with every record whose key equals `key`, skipping those
    /// before it; returns how many there were.
    ///
    /// ```no_run
    /// # use jiandu_sdk::Decimal;
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// # let mut payments = ctx.read("fund_payments").rows()?.keyed("credit_code")?;
    /// # let amount = payments.field("amount")?;
    /// let mut paid = Decimal::ZERO;
    /// let n = payments.each("91350100M000100Y43", |p| {
    ///     paid += p.decimal(amount)?;
    ///     Ok(())
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn each<K: JoinKey + ?Sized>(
        &mut self,
        key: &K,
        mut f: impl FnMut(Row<'_>) -> Result<()>,
    ) -> Result<usize> {
        self.asked.clear();
        key.key_text(&mut self.asked);
        if let Some((last, found)) = &self.last {
            let order = cmp_bytes(&self.asked, last);
            if order == Ordering::Less || (order == Ordering::Equal && *found) {
                return Err(out_of_order(&self.rows.dataset, &self.asked, last, order));
            }
        }
        let n = self.each_unchecked(key, &mut f)?;
        // The key asked becomes the last one; the old buffer is reused.
        let mut last = self.last.take().map(|(b, _)| b).unwrap_or_default();
        std::mem::swap(&mut last, &mut self.asked);
        self.last = Some((last, n > 0));
        Ok(n)
    }

    fn each_unchecked<K: JoinKey + ?Sized>(
        &mut self,
        key: &K,
        f: &mut impl FnMut(Row<'_>) -> Result<()>,
    ) -> Result<usize> {
        let mut n = 0;
        while self.rows.fill()? {
            // A loop over the batch in hand, its position in a local: this
            // runs once per record of the stream.
            let rows = &mut self.rows;
            let mut i = rows.next;
            let end = rows.batch.offsets.len() - 1;
            while i < end {
                let row = Row {
                    rec: rows.record_at(i)?,
                    dataset: &rows.dataset,
                    names: &rows.names,
                };
                match key.cmp_field(&row, self.key) {
                    // The stream's record sorts before the key: skip it.
                    Ok(Ordering::Greater) => {}
                    Ok(Ordering::Equal) => {
                        if let Err(e) = f(row) {
                            rows.next = i + 1;
                            return Err(e);
                        }
                        n += 1;
                    }
                    Ok(Ordering::Less) => {
                        rows.next = i;
                        return Ok(n);
                    }
                    Err(e) => {
                        rows.next = i;
                        return Err(e.context(format!("join key of `{}`", rows.dataset)));
                    }
                }
                i += 1;
            }
            rows.next = i;
        }
        Ok(n)
    }
}

/// The error of a merge-join key asked for out of order.
pub(crate) fn out_of_order(dataset: &str, key: &[u8], last: &[u8], order: Ordering) -> Error {
    let (key, last) = (String::from_utf8_lossy(key), String::from_utf8_lossy(last));
    let what = if order == Ordering::Equal {
        format!("key `{key}` was asked for again after it found records")
    } else {
        format!("key `{key}` was asked for after `{last}`, which sorts after it")
    };
    Error::msg(format!(
        "merge join on `{dataset}`: {what}; a merge join takes each key once, in ascending order \
         (the store's order: text order, so `10` comes before `9`). Sort the keys you join on, \
         or keep the records of a key you need again"
    ))
}

/// A key a [`KeyedRows`] stream can be joined on: text (compared as UTF-8
/// bytes, the store's order) or an integer (compared as its decimal text,
/// which is how the store orders integer key fields).
///
/// ```
/// use jiandu_sdk::{Decimal, Field, JoinKey, KeyedRows, Result};
///
/// /// What one employer paid, whether its code is a `&str` or a `String`.
/// fn paid<K: JoinKey + ?Sized>(payments: &mut KeyedRows, code: &K, amount: Field) -> Result<Decimal> {
///     let mut paid = Decimal::ZERO;
///     payments.each(code, |p| {
///         paid += p.decimal(amount)?;
///         Ok(())
///     })?;
///     Ok(paid)
/// }
///
/// // An integer key sorts as its text: 10 before 9.
/// let (mut ten, mut nine) = (Vec::new(), Vec::new());
/// 10i64.key_text(&mut ten);
/// 9i64.key_text(&mut nine);
/// assert!(ten < nine);
/// ```
pub trait JoinKey {
    /// How `self` compares with the key field of `row`.
    ///
    /// ```no_run
    /// # use jiandu_sdk::JoinKey;
    /// # use std::cmp::Ordering;
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// # let mut rows = ctx.read("employers").rows()?;
    /// # let code = rows.field("credit_code")?;
    /// # while let Some(row) = rows.next_row()? {
    /// let this_one = "91350100M000100Y43".cmp_field(&row, code)? == Ordering::Equal;
    /// # }
    /// # Ok(()) }
    /// ```
    fn cmp_field(&self, row: &Row<'_>, key: Field) -> Result<Ordering>;

    /// The key as the store orders it (its text), for the order check of
    /// [`KeyedRows::each`]; a key that writes nothing is not checked.
    ///
    /// ```
    /// use jiandu_sdk::JoinKey;
    /// let mut text = Vec::new();
    /// 2023i64.key_text(&mut text);
    /// assert_eq!(text, b"2023");
    /// ```
    fn key_text(&self, out: &mut Vec<u8>) {
        let _ = out;
    }
}

impl JoinKey for str {
    #[inline]
    fn cmp_field(&self, row: &Row<'_>, key: Field) -> Result<Ordering> {
        match row.rec.text_bytes(key.0) {
            Ok(Some(bytes)) => Ok(cmp_bytes(self.as_bytes(), bytes)),
            Ok(None) => Err(row.not_text(key)),
            Err(e) => Err(row.bad(key, e)),
        }
    }

    fn key_text(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl JoinKey for String {
    #[inline]
    fn cmp_field(&self, row: &Row<'_>, key: Field) -> Result<Ordering> {
        self.as_str().cmp_field(row, key)
    }

    fn key_text(&self, out: &mut Vec<u8>) {
        self.as_str().key_text(out);
    }
}

/// Integer keys: the store orders key fields by their text, so a stream
/// keyed on an integer field runs in the order of the numbers' decimal
/// text (`10` before `9`), and keys compare the same way here.
impl JoinKey for i64 {
    #[inline]
    fn cmp_field(&self, row: &Row<'_>, key: Field) -> Result<Ordering> {
        let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
        Ok(decimal_text(*self, &mut a).cmp(decimal_text(row.i64(key)?, &mut b)))
    }

    fn key_text(&self, out: &mut Vec<u8>) {
        let mut a = [0u8; 20];
        out.extend_from_slice(decimal_text(*self, &mut a));
    }
}

/// `i` in decimal, as the store writes integer key fields.
fn decimal_text(i: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    let mut n = i.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

/// Byte-wise order, eight bytes at a time: keys such as credit codes and
/// ID numbers are 18 bytes, and a wasm build's `memcmp` goes byte by byte
/// (so the bytes after the last whole word are compared as the last eight,
/// overlapping what was found equal, not handed to it). Words are loaded
/// little-endian, as wasm loads them (a big-endian load is a byte swap,
/// some forty wasm instructions); unequal words are ordered by their
/// lowest differing byte, the first in the string.
#[inline]
fn cmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let mut i = 0;
    while i + 8 <= n {
        let (x, y) = (word(a, i), word(b, i));
        if x != y {
            return first_difference(x, y);
        }
        i += 8;
    }
    if i < n {
        if n >= 8 {
            let (x, y) = (word(a, n - 8), word(b, n - 8));
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

/// One record, borrowed from the batch it came in.
///
/// ```no_run
/// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
/// let mut employers = ctx.read("employers").rows()?;
/// let (code, status) = (employers.field("credit_code")?, employers.field("status")?);
/// while let Some(row) = employers.next_row()? {
///     if row.opt_str(status)? == Some("吊销") {
///         ctx.info(format!("{} revoked", row.str(code)?));
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Copy)]
pub struct Row<'a> {
    rec: RecordRef<'a>,
    dataset: &'a str,
    names: &'a [String],
}

impl<'a> Row<'a> {
    /// The field's value as stored; `Value::Null` for null and for a
    /// field the host did not send.
    ///
    /// ```no_run
    /// # use jiandu_sdk::record::Value;
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// # let mut rows = ctx.read("employers").rows()?;
    /// # let status = rows.field("status")?;
    /// # while let Some(row) = rows.next_row()? {
    /// let active = match row.value(status)? {
    ///     Value::Str(s) => s == "存续" || s == "在业",
    ///     _ => false,
    /// };
    /// # }
    /// # Ok(()) }
    /// ```
    #[inline(always)]
    pub fn value(&self, f: Field) -> Result<Value<'a>> {
        match self.rec.field(f.0) {
            Ok(v) => Ok(v.unwrap_or(Value::Null)),
            Err(e) => Err(self.bad(f, e)),
        }
    }

    /// Whether the field is null (or was not sent).
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// # let mut rows = ctx.read("employers").rows()?;
    /// # let legal_rep = rows.field("legal_rep")?;
    /// # while let Some(row) = rows.next_row()? {
    /// let no_legal_rep = row.is_null(legal_rep)?;
    /// # }
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn is_null(&self, f: Field) -> Result<bool> {
        Ok(matches!(self.value(f)?, Value::Null))
    }

    /// Text, decimal or date as text.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// # let mut rows = ctx.read("employers").rows()?;
    /// # let credit_code = rows.field("credit_code")?;
    /// # while let Some(row) = rows.next_row()? {
    /// let code: &str = row.str(credit_code)?;
    /// # }
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn str(&self, f: Field) -> Result<&'a str> {
        if let Ok(Some(bytes)) = self.rec.text_bytes(f.0) {
            if let Some(s) = ascii(bytes) {
                return Ok(s);
            }
        }
        self.str_general(f)
    }

    /// Like [`Row::str`], with `None` for null.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// # let mut rows = ctx.read("employers").rows()?;
    /// # let region = rows.field("region")?;
    /// # while let Some(row) = rows.next_row()? {
    /// let region = row.opt_str(region)?.unwrap_or("unknown");
    /// # }
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn opt_str(&self, f: Field) -> Result<Option<&'a str>> {
        match self.value(f)? {
            Value::Null => Ok(None),
            _ => self.str(f).map(Some),
        }
    }

    /// An integer; decimal text without a fractional part is read too.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// # let mut rows = ctx.read("social_insurance").rows()?;
    /// # let year = rows.field("year")?;
    /// # while let Some(row) = rows.next_row()? {
    /// let year: i64 = row.i64(year)?;
    /// # }
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn i64(&self, f: Field) -> Result<i64> {
        if let Some(i) = self.rec.int(f.0) {
            return Ok(i);
        }
        self.i64_general(f)
    }

    /// An integer that must fit `T` (`u32`, `u8`, `usize`…).
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// # let mut rows = ctx.read("social_insurance").rows()?;
    /// # let staff = rows.field("staff")?;
    /// # while let Some(row) = rows.next_row()? {
    /// let staff: u32 = row.int(staff)?;
    /// # }
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn int<T: TryFrom<i64>>(&self, f: Field) -> Result<T> {
        let i = self.i64(f)?;
        T::try_from(i).map_err(|_| {
            Error::msg(format!(
                "{}: {i} is out of range for {}",
                self.place(f),
                core::any::type_name::<T>()
            ))
        })
    }

    /// An exact decimal (integers are read too).
    ///
    /// ```no_run
    /// # use jiandu_sdk::Decimal;
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// # let mut rows = ctx.read("fund_payments").rows()?;
    /// # let amount = rows.field("amount")?;
    /// # while let Some(row) = rows.next_row()? {
    /// let amount: Decimal = row.decimal(amount)?;
    /// # }
    /// # Ok(()) }
    /// ```
    #[inline(always)]
    pub fn decimal(&self, f: Field) -> Result<Decimal> {
        // Stored decimal text is ASCII: parsed from the bytes, without a
        // UTF-8 check; anything else takes the general path below.
        if let Some((start, end)) = self.rec.decimal_span(f.0) {
            if let Some(d) = parse_decimal_in(self.rec.as_bytes(), start, end) {
                return Ok(d);
            }
        }
        self.decimal_general(f)
    }

    /// A calendar date.
    ///
    /// ```no_run
    /// # use jiandu_sdk::Date;
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// # let mut rows = ctx.read("fund_payments").rows()?;
    /// # let paid_on = rows.field("paid_on")?;
    /// # while let Some(row) = rows.next_row()? {
    /// let late = row.date(paid_on)? > Date::from_ymd_opt(2024, 6, 30).unwrap();
    /// # }
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn date(&self, f: Field) -> Result<Date> {
        if let Ok(Some(bytes)) = self.rec.text_bytes(f.0) {
            if let Some(d) = parse_date_bytes(bytes) {
                return Ok(d);
            }
        }
        self.date_general(f)
    }

    /// A boolean.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// # let mut rows = ctx.read("disabled_employees").rows()?;
    /// # let insured = rows.field("insured")?;
    /// # while let Some(row) = rows.next_row()? {
    /// let insured: bool = row.bool(insured)?;
    /// # }
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn bool(&self, f: Field) -> Result<bool> {
        if let Some(b) = self.rec.bool(f.0) {
            return Ok(b);
        }
        self.bool_general(f)
    }

    /// A floating-point number (integers are read too). Not for money.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// # let mut rows = ctx.read("social_insurance").rows()?;
    /// # let staff = rows.field("staff")?;
    /// # while let Some(row) = rows.next_row()? {
    /// // A rough mean headcount for a log line; never for amounts.
    /// let staff: f64 = row.f64(staff)?;
    /// # }
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn f64(&self, f: Field) -> Result<f64> {
        match self.value(f)? {
            Value::Float(x) => Ok(x),
            Value::Int(i) => Ok(i as f64),
            Value::Decimal(s) => s
                .parse::<f64>()
                .map_err(|_| self.wrong(f, "a number", Value::Str(s))),
            other => Err(self.wrong(f, "a number", other)),
        }
    }

    /// The record's field names, in order.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// # let mut rows = ctx.read("employers").rows()?;
    /// # while let Some(row) = rows.next_row()? {
    /// let fields = row.names().join(", ");
    /// # }
    /// # Ok(()) }
    /// ```
    pub fn names(&self) -> &'a [String] {
        self.names
    }

    /// The dataset the record comes from.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// # let mut rows = ctx.read("employers").rows()?;
    /// # while let Some(row) = rows.next_row()? {
    /// assert_eq!(row.dataset(), "employers");
    /// # }
    /// # Ok(()) }
    /// ```
    pub fn dataset(&self) -> &'a str {
        self.dataset
    }

    /// The record as encoded ([`crate::record`]).
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// # let mut rows = ctx.read("employers").rows()?;
    /// # while let Some(row) = rows.next_row()? {
    /// let slots = row.record().len();
    /// # }
    /// # Ok(()) }
    /// ```
    pub fn record(&self) -> RecordRef<'a> {
        self.rec
    }

    // The general paths of the typed reads: other stored types, text that
    // is not in the store's own form, errors. Out of line, so that the
    // fast paths above stay small enough to inline into a model's loop.

    #[cold]
    #[inline(never)]
    fn str_general(&self, f: Field) -> Result<&'a str> {
        match self.value(f)? {
            Value::Str(s) | Value::Decimal(s) | Value::Date(s) => Ok(s),
            other => Err(self.wrong(f, "text", other)),
        }
    }

    #[cold]
    #[inline(never)]
    fn i64_general(&self, f: Field) -> Result<i64> {
        match self.value(f)? {
            Value::Int(i) => Ok(i),
            Value::Decimal(s) | Value::Str(s) => s
                .parse::<i64>()
                .map_err(|_| self.wrong(f, "an integer", Value::Str(s))),
            other => Err(self.wrong(f, "an integer", other)),
        }
    }

    #[cold]
    #[inline(never)]
    fn decimal_general(&self, f: Field) -> Result<Decimal> {
        match self.value(f)? {
            Value::Decimal(s) | Value::Str(s) => {
                parse_decimal(s).ok_or_else(|| self.wrong(f, "a decimal", Value::Str(s)))
            }
            Value::Int(i) => Ok(Decimal::from(i)),
            other => Err(self.wrong(f, "a decimal", other)),
        }
    }

    #[cold]
    #[inline(never)]
    fn date_general(&self, f: Field) -> Result<Date> {
        match self.value(f)? {
            Value::Date(s) | Value::Str(s) => {
                parse_date(s).ok_or_else(|| self.wrong(f, "a date", Value::Str(s)))
            }
            other => Err(self.wrong(f, "a date", other)),
        }
    }

    #[cold]
    #[inline(never)]
    fn bool_general(&self, f: Field) -> Result<bool> {
        match self.value(f)? {
            Value::Bool(b) => Ok(b),
            other => Err(self.wrong(f, "true or false", other)),
        }
    }

    fn place(&self, f: Field) -> String {
        let name = self.names.get(f.0).map(String::as_str).unwrap_or("?");
        format!("`{}` field `{name}`", self.dataset)
    }

    #[cold]
    fn wrong(&self, f: Field, wanted: &str, found: Value<'_>) -> Error {
        let found = match found {
            Value::Null => "null".to_string(),
            Value::Str(s) => format!("`{s}`"),
            v => format!("`{v}`"),
        };
        Error::msg(format!(
            "{}: expected {wanted}, found {found}",
            self.place(f)
        ))
    }

    #[cold]
    fn not_text(&self, f: Field) -> Error {
        match self.value(f) {
            Ok(v) => self.wrong(f, "text", v),
            Err(e) => e,
        }
    }

    #[cold]
    fn bad(&self, f: Field, e: impl core::fmt::Display) -> Error {
        Error::msg(format!("{}: {e}", self.place(f)))
    }
}

/// `bytes` as text when they are all ASCII, checked eight at a time
/// (codes, numbers and dates are); `None` sends other text through the
/// full UTF-8 check.
#[inline]
pub(crate) fn ascii(bytes: &[u8]) -> Option<&str> {
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        if u64::from_le_bytes(w.try_into().expect("8 bytes")) & 0x8080_8080_8080_8080 != 0 {
            return None;
        }
    }
    if !words.remainder().is_ascii() {
        return None;
    }
    // SAFETY: every byte is below 0x80, so the bytes are valid UTF-8.
    Some(unsafe { core::str::from_utf8_unchecked(bytes) })
}

/// `bytes` as text if they are UTF-8: ASCII (most codes, numbers and
/// short texts) checked eight bytes at a time in line, other text by the
/// general check.
#[inline]
pub(crate) fn utf8(bytes: &[u8]) -> Option<&str> {
    ascii(bytes).or_else(|| core::str::from_utf8(bytes).ok())
}

/// Parses decimal text such as `-1234.50` exactly, keeping its scale; the
/// common short form (at most 18 digits) without going through the
/// general parser.
pub(crate) fn parse_decimal(s: &str) -> Option<Decimal> {
    parse_decimal_in(s.as_bytes(), 0, s.len()).or_else(|| Decimal::from_str(s).ok())
}

/// `10^n` for every digit count a mantissa of at most 18 digits has.
const POW10: [u64; 19] = {
    let mut p = [1u64; 19];
    let mut i = 1;
    while i < 19 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// Eight ASCII zeros, one per byte of a word.
const ZEROS: u64 = 0x3030_3030_3030_3030;

/// The short form of [`parse_decimal`], for the text `buf[start..end]`:
/// `None` for anything else (more than 18 digits, exponents, negative zero,
/// not a number), which the general parser then decides.
///
/// Written without loops over the text: in the sandbox every loop
/// iteration also pays a fuel and an epoch check, and reading amounts is
/// most of what a scan model does. The digits are read as whole words
/// that may start before `start` (the bytes before a value in a record are
/// its header), which is why this takes the buffer and not the slice.
#[inline(always)]
pub(crate) fn parse_decimal_in(buf: &[u8], start: usize, end: usize) -> Option<Decimal> {
    match parse_amount(buf, start, end) {
        Some(d) => Some(d),
        None => parse_decimal_short(buf, start, end),
    }
}

/// Money as ingest stores it, `[-]digits.dd` with at most 16 digits
/// before the point, in a few straight-line steps; `None` for any other
/// text, which [`parse_decimal_short`] then reads. Kept this small so that
/// it can be inlined into a model's loop.
#[inline(always)]
fn parse_amount(buf: &[u8], start: usize, end: usize) -> Option<Decimal> {
    let int_end = end.checked_sub(3)?;
    let tail = buf.get(int_end..end)?;
    let negative = *buf.get(start)? == b'-';
    let from = start + usize::from(negative);
    let (tens, ones) = (tail[1].wrapping_sub(b'0'), tail[2].wrapping_sub(b'0'));
    if int_end <= from || tail[0] != b'.' || tens > 9 || ones > 9 {
        return None;
    }
    let int = word_run(buf, int_end, int_end - from)?;
    let mantissa = int * 100 + u64::from(tens) * 10 + u64::from(ones);
    signed(mantissa, negative, 2)
}

/// `mantissa` with its sign, at `scale` decimals; `None` for negative
/// zero, left to the general parser.
#[inline(always)]
fn signed(mantissa: u64, negative: bool, scale: u32) -> Option<Decimal> {
    if negative && mantissa == 0 {
        return None;
    }
    Some(Decimal::from_parts(
        mantissa as u32,
        (mantissa >> 32) as u32,
        0,
        negative,
        scale,
    ))
}

/// A whole number, `[-]digits` with at most 16 digits (wages and counts
/// are often written so), in a few straight-line steps; `None` for any
/// other text.
#[inline(always)]
fn parse_whole(buf: &[u8], start: usize, end: usize) -> Option<Decimal> {
    let negative = *buf.get(start)? == b'-';
    let from = start + usize::from(negative);
    if end <= from {
        return None;
    }
    let mantissa = word_run(buf, end, end - from)?;
    signed(mantissa, negative, 0)
}

/// [`parse_decimal_in`] for any text of at most 18 digits; out of line.
#[inline(never)]
fn parse_decimal_short(buf: &[u8], start: usize, end: usize) -> Option<Decimal> {
    if let Some(whole) = parse_whole(buf, start, end) {
        return Some(whole);
    }
    let first = *buf.get(start)?;
    let negative = first == b'-';
    let from = start + usize::from(negative || first == b'+');
    // Money has two decimals: look there before looking everywhere.
    let point = if end >= from + 3 && buf[end - 3] == b'.' {
        Some(end - 3)
    } else {
        buf[from..end]
            .iter()
            .rposition(|&b| b == b'.')
            .map(|p| from + p)
    };
    let (int_end, frac_len) = match point {
        Some(p) => (p, end - p - 1),
        None => (end, 0),
    };
    let int_len = int_end - from;
    // Empty parts (`.5`, `5.`) and more than 18 digits (the mantissa fits
    // an i64): the general parser decides.
    if int_len == 0 || (point.is_some() && frac_len == 0) || int_len + frac_len > 18 {
        return None;
    }
    let mantissa = digits_before(buf, int_end, int_len)? * POW10[frac_len]
        + digits_before(buf, end, frac_len)?;
    signed(mantissa, negative, frac_len as u32)
}

/// The value of the `n` (at most 18) ASCII digits that end at `end`;
/// `None` if any of them is not a digit. Read by [`word_run`] when it can,
/// by [`digits`] otherwise.
#[inline(always)]
fn digits_before(buf: &[u8], end: usize, n: usize) -> Option<u64> {
    if n == 0 {
        return Some(0);
    }
    word_run(buf, end, n).or_else(|| digits(&buf[end - n..end]))
}

/// The value of the `n` (1 to 16) ASCII digits that end at `end`, read as
/// one or two words without a loop; `None` if one is not a digit, and for
/// a run longer than 16 or too near the start of `buf` for whole words.
#[inline(always)]
fn word_run(buf: &[u8], end: usize, n: usize) -> Option<u64> {
    if n <= 8 && end >= 8 {
        word_digits(masked_word(buf, end, n))
    } else if n <= 16 && end >= 16 {
        let high = word_digits(masked_word(buf, end - 8, n - 8))?;
        Some(high * 100_000_000 + word_digits(masked_word(buf, end, 8))?)
    } else {
        None
    }
}

/// The eight bytes that end at `end` as a little-endian word, all but the
/// last `n` (1 to 8) replaced by ASCII zeros.
#[inline(always)]
fn masked_word(buf: &[u8], end: usize, n: usize) -> u64 {
    let w = u64::from_le_bytes(buf[end - 8..end].try_into().expect("8 bytes"));
    let keep = u64::MAX << (8 * (8 - n));
    (w & keep) | (ZEROS & !keep)
}

/// The value of at most 18 ASCII digits; `None` if any byte is not one.
/// Eight digits at a time in one 64-bit word: a loop per digit is most of
/// the cost of reading an amount in a wasm build.
#[inline]
fn digits(run: &[u8]) -> Option<u64> {
    let (head, words) = run.split_at(run.len() % 8);
    let mut value = 0u64;
    for &b in head {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        value = value * 10 + u64::from(d);
    }
    for word in words.chunks_exact(8) {
        value = value * 100_000_000
            + word_digits(u64::from_le_bytes(word.try_into().expect("8 bytes")))?;
    }
    Some(value)
}

/// The value of eight ASCII digits read as a little-endian word (the first
/// byte the most significant digit); `None` if any byte is not a digit.
#[inline(always)]
fn word_digits(x: u64) -> Option<u64> {
    let d = x.wrapping_sub(ZEROS);
    // A byte below '0' sets its top bit; one above '9' sets it once 0x76
    // is added.
    if (d | d.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080 != 0 {
        return None;
    }
    // Pairs, then fours, then all eight.
    let d = (d.wrapping_mul(10) + (d >> 8)) & 0x00FF_00FF_00FF_00FF;
    let d = (d.wrapping_mul(100) + (d >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((d.wrapping_mul(10_000) + (d >> 32)) & 0xFFFF_FFFF)
}

/// Parses `YYYY-MM-DD` (the store's date form) without the general
/// date parser.
pub(crate) fn parse_date(s: &str) -> Option<Date> {
    parse_date_bytes(s.as_bytes())
}

#[inline]
fn parse_date_bytes(b: &[u8]) -> Option<Date> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: core::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    Date::from_ymd_opt(year, num(5..7)?, num(8..10)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, Level, ScanOptions};
    use crate::record::encode;
    use crate::Context;

    /// One dataset: name, field names, encoded records.
    type Stored = (&'static str, Vec<String>, Vec<Vec<u8>>);
    /// One dataset to store: name, field names, records as values.
    type Given<'a> = (&'static str, &'a [&'a str], Vec<Vec<Option<Value<'a>>>>);

    /// Datasets held in memory, sent two records a batch so that joins
    /// cross batch boundaries.
    struct Memory {
        datasets: Vec<Stored>,
        scans: Vec<(usize, usize)>,
        /// When not empty, what every scan is sent instead, whatever it
        /// holds: what a broken or hostile host could send.
        raw: Vec<Batch>,
        /// Scans the model closed, in order.
        closed: Rc<std::cell::RefCell<Vec<u32>>>,
    }

    impl Memory {
        fn new(datasets: Vec<Given<'_>>) -> Self {
            let datasets = datasets
                .into_iter()
                .map(|(name, fields, records)| {
                    let fields = fields.iter().map(|f| f.to_string()).collect();
                    let records = records.iter().map(|r| encode(r).unwrap()).collect();
                    (name, fields, records)
                })
                .collect();
            Memory {
                datasets,
                scans: Vec::new(),
                raw: Vec::new(),
                closed: Rc::default(),
            }
        }

        fn find(&self, dataset: &str) -> Result<usize, String> {
            self.datasets
                .iter()
                .position(|(n, _, _)| *n == dataset)
                .ok_or_else(|| format!("no dataset `{dataset}`"))
        }
    }

    impl Backend for Memory {
        fn fields(&mut self, dataset: &str) -> Result<Vec<String>, String> {
            Ok(self.datasets[self.find(dataset)?].1.clone())
        }
        fn open_scan(&mut self, dataset: &str, _: ScanOptions) -> Result<u32, String> {
            let d = self.find(dataset)?;
            self.scans.push((d, 0));
            Ok(self.scans.len() as u32 - 1)
        }
        fn next_batch(&mut self, scan: u32) -> Result<Option<Batch>, String> {
            if !self.raw.is_empty() {
                return Ok(Some(self.raw.remove(0)));
            }
            let (d, at) = self.scans[scan as usize];
            let records = &self.datasets[d].2;
            if at >= records.len() {
                return Ok(None);
            }
            let end = (at + 2).min(records.len());
            let mut batch = Batch {
                data: Vec::new(),
                offsets: vec![0],
            };
            for r in &records[at..end] {
                batch.data.extend_from_slice(r);
                batch.offsets.push(batch.data.len() as u32);
            }
            self.scans[scan as usize].1 = end;
            Ok(Some(batch))
        }
        fn close_scan(&mut self, scan: u32) {
            self.closed.borrow_mut().push(scan);
        }
        fn get(&mut self, _: &str, _: &[String]) -> Result<Option<Vec<u8>>, String> {
            Err("not here".into())
        }
        fn lookup(&mut self, _: &str, _: &str, _: &str) -> Result<Batch, String> {
            Err("not here".into())
        }
        fn param(&mut self, _: &str) -> Option<String> {
            None
        }
        fn emit_leads(&mut self, _: &[u8]) -> Result<(), String> {
            Ok(())
        }
        fn log(&mut self, _: Level, _: &str) {}
    }

    /// A batch whose offsets or records are broken is an error naming the
    /// dataset and what is wrong, not a panic.
    #[test]
    fn a_bad_batch_is_an_error_naming_the_dataset() {
        let good = encode(&[Some(Value::Int(7))]).unwrap();
        let n = good.len() as u32;
        let batch = |data: Vec<u8>, offsets: Vec<u32>| Batch { data, offsets };
        let cases = [
            (batch(good.clone(), vec![0, n + 1]), "bad batch offsets"),
            (
                batch(good.repeat(2), vec![0, n, n - 1]),
                "bad batch offsets",
            ),
            (batch(vec![1], vec![0, 1]), "shorter than its header"),
            (
                batch(vec![9, 0, 0, 0], vec![0, 4]),
                "offset table runs past the end",
            ),
        ];
        for (bad, why) in cases {
            let mut host = Memory::new(vec![("d", &["x"], vec![])]);
            host.raw = vec![batch(good.clone(), vec![0, n]), bad];
            let ctx = Context::new(Box::new(host));
            let mut rows = ctx.read("d").rows().unwrap();
            let x = rows.field("x").unwrap();
            assert_eq!(rows.next_row().unwrap().unwrap().i64(x).unwrap(), 7);
            // The bad batch's sound records, if any, may come first.
            let err = loop {
                match rows.next_row() {
                    Ok(Some(row)) => assert_eq!(row.i64(x).unwrap(), 7, "{why}"),
                    Ok(None) => panic!("{why}: no error"),
                    Err(e) => break e.to_string(),
                }
            };
            assert!(
                err.contains("scan `d`") && err.contains(why),
                "{why}: {err}"
            );
        }
    }

    fn company(code: &'static str, name: &'static str) -> Vec<Option<Value<'static>>> {
        vec![Some(Value::Str(code)), Some(Value::Str(name))]
    }

    fn payment(code: &'static str, amount: &'static str) -> Vec<Option<Value<'static>>> {
        vec![
            Some(Value::Str(code)),
            Some(Value::Decimal(amount)),
            Some(Value::Date("2024-03-01")),
        ]
    }

    fn context() -> Context {
        Context::new(Box::new(Memory::new(vec![
            (
                "employers",
                &["credit_code", "name"],
                vec![
                    company("A1", "甲"),
                    company("B2", "乙"),
                    company("C3", "丙"),
                    company("E5", "戊"),
                ],
            ),
            (
                "payments",
                &["credit_code", "amount", "paid_on"],
                vec![
                    payment("A0", "1.00"),
                    payment("A1", "10.50"),
                    payment("A1", "0.25"),
                    payment("A1", "100"),
                    payment("C3", "-2.00"),
                    payment("D4", "7"),
                    payment("E5", "3.10"),
                ],
            ),
        ])))
    }

    /// `current` reads again the row `next_row` returned, across batch
    /// boundaries, and nothing before the first row or after the last.
    #[test]
    fn current_is_the_row_next_row_returned() {
        let ctx = context();
        let mut employers = ctx.read("employers").rows().unwrap();
        let name = employers.field("name").unwrap();
        assert!(employers.current().unwrap().is_none(), "before the first");
        let mut seen = Vec::new();
        while let Some(e) = employers.next_row().unwrap() {
            let first = e.str(name).unwrap().to_string();
            let again = employers.current().unwrap().expect("a row was read");
            assert_eq!(again.str(name).unwrap(), first);
            seen.push(first);
        }
        assert_eq!(seen, ["甲", "乙", "丙", "戊"]);
        assert!(employers.current().unwrap().is_none(), "at the end");
    }

    #[test]
    fn merge_join_sums_each_key_across_batch_boundaries() {
        let ctx = context();
        let mut payments = ctx
            .read("payments")
            .rows()
            .unwrap()
            .keyed("credit_code")
            .unwrap();
        let amount = payments.field("amount").unwrap();
        let mut employers = ctx.read("employers").rows().unwrap();
        let (code, name) = (
            employers.field("credit_code").unwrap(),
            employers.field("name").unwrap(),
        );
        let mut seen = Vec::new();
        while let Some(e) = employers.next_row().unwrap() {
            let mut paid = Decimal::ZERO;
            let n = payments
                .each(e.str(code).unwrap(), |p| {
                    paid += p.decimal(amount)?;
                    Ok(())
                })
                .unwrap();
            seen.push((e.str(name).unwrap().to_string(), n, paid.to_string()));
        }
        let expect = [
            ("甲", 3, "110.75"),
            ("乙", 0, "0"),
            ("丙", 1, "-2.00"),
            ("戊", 1, "3.10"),
        ];
        let expect: Vec<_> = expect
            .iter()
            .map(|(n, c, p)| (n.to_string(), *c, p.to_string()))
            .collect();
        assert_eq!(seen, expect);
        assert!(employers.next_row().unwrap().is_none(), "stays at the end");
    }

    #[test]
    fn integer_keys_join_in_the_order_of_their_text_as_the_store_keeps_them() {
        let year = |y: i64| vec![Some(Value::Int(y)), Some(Value::Str("x"))];
        let ctx = Context::new(Box::new(Memory::new(vec![(
            "by_year",
            &["year", "note"],
            // The store's order: "-5" < "10" < "100" < "100" < "9".
            vec![year(-5), year(10), year(100), year(100), year(9)],
        )])));
        let mut stream = ctx.read("by_year").rows().unwrap().keyed("year").unwrap();
        let counts: Vec<usize> = [-5i64, 10, 100, 9]
            .iter()
            .map(|k| stream.each(k, |_| Ok(())).unwrap())
            .collect();
        assert_eq!(counts, [1, 1, 2, 1]);
        for i in [0, 7, -7, 10, i64::MAX, i64::MIN] {
            let mut buf = [0u8; 20];
            assert_eq!(decimal_text(i, &mut buf), i.to_string().as_bytes());
        }
    }

    #[test]
    fn a_join_key_repeated_or_going_backwards_is_an_error_not_an_empty_answer() {
        let year = |y: i64| vec![Some(Value::Int(y)), Some(Value::Str("x"))];
        let stream = || {
            let ctx = Context::new(Box::new(Memory::new(vec![(
                "by_year",
                &["year", "note"],
                vec![year(10), year(11), year(12), year(12)],
            )])));
            ctx.read("by_year").rows().unwrap().keyed("year").unwrap()
        };
        // Asked again after it found records: its records were passed.
        let mut s = stream();
        assert_eq!(s.each(&11i64, |_| Ok(())).unwrap(), 1);
        let err = s.each(&11i64, |_| Ok(())).unwrap_err().to_string();
        assert!(
            err.contains("merge join on `by_year`") && err.contains("again"),
            "{err}"
        );
        // Going backwards.
        let mut s = stream();
        assert_eq!(s.each(&12i64, |_| Ok(())).unwrap(), 2);
        let err = s.each(&10i64, |_| Ok(())).unwrap_err().to_string();
        assert!(err.contains("`10` was asked for after `12`"), "{err}");
        // A key that found nothing may be asked again; ascending keys work.
        let mut s = stream();
        assert_eq!(s.each(&105i64, |_| Ok(())).unwrap(), 0);
        assert_eq!(s.each(&105i64, |_| Ok(())).unwrap(), 0);
        assert_eq!(s.each(&11i64, |_| Ok(())).unwrap(), 1);
        assert_eq!(s.each(&12i64, |_| Ok(())).unwrap(), 2);
    }

    #[test]
    fn a_keyed_scan_refuses_a_key_whose_records_were_passed() {
        #[derive(serde::Deserialize)]
        struct Note {
            note: String,
        }
        let ctx = Context::new(Box::new(Memory::new(vec![(
            "notes",
            &["note"],
            vec![
                vec![Some(Value::Str("a"))],
                vec![Some(Value::Str("b"))],
                vec![Some(Value::Str("b"))],
                vec![Some(Value::Str("c"))],
            ],
        )])));
        let mut keyed = ctx
            .read("notes")
            .into::<Note>()
            .unwrap()
            .keyed(|n: &Note| n.note.clone());
        assert_eq!(keyed.take("b").unwrap().len(), 2);
        let err = keyed.take("b").err().expect("refused").to_string();
        assert!(err.contains("merge join on `notes`"), "{err}");
        assert!(keyed.take("a").is_err());
        assert_eq!(keyed.take("c").unwrap().len(), 1);
        assert!(keyed.take("d").unwrap().is_empty());
    }

    #[test]
    fn typed_reads_name_the_dataset_and_field() {
        let ctx = context();
        let mut payments = ctx.read("payments").rows().unwrap();
        let (code, amount, paid_on) = (
            payments.field("credit_code").unwrap(),
            payments.field("amount").unwrap(),
            payments.field("paid_on").unwrap(),
        );
        let row = payments.next_row().unwrap().unwrap();
        assert_eq!(
            row.date(paid_on).unwrap(),
            Date::from_ymd_opt(2024, 3, 1).unwrap()
        );
        assert_eq!(row.decimal(amount).unwrap().to_string(), "1.00");
        let err = row.i64(amount).unwrap_err().to_string();
        assert!(err.contains("expected an integer, found `1.00`"), "{err}");
        let err = row.i64(code).unwrap_err().to_string();
        assert!(err.contains("`payments` field `credit_code`"), "{err}");
        assert!(err.contains("expected an integer, found `A0`"), "{err}");
        let err = row.date(amount).unwrap_err().to_string();
        assert!(err.contains("field `amount`: expected a date"), "{err}");
        let err = ctx
            .read("payments")
            .rows()
            .unwrap()
            .field("staff")
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("no field `staff` (fields: credit_code, amount, paid_on)"),
            "{err}"
        );
    }

    #[test]
    fn bytes_compare_like_slices() {
        let keys: [&[u8]; 9] = [
            b"",
            b"9",
            b"91350100M000100Y43",
            b"91350100M000100Y44",
            b"91350100M000100Y4",
            b"91350100",
            b"913501",
            b"91350100M000100Y43\xff",
            "张三".as_bytes(),
        ];
        for a in keys {
            for b in keys {
                assert_eq!(cmp_bytes(a, b), a.cmp(b), "{a:?} {b:?}");
            }
        }
    }

    /// A difference at every place of every length to three words, with
    /// the bytes behind it differing the other way: the first decides.
    #[test]
    fn bytes_compare_by_their_first_difference() {
        for len in 1..=24usize {
            for at in 0..len {
                for (lo, hi) in [(b'1', b'2'), (0x7f, 0x80), (0x00, 0xff)] {
                    let mut a = vec![b'9'; len];
                    let mut b = a.clone();
                    a[at] = lo;
                    b[at] = hi;
                    for k in at + 1..len {
                        a[k] = 0xff;
                        b[k] = 0x00;
                    }
                    assert_eq!(cmp_bytes(&a, &b), Ordering::Less, "{a:?} {b:?}");
                    assert_eq!(cmp_bytes(&b, &a), Ordering::Greater, "{a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn decimals_keep_sign_and_scale() {
        for text in [
            "0",
            "12",
            "9084",
            "-7",
            "-0",
            "007",
            "1234567890123456",
            "-1234567890123456",
            "12345678901234567",
            "-12.50",
            "1234.05",
            "0.015",
            "+3.1",
            "999999999999999999",
            "-0.00",
            "12345678901234567890.123",
            "1234567890123456789",
            "123456789012345678",
            "1234567890.12345678",
            "5.",
            ".5",
            "-.5",
            "1e5",
        ] {
            let fast = parse_decimal(text);
            let general = Decimal::from_str(text).ok();
            assert_eq!(fast, general, "{text}");
            if let (Some(a), Some(b)) = (fast, general) {
                assert_eq!(a.to_string(), b.to_string(), "{text}");
            }
        }
        for bad in ["", "-", ".", "1.2.3", "12a", "--1"] {
            assert_eq!(parse_decimal(bad), Decimal::from_str(bad).ok(), "{bad:?}");
        }
    }

    /// The short form reads whole words that reach before the text: what
    /// lies there (digits, points, anything) must not change the value.
    #[test]
    fn decimals_read_the_same_wherever_they_sit_in_the_buffer() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut short = 0;
        for _ in 0..20_000 {
            let mut text = String::new();
            match next(8) {
                0 => text.push('-'),
                1 => text.push('+'),
                _ => {}
            }
            for _ in 0..next(21) {
                text.push(char::from(b"0123456789"[next(10) as usize]));
            }
            if next(4) > 0 {
                let at = next(text.len() as u64 + 1) as usize;
                text.insert(at, '.');
            }
            if next(50) == 0 {
                let at = next(text.len() as u64 + 1) as usize;
                text.insert(at, char::from(b"x/:. e"[next(6) as usize]));
            }
            let expected = Decimal::from_str(&text).ok();
            for pad in 0..18 {
                let mut buf: Vec<u8> = (0..pad)
                    .map(|_| b"0123456789.-x"[next(13) as usize])
                    .collect();
                buf.extend_from_slice(text.as_bytes());
                buf.extend((0..next(9)).map(|_| b'7'));
                let fast = parse_decimal_in(&buf, pad, pad + text.len());
                if let Some(d) = fast {
                    short += 1;
                    assert_eq!(Some(d), expected, "{text:?} after {pad} bytes");
                    assert_eq!(d.to_string(), expected.unwrap().to_string(), "{text:?}");
                }
            }
            let whole = parse_decimal(&text);
            assert_eq!(whole, expected, "{text:?}");
            if let (Some(a), Some(b)) = (whole, expected) {
                assert_eq!(a.to_string(), b.to_string(), "{text:?}");
            }
        }
        // Most of these numbers have at most 18 digits: the short form,
        // not the general parser, must have read them.
        assert!(short > 20_000 * 18 / 2, "short form taken {short} times");
    }

    #[test]
    fn digits_eight_at_a_time_agree_with_one_at_a_time() {
        for run in [
            "",
            "7",
            "12345678",
            "123456789",
            "000000001",
            "99999999",
            "999999999999999999",
            "102030405060708090",
        ] {
            assert_eq!(
                digits(run.as_bytes()),
                run.parse::<u64>().ok().or(Some(0)),
                "{run}"
            );
        }
        for bad in [
            "1234567a",
            "1234/678",
            "12345678:",
            "a",
            "1234567 ",
            "12\u{0}45678",
        ] {
            assert_eq!(digits(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn ascii_text_skips_the_utf8_check_and_other_text_does_not() {
        assert_eq!(ascii(b"91350100M000100Y43"), Some("91350100M000100Y43"));
        assert_eq!(ascii(b""), Some(""));
        assert_eq!(ascii("某某公司".as_bytes()), None);
        assert_eq!(ascii("91350100M000100Y4é".as_bytes()), None);
        assert_eq!(ascii(b"\xff"), None);
    }

    #[test]
    fn dates_are_checked_against_the_calendar() {
        assert_eq!(parse_date("2024-02-29"), Date::from_ymd_opt(2024, 2, 29));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "2024/01/01",
            "20240101  ",
            "2024-01-0x",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    /// A scan dropped before its end is closed, so a model that stops
    /// reading early never runs out of handles; a scan read to its end is
    /// closed by the host and not closed again.
    #[test]
    fn a_scan_dropped_before_its_end_is_closed_once() {
        let records: Vec<Vec<Option<Value>>> = (0..5).map(|i| vec![Some(Value::Int(i))]).collect();
        let host = Memory::new(vec![("d", &["x"], records)]);
        let closed = host.closed.clone();
        let ctx = Context::new(Box::new(host));
        {
            let mut rows = ctx.read("d").rows().unwrap();
            assert!(rows.next_row().unwrap().is_some());
        }
        assert_eq!(*closed.borrow(), vec![0]);
        {
            let mut rows = ctx.read("d").rows().unwrap();
            while rows.next_row().unwrap().is_some() {}
        }
        let mut structs = ctx.read("d").into::<(i64,)>().unwrap();
        assert!(structs.next().is_some());
        drop(structs);
        assert_eq!(*closed.borrow(), vec![0, 2]);
    }
}
