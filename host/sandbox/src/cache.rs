//! The compiled-module cache: native code compiled from a model's wasm,
//! kept so that a restart with many models, or each `jiandu run`, does not
//! recompile them.
//!
//! `Component::deserialize` runs whatever native code its bytes contain, so
//! a cache file is loaded only if it verifies against what this host
//! recorded when it wrote it: an HMAC-SHA256 (secret key per store, kept
//! in sled) over the file's bytes, recorded as `hmac-sha256:<hex>` and
//! compared in constant time. The files live in `<store>/cache/` with
//! owner-only permissions; anything that does not verify is recompiled from
//! the wasm, never loaded. A record of another form (written by an older
//! host) is stale: its file is recompiled and the entry written anew. Entries are keyed by the wasm's digest and the
//! engine's compatibility hash, so a different wasmtime or configuration
//! never reads another's code. Installing a model's new code (`model
//! build`, `model import`) removes the entries of the code it replaces
//! ([`forget`]), so rebuilding a model again and again leaves one entry.

use crate::catalog::Installed;
use crate::runtime::{LoadError, Loaded, Runtime};
use crate::{Error, Result, Store};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;

const SECRET_KEY: &str = "cache/secret";
/// How a recorded tag begins; a record without it is stale, never compared.
const TAG_SCHEME: &str = "hmac-sha256:";

type HmacSha256 = Hmac<Sha256>;

/// The MAC of `bytes` under `secret`, ready to be finalized or verified.
fn mac(secret: &[u8], bytes: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(bytes);
    mac
}

/// The tag recorded for a cache file holding `bytes`.
fn tag(secret: &[u8], bytes: &[u8]) -> String {
    let code = mac(secret, bytes).finalize().into_bytes();
    format!("{TAG_SCHEME}{}", hex::encode(code))
}

/// What a recorded tag says of a cache file's bytes.
#[derive(Debug, PartialEq, Eq)]
enum Check {
    /// The tag is this host's and matches: the bytes are those it wrote.
    Verified,
    /// The record is of another form: recompile, quietly.
    Stale,
    /// The tag does not match the bytes: recompile, and say so.
    Mismatch,
}

fn check(secret: &[u8], bytes: &[u8], recorded: &[u8]) -> Check {
    let Some(code) = recorded.strip_prefix(TAG_SCHEME.as_bytes()) else {
        return Check::Stale;
    };
    match hex::decode(code) {
        Ok(code) if mac(secret, bytes).verify_slice(&code).is_ok() => Check::Verified,
        _ => Check::Mismatch,
    }
}

/// How a model's code was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Loaded from a verified cache file.
    Cache,
    /// Compiled from the wasm (and written to the cache).
    Compiled,
}

/// The cache of one store.
pub struct ModuleCache {
    dir: PathBuf,
    meta: sled::Tree,
    secret: Vec<u8>,
    engine_key: String,
}

