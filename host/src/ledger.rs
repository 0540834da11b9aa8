//! The ledger: an append-only, hash-chained, signed record of every run.
//!
//! Entry `n` is stored under its big-endian sequence number as canonical
//! JSON bytes. Its hash is the sha256 of exactly those bytes; entry `n + 1`
//! carries it as `prev_hash`, and `meta["ledger/head"]` carries the hash of
//! the last entry, so editing any byte of any entry — the last one included —
//! breaks a link that `verify` finds and names.
//!
//! When the store has a unit (`jiandu unit init`), each entry names the
//! unit's key fingerprint (`unit_key`, covered by the hash) and is signed:
//! the seal kept beside it in the `ledger_sig` tree holds the entry hash and
//! the unit's Ed25519 signature of it. The seal is written in the same
//! transaction as the entry; the bytes the hash covers are unchanged by it.
//! Entries written before the unit existed stay unsigned; once one entry is
//! signed, every later one must be. Every [`crate::audit::checkpoint::EVERY`]
//! entries the host also writes a signed checkpoint (see [`crate::audit`]).
//!
//! A run writes a `run-started` entry before the model runs (if that cannot
//! be written — including when the unit's key cannot be read — the run does
//! not happen) and a `run-finished` entry after, in the same transaction
//! that points the model's leads at the run's snapshot file
//! ([`crate::leads`]); a crash in between stays visible as a run that started and
//! never finished.

use crate::policy::Limits;
use crate::runtime::Failure;
use crate::{Error, Result, Store};
use jiandu_registry::keys::{PublicKey, UnitKey};
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
    /// `jiandu serve` loaded a model (`run.model`).
    ModelLoaded,
    /// `jiandu serve` swapped in a new version (`run.model`) for
    /// `run.replaces`.
    ModelReloaded,
    /// `jiandu serve` refused a new version (`run.model`, reason in
    /// `run.error`); `run.replaces` keeps serving.
    ModelRejected,
    /// `jiandu serve` unloaded a removed model (`run.model`).
    ModelUnloaded,
    /// A person was shown personal values in clear: not a run, written as
    /// a [`DisclosureEntry`] by [`append_disclosure`].
    PersonalDataRevealed,
}

impl Kind {
    /// Whether the entry is about a run (not a model event of `serve`).
    pub fn is_run(&self) -> bool {
        matches!(
            self,
            Kind::RunStarted | Kind::RunFinished | Kind::RunRefused
        )
    }
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
    /// Whether the dataset's schema marks any field as personal data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub personal: bool,
    /// The personal fields within the model's view (masked unless
    /// `clear_personal`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub personal_fields: Vec<String>,
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
    /// For a model event: the version served before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<ModelRef>,
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub prev_hash: String,
    pub at: String,
    pub unit: String,
    /// Fingerprint of the unit key that signs this entry; `None` when the
    /// store had no unit when the entry was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_key: Option<String>,
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

/// What is kept beside entry `n` in the `ledger_sig` tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    /// sha256 hex of the entry's stored bytes, as written.
    pub hash: String,
    /// The unit's signature of the hash; `None` for an unsigned entry.
    pub sig: Option<String>,
}

/// What a unit signs for entry `n`: a fixed prefix (so an entry signature
/// can never pass for a bundle's or a checkpoint's) and the entry hash.
pub const ENTRY_SIGNATURE_PREFIX: &str = "jiandu ledger entry v1\n";

/// The message signed for an entry with this hash.
pub fn entry_message(hash: &str) -> Vec<u8> {
    [ENTRY_SIGNATURE_PREFIX.as_bytes(), hash.as_bytes()].concat()
}

/// The unit's key, ready to sign entries and checkpoints.
pub struct Signer {
    key: UnitKey,
    fingerprint: String,
}

impl Signer {
    /// The signer of `store`, or `None` when it has no unit. Fails when the
    /// store has a unit whose key file cannot be read: entries are then not
    /// written at all rather than written unsigned.
    pub fn for_store(store: &Store) -> Result<Option<Signer>> {
        Ok(crate::unit::signing_key(store)?.map(Signer::new))
    }

