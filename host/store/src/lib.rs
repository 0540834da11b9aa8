//! # jiandu-store: the data a unit keeps
//!
//! Owns the store folder and its sled database ([`store`]), department
//! datasets as immutable, block-packed versions with their schemas, views,
//! ingest and keyed pseudonyms ([`dataset`], [`pseudonym`]), personal-data
//! masking and identifier checks ([`mask`], [`ids`]), durable file writes
//! ([`fsio`]), text made inert for terminals and spreadsheets ([`text`]),
//! time ([`time`]), names ([`names`]), the heap of k-way merges
//! ([`heap`]) and the one error type
//! ([`error`]) the layers above share.
//!
//! Must never depend on the record (ledger, audit), the sandbox (wasmtime,
//! models) or runs: it is the bottom layer; whatever an ingest or a version
//! change should put on the record, the layer above writes in the same sled
//! transaction (see [`dataset::Staged`]).

pub mod dataset;
pub mod error;
pub use jiandu_fsio as fsio;
pub mod heap;
pub mod ids;
pub mod inflight;
pub mod mask;
pub mod names;
pub mod pseudonym;
pub mod store;
pub mod text;
pub mod time;

pub use error::{Error, Result};
pub use store::Store;
