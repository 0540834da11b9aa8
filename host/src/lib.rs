//! # jiandu: the host of big-data legal supervision models
//!
//! Jiandu runs legal supervision models (法律监督模型) — small WebAssembly
//! programs that cross-match department datasets — in a sandbox, over data
//! kept in an embedded sled store, and keeps a tamper-evident record of every
//! run. ARCHITECTURE.md draws the layers; each is a crate of its own:
//!
//! - `jiandu-store`: the store folder and sled database, datasets, schemas,
//!   views, ingest, pseudonyms, masking ([`store`], [`dataset`],
//!   [`pseudonym`], [`mask`], [`ids`], [`text`], [`fsio`], [`time`]).
//! - `jiandu-record`: the ledger, this unit's identity and the audit on them
//!   ([`ledger`], [`unit`], [`audit`]).
//! - `jiandu-sandbox`: installed models, the wasmtime engine and its limits,
//!   emitted leads, the compiled-module cache ([`catalog`], [`runtime`],
//!   [`limits`], [`emitted`], [`cache`]).
//! - `jiandu-runs`: a unit's operations: policy, runs, ingest on the record,
//!   leads, dataset versions, file checks, replay, native runs, trust and
//!   sharing ([`policy`], [`run`], [`ingest`], [`leads`], [`versions`],
//!   [`stored`], [`replay`], [`native`], [`trust`], [`share`]).
//! - this crate: the local server ([`serve`]) and the `jiandu` binary
//!   (`src/cli/`), which parses arguments, calls the layers and prints.
//!
//! The demo and the sample-data generators live in `jiandu-demo`, outside
//! this library. This crate re-exports the layers under one name so that
//! the binary, tests and benchmarks say `jiandu::dataset`, `jiandu::run`….
//! It must never hold store, record, sandbox or run logic itself.

pub use jiandu_record::{audit, ledger, unit};
pub use jiandu_runs::{
    ingest, leads, models, native, plans, policy, replay, review, run, scaffold, share, stored,
    trial, trust, users, versions,
};
pub use jiandu_sandbox::{cache, catalog, contract, emitted, limits, runtime};
pub use jiandu_store::{
    dataset, error, fsio, ids, inflight, mask, names, pseudonym, store, text, time, Error, Result,
    Store,
};

pub mod serve;
