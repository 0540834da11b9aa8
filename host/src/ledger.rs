//! The ledger: an append-only, hash-chained record of every run.
//!
//! Entry `n` is stored under its big-endian sequence number as canonical
//! JSON bytes. Its hash is the sha256 of exactly those bytes; entry `n + 1`
//! carries it as `prev_hash`, and `meta["ledger/head"]` carries the hash of
//! the last entry, so editing any byte of any entry — the last one included —
//! breaks a link that `verify` finds and names.
//!
//! A run writes a `run-started` entry before the model runs (if that cannot
//! be written, the run does not happen) and a `run-finished` entry after, in
//! the same transaction as its leads; a crash in between stays visible as a
//! run that started and never finished.

use crate::policy::Limits;
use crate::runtime::Failure;
use crate::{Error, Result, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;
use std::collections::BTreeMap;

const HEAD_KEY: &str = "ledger/head";
/// `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    RunStarted,
    RunFinished,
    RunRefused,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Started,
    Succeeded,
    Failed,
    Refused,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
        }
    }
}

/// The model a run used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    pub name: String,
    pub version: String,
    pub wasm_sha256: String,
    /// Publisher of an imported model; `None` for a locally built one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
}

/// A dataset version a run read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRef {
    pub name: String,
    pub version: u64,
    pub digest: String,
    /// Whether the model saw personal fields in clear.
    pub clear_personal: bool,
}

/// The record of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub model: ModelRef,
    pub datasets: Vec<DatasetRef>,
    pub params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_used: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_read: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leads_count: Option<u64>,
    /// sha256 over the run's leads in subject order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leads_digest: Option<String>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub prev_hash: String,
    pub at: String,
    pub unit: String,
    pub operator: String,
    pub kind: Kind,
    pub run: RunRecord,
}

/// An entry before it is placed in the chain.
#[derive(Debug, Clone)]
pub struct Draft {
    pub unit: String,
    pub operator: String,
    pub kind: Kind,
    pub run: RunRecord,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

/// sha256 hex of an entry's stored bytes.
pub fn hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn abort(message: String) -> ConflictableTransactionError<Error> {
    ConflictableTransactionError::Abort(Error::Ledger(message))
}

/// Appends `draft` inside a transaction over the ledger and meta trees.
pub fn append_in(
    ledger: &TransactionalTree,
    meta: &TransactionalTree,
    draft: &Draft,
) -> std::result::Result<Entry, ConflictableTransactionError<Error>> {
    let head: Option<Head> = match meta.get(HEAD_KEY)? {
        None => None,
        Some(v) => Some(
            serde_json::from_slice(&v)
                .map_err(|e| abort(format!("ledger head is unreadable: {e}")))?,
        ),
    };
    let (seq, prev_hash) = match head {
        None => (1, GENESIS.to_string()),
        Some(h) => (h.seq + 1, h.hash),
    };
    let entry = Entry {
        seq,
        prev_hash,
        at: crate::time::now_text(),
        unit: draft.unit.clone(),
        operator: draft.operator.clone(),
        kind: draft.kind,
        run: draft.run.clone(),
    };
    let bytes = serde_json::to_vec(&entry).expect("entries serialize");
    let head = Head {
        seq,
        hash: hash(&bytes),
    };
    ledger.insert(&seq.to_be_bytes(), bytes)?;
    meta.insert(
        HEAD_KEY,
        serde_json::to_vec(&head).expect("head serializes"),
    )?;
    Ok(entry)
}

/// Appends one entry on its own and makes it durable.
pub fn append(store: &Store, draft: &Draft) -> Result<Entry> {
    let entry = (&store.ledger, &store.meta)
        .transaction(|(ledger, meta)| append_in(ledger, meta, draft))
        .map_err(Error::from)?;
    store.flush()?;
    Ok(entry)
}

/// Entries in order, from `from` (1-based) on.
pub fn entries(store: &Store, from: u64) -> impl Iterator<Item = Result<(u64, Vec<u8>)>> + '_ {
    store.ledger.range(from.to_be_bytes()..).map(|item| {
        let (k, v) = item?;
        let seq = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| {
            Error::Ledger(format!(
                "a ledger key of {} bytes is not a sequence number",
                k.len()
            ))
        })?);
        Ok((seq, v.to_vec()))
    })
}

/// All entries, parsed.
pub fn read_all(store: &Store) -> Result<Vec<Entry>> {
    entries(store, 1)
        .map(|item| {
            let (seq, bytes) = item?;
            serde_json::from_slice(&bytes)
                .map_err(|e| Error::Ledger(format!("entry {seq} is unreadable: {e}")))
        })
        .collect()
}

/// The first problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The entry that does not match.
    pub seq: u64,
    /// `parse`, `sequence`, `hash`, `chain` or `head`.
    pub check: &'static str,
    pub message: String,
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub entries: u64,
    pub head_hash: Option<String>,
    pub problem: Option<Problem>,
}

