//! # jiandu: the host of big-data legal supervision models
//!
//! Jiandu runs legal supervision models (法律监督模型) — small WebAssembly
//! programs that cross-match department datasets — in a sandbox, over data
//! kept in an embedded sled store, and keeps a tamper-evident record of every
//! run.
//!
//! One module per noun:
//! - [`store`]: the sled store and its trees; where everything lives on disk.
//! - [`dataset`]: schemas, ingest of department files, immutable block-packed
//!   versions, scans and lookups.
//! - [`catalog`]: models on disk (`model.toml` + `model.wasm`) and building
//!   them from crates.
//! - [`trust`] and [`share`]: the keys of units whose models this store
//!   accepts; packing signed bundles and importing them from registries.
//! - [`policy`]: the host policy (limits, grants, masking).
//! - [`runtime`]: the wasmtime sandbox and the host side of the contract.
//! - [`run`]: executing one run from start entry to committed leads.
//! - [`ledger`]: the append-only, hash-chained run record.
//! - [`leads`]: leads by (model, subject), their lifecycle and export.
//! - [`mask`] and [`ids`]: personal-data masking and identifier checks.
//! - [`text`]: text from models and files made safe for terminals and
//!   spreadsheets.
//! - [`generate`] and [`demo`]: seeded synthetic department data.
//!
//! The `jiandu` binary (`cli/`) only parses arguments, calls these, and prints.

pub mod audit;
pub mod cache;
pub mod catalog;
pub mod dataset;
pub mod demo;
pub mod emitted;
pub mod error;
pub mod fsio;
pub mod generate;
pub mod ids;
pub mod leads;
pub mod ledger;
pub mod mask;
pub mod native;
pub mod policy;
pub mod pseudonym;
pub mod run;
pub mod runtime;
pub mod serve;
pub mod share;
pub mod store;
pub mod text;
pub mod time;
pub mod trust;
pub mod unit;

pub use error::{Error, Result};
pub use store::Store;
