//! # jiandu-demo: sample data and the demo
//!
//! Owns the seeded generators of the four field models' department files,
//! each with its planted violations and an independently computed answer
//! ([`generate`]), and `jiandu demo` ([`demo`]): a store with the sample
//! data and models, run end to end.
//!
//! Not part of the production library: the binary links it for its `demo`
//! command, tests and benchmarks for their data. Depends on every layer;
//! nothing depends on it but the binary, tests and benchmarks.

pub mod demo;
pub mod generate;

pub(crate) use jiandu_record::ledger;
pub(crate) use jiandu_runs::{leads, plans, policy, run};
pub(crate) use jiandu_sandbox::{cache, catalog, runtime};
pub(crate) use jiandu_store::{dataset, fsio, ids, Error, Result, Store};
