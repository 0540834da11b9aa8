//! A dataset's versions after they are stored: making an earlier one
//! current again (`jiandu dataset rollback`) and removing old ones
//! (`jiandu dataset prune`), each on the record.
//!
//! Both change the dataset's head and append their ledger entry in one
//! sled transaction, after checking that the head is still the one they
//! read: a concurrent ingest makes them fail, never lose its version. A
//! prune removes the versions' files only after that transaction; a crash
//! in between leaves files nothing points at, which nothing reads.
//!
//! Old versions stay so that a run can be replayed on the data it read
//! (`jiandu audit replay`); pruning a version that a recorded run read
//! takes `--force`, and the entry names how many runs it was.

use crate::dataset::{file, head_key, no_version, require_head, Head, VersionInfo};
use crate::ledger::{self, DatasetChange, Draft, Kind, PrunedVersion};
use crate::{Error, Result, Store};
use sled::transaction::ConflictableTransactionError;
use std::collections::{BTreeSet, HashSet};

/// Run ids kept in a prune's entry (the count is always complete).
const RUNS_NAMED: usize = 20;

/// What a rollback did.
#[derive(Debug, Clone)]
pub struct Rolledback {
    pub from: u64,
    pub to: VersionInfo,
    /// The `dataset-rolled-back` entry.
    pub seq: u64,
}

/// What a prune did.
#[derive(Debug, Clone)]
pub struct Pruned {
    pub versions: Vec<PrunedVersion>,
    /// Recorded runs that had read a removed version.
    pub runs_read: u64,
    /// Version folders removed (versions whose blocks no kept version
    /// shares).
    pub folders_removed: usize,
    /// The `dataset-pruned` entry.
    pub seq: u64,
}

/// Makes version `to` of `name` current again (by default the newest
/// version older than the current one), on the record.
pub fn rollback(
    store: &Store,
    name: &str,
    to: Option<u64>,
    unit: String,
    operator: &str,
) -> Result<Rolledback> {
    let (head, read) = read_head(store, name)?;
    let from = head
        .current
        .ok_or_else(|| Error::dataset(name, "has no current version to roll back from"))?;
    let target = match to {
        Some(v) => v,
        None => head
            .versions
            .iter()
            .map(|v| v.version)
            .filter(|v| *v < from)
            .max()
            .ok_or_else(|| {
                Error::dataset(
                    name,
                    format!("has no version older than the current {from} to roll back to"),
                )
            })?,
    };
    if target == from {
        return Err(Error::dataset(
            name,
            format!("version {target} is already current"),
        ));
    }
    let info = head
        .versions
        .iter()
        .find(|v| v.version == target)
        .cloned()
        .ok_or_else(|| no_version(name, &head, target))?;
    let mut new = head.clone();
    new.current = Some(target);
    let change = DatasetChange {
        dataset: name.to_string(),
        from: Some(from),
        to: Some(target),
        digest: Some(info.digest.clone()),
        pruned: Vec::new(),
        runs_read: 0,
        runs: Vec::new(),
        forced: false,
    };
    let entry = commit(
        store,
        name,
        &read,
        &new,
        Draft::dataset(unit, operator.to_string(), Kind::DatasetRolledBack, change),
    )?;
    Ok(Rolledback {
        from,
        to: info,
        seq: entry.seq,
    })
}

/// Which versions a prune removes.
#[derive(Debug, Clone)]
pub enum Which {
    /// These versions.
    Versions(Vec<u64>),
    /// All but the newest `n` versions (the current one always stays).
    KeepNewest(usize),
}

