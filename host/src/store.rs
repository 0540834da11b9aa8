//! The store: one folder holding the sled database, the installed models and
//! the host policy.
//!
//! ```text
//! <store>/db/          sled: meta, ledger (+ ledger_sig, ledger_text,
//!                      checkpoints) and,
//!                      at a central office, the imported ledgers (central,
//!                      central_checkpoints)
//! <store>/data/        dataset blocks: one file per run of a version
//!                      (see `dataset::file`), named by the metadata in `meta`
//! <store>/leads/<m>/   leads: one snapshot file per model, `<run>.leads`
//!                      (see `leads`), named by `meta["leads/<m>/current"]`
//! <store>/models/<m>/  model.wasm + model.toml, one folder per model
//! <store>/jiandu.toml  host policy (optional; defaults apply)
//! ```
//!
//! sled admits one process per database; a second process gets
//! [`Error::StoreLocked`].

use crate::dataset::file::{BlockCache, DEFAULT_CACHE_BYTES};
use crate::leads::InFlight;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An open store.
#[derive(Clone)]
pub struct Store {
    root: PathBuf,
    db: sled::Db,
    /// Schemas, dataset heads, the ledger head, cursors, which snapshot
    /// holds each model's leads.
    pub meta: sled::Tree,
    /// Ledger entries by big-endian sequence number.
    pub ledger: sled::Tree,
    /// Each ledger entry's seal (its hash and the unit's signature), by the
    /// same key as the entry.
    pub ledger_sig: sled::Tree,
    /// Text a model chose (a panic message, its error text, a backtrace
    /// naming its functions) for ledger entry `n`, kept beside the entry by
    /// the same key so that it can be redacted (see `ledger::aside`).
    pub ledger_text: sled::Tree,
    /// This unit's signed checkpoints by big-endian entry count.
    pub checkpoints: sled::Tree,
    /// Other units' imported ledger entries by `fingerprint \0 seq`.
    pub central: sled::Tree,
    /// Checkpoints accepted from other units by `fingerprint \0 size`.
    pub central_checkpoints: sled::Tree,
    /// Dataset blocks kept for gets and lookups, shared by every reader.
    block_cache: Arc<BlockCache>,
    /// Leads files planned and not yet committed or dropped.
    leads_in_flight: Arc<InFlight>,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        let cannot_create = |e: std::io::Error| Error::Store {
            path: root.clone(),
            message: format!("cannot create: {e}"),
        };
        if !root.exists() {
            // A new store holds data about people: its owner alone may read it.
            std::fs::create_dir_all(&root).map_err(cannot_create)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))
                .map_err(cannot_create)?;
        }
        std::fs::create_dir_all(root.join("models")).map_err(cannot_create)?;
        let db_path = root.join("db");
        // A process that just finished with the store (or a store dropped a
        // moment ago in this process) releases its lock from sled's flusher
        // thread: wait briefly before calling the store busy.
        let mut tries = 0;
        let db = loop {
            match sled::Config::new()
                .path(&db_path)
                .cache_capacity(64 << 20)
                .open()
            {
                Ok(db) => break db,
                Err(sled::Error::Io(io))
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    if tries == 30 {
                        return Err(Error::StoreLocked { path: root.clone() });
                    }
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => {
                    return Err(Error::Store {
                        path: root.clone(),
                        message: e.to_string(),
                    })
                }
            }
        };
        Ok(Store {
            meta: db.open_tree("meta")?,
            ledger: db.open_tree("ledger")?,
            ledger_sig: db.open_tree("ledger_sig")?,
            ledger_text: db.open_tree("ledger_text")?,
            checkpoints: db.open_tree("checkpoints")?,
            central: db.open_tree("central")?,
            central_checkpoints: db.open_tree("central_checkpoints")?,
            block_cache: Arc::new(BlockCache::new(DEFAULT_CACHE_BYTES)),
            leads_in_flight: Arc::default(),
            db,
            root,
        })
    }

    /// The store folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where dataset block files live.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The cache of dataset blocks for point reads.
    pub fn block_cache(&self) -> Arc<BlockCache> {
        self.block_cache.clone()
    }

    /// Where each model's leads files live.
    pub fn leads_dir(&self) -> PathBuf {
        self.root.join("leads")
    }

    /// Leads files planned in this process and not yet committed or
    /// dropped, which a plan must not take for orphans.
    pub(crate) fn leads_in_flight(&self) -> &Arc<InFlight> {
        &self.leads_in_flight
    }

    /// Where installed models live.
    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }

    /// The policy file inside the store.
    pub fn policy_path(&self) -> PathBuf {
        self.root.join("jiandu.toml")
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Reads a JSON value from `meta`.
    pub fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.meta.get(key)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| Error::Store {
                    path: self.root.clone(),
                    message: format!("meta `{key}` is unreadable: {e}"),
                }),
        }
    }

    /// Writes a JSON value to `meta`.
    pub fn put_meta<T: serde::Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).expect("meta values serialize");
        self.meta.insert(key, bytes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_store_is_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        Store::open(&root).unwrap();
        let mode = std::fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
