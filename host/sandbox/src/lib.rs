//! # jiandu-sandbox: models and the engine that runs them
//!
//! Owns installed models on disk and building them ([`catalog`]), the
//! wasmtime engine, the host side of the contract and the limits of one run
//! ([`runtime`], [`limits`]), every contract version it loads ([`contract`]), leads as a run emits them, spilling past a
//! memory budget ([`emitted`]), and the compiled-module cache ([`cache`]).
//!
//! Depends on the store (a run reads dataset versions through views). Must
//! never depend on the record, runs or policy: what a run used and why it
//! stopped are plain values the layer above puts on the record.

pub mod cache;
pub mod catalog;
pub mod contract;
pub mod emitted;
pub mod limits;
pub mod runtime;

pub(crate) use jiandu_store::{dataset, fsio, text, Error, Result, Store};
