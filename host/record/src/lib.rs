//! # jiandu-record: what happened, verifiably
//!
//! Owns the ledger ([`ledger`]: hash-chained, signed entries with their own
//! versioned types, the signed head with its Merkle frontier, model text
//! kept beside entries), this unit's identity and key ([`unit`]) and the
//! audit built on them ([`audit`]: verification, checkpoints, export,
//! import and queries at the central office).
//!
//! Depends on the store only. Must never depend on the sandbox, runs or
//! policy: entries are the record's own types ([`ledger::Stopped`],
//! [`ledger::LimitsRecord`], …), converted at the boundary by the layer
//! that writes them, so that a change in the engine never stops an old
//! entry from parsing.

pub mod audit;
pub mod ledger;
pub mod unit;

pub(crate) use jiandu_store::{dataset, fsio, time, Error, Result, Store};