impl ModuleCache {
    /// Opens the cache of `store` for `runtime`'s engine.
    pub fn open(store: &Store, runtime: &Runtime) -> Result<ModuleCache> {
        let dir = store.root().join("cache");
        std::fs::create_dir_all(&dir).map_err(|e| Error::file(&dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::file(&dir, e))?;
        }
        let secret = match store.meta.get(SECRET_KEY)? {
            Some(s) => s.to_vec(),
            None => {
                let mut s = vec![0u8; 32];
                getrandom::getrandom(&mut s)
                    .map_err(|e| Error::Other(format!("no randomness for the cache key: {e}")))?;
                store.meta.insert(SECRET_KEY, s.clone())?;
                s
            }
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        runtime
            .engine()
            .precompile_compatibility_hash()
            .hash(&mut h);
        Ok(ModuleCache {
            dir,
            meta: store.meta.clone(),
            secret,
            engine_key: format!("{:016x}", h.finish()),
        })
    }

    fn names(&self, wasm_sha256: &str) -> (PathBuf, String) {
        let id = format!("{wasm_sha256}-{}", self.engine_key);
        (self.dir.join(format!("{id}.cwasm")), format!("cache/{id}"))
    }

    /// Loads `model` from the cache if a verified entry exists, else
    /// compiles it and writes the entry; then checks it like
    /// [`Runtime::load`].
    pub fn load(
        &self,
        runtime: &Runtime,
        model: &Installed,
    ) -> Result<(Loaded, Source), LoadError> {
        let (path, key) = self.names(&model.wasm_sha256);
        if let Some(component) = self.read(runtime, &path, &key) {
            return runtime
                .prepare(model, component)
                .map(|l| (l, Source::Cache));
        }
        let component = runtime.compile(&model.wasm)?;
        let loaded = runtime.prepare(model, component.clone())?;
        // A cache that cannot be written only costs time on the next start.
        let written = component
            .serialize()
            .map_err(|e| Error::Other(format!("cannot serialize: {e:#}")))
            .and_then(|bytes| self.write(&path, &key, &bytes));
        if let Err(e) = written {
            tracing::debug!(
                "{} not written to the module cache; it compiles again next time: {e}",
                model.manifest.id()
            );
        }
        Ok((loaded, Source::Compiled))
    }

    fn read(
        &self,
        runtime: &Runtime,
        path: &std::path::Path,
        key: &str,
    ) -> Option<wasmtime::component::Component> {
        let recorded = self.meta.get(key).ok()??;
        let bytes = std::fs::read(path).ok()?;
        match check(&self.secret, &bytes, &recorded) {
            Check::Verified => {}
            Check::Stale => {
                tracing::debug!(
                    "cache file {} is of an older form; recompiling",
                    path.display()
                );
                return None;
            }
            Check::Mismatch => {
                tracing::warn!("cache file {} does not verify; recompiling", path.display());
                return None;
            }
        }
        // SAFETY: the bytes are exactly those this host serialized from a
        // component it compiled itself (their HMAC, recorded in the store
        // when the file was written, matches), for an engine with the same
        // compatibility hash.
        unsafe { wasmtime::component::Component::deserialize(runtime.engine(), &bytes).ok() }
    }

    fn write(&self, path: &std::path::Path, key: &str, bytes: &[u8]) -> Result<()> {
        crate::fsio::write_atomic(path, bytes).map_err(|e| Error::file(path, e))?;
        self.meta.insert(key, tag(&self.secret, bytes).as_bytes())?;
        self.meta.flush()?;
        Ok(())
    }
}

/// Removes the cached code of the wasm whose sha256 is `wasm_sha256`, for
/// every engine: its model has been replaced. Returns how many entries
/// went.
pub fn forget(store: &Store, wasm_sha256: &str) -> Result<usize> {
    let dir = store.root().join("cache");
    let prefix = format!("{wasm_sha256}-");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::file(&dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| Error::file(&dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".cwasm") else {
            continue;
        };
        if !id.starts_with(&prefix) {
            continue;
        }
        // The key first: an entry without it is never loaded.
        store.meta.remove(format!("cache/{id}"))?;
        std::fs::remove_file(entry.path()).map_err(|e| Error::file(entry.path(), e))?;
        removed += 1;
    }
    Ok(removed)
}

/// Drops the cached code of the model `installed` replaced, if its code
/// changed. A cache that cannot be cleaned only takes disk: a warning.
pub fn forget_replaced(store: &Store, replaced: Option<&Installed>, installed: &Installed) {
    let Some(old) = replaced.filter(|old| old.wasm_sha256 != installed.wasm_sha256) else {
        return;
    };
    match forget(store, &old.wasm_sha256) {
        Ok(0) => {}
        Ok(n) => tracing::debug!("{}: {n} cached compilation(s) removed", old.manifest.id()),
        Err(e) => tracing::warn!("the cached code of {} remains: {e}", old.manifest.id()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn only_this_hosts_hmac_of_the_same_bytes_verifies() {
        let (secret, bytes) = ([7u8; 32], b"compiled code".as_slice());
        let recorded = tag(&secret, bytes);
        assert!(recorded.starts_with(TAG_SCHEME), "{recorded}");
        assert_eq!(check(&secret, bytes, recorded.as_bytes()), Check::Verified);

        let mut flipped = bytes.to_vec();
        flipped[0] ^= 1;
        assert_eq!(
            check(&secret, &flipped, recorded.as_bytes()),
            Check::Mismatch
        );
        assert_eq!(
            check(&[8u8; 32], bytes, recorded.as_bytes()),
            Check::Mismatch
        );
        for bad in ["hmac-sha256:", "hmac-sha256:zz", "hmac-sha256:00"] {
            assert_eq!(
                check(&secret, bytes, bad.as_bytes()),
                Check::Mismatch,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_record_of_the_older_prefix_hash_is_stale_never_trusted() {
        let (secret, bytes) = ([7u8; 32], b"compiled code".as_slice());
        // What hosts recorded before: hex sha256(secret || bytes).
        let mut h = Sha256::new();
        h.update(secret);
        h.update(bytes);
        let old = hex::encode(h.finalize());
        assert_eq!(check(&secret, bytes, old.as_bytes()), Check::Stale);
        // Nor does the old digest pass under the new scheme's name.
        let renamed = format!("{TAG_SCHEME}{old}");
        assert_eq!(check(&secret, bytes, renamed.as_bytes()), Check::Mismatch);
    }
}