/// Removes the versions `which` names from `name`, never the current one.
/// A version that a recorded run read is removed only with `force`.
pub fn prune(
    store: &Store,
    name: &str,
    which: &Which,
    force: bool,
    unit: String,
    operator: &str,
) -> Result<Pruned> {
    let (head, read) = read_head(store, name)?;
    let current = head.current;
    let chosen = versions_to_prune(name, &head, which)?;
    let runs = runs_that_read(store, name, &chosen)?;
    if !runs.is_empty() && !force {
        return Err(Error::dataset(
            name,
            format!(
                "{} recorded run(s) read the version(s) to prune (first: {}); they could no longer be replayed. Pass --force to prune anyway (the prune is on the record)",
                runs.len(),
                runs.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let mut new = head.clone();
    new.versions.retain(|v| !chosen.contains(&v.version));
    let pruned: Vec<PrunedVersion> = head
        .versions
        .iter()
        .filter(|v| chosen.contains(&v.version))
        .map(|v| PrunedVersion {
            version: v.version,
            digest: v.digest.clone(),
            records: v.records,
        })
        .collect();
    let change = DatasetChange {
        dataset: name.to_string(),
        from: current,
        to: current,
        digest: head.current_version().map(|v| v.digest.clone()),
        pruned: pruned.clone(),
        runs_read: runs.len() as u64,
        runs: runs.iter().take(RUNS_NAMED).cloned().collect(),
        forced: force && !runs.is_empty(),
    };
    let entry = commit(
        store,
        name,
        &read,
        &new,
        Draft::dataset(unit, operator.to_string(), Kind::DatasetPruned, change),
    )?;
    let folders_removed = remove_folders(store, name, &new, &chosen);
    Ok(Pruned {
        versions: pruned,
        runs_read: runs.len() as u64,
        folders_removed,
        seq: entry.seq,
    })
}

/// The versions `which` names, each one that exists and is not current.
fn versions_to_prune(name: &str, head: &Head, which: &Which) -> Result<BTreeSet<u64>> {
    let current = head.current;
    let chosen: BTreeSet<u64> = match which {
        Which::Versions(list) => {
            for v in list {
                if !head.versions.iter().any(|i| i.version == *v) {
                    return Err(no_version(name, head, *v));
                }
                if Some(*v) == current {
                    return Err(Error::dataset(
                        name,
                        format!(
                            "version {v} is current and cannot be pruned; roll back (`jiandu dataset rollback {name}`) or ingest a new version first"
                        ),
                    ));
                }
            }
            list.iter().copied().collect()
        }
        Which::KeepNewest(n) => {
            let mut all: Vec<u64> = head.versions.iter().map(|v| v.version).collect();
            all.sort_unstable_by(|a, b| b.cmp(a));
            all.into_iter()
                .skip(*n)
                .filter(|v| Some(*v) != current)
                .collect()
        }
    };
    if chosen.is_empty() {
        return Err(Error::dataset(name, "no version to prune"));
    }
    Ok(chosen)
}

/// Removes the folders of the pruned versions, once the prune is
/// committed: a removed version's folder goes unless a kept version (an
/// append on it) still reads blocks stored there. How many were removed;
/// a folder that cannot be removed is warned about and left.
fn remove_folders(store: &Store, name: &str, kept: &Head, pruned: &BTreeSet<u64>) -> usize {
    let shared: BTreeSet<u64> = kept
        .versions
        .iter()
        .flat_map(|v| {
            v.segments
                .iter()
                .map(move |s| s.stored_in.unwrap_or(v.version))
        })
        .collect();
    let data = store.data_dir();
    let mut removed = 0;
    for v in pruned {
        if shared.contains(v) {
            continue;
        }
        let dir = file::version_dir(&data, name, *v);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                "{name}@{v} is pruned, but its folder {} could not be removed: {e}",
                dir.display()
            ),
        }
    }
    if let Some(parent) = file::version_dir(&data, name, 0).parent() {
        let _ = crate::fsio::sync_dir(parent);
    }
    removed
}

/// The head of `name` and its stored bytes, to check it is unchanged when
/// the change commits.
fn read_head(store: &Store, name: &str) -> Result<(Head, Vec<u8>)> {
    let head = require_head(store, name)?;
    let bytes = store
        .meta
        .get(head_key(name))?
        .map(|v| v.to_vec())
        .unwrap_or_default();
    Ok((head, bytes))
}

/// Writes `new` as the head of `name` and appends `draft`, in one
/// transaction, if the head is still `read`.
fn commit(
    store: &Store,
    name: &str,
    read: &[u8],
    new: &Head,
    draft: Draft,
) -> Result<ledger::Entry> {
    let key = head_key(name);
    let bytes = serde_json::to_vec(new).expect("heads serialize");
    ledger::append_with(store, &draft, |meta| {
        let now = meta.get(key.as_bytes())?;
        if now.as_deref() != Some(read) {
            return Err(ConflictableTransactionError::Abort(Error::dataset(
                name,
                "changed while this command ran (another ingest?); nothing was changed, try again",
            )));
        }
        meta.insert(key.as_bytes(), bytes.as_slice())?;
        Ok(())
    })
}

/// Ids of the recorded runs (and replays) that read a version of `name`
/// in `versions`, in ledger order.
fn runs_that_read(store: &Store, name: &str, versions: &BTreeSet<u64>) -> Result<Vec<String>> {
    let needle = format!("\"name\":\"{name}\"");
    let mut found: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for item in ledger::entries(store, 1) {
        let (seq, bytes) = item?;
        // Cheap filter before parsing.
        if !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            continue;
        }
        let e: crate::audit::EntryView = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Ledger(format!("entry {seq} is unreadable: {e}")))?;
        if e.kind != "run-started" && e.kind != "replay-started" {
            continue;
        }
        let reads = e
            .run
            .datasets
            .iter()
            .any(|d| d.name == name && versions.contains(&d.version));
        if reads && found.insert(e.run.run_id.clone()) {
            out.push(e.run.run_id.clone());
        }
    }
    Ok(out)
}
