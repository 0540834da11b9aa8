//! What a running model sees of the host.

use crate::backend::{Backend, Level, ScanOptions, Shared};
use crate::de::from_record;
use crate::rows::Rows;
use crate::scan::Scan;
use crate::{Error, Lead, Result};
use core::fmt::Display;
use core::str::FromStr;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::rc::Rc;

/// The model's view of the host during one run.
///
/// Methods take `&self`, so a model can hold several scans open at once
/// (a merge join) and emit leads while scanning.
///
/// ```no_run
/// # use jiandu_sdk::{Context, Lead, Result};
/// # fn run(ctx: &Context) -> Result<()> {
/// let mut payments = ctx.read("fund_payments").rows()?.keyed("credit_code")?;
/// let mut employers = ctx.read("employers").rows()?;
/// let code = employers.field("credit_code")?;
/// while let Some(e) = employers.next_row()? {
///     if payments.each(e.str(code)?, |_| Ok(()))? == 0 {
///         ctx.emit(Lead::new(e.str(code)?).title("no fund payment on record"))?;
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Context {
    backend: Shared,
    /// Leads emitted and not yet sent, encoded (see
    /// [`crate::encoded_lead`]): they cross the boundary a batch at a time.
    leads: RefCell<Vec<u8>>,
}

impl Context {
    pub(crate) fn new(backend: Box<dyn Backend>) -> Self {
        Context {
            backend: Rc::new(RefCell::new(backend)),
            leads: RefCell::new(Vec::new()),
        }
    }

    /// The rule plan this run interprets, as the host gives it (JSON, see
    /// `plan` in the contract): for the interpreter of scripted models,
    /// not for models written in Rust.
    #[doc(hidden)]
    pub fn plan_source(&self) -> Option<String> {
        self.backend.borrow_mut().plan()
    }

    /// Sends the leads not yet sent to the host.
    pub(crate) fn flush_leads(&self) -> Result<()> {
        let mut leads = self.leads.borrow_mut();
        if leads.is_empty() {
            return Ok(());
        }
        let sent = self.backend.borrow_mut().emit_leads(&leads);
        leads.clear();
        sent.map_err(Error::msg)
    }

    /// A parameter declared in `model.toml`, parsed as `T` (`Decimal`,
    /// `Date`, `u32`, `String`, `bool`…). The host has already applied the
    /// default and checked the declared type.
    ///
    /// ```no_run
    /// # use jiandu_sdk::{Date, Decimal};
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// let levy_year: i64 = ctx.param("levy_year")?;
    /// let ratio: Decimal = ctx.param("ratio")?;
    /// let deadline: Date = ctx.param("deadline")?;
    /// # Ok(()) }
    /// ```
    pub fn param<T>(&self, name: &str) -> Result<T>
    where
        T: FromStr,
        T::Err: Display,
    {
        let text = self.backend.borrow_mut().param(name).ok_or_else(|| {
            Error::msg(format!("parameter `{name}` is not declared in model.toml"))
        })?;
        text.parse::<T>()
            .map_err(|e| Error::msg(format!("parameter `{name}` = `{text}`: {e}")))
    }

