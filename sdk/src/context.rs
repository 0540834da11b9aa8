//! What a running model sees of the host.

use crate::backend::{Backend, Level, ScanOptions, Shared};
use crate::de::from_record;
use crate::record::RecordRef;
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
pub struct Context {
    backend: Shared,
}

impl Context {
    pub(crate) fn new(backend: Box<dyn Backend>) -> Self {
        Context {
            backend: Rc::new(RefCell::new(backend)),
        }
    }

    /// A parameter declared in `model.toml`, parsed as `T` (`Decimal`,
    /// `Date`, `u32`, `String`, `bool`…). The host has already applied the
    /// default and checked the declared type.
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

    /// Every record of `dataset` in primary-key order, deserialized into `T`
    /// (which may name only some of the fields).
    pub fn scan<T: DeserializeOwned>(&self, dataset: &str) -> Result<Scan<T>> {
        self.scan_with(dataset, ScanOptions::default())
    }

    /// Every record of `dataset` in the order of its secondary `index`.
    pub fn scan_by<T: DeserializeOwned>(&self, dataset: &str, index: &str) -> Result<Scan<T>> {
        self.scan_with(
            dataset,
            ScanOptions {
                index: Some(index.to_string()),
                only_new: false,
            },
        )
    }

    /// Only the records of `dataset` added since this model's last
    /// successful run (all of them on the first run).
    pub fn scan_new<T: DeserializeOwned>(&self, dataset: &str) -> Result<Scan<T>> {
        self.scan_with(
            dataset,
            ScanOptions {
                index: None,
                only_new: true,
            },
        )
    }

    fn scan_with<T: DeserializeOwned>(
        &self,
        dataset: &str,
        options: ScanOptions,
    ) -> Result<Scan<T>> {
        Ok(Scan::new(self.rows_with(dataset, options)?))
    }

    /// Every record of `dataset` in primary-key order, as borrowed
    /// [`Row`](crate::Row)s read field by field: no struct, no serde, no
    /// allocation per record. The fast path for large scans and joins.
    pub fn rows(&self, dataset: &str) -> Result<Rows> {
        self.rows_with(dataset, ScanOptions::default())
    }

    /// [`Context::rows`] in the order of the secondary `index`.
    pub fn rows_by(&self, dataset: &str, index: &str) -> Result<Rows> {
        self.rows_with(
            dataset,
            ScanOptions {
                index: Some(index.to_string()),
                only_new: false,
            },
        )
    }

    /// [`Context::rows`] of only the records added since this model's
    /// last successful run.
    pub fn rows_new(&self, dataset: &str) -> Result<Rows> {
        self.rows_with(
            dataset,
            ScanOptions {
                index: None,
                only_new: true,
            },
        )
    }

    fn rows_with(&self, dataset: &str, options: ScanOptions) -> Result<Rows> {
        let (names, handle) = self.open(dataset, options)?;
        Ok(Rows::new(self.backend.clone(), dataset, names, handle))
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
    /// key field, in the order the schema lists them).
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

    /// Field-by-field access to records whose shape is not known in
    /// advance: calls `f` with the field names and each raw record.
    pub fn scan_raw(
        &self,
        dataset: &str,
        mut f: impl FnMut(&[String], RecordRef<'_>) -> Result<()>,
    ) -> Result<()> {
        let (names, handle) = self.open(dataset, ScanOptions::default())?;
        loop {
            let next = self.backend.borrow_mut().next_batch(handle);
            let Some(batch) = next.map_err(|e| Error::msg(format!("scan `{dataset}`: {e}")))?
            else {
                break;
            };
            for i in 0..batch.len() {
                let bytes = batch
                    .record(i)
                    .ok_or_else(|| Error::msg(format!("scan `{dataset}`: bad batch offsets")))?;
                f(&names, RecordRef::new(bytes)?)?;
            }
        }
        Ok(())
    }

    /// Emits a lead. A second lead with the same subject in one run replaces
    /// the first.
    pub fn emit(&self, lead: Lead) -> Result<()> {
        self.backend
            .borrow_mut()
            .emit(lead.into_data())
            .map_err(Error::msg)
    }

    /// Logs a line, kept with the run.
    pub fn info(&self, message: impl Display) {
        self.backend
            .borrow_mut()
            .log(Level::Info, &message.to_string());
    }

    /// Logs a warning, kept with the run.
    pub fn warn(&self, message: impl Display) {
        self.backend
            .borrow_mut()
            .log(Level::Warn, &message.to_string());
    }

    /// Logs a debug line (shown with `-v`).
    pub fn debug(&self, message: impl Display) {
        self.backend
            .borrow_mut()
            .log(Level::Debug, &message.to_string());
    }
}