    pub fn new(key: UnitKey) -> Signer {
        let fingerprint = key.public().fingerprint();
        Signer { key, fingerprint }
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn public(&self) -> PublicKey {
        self.key.public()
    }

    /// Signs `message` (already carrying its purpose prefix).
    pub fn sign(&self, message: &[u8]) -> String {
        self.key.sign(message)
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.fingerprint)
    }
}

/// sha256 hex of an entry's stored bytes.
pub fn hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn abort(message: String) -> ConflictableTransactionError<Error> {
    ConflictableTransactionError::Abort(Error::Ledger(message))
}

/// Appends `draft` inside a transaction over the ledger, seal and meta
/// trees, signing it with `signer` when the store has a unit.
pub fn append_in(
    ledger: &TransactionalTree,
    seals: &TransactionalTree,
    meta: &TransactionalTree,
    draft: &Draft,
    signer: Option<&Signer>,
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
        unit_key: signer.map(|s| s.fingerprint().to_string()),
        operator: draft.operator.clone(),
        kind: draft.kind,
        run: draft.run.clone(),
    };
    let bytes = serde_json::to_vec(&entry).expect("entries serialize");
    let hash = hash(&bytes);
    let seal = Seal {
        sig: signer.map(|s| s.sign(&entry_message(&hash))),
        hash: hash.clone(),
    };
    let head = Head { seq, hash };
    ledger.insert(&seq.to_be_bytes(), bytes)?;
    seals.insert(
        &seq.to_be_bytes(),
        serde_json::to_vec(&seal).expect("seal serializes"),
    )?;
    meta.insert(
        HEAD_KEY,
        serde_json::to_vec(&head).expect("head serializes"),
    )?;
    Ok(entry)
}

/// Appends one entry on its own and makes it durable.
pub fn append(store: &Store, draft: &Draft) -> Result<Entry> {
    let signer = Signer::for_store(store)?;
    let entry = (&store.ledger, &store.ledger_sig, &store.meta)
        .transaction(|(ledger, seals, meta)| append_in(ledger, seals, meta, draft, signer.as_ref()))
        .map_err(Error::from)?;
    store.flush()?;
    appended(store, &entry, signer.as_ref());
    Ok(entry)
}

/// Appends `draft` in one transaction with the writes `with` makes to
/// `meta` (a run's leads pointer and cursors), signing it when the store has
/// a unit.
pub fn append_with<F>(store: &Store, draft: &Draft, with: F) -> Result<Entry>
where
    F: Fn(&TransactionalTree) -> std::result::Result<(), ConflictableTransactionError<Error>>,
{
    let signer = Signer::for_store(store)?;
    let entry = (&store.ledger, &store.ledger_sig, &store.meta)
        .transaction(|(ledger, seals, meta)| {
            with(meta)?;
            append_in(ledger, seals, meta, draft, signer.as_ref())
        })
        .map_err(Error::from)?;
    store.flush()?;
    appended(store, &entry, signer.as_ref());
    Ok(entry)
}

/// After an entry is durable: write the periodic checkpoint when one is
/// due. The entry already stands on its own, so a checkpoint that cannot be
/// written (for instance because the ledger no longer verifies) is reported
/// and does not undo it; `jiandu audit verify` names the cause.
fn appended(store: &Store, entry: &Entry, signer: Option<&Signer>) {
    let Some(signer) = signer else { return };
    match crate::audit::checkpoint::due(store, entry.seq) {
        Ok(false) => {}
        Ok(true) => {
            if let Err(e) = crate::audit::checkpoint::write_local(store, signer) {
                tracing::warn!(
                    "no checkpoint written after ledger entry {}: {e}",
                    entry.seq
                );
            }
        }
        Err(e) => tracing::warn!("cannot read the last checkpoint: {e}"),
    }
}

/// The seal kept beside entry `seq`, if any.
pub fn seal(store: &Store, seq: u64) -> Result<std::result::Result<Option<Seal>, String>> {
    Ok(match store.ledger_sig.get(seq.to_be_bytes())? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(&v)
            .map(Some)
            .map_err(|e| format!("the seal of entry {seq} is unreadable: {e}")),
    })
}