    /// Starts reading `dataset`: say in which order and which records,
    /// then how to receive them.
    ///
    /// ```no_run
    /// # use jiandu_sdk::{Context, Result};
    /// # use serde::Deserialize;
    /// #[derive(Deserialize)]
    /// struct Payment { credit_code: String, amount: jiandu_sdk::Decimal }
    /// # fn run(ctx: &Context) -> Result<()> {
    /// // Every record in primary-key order, as structs.
    /// for p in ctx.read("fund_payments").into::<Payment>()? {
    ///     let p = p?;
    /// }
    /// // In the order of a declared index, field by field.
    /// let mut rows = ctx.read("disabled_employees").by("by_person").rows()?;
    /// // Only what was added since this model's last successful run.
    /// let new = ctx.read("sightings").only_new().rows()?;
    /// # Ok(()) }
    /// ```
    pub fn read(&self, dataset: &str) -> Read<'_> {
        Read {
            ctx: self,
            dataset: dataset.to_string(),
            options: ScanOptions::default(),
        }
    }

    fn open(&self, dataset: &str, options: ScanOptions) -> Result<(Rc<[String]>, u32)> {
        let names = self.fields(dataset)?;
        let handle = self
            .backend
            .borrow_mut()
            .open_scan(dataset, options)
            .map_err(|e| Error::msg(format!("scan `{dataset}`: {e}")))?;
        Ok((names, handle))
    }

    fn fields(&self, dataset: &str) -> Result<Rc<[String]>> {
        self.backend
            .borrow_mut()
            .fields(dataset)
            .map(Rc::from)
            .map_err(|e| Error::msg(format!("dataset `{dataset}`: {e}")))
    }

    /// The record of `dataset` whose primary key is `key` (one value per
    /// key field, as text, in the order the schema lists them).
    ///
    /// ```no_run
    /// # use serde::Deserialize;
    /// #[derive(Deserialize)]
    /// struct Headcount { staff: u32, wage_total: jiandu_sdk::Decimal }
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// // social_insurance's primary key is (credit_code, year).
    /// let h: Option<Headcount> = ctx.get("social_insurance", &["91350100M000100Y43", "2023"])?;
    /// # Ok(()) }
    /// ```
    pub fn get<T: DeserializeOwned>(&self, dataset: &str, key: &[&str]) -> Result<Option<T>> {
        let names = self.fields(dataset)?;
        let key: Vec<String> = key.iter().map(|k| k.to_string()).collect();
        let bytes = self
            .backend
            .borrow_mut()
            .get(dataset, &key)
            .map_err(|e| Error::msg(format!("get from `{dataset}`: {e}")))?;
        match bytes {
            None => Ok(None),
            Some(bytes) => from_record(&names, &bytes)
                .map(Some)
                .map_err(|e| Error::msg(format!("record of `{dataset}`: {e}"))),
        }
    }

    /// All records of `dataset` whose secondary `index` equals `value`.
    ///
    /// ```no_run
    /// # use serde::Deserialize;
    /// #[derive(Deserialize)]
    /// struct Prior { kind: String, decided_on: jiandu_sdk::Date }
    /// # fn run(ctx: &jiandu_sdk::Context, person_id: &str) -> jiandu_sdk::Result<()> {
    /// let priors: Vec<Prior> = ctx.lookup("prior_records", "by_person", person_id)?;
    /// # Ok(()) }
    /// ```
    pub fn lookup<T: DeserializeOwned>(
        &self,
        dataset: &str,
        index: &str,
        value: &str,
    ) -> Result<Vec<T>> {
        let names = self.fields(dataset)?;
        let batch = self
            .backend
            .borrow_mut()
            .lookup(dataset, index, value)
            .map_err(|e| Error::msg(format!("lookup in `{dataset}` by `{index}`: {e}")))?;
        (0..batch.len())
            .map(|i| {
                let bytes = batch.record(i).ok_or_else(|| {
                    Error::msg(format!("lookup in `{dataset}`: bad batch offsets"))
                })?;
                from_record(&names, bytes)
                    .map_err(|e| Error::msg(format!("record of `{dataset}`: {e}")))
            })
            .collect()
    }

    /// Emits a lead. A run gives at most one lead per subject: a second
    /// lead with the same subject ends the run (`invalid-lead`, naming
    /// the subject), since it would otherwise silently take the first
    /// one's place.
    ///
    /// ```no_run
    /// # use jiandu_sdk::{Decimal, Lead};
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// ctx.emit(
    ///     Lead::new("91350100M000100Y43")
    ///         .title("残保金未足额缴纳")
    ///         .amount(Decimal::new(1234550, 2)),
    /// )?;
    /// # Ok(()) }
    /// ```
    pub fn emit(&self, lead: Lead) -> Result<()> {
        let full = {
            let mut leads = self.leads.borrow_mut();
            lead.encode(&mut leads);
            leads.len() >= crate::encoded_lead::BATCH_BYTES
        };
        if full {
            self.flush_leads()?;
        }
        Ok(())
    }

    /// Logs a line for the person running the model: `jiandu run` prints
    /// it when the run ends (not with `--quiet`). Logs are not written to
    /// the ledger.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context, leads: usize) {
    /// ctx.info(format!("levy year 2024: {leads} employers owe"));
    /// # }
    /// ```
    pub fn info(&self, message: impl Display) {
        self.backend
            .borrow_mut()
            .log(Level::Info, &message.to_string());
    }

    /// Logs a warning: `jiandu run` prints it when the run ends, with
    /// `--quiet` too. Logs are not written to the ledger.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context, case_id: &str) {
    /// ctx.warn(format!("police case {case_id} has no breath or blood test"));
    /// # }
    /// ```
    pub fn warn(&self, message: impl Display) {
        self.backend
            .borrow_mut()
            .log(Level::Warn, &message.to_string());
    }

    /// Logs a debug line: `jiandu run -v` prints it when the run ends.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context, credit_code: &str) {
    /// ctx.debug(format_args!("{credit_code}: 3 payments"));
    /// # }
    /// ```
    pub fn debug(&self, message: impl Display) {
        self.backend
            .borrow_mut()
            .log(Level::Debug, &message.to_string());
    }
}

