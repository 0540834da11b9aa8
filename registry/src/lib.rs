//! # jiandu-registry: unit keys, signed model bundles and registries
//!
//! Import is where trust is decided: a unit runs models written by other
//! units, and must know who published a model and that nobody changed it.
//! This crate owns the formats and the checks, and nothing else: it has no
//! store, no sandbox and no terminal. The host keeps the trust store, asks
//! the operator, loads the model and installs it.
//!
//! - [`canonical`]: RFC 8785 canonical JSON, for everything signed.
//! - [`keys`]: a unit's Ed25519 identity, public keys and fingerprints.
//! - [`bundle`]: one file holding `model.toml`, `model.wasm` and the
//!   publisher's signed release statement; packing, strict reading,
//!   verifying.
//! - [`index`]: a registry's per-model index, signed by the publisher with
//!   a growing version and an expiry (rollback and freeze protection),
//!   yanks and un-yanks inside it, and choosing a version by semver.
//! - [`dir`]: a registry that is a plain folder (shared folder, USB stick).
//! - [`http`]: the same folder served read-only over HTTP, and its client.
//! - [`source`]: reading from any of these, and [`source::fetch`], every
//!   check a bundle passes before a host considers installing it.
//!
//! ```no_run
//! use jiandu_registry::{keys::UnitKey, source::{fetch, Checks, Source}};
//! # fn main() -> Result<(), jiandu_registry::Error> {
//! let trusted = UnitKey::generate()?.public();
//! let source = Source::parse("/mnt/usb/registry")?;
//! let req: semver::VersionReq = "^1".parse().expect("a version requirement");
//! let checks = Checks {
//!     is_trusted: &|k| *k == trusted,
//!     // Nothing seen from this registry before: any current index will do.
//!     seen: &|_registry| None,
//!     now: "2025-03-01T09:00:00+08:00",
//! };
//! let fetched = fetch(&source, "disability-fund-arrears", &req, &checks)?;
//! println!("{} verified", fetched.bundle.release().id());
//! # Ok(()) }
//! ```

pub mod bundle;
pub mod canonical;
pub mod dir;
pub mod error;
pub mod http;
pub mod index;
pub mod keys;
pub mod source;

pub use error::{Error, Result};
