//! Why a bundle or a registry was refused. Every variant names the thing it
//! is about: the entry of the bundle, the file whose digest differs, the key,
//! the version.

use std::path::PathBuf;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with a bundle, a registry or a key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },

    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),

    #[error("{what} is not a Jiandu bundle: {message}")]
    NotABundle { what: String, message: String },

    #[error("bundle entry `{entry}` points outside the bundle (path traversal); refused")]
    PathTraversal { entry: String },

    #[error("{what} is not a canonical bundle: {message}; a bundle must be exactly the bytes `jiandu model pack` writes, so that its sha256 names one release")]
    NotCanonical { what: String, message: String },

    #[error("bundle entry `{entry}` is a link (to `{target}`); a bundle holds regular files only")]
    Link { entry: String, target: String },

    #[error("bundle entry `{entry}` is a {kind}, not a regular file")]
    NotRegularFile { entry: String, kind: String },

    #[error("bundle entry `{entry}` is unexpected; a bundle holds exactly {}", .expected.join(", "))]
    UnexpectedEntry {
        entry: String,
        expected: &'static [&'static str],
    },

    #[error("bundle entry `{entry}` appears twice")]
    DuplicateEntry { entry: String },

    #[error("bundle has no `{entry}`")]
    MissingEntry { entry: String },

    #[error("{what} is {size} bytes, more than the limit of {limit}")]
    TooLarge { what: String, size: u64, limit: u64 },

    #[error("release statement: {0}")]
    BadRelease(String),

    #[error("bundle {model} is signed by key {fingerprint} (unit {unit}), which is not in the trust store; if you trust that unit, check the fingerprint with it and run `jiandu trust add {key} --unit \"…\"`")]
    UnknownKey {
        model: String,
        unit: String,
        fingerprint: String,
        key: String,
    },

    #[error("bad signature: release.sig of {model} is not a signature by key {fingerprint} (unit {unit}) of its release statement; the bundle was altered or re-signed")]
    BadSignature {
        model: String,
        unit: String,
        fingerprint: String,
    },

    #[error(
        "digest mismatch in {model}: {file} has sha256 {actual}, but {expected_by} says {expected}"
    )]
    DigestMismatch {
        model: String,
        /// `model.wasm`, `model.toml` or the bundle file itself.
        file: &'static str,
        expected_by: String,
        expected: String,
        actual: String,
    },

    #[error("{model}: {message}")]
    Inconsistent { model: String, message: String },

    #[error("{model} is yanked{}; {}", yanked_detail(.by, .reason), available_text(.available))]
    Yanked {
        /// `name@version`.
        model: String,
        by: String,
        reason: Option<String>,
        available: Vec<String>,
    },

    #[error("no version of {name} matches `{req}`; {}", available_text(.available))]
    NoMatch {
        name: String,
        req: String,
        available: Vec<String>,
    },

    #[error("registry {registry} has no model `{name}`; it has: {}", list_or_none(.known))]
    UnknownModel {
        registry: String,
        name: String,
        known: Vec<String>,
    },

    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },

    #[error("{name}@{version} is already in registry {registry} with different files ({differs}); publish a new version instead")]
    VersionConflict {
        registry: String,
        name: String,
        version: String,
        differs: String,
    },

    #[error("only the publisher can {action} {model}: it was published by unit {unit} (key {fingerprint}), and this key is {yours}")]
    NotPublisher {
        action: &'static str,
        model: String,
        unit: String,
        fingerprint: String,
        yours: String,
    },

    #[error("{url}: {message}")]
    Http { url: String, message: String },

    #[error("{0}")]
    BadTime(String),

    #[error("bad signature: {index} is not signed by the key it names, {fingerprint} (unit {unit}); the index was edited or forged, and nothing in it is used")]
    BadIndexSignature {
        index: String,
        unit: String,
        fingerprint: String,
    },

    #[error("the index of {name} in {registry} is signed by key {fingerprint} (unit {unit}), which is not in the trust store; if you trust that unit, check the fingerprint with it and run `jiandu trust add {key} --unit \"…\" --code …`")]
    UnknownIndexKey {
        name: String,
        registry: String,
        unit: String,
        fingerprint: String,
        key: String,
    },

    #[error("the index of {name} in registry {registry} (index version {version}) expired at {expires} (now {now}); an expired index may hide newer yanks: ask the publisher to sign it again with `jiandu registry sign {name} --in <folder>`")]
    IndexExpired {
        name: String,
        registry: String,
        version: u64,
        expires: String,
        now: String,
    },

    #[error("the index of {name} in registry {registry} is index version {offered}, but index version {seen} was seen here before: an older copy of an index is refused (rollback), as it may offer versions the publisher has since withdrawn")]
    IndexRollback {
        name: String,
        registry: String,
        offered: u64,
        seen: u64,
    },

    #[error("the index of {name} in registry {registry} is index version {version} with other content than the version {version} seen here before (sha256 {offered}, seen {seen}); the publisher's key signed two different indexes under one version: refused")]
    IndexFork {
        name: String,
        registry: String,
        version: u64,
        seen: String,
        offered: String,
    },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn available_text(available: &[String]) -> String {
    if available.is_empty() {
        "no version is available".into()
    } else {
        format!("available: {}", available.join(", "))
    }
}

fn yanked_detail(by: &str, reason: &Option<String>) -> String {
    match reason {
        Some(r) => format!(" by {by} ({r})"),
        None => format!(" by {by}"),
    }
}

pub(crate) fn io_err(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.into(),
        message: e.to_string(),
    }
}