/// A read of one dataset being described: [`Context::read`], then
/// [`by`](Read::by) or [`only_new`](Read::only_new), then
/// [`rows`](Read::rows) or [`into`](Read::into).
///
/// Scans run in primary-key order unless [`by`](Read::by) names a declared
/// index, so two datasets sorted on the same key merge-join in one pass.
/// A scan dropped before its end is closed: its handle is free again.
///
/// ```no_run
/// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
/// let read = ctx.read("disabled_employees").by("by_person");
/// let mut by_person = read.rows()?;
/// # Ok(()) }
/// ```
#[must_use = "a read does nothing until `.rows()` or `.into::<T>()`"]
pub struct Read<'c> {
    ctx: &'c Context,
    dataset: String,
    options: ScanOptions,
}

impl Read<'_> {
    /// In the order of the secondary `index` (declared in `model.toml`)
    /// instead of the primary key.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// let mut priors = ctx.read("prior_records").by("by_person").rows()?.keyed("person_id")?;
    /// # Ok(()) }
    /// ```
    pub fn by(mut self, index: &str) -> Self {
        self.options.index = Some(index.to_string());
        self
    }

    /// Only the records added since this model's last successful run (all
    /// of them on its first run): for models triggered by new data. Runs in
    /// key order; it cannot be combined with [`by`](Read::by) (the host
    /// refuses the scan).
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// let mut fresh = ctx.read("sightings").only_new().rows()?;
    /// while let Some(row) = fresh.next_row()? {
    ///     // …
    /// }
    /// # Ok(()) }
    /// ```
    pub fn only_new(mut self) -> Self {
        self.options.only_new = true;
        self
    }

    /// The records as [`Row`](crate::Row)s borrowed from the batch, read
    /// field by field through a [`Field`](crate::Field) resolved once: no
    /// struct, no serde, no allocation per record. The fast path for large
    /// scans and joins.
    ///
    /// ```no_run
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// let mut employers = ctx.read("employers").rows()?;
    /// let code = employers.field("credit_code")?;
    /// while let Some(row) = employers.next_row()? {
    ///     let credit_code: &str = row.str(code)?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn rows(self) -> Result<Rows> {
        let (names, handle) = self.ctx.open(&self.dataset, self.options)?;
        Ok(Rows::new(
            self.ctx.backend.clone(),
            &self.dataset,
            names,
            handle,
        ))
    }

    /// The records deserialized into `T`, which may name only some of the
    /// dataset's fields (those `model.toml` declares).
    ///
    /// ```no_run
    /// # use serde::Deserialize;
    /// #[derive(Deserialize)]
    /// struct Employer { credit_code: String, name: String }
    /// # fn run(ctx: &jiandu_sdk::Context) -> jiandu_sdk::Result<()> {
    /// for employer in ctx.read("employers").into::<Employer>()? {
    ///     let employer = employer?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn into<T: DeserializeOwned>(self) -> Result<Scan<T>> {
        Ok(Scan::new(self.rows()?))
    }
}
