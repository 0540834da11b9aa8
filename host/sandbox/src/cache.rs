//! The compiled-module cache: native code compiled from a model's wasm,
//! kept so that a restart with many models, or each `jiandu run`, does not
//! recompile them.
//!
//! `Component::deserialize` runs whatever native code its bytes contain, so
//! a cache file is loaded only if it verifies against what this host
//! recorded when it wrote it: a keyed sha256 (secret per store, kept in
//! sled) over the file's bytes. The files live in `<store>/cache/` with
//! owner-only permissions; anything that does not verify is recompiled from
//! the wasm, never loaded. Entries are keyed by the wasm's digest and the
//! engine's compatibility hash, so a different wasmtime or configuration
//! never reads another's code. Installing a model's new code (`model
//! build`, `model import`) removes the entries of the code it replaces
//! ([`forget`]), so rebuilding a model again and again leaves one entry.

use crate::catalog::Installed;
use crate::runtime::{LoadError, Loaded, Runtime};
use crate::{Error, Result, Store};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;

const SECRET_KEY: &str = "cache/secret";

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

    fn keyed(&self, bytes: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(&self.secret);
        h.update(bytes);
        hex::encode(h.finalize())
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
        if self.keyed(&bytes).as_bytes() != recorded.as_ref() {
            tracing::warn!("cache file {} does not verify; recompiling", path.display());
            return None;
        }
        // SAFETY: the bytes are exactly those this host serialized from a
        // component it compiled itself (the keyed hash, recorded in the
        // store when the file was written, matches), for an engine with the
        // same compatibility hash.
        unsafe { wasmtime::component::Component::deserialize(runtime.engine(), &bytes).ok() }
    }

    fn write(&self, path: &std::path::Path, key: &str, bytes: &[u8]) -> Result<()> {
        crate::fsio::write_atomic(path, bytes).map_err(|e| Error::file(path, e))?;
        self.meta.insert(key, self.keyed(bytes).as_bytes())?;
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
