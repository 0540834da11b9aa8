//! `jiandu dataset ingest`: a department file stored as a new dataset
//! version, on the record.

use crate::dataset::compact::COMPACT_AFTER_SEGMENTS;
use crate::dataset::compare::{diff, display_key, Diff};
use crate::dataset::ingest::{stage, Options, Report};
use crate::dataset::{Staged, VersionInfo, VersionReader};
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
    let (staged, mut report) = stage(store, name, path, opts)?;
    match compare(store, name, &staged) {
        Ok(change) => report.change = Some(change),
        Err(e) => {
            staged.discard(store)?;
            return Err(e);
        }
    }
    if opts.dry_run {
        staged.discard(store)?;
        return Ok(report);
    }
    let draft = ledger::dataset_ingested(unit.clone(), name, &staged.info);
    ledger::append_with(store, &draft, |meta| staged.write_in(meta))?;
    report.committed = true;
    if staged.info.segments.len() > COMPACT_AFTER_SEGMENTS {
        report.compacted = compact(store, name, &opts.operator, unit)?;
    }
    Ok(report)
}

/// Rewrites the current version of `name` as one segment, as a new
/// version on the record (a `dataset-ingested` entry whose source names
/// the version compacted and whose `source_sha256` is that version's
/// digest); `None` when it already is one segment.
pub fn compact(
    store: &Store,
    name: &str,
    operator: &str,
    unit: String,
) -> Result<Option<VersionInfo>> {
    let Some(staged) = crate::dataset::compact::stage(store, name, operator)? else {
        return Ok(None);
    };
    let draft = ledger::dataset_ingested(unit, name, &staged.info);
    ledger::append_with(store, &draft, |meta| staged.write_in(meta))?;
    Ok(Some(staged.info))
}

/// Keys of the dataset that a change summary names.
const CHANGE_SAMPLES: usize = 5;

/// What the staged version changes against the current one.
fn compare(store: &Store, name: &str, staged: &Staged) -> Result<(Option<u64>, Diff)> {
    let current = crate::dataset::head(store, name)?
        .and_then(|h| h.current_version().cloned())
        .map(|info| VersionReader::new(store, name, info));
    let Some(current) = current else {
        // A first version: every row is added, nothing to read for that.
        let added = Diff {
            added: staged.info.records,
            ..Diff::default()
        };
        return Ok((None, added));
    };
    let current = Some(current);
    let new = VersionReader::new(store, name, staged.info.clone());
    let schema = &staged.info.schema;
    let show = |key: &[u8]| display_key(schema, key, false);
    let diff = diff(current.as_ref(), &new, CHANGE_SAMPLES, &show)?;
    Ok((current.map(|r| r.info().version), diff))
}
