//! # jiandu-registry: unit keys, signed model bundles and registries
//!
//! Import is where trust is decided: a unit runs models written by other
//! units, and must know who published a model and that nobody changed it.
//! This crate owns the unit's Ed25519 identity ([`keys`]).

pub mod keys;
