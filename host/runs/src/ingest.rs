//! `jiandu dataset ingest`: a department file stored as a new dataset
//! version, on the record.

use crate::dataset::ingest::{stage, Options, Report};
use crate::{ledger, Result, Store};
use std::path::Path;

/// Ingests `path` into dataset `name` as a new version: parsed and
/// validated, its files written and synced, then made current in the same
/// sled transaction as its `dataset-ingested` entry, written under `unit`
/// (no entry, no version; a head changed meanwhile fails the ingest).
pub fn ingest(
    store: &Store,
    name: &str,
    path: &Path,
    opts: &Options,
    unit: String,
) -> Result<Report> {
    let (staged, report) = stage(store, name, path, opts)?;
    let draft = ledger::dataset_ingested(unit, name, &staged.info);
    ledger::append_with(store, &draft, |meta| staged.write_in(meta))?;
    Ok(report)
}