/// Recomputes the chain and names the first entry that does not match.
pub fn verify(store: &Store) -> Result<Verification> {
    let head: Option<Head> = store.get_meta(HEAD_KEY)?;
    let mut expected_seq = 1u64;
    let mut prev: Option<(u64, String)> = None;
    let mut count = 0u64;
    let fail = |count, head: &Option<Head>, p: Problem| Verification {
        entries: count,
        head_hash: head.as_ref().map(|h| h.hash.clone()),
        problem: Some(p),
    };
    for item in entries(store, 1) {
        let (seq, bytes) = item?;
        count += 1;
        if seq != expected_seq {
            return Ok(fail(
                count,
                &head,
                Problem {
                    seq: expected_seq,
                    check: "sequence",
                    message: format!(
                        "entry {expected_seq} is missing (next stored entry is {seq})"
                    ),
                },
            ));
        }
        let entry: Entry = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(e) => {
                return Ok(fail(
                    count,
                    &head,
                    Problem {
                        seq,
                        check: "parse",
                        message: format!("entry {seq} is not a valid entry (edited or damaged): {e}"),
                    },
                ))
            }
        };
        if entry.seq != seq {
            return Ok(fail(
                count,
                &head,
                Problem {
                    seq,
                    check: "sequence",
                    message: format!("entry stored as {seq} says it is entry {}", entry.seq),
                },
            ));
        }
        let expected_prev = prev.as_ref().map(|(_, h)| h.as_str()).unwrap_or(GENESIS);
        if entry.prev_hash != expected_prev {
            // Entry seq's link does not match the previous entry's bytes:
            // either the previous entry was edited or this link was.
            let (bad, check, message) = match &prev {
                Some((p, _)) => (
                    *p,
                    "hash",
                    format!("entry {p} does not match the hash that entry {seq} recorded for it (edited after it was written)"),
                ),
                None => (seq, "chain", format!("entry {seq} does not start the chain")),
            };
            return Ok(fail(
                count,
                &head,
                Problem {
                    seq: bad,
                    check,
                    message,
                },
            ));
        }
        prev = Some((seq, hash(&bytes)));
        expected_seq += 1;
    }
    match (&head, &prev) {
        (None, None) => {}
        (Some(h), Some((seq, hash))) if h.seq == *seq && &h.hash == hash => {}
        (Some(h), Some((seq, _))) if h.seq == *seq => {
            return Ok(fail(
                count,
                &head,
                Problem {
                    seq: *seq,
                    check: "hash",
                    message: format!("entry {seq} does not match the ledger head's hash (edited after it was written)"),
                },
            ))
        }
        (Some(h), _) => {
            return Ok(fail(
                count,
                &head,
                Problem {
                    seq: h.seq,
                    check: "head",
                    message: format!("the ledger head names entry {} but the last entry is {}", h.seq, prev.as_ref().map_or(0, |p| p.0)),
                },
            ))
        }
        (None, Some((seq, _))) => {
            return Ok(fail(
                count,
                &head,
                Problem {
                    seq: *seq,
                    check: "head",
                    message: "entries exist but the ledger head is missing".into(),
                },
            ))
        }
    }
    Ok(Verification {
        entries: count,
        head_hash: head.map(|h| h.hash),
        problem: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(n: u64) -> Draft {
        Draft {
            unit: "u".into(),
            operator: "op".into(),
            kind: Kind::RunStarted,
            run: RunRecord {
                run_id: format!("run-{n}"),
                model: ModelRef {
                    name: "m".into(),
                    version: "1.0.0".into(),
                    wasm_sha256: "00".into(),
                    publisher: None,
                },
                datasets: vec![],
                params: BTreeMap::new(),
                limits: None,
                started_at: "t".into(),
                ended_at: None,
                fuel_used: None,
                peak_memory: None,
                records_read: None,
                leads_count: None,
                leads_digest: None,
                outcome: Outcome::Started,
                error: None,
            },
        }
    }

    fn store_with(n: u64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 0..n {
            append(&store, &draft(i)).unwrap();
        }
        (dir, store)
    }

    #[test]
    fn intact_chain_verifies() {
        let (_d, store) = store_with(5);
        let v = verify(&store).unwrap();
        assert_eq!(v.entries, 5);
        assert!(v.problem.is_none(), "{:?}", v.problem);
    }

    #[test]
    fn editing_any_entry_names_it() {
        for target in 1..=4u64 {
            let (_d, store) = store_with(4);
            let key = target.to_be_bytes();
            let mut bytes = store.ledger.get(key).unwrap().unwrap().to_vec();
            let at = bytes.iter().position(|&b| b == b'o').unwrap();
            bytes[at] = b'0';
            store.ledger.insert(key, bytes).unwrap();
            let p = verify(&store).unwrap().problem.expect("detected");
            assert_eq!(p.seq, target, "{p:?}");
        }
    }

    #[test]
    fn deleting_an_entry_is_detected() {
        let (_d, store) = store_with(4);
        store.ledger.remove(2u64.to_be_bytes()).unwrap();
        let p = verify(&store).unwrap().problem.expect("detected");
        assert_eq!(p.seq, 2);
        let (_d, store) = store_with(4);
        store.ledger.remove(4u64.to_be_bytes()).unwrap();
        assert_eq!(
            verify(&store).unwrap().problem.expect("detected").check,
            "head"
        );
    }
}
