//! # jiandu-registry: unit keys, signed model bundles and registries
//!
//! Import is where trust is decided: a unit runs models written by other
//! units, and must know who published a model and that nobody changed it.
//! This crate owns the formats and the checks, and nothing else: it has no
//! store, no sandbox and no terminal. The host keeps the trust store, asks
//! the operator, loads the model and installs it.
//!
//! - [`keys`]: a unit's Ed25519 identity, public keys and fingerprints.
//! - [`bundle`]: one file holding `model.toml`, `model.wasm` and the
//!   publisher's signed release statement; packing, strict reading,
//!   verifying.
//! - [`index`]: a registry's per-model index, signed yanks, and choosing a
//!   version by semver.
//! - [`dir`]: a registry that is a plain folder (shared folder, USB stick).
//! - [`http`]: the same folder served read-only over HTTP, and its client.
//! - [`source`]: reading from any of these, and [`source::fetch`], every
//!   check a bundle passes before a host considers installing it.
//!
//! ```no_run
//! use jiandu_registry::{keys::UnitKey, source::{fetch, Source}};
//! # fn main() -> Result<(), jiandu_registry::Error> {
//! let trusted = UnitKey::generate()?.public();
//! let source = Source::parse("/mnt/usb/registry")?;
//! let req: semver::VersionReq = "^1".parse().expect("a version requirement");
//! let fetched = fetch(&source, "disability-fund-arrears", &req, &|k| *k == trusted)?;
//! println!("{} verified", fetched.bundle.release().id());
//! # Ok(()) }
//! ```

pub mod bundle;
pub mod dir;
pub mod error;
pub mod http;
pub mod index;
pub mod keys;
pub mod source;

pub use error::{Error, Result};
