//! Streaming over a dataset and merge-joining sorted streams.

use crate::de::{from_record_ref, FieldPlan};
use crate::rows::Rows;
use crate::{Error, Result};
use core::marker::PhantomData;
use serde::de::DeserializeOwned;

/// The records of one dataset, batch by batch, deserialized into `T`.
///
/// Memory stays flat however large the dataset: one batch is held at a time.
/// It is an `Iterator` of `Result<T>`; a scan stops after its first error.
///
/// ```no_run
/// # use serde::Deserialize;
/// #[derive(Deserialize)]
/// struct Employer { credit_code: String, entity_type: String }
/// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
/// let mut enterprises = 0;
/// for employer in ctx.read("employers").into::<Employer>()? {
///     if employer?.entity_type == "企业" {
///         enterprises += 1;
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Scan<T> {
    rows: Rows,
    plan: FieldPlan,
    failed: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Scan<T> {
    pub(crate) fn new(rows: Rows) -> Self {
        Scan {
            rows,
            plan: FieldPlan::default(),
            failed: false,
            _t: PhantomData,
        }
    }

    /// Turns this scan into a [`Keyed`] stream for merge joins: `key` must
    /// follow the order the scan runs in (the primary key or the index).
    /// The store orders key fields by their text: key on a text field, or
    /// on an integer field's decimal text (`10` sorts before `9`), never on
    /// the integer itself. [`crate::KeyedRows`] compares integers that way.
    ///
    /// ```no_run
    /// # use serde::Deserialize;
    /// #[derive(Deserialize)]
    /// struct Payment { credit_code: String, amount: jiandu_sdk::Decimal }
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// let mut payments = ctx
    ///     .read("fund_payments")
    ///     .into::<Payment>()?
    ///     .keyed(|p| p.credit_code.clone());
    /// # Ok(()) }
    /// ```
    pub fn keyed<K: Ord, F: FnMut(&T) -> K>(self, key: F) -> Keyed<T, K, F> {
        Keyed {
            scan: self,
            key,
            peeked: None,
            passed: None,
        }
    }
}

impl<T: DeserializeOwned> Iterator for Scan<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        if self.failed {
            return None;
        }
        let rows = &mut self.rows;
        let item = match rows.advance() {
            Ok(None) => return None,
            Ok(Some(i)) => rows.record_at(i).and_then(|rec| {
                from_record_ref(rows.names(), rec, &mut self.plan)
                    .map_err(|e| Error::msg(format!("scan `{}`: {e}", rows.dataset())))
            }),
            Err(e) => Err(e),
        };
        self.failed = item.is_err();
        Some(item)
    }
}

/// A sorted stream that hands out the records of one key at a time: the
/// building block of a one-pass merge join.
///
/// Call [`Keyed::take`] with keys in ascending order; records with smaller
/// keys are skipped, records with that key are returned. A key at or below
/// one whose records were already passed (taken or skipped) is an error:
/// its records are gone, so an empty answer would be wrong.
///
/// ```no_run
/// # use jiandu_sdk::Decimal;
/// # use serde::Deserialize;
/// #[derive(Deserialize)]
/// struct Employer { credit_code: String, name: String }
/// #[derive(Deserialize)]
/// struct Payment { credit_code: String, amount: Decimal }
/// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
/// // Both datasets run in credit-code order: one pass over each.
/// let mut payments = ctx.read("fund_payments").into::<Payment>()?.keyed(|p| p.credit_code.clone());
/// for e in ctx.read("employers").into::<Employer>()? {
///     let e = e?;
///     let paid: Decimal = payments.take(&e.credit_code)?.iter().map(|p| p.amount).sum();
///     ctx.debug(format_args!("{}: {paid}", e.name));
/// }
/// # Ok(()) }
/// ```
pub struct Keyed<T, K, F> {
    scan: Scan<T>,
    key: F,
    peeked: Option<(K, T)>,
    /// The key of the last record passed.
    passed: Option<K>,
}

impl<T, K, F> Keyed<T, K, F>
where
    T: DeserializeOwned,
    K: Ord,
    F: FnMut(&T) -> K,
{
    fn peek(&mut self) -> Result<Option<&K>> {
        if self.peeked.is_none() {
            if let Some(item) = self.scan.next() {
                let item = item?;
                let k = (self.key)(&item);
                self.peeked = Some((k, item));
            }
        }
        Ok(self.peeked.as_ref().map(|(k, _)| k))
    }

    /// All records whose key equals `key`, skipping those before it.
    ///
    /// ```no_run
    /// # use serde::Deserialize;
    /// # #[derive(Deserialize)]
    /// # struct Payment { credit_code: String }
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// # let mut payments = ctx.read("fund_payments").into::<Payment>()?.keyed(|p| p.credit_code.clone());
    /// let first = payments.take("91350100M000100Y43")?;
    /// let next = payments.take("91350200MA2XN4B71K")?;
    /// // Keys go up: the first key's records are gone, asking again is an error.
    /// if !first.is_empty() {
    ///     assert!(payments.take("91350100M000100Y43").is_err());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn take<Q>(&mut self, key: &Q) -> Result<Vec<T>>
    where
        K: core::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if let Some(passed) = &self.passed {
            if key <= passed.borrow() {
                return Err(Error::msg(format!(
                    "merge join on `{}`: a key was asked for after records with that key or a later one were passed; a merge join takes each key once, in ascending order (the order the scan runs in). Sort the keys you join on, or keep the records of a key you need again",
                    self.scan.rows.dataset()
                )));
            }
        }
        let mut out = Vec::new();
        while let Some(k) = self.peek()? {
            match k.borrow().cmp(key) {
                core::cmp::Ordering::Less => {
                    let (k, _) = self.peeked.take().expect("peeked");
                    self.passed = Some(k);
                }
                core::cmp::Ordering::Equal => {
                    let (k, item) = self.peeked.take().expect("peeked");
                    self.passed = Some(k);
                    out.push(item);
                }
                core::cmp::Ordering::Greater => break,
            }
        }
        Ok(out)
    }
}
