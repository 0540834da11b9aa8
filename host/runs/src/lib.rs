//! # jiandu-runs: a unit's operations
//!
//! Owns the host policy ([`policy`]), a run from the policy's decision to
//! its committed leads and ledger entries ([`run`]), ingest on the record
//! ([`ingest`]), building and installing models ([`models`]), leads and their review, masking for people and export
//! ([`leads`]), dataset rollback and prune ([`versions`]), checking the
//! files the ledger points at ([`stored`]), replaying a recorded run
//! ([`replay`]), native runs of the same models ([`native`]), the trust
//! store and sharing signed models between units ([`trust`], [`share`]),
//! trying a model on sample files in a throwaway store ([`trial`]), and
//! new model crates ([`scaffold`]).
//!
//! Every operation takes explicit paths and a store: the CLI and `serve`
//! call the same functions. Depends on the store, the record and the
//! sandbox; must never depend on the binary (CLI, server) or the demo.

mod hash_behind;
pub mod ingest;
mod json_text;
pub mod leads;
pub mod models;
pub mod native;
pub mod partition;
pub mod plans;
pub mod policy;
pub mod replay;
pub mod review;
pub mod run;
pub mod scaffold;
pub mod share;
pub mod stored;
pub mod trial;
pub mod trust;
pub mod users;
pub mod versions;

pub(crate) use jiandu_record::{audit, ledger, unit};
pub(crate) use jiandu_sandbox::{cache, catalog, contract, emitted, runtime};
pub(crate) use jiandu_store::{dataset, fsio, mask, pseudonym, text, time, Error, Result, Store};
