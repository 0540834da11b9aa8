//! Imported ledgers at a central office: each registered unit's entries in
//! the `central` tree under `fingerprint \0 seq`, stored as the export's
//! entry lines (exact entry bytes, hash, signature), and the checkpoints
//! accepted from it in `central_checkpoints` under `fingerprint \0 size`.

use super::format::EntryLine;
use crate::ledger::checkpoint::SignedCheckpoint;
use crate::{Error, Result, Store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A checkpoint the office accepted, and when and from what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub checkpoint: SignedCheckpoint,
    pub accepted_at: String,
    /// The file it came in.
    pub source: String,
    /// Entries that import added.
    pub added: u64,
}

/// Key prefix of a unit's records.
pub fn prefix(fingerprint: &str) -> Vec<u8> {
    let mut k = fingerprint.as_bytes().to_vec();
    k.push(0);
    k
}

/// Key of a unit's entry `seq` (or checkpoint of `size`).
pub fn key(fingerprint: &str, n: u64) -> Vec<u8> {
    let mut k = prefix(fingerprint);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

fn number(fingerprint: &str, k: &[u8]) -> Result<u64> {
    k.get(prefix(fingerprint).len()..)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| Error::Ledger(format!("a central key of unit {fingerprint} is malformed")))
}

/// A unit's stored entries in order, up to the last checkpoint accepted
/// from it; an unreadable one is kept as the reason it cannot be read.
/// Entries past that checkpoint are the tail of an import that stopped
/// before its checkpoint was stored: not accepted, and overwritten by the
/// next import.
pub fn entries<'a>(
    store: &'a Store,
    fingerprint: &'a str,
) -> impl Iterator<Item = Result<(u64, std::result::Result<EntryLine, String>)>> + 'a {
    // An unreadable checkpoint is for verification to report: then every
    // stored entry is shown to it.
    let accepted = match last_accepted(store, fingerprint) {
        Ok(a) => a.map_or(0, |a| a.checkpoint.checkpoint.size),
        Err(_) => u64::MAX,
    };
    store
        .central
        .scan_prefix(prefix(fingerprint))
        .take_while(move |item| {
            item.as_ref().map_or(true, |(k, _)| {
                number(fingerprint, k).map_or(true, |seq| seq <= accepted)
            })
        })
        .map(move |item| {
            let (k, v) = item?;
            let seq = number(fingerprint, &k)?;
            Ok((
                seq,
                serde_json::from_slice(&v)
                    .map_err(|e| format!("stored entry {seq} is unreadable: {e}")),
            ))
        })
}

/// A unit's stored entry `seq`.
pub fn entry(store: &Store, fingerprint: &str, seq: u64) -> Result<Option<EntryLine>> {
    match store.central.get(key(fingerprint, seq))? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(&v).map(Some).map_err(|e| {
            Error::Ledger(format!(
                "stored entry {seq} of unit {fingerprint} is unreadable: {e}"
            ))
        }),
    }
}

/// The checkpoints accepted from a unit, by size.
pub fn accepted(
    store: &Store,
    fingerprint: &str,
) -> Result<BTreeMap<u64, std::result::Result<Accepted, String>>> {
    let mut all = BTreeMap::new();
    for item in store.central_checkpoints.scan_prefix(prefix(fingerprint)) {
        let (k, v) = item?;
        let size = number(fingerprint, &k)?;
        all.insert(
            size,
            serde_json::from_slice(&v).map_err(|e| {
                format!("the accepted checkpoint of {size} entries is unreadable: {e}")
            }),
        );
    }
    Ok(all)
}

/// The last checkpoint accepted from a unit.
pub fn last_accepted(store: &Store, fingerprint: &str) -> Result<Option<Accepted>> {
    match store
        .central_checkpoints
        .scan_prefix(prefix(fingerprint))
        .next_back()
    {
        None => Ok(None),
        Some(item) => {
            let (_, v) = item?;
            serde_json::from_slice(&v).map(Some).map_err(|e| {
                Error::Ledger(format!(
                    "the last checkpoint accepted from unit {fingerprint} is unreadable: {e}"
                ))
            })
        }
    }
}
