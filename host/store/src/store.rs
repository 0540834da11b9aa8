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
//! A store holds data about people: its folders are readable by their owner
//! alone (0700) and its files too (0600). The `jiandu` binary creates
//! everything under a umask of 077; [`Store::open`] also takes group and
//! other access away from the store's own folders and sled's files, and
//! warns about a store folder that others can enter.
//!
//! sled admits one process per database; a second process gets
//! [`Error::StoreLocked`].

use crate::dataset::file::{BlockCache, DEFAULT_CACHE_BYTES};
use crate::inflight::InFlight;
use crate::{Error, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The folders a store keeps directly under its root, each owner-only.
pub const FOLDERS: &[&str] = &[
    "db", "data", "leads", "models", "tmp", "cache", "unit", ".staging",
];

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
            std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))
                .map_err(cannot_create)?;
        } else if let Some(warning) = shared_root(&root) {
            // The operator chose this folder's mode (a mount point, a
            // folder shared on purpose): say so rather than change it.
            tracing::warn!("{warning}");
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
        // After sled opened: it creates its files as the process's umask
        // says, and a library caller may not have narrowed it.
        make_private(&root);
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
    pub fn leads_in_flight(&self) -> &Arc<InFlight> {
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

/// The warning for a store folder that group or others can enter, with the
/// command that closes it; `None` when only its owner can.
pub fn shared_root(root: &Path) -> Option<String> {
    let mode = std::fs::metadata(root).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "store {} is open to other users (mode {mode:03o}) and holds data about people; \
             run `chmod 700 {}`",
            root.display(),
            root.display()
        )
    })
}

/// Takes group and other access away from the store's own folders (not
/// their contents: a closed folder guards them, and everything new is
/// created owner-only) and from every file of sled's database, which sled
/// creates itself. A mode that cannot be changed (another user's store) is
/// warned about, not fatal: the store still opens.
fn make_private(root: &Path) {
    for name in FOLDERS {
        restrict(&root.join(name), 0o700);
    }
    let mut pending = vec![root.join("db")];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    restrict(&entry.path(), 0o700);
                    pending.push(entry.path());
                }
                Ok(t) if t.is_file() => restrict(&entry.path(), 0o600),
                _ => {}
            }
        }
    }
}

/// Sets `path` to `mode` if group or others have any access to it.
fn restrict(path: &Path, mode: u32) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.file_type().is_symlink() || meta.permissions().mode() & 0o077 == 0 {
        return;
    }
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!(
            "{} is open to other users and its mode cannot be changed ({e}); run `chmod {mode:o} {}`",
            path.display(),
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_store_is_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        Store::open(&root).unwrap();
        let mode = std::fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn opening_a_store_closes_its_folders_and_database_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        drop(Store::open(&root).unwrap());
        for name in ["data", "leads", "db"] {
            let p = root.join(name);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let conf = root.join("db").join("conf");
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(Store::open(&root).unwrap());
        for name in ["data", "leads", "db"] {
            let mode = std::fs::metadata(root.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{name}");
        }
        let mode = std::fs::metadata(&conf).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_store_folder_others_can_enter_is_named_with_the_chmod_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        std::fs::create_dir(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o750)).unwrap();
        let warning = shared_root(&root).expect("a warning");
        assert!(
            warning.contains(&format!("chmod 700 {}", root.display())) && warning.contains("750"),
            "{warning}"
        );
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(shared_root(&root), None);
    }
}
