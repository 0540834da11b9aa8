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
pub mod format;
pub mod import;
pub mod query;
pub mod units;
pub mod verify;

pub use crate::ledger::view::*;
pub use crate::ledger::{check_signature, merkle, short, signed_message};

use serde::Serialize;

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

#[cfg(test)]
mod tests;
