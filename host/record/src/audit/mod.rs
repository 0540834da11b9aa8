//! Central audit: signed checkpoints, exporting a unit's ledger, importing
//! and verifying other units' ledgers at a central office, and querying them.
//!
//! What lives where:
//! - [`merkle`]: RFC 6962 Merkle roots over entry hashes (`ct-merkle`).
//! - [`chain`]: the one walk that checks entries in order — sequence, hash,
//!   signature, chain link — used for the local ledger, for export files
//!   and for imported ledgers alike.
//! - [`checkpoint`]: signed statements of (unit, entry count, Merkle root,
//!   head hash, time), written every [`checkpoint::EVERY`] entries and on
//!   export.
//! - [`verify`]: `jiandu audit verify`, for this store's ledger or an
//!   imported unit's.
//! - [`units`]: the central office's register of units and their public
//!   keys (meta `audit/units/<fingerprint>`), kept apart from the model
//!   publishers' trust store.
//! - [`export`] and [`import`]: the export file (JSON Lines, see
//!   [`export`]) and the import that verifies it against the registered key
//!   and the last checkpoint accepted from that unit.
//! - [`query`]: `audit log` filters and `audit report` summaries over the
//!   local ledger and the imported ones.
//!
//! Every signature the unit key makes here carries a purpose prefix
//! (`jiandu ledger entry v1`, `… checkpoint v1`, `… export v1`), so a
//! signature made for one purpose — or for a model bundle — never passes
//! for another.

pub mod central;
pub mod chain;
pub mod checkpoint;
pub mod export;
pub mod import;
pub mod merkle;
pub mod query;
pub mod units;
pub mod verify;

use jiandu_registry::keys::PublicKey;
use serde::{Deserialize, Serialize};

/// Which check an entry, a line or a checkpoint failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    /// The export file's structure: JSON, line types, order, truncation.
    Format,
    /// The unit is not registered, or the export does not match its record.
    Unit,
    /// Sequence numbers: a missing, repeated or reordered entry.
    Sequence,
    /// The entry's bytes are not a ledger entry.
    Parse,
    /// The entry's bytes do not match the hash recorded for them.
    Hash,
    /// A missing, malformed or wrong signature, or a signature by another key.
    Signature,
    /// An entry's `prev_hash` does not link to the entry before it.
    Chain,
    /// The ledger head does not name the last entry.
    Head,
    /// A model's text kept beside an entry does not match the hash the
    /// entry records, or is missing without a redaction on the record.
    Text,
    /// A signed checkpoint does not match the entries it covers.
    Checkpoint,
    /// The export starts after entries the central office does not have.
    Gap,
    /// The export extends a ledger that differs from the accepted one.
    Fork,
    /// The export holds an accepted entry with different contents.
    Rewrite,
    /// The export brings nothing newer than what was already accepted.
    Replay,
}

impl Check {
    pub fn as_str(&self) -> &'static str {
        match self {
            Check::Format => "format",
            Check::Unit => "unit",
            Check::Sequence => "sequence",
            Check::Parse => "parse",
            Check::Hash => "hash",
            Check::Signature => "signature",
            Check::Chain => "chain",
            Check::Head => "head",
            Check::Text => "text",
            Check::Checkpoint => "checkpoint",
            Check::Gap => "gap",
            Check::Fork => "fork",
            Check::Rewrite => "rewrite",
            Check::Replay => "replay",
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A check that failed, and on which entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    /// The entry concerned (for a checkpoint: the entry count it covers).
    pub seq: Option<u64>,
    pub check: Check,
    pub message: String,
}

impl Fault {
    pub fn new(seq: impl Into<Option<u64>>, check: Check, message: impl Into<String>) -> Fault {
        Fault {
            seq: seq.into(),
            check,
            message: message.into(),
        }
    }
}

/// The message a unit signs: a purpose prefix, then the body.
pub fn signed_message(prefix: &str, body: &[u8]) -> Vec<u8> {
    [prefix.as_bytes(), body].concat()
}

/// Checks `sig` (lowercase hex, as written) over `message` with `key`.
pub fn check_signature(key: &PublicKey, message: &[u8], sig: &str) -> Result<(), String> {
    if sig.len() != 128 || sig.bytes().any(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("the signature is not 128 lowercase hex characters".into());
    }
    match key.verify(message, sig) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "the signature does not verify with key {}",
            key.fingerprint()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The parts of a ledger entry that audit reads. Lenient on purpose: an
/// entry written by another version of Jiandu (more fields, or run details
/// of another shape) still verifies and still answers queries.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct EntryView {
    pub seq: u64,
    #[serde(default)]
    pub prev_hash: String,
    #[serde(default)]
    pub at: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub unit_key: Option<String>,
    #[serde(default)]
    pub operator: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub run: RunView,
    /// A `dataset-ingested` entry's dataset version.
    #[serde(default)]
    pub ingest: Option<IngestView>,
    /// A `text-redacted` entry's target and reason.
    #[serde(default)]
    pub redaction: Option<RedactionView>,
    /// A `dataset-rolled-back` or `dataset-pruned` entry's change.
    #[serde(default)]
    pub dataset: Option<DatasetChangeView>,
    /// What a `personal-data-revealed` entry records in place of `run`.
    #[serde(default)]
    pub disclosure: Option<DisclosureView>,
}

/// Personal values shown in clear, as audit reads it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DisclosureView {
    pub command: String,
    pub model: Option<String>,
    pub status: Option<String>,
    pub output: Option<String>,
    pub leads: u64,
    pub values: u64,
}

/// The run an entry records, as audit reads it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RunView {
    pub run_id: String,
    pub model: ModelView,
    pub datasets: Vec<DatasetView>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub records_read: Option<u64>,
    pub leads_count: Option<u64>,
    pub leads_digest: Option<String>,
    pub leads_snapshot: Option<SnapshotView>,
    pub params: std::collections::BTreeMap<String, String>,
    pub replay_of: Option<String>,
    pub reproduced: Option<bool>,
    pub outcome: String,
    pub error: Option<ErrorView>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SnapshotView {
    pub file: String,
    pub sha256: String,
    pub leads: u64,
}

/// A dataset version an ingest stored, as audit reads it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct IngestView {
    pub dataset: String,
    pub version: u64,
    pub digest: String,
    pub records: u64,
    pub rows: u64,
    pub appended_to: Option<u64>,
    pub source: String,
    pub source_sha256: String,
    pub warnings: u64,
    pub personal: bool,
}

/// A rollback or prune of a dataset, as audit reads it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DatasetChangeView {
    pub dataset: String,
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub digest: Option<String>,
    pub pruned: Vec<PrunedView>,
    pub runs_read: u64,
    pub runs: Vec<String>,
    pub forced: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PrunedView {
    pub version: u64,
    pub digest: String,
    pub records: u64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RedactionView {
    pub seq: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ModelView {
    pub name: String,
    pub version: String,
    pub wasm_sha256: String,
    pub publisher: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DatasetView {
    pub name: String,
    pub version: u64,
    pub digest: String,
    pub clear_personal: bool,
    pub personal: bool,
    pub personal_fields: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ErrorView {
    pub kind: String,
    /// The message when the entry holds it (host text, or an entry written
    /// before model text was kept beside entries).
    pub message: String,
    /// Set when a model's text is kept beside the entry.
    pub message_sha256: Option<String>,
    pub message_len: Option<u64>,
}

/// Shortens a hash for messages.
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[cfg(test)]
mod tests;
