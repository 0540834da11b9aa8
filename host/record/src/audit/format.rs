//! The export file's format: a unit's ledger (all of it, or what follows a
//! checkpoint the central office already holds) in one JSON Lines file.
//!
//! ```text
//! {"type":"header","header":{"format":"jiandu-ledger-export/1","unit":…,"code":…,"fingerprint":…,"public_key":…,"since":null|{"size":…,"root":…,"head_hash":…},"to":…,"time":…},"sig":…}
//! {"type":"entry","seq":1,"hash":…,"sig":…|null,"entry":"{\"seq\":1,\"prev_hash\":…}"}
//! …one line per entry, in order…
//! {"type":"checkpoint","checkpoint":{"unit":…,"code":…,"fingerprint":…,"size":…,"root":…,"head_hash":…,"time":…},"sig":…}
//! ```
//!
//! - The **header** says whose ledger this is, which entries follow
//!   (`since.size + 1 ..= to`; `since` is the checkpoint they extend, or
//!   null for the whole ledger) and is signed by the unit key
//!   (prefix `jiandu ledger export v1\n` + the header's JSON).
//! - Each **entry** line carries the exact stored bytes of the entry as a
//!   JSON string (`entry`), their sha256 (`hash`) and the unit's signature
//!   of that hash (`sig`, null for entries written before the unit had a
//!   key).
//! - The **checkpoint** line is a fresh signed checkpoint over entries
//!   `1..=to`.
//!
//! Hashes and signatures are lowercase hex. Readers accept any JSON
//! spelling of the same values (whitespace, escapes) because every value
//! that matters is covered by a hash or a signature; unknown fields are
//! refused.

use super::signed_message;
use crate::ledger::checkpoint::{Checkpoint, SignedCheckpoint};
use serde::{Deserialize, Serialize};

/// `header.format` of the files this version writes and reads.
pub const FORMAT: &str = "jiandu-ledger-export/1";

/// What a unit signs for an export header, before its RFC 8785 canonical
/// JSON.
pub const EXPORT_SIGNATURE_PREFIX: &str = "jiandu ledger export v2\n";

/// What earlier versions signed for an export header, before its JSON in
/// field order: still accepted.
pub const EXPORT_SIGNATURE_PREFIX_V1: &str = "jiandu ledger export v1\n";

/// The checkpoint an export extends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    pub size: u64,
    pub root: String,
    pub head_hash: String,
}

/// Whose ledger, and which part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub unit: String,
    pub code: String,
    pub fingerprint: String,
    pub public_key: String,
    pub since: Option<Base>,
    /// The last entry in the file (and the checkpoint's size).
    pub to: u64,
    pub time: String,
}

impl Header {
    /// The first entry in the file.
    pub fn from(&self) -> u64 {
        self.since.as_ref().map_or(0, |b| b.size) + 1
    }

    /// The exact bytes signed.
    pub fn message(&self) -> Vec<u8> {
        signed_message(
            EXPORT_SIGNATURE_PREFIX,
            &crate::ledger::canonical_json(self),
        )
    }

    /// The bytes earlier versions signed.
    pub fn message_v1(&self) -> Vec<u8> {
        signed_message(
            EXPORT_SIGNATURE_PREFIX_V1,
            &serde_json::to_vec(self).expect("headers serialize"),
        )
    }
}

/// Line 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderLine {
    #[serde(rename = "type")]
    pub kind: String,
    pub header: Header,
    pub sig: String,
}

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryLine {
    #[serde(rename = "type")]
    pub kind: String,
    pub seq: u64,
    pub hash: String,
    pub sig: Option<String>,
    /// The entry's stored bytes (UTF-8 JSON), exactly.
    pub entry: String,
}

/// The last line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointLine {
    #[serde(rename = "type")]
    pub kind: String,
    pub checkpoint: Checkpoint,
    pub sig: String,
}

impl CheckpointLine {
    pub fn signed(&self) -> SignedCheckpoint {
        SignedCheckpoint {
            checkpoint: self.checkpoint.clone(),
            sig: self.sig.clone(),
        }
    }
}