/// The sequence number and hash of the last entry, per the ledger head.
pub fn head(store: &Store) -> Result<Option<(u64, String)>> {
    Ok(store.get_meta::<Head>(HEAD_KEY)?.map(|h| (h.seq, h.hash)))
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

/// What a person was shown in clear: the command, its filters, and how
/// much (a `personal-data-revealed` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disclosure {
    /// `leads list`, `leads export`.
    pub command: String,
    /// The `--model` filter, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The `--status` filter, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The file written, as named on the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Leads shown.
    pub leads: u64,
    /// Personal values in them shown in clear.
    pub values: u64,
}

/// A `personal-data-revealed` entry: the chain fields of [`Entry`], and a
/// [`Disclosure`] where a run entry has its `run`. Audit reads entries
/// leniently ([`crate::audit::EntryView`]), so both kinds verify, export
/// and import alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisclosureEntry {
    pub seq: u64,
    pub prev_hash: String,
    pub at: String,
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_key: Option<String>,
    pub operator: String,
    pub kind: Kind,
    pub disclosure: Disclosure,
}

/// Appends a `personal-data-revealed` entry on its own, signed when the
/// store has a unit, and makes it durable.
pub fn append_disclosure(
    store: &Store,
    unit: &str,
    operator: &str,
    disclosure: &Disclosure,
) -> Result<DisclosureEntry> {
    let signer = Signer::for_store(store)?;
    let signer = signer.as_ref();
    let entry = (&store.ledger, &store.ledger_sig, &store.meta)
        .transaction(|(ledger, seals, meta)| {
            let head: Option<Head> = match meta.get(HEAD_KEY)? {
                None => None,
                Some(v) => Some(
                    serde_json::from_slice(&v)
                        .map_err(|e| abort(format!("ledger head is unreadable: {e}")))?,
                ),
            };
            let (seq, prev_hash) = head.map_or((1, GENESIS.to_string()), |h| (h.seq + 1, h.hash));
            let entry = DisclosureEntry {
                seq,
                prev_hash,
                at: crate::time::now_text(),
                unit: unit.to_string(),
                unit_key: signer.map(|s| s.fingerprint().to_string()),
                operator: operator.to_string(),
                kind: Kind::PersonalDataRevealed,
                disclosure: disclosure.clone(),
            };
            let bytes = serde_json::to_vec(&entry).expect("entries serialize");
            let hash = hash(&bytes);
            let seal = Seal {
                sig: signer.map(|s| s.sign(&entry_message(&hash))),
                hash: hash.clone(),
            };
            ledger.insert(&seq.to_be_bytes(), bytes)?;
            seals.insert(
                &seq.to_be_bytes(),
                serde_json::to_vec(&seal).expect("seal serializes"),
            )?;
            meta.insert(
                HEAD_KEY,
                serde_json::to_vec(&Head { seq, hash }).expect("head serializes"),
            )?;
            Ok(entry)
        })
        .map_err(Error::from)?;
    store.flush()?;
    // The periodic checkpoint, as after a run entry (see `appended`).
    if let Some(signer) = signer {
        match crate::audit::checkpoint::due(store, entry.seq) {
            Ok(false) => {}
            Ok(true) => {
                if let Err(e) = crate::audit::checkpoint::write_local(store, signer) {
                    tracing::warn!(
                        "no checkpoint written after ledger entry {}: {e}",
                        entry.seq
                    );
                }
            }
            Err(e) => tracing::warn!("cannot read the last checkpoint: {e}"),
        }
    }
    Ok(entry)
}

/// The first problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The entry that does not match (for a checkpoint: the entry count it
    /// covers).
    pub seq: u64,
    /// `parse`, `sequence`, `hash`, `signature`, `chain`, `head` or
    /// `checkpoint`.
    pub check: &'static str,
    pub message: String,
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub entries: u64,
    pub head_hash: Option<String>,
    pub problem: Option<Problem>,
    /// Entries signed with the unit key.
    pub signed: u64,
    /// Entries written before the store had a unit.
    pub unsigned: u64,
    /// Signed checkpoints that matched the entries they cover.
    pub checkpoints: u64,
    /// The unit key fingerprint entries were checked against.
    pub fingerprint: Option<String>,
    /// RFC 6962 Merkle root over the entries (when they all verified).
    pub root: Option<String>,
}

/// Recomputes the chain, the signatures and the checkpoints, and names the
/// first entry that does not match and which check it failed.
pub fn verify(store: &Store) -> Result<Verification> {
    crate::audit::verify::local(store)
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
                replaces: None,
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
