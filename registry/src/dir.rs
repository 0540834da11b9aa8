//! A registry in a plain directory: a shared folder or a USB stick carried
//! between networks that have no internet.
//!
//! ```text
//! <dir>/index/<name>.json              the model's index (see crate::index)
//! <dir>/bundles/<name>-<version>.jiandu the bundles, as packed
//! <dir>/.lock                           held while a publish or yank writes
//! ```
//!
//! Files are written beside their final names and renamed into place, so a
//! reader never sees half an index or half a bundle. Publishing checks the
//! bundle's signature and digests against the key it names (not against any
//! trust store: the registry is only a shelf, each importing unit decides
//! whom it trusts).

use crate::bundle::{self, check_name, Bundle, ManifestHead, MAX_BUNDLE};
use crate::error::{io_err, Error, Result};
use crate::index::{Entry, Index, MAX_INDEX};
use crate::keys::UnitKey;
use std::path::{Path, PathBuf};

/// A directory registry.
#[derive(Debug, Clone)]
pub struct DirRegistry {
    root: PathBuf,
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct Published {
    /// The model's name.
    pub name: String,
    /// Its index entry.
    pub entry: Entry,
    /// `false` when the same version with the same files was already there.
    pub added: bool,
}

impl DirRegistry {
    /// The registry at `root` (created on first publish).
    pub fn new(root: impl Into<PathBuf>) -> DirRegistry {
        DirRegistry { root: root.into() }
    }

    /// Its folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn what(&self) -> String {
        self.root.display().to_string()
    }

    /// `<dir>/index/<name>.json`.
    pub fn index_path(&self, name: &str) -> PathBuf {
        self.root.join("index").join(format!("{name}.json"))
    }

    /// `<dir>/bundles/<name>-<version>.jiandu`.
    pub fn bundle_path(&self, name: &str, version: &str) -> PathBuf {
        self.root
            .join("bundles")
            .join(bundle_file_name(name, version))
    }

    /// The index of `name`, if the registry has that model.
    pub fn read_index(&self, name: &str) -> Result<Option<Index>> {
        check_name(name).map_err(|message| Error::Registry {
            registry: self.what(),
            message,
        })?;
        let path = self.index_path(name);
        if std::fs::symlink_metadata(&path).is_err() {
            if !self.root.is_dir() {
                return Err(io_err(
                    &self.root,
                    "is not a registry folder (it does not exist)",
                ));
            }
            return Ok(None);
        }
        let bytes = bundle::read_registry_file(&path, MAX_INDEX)?;
        Index::parse(&bytes, name, &path.display().to_string()).map(Some)
    }

    /// Names of the models the registry holds.
    pub fn names(&self) -> Result<Vec<String>> {
        if !self.root.is_dir() {
            return Err(io_err(
                &self.root,
                "is not a registry folder (it does not exist)",
            ));
        }
        let dir = self.root.join("index");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err(&dir, e))?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(name) = file.strip_suffix(".json") {
                if check_name(name).is_ok() {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// The bytes of a published bundle.
    pub fn read_bundle(&self, name: &str, version: &str) -> Result<Vec<u8>> {
        check_name(name).map_err(|message| Error::Registry {
            registry: self.what(),
            message,
        })?;
        bundle::read_registry_file(&self.bundle_path(name, version), MAX_BUNDLE)
    }

    /// Adds a bundle. Its signature and digests must hold against the key
    /// it names; a model's versions must all come from one key; a version
    /// already published must have the same files.
    pub fn publish(&self, bytes: &[u8], what: &str, now: &str) -> Result<Published> {
        let bundle = Bundle::read(bytes, what)?;
        let head: ManifestHead = bundle.verify_signed()?;
        let release = bundle.release();
        let version = semver::Version::parse(&release.version).map_err(|e| {
            Error::BadRelease(format!("{what}: version `{}`: {e}", release.version))
        })?;
        let _lock = Lock::take(&self.root)?;
        let mut index = self
            .read_index(&release.name)?
            .unwrap_or_else(|| Index::new(&release.name));
        if let Some(first) = index.versions.first() {
            if first.publisher.key != release.publisher.key {
                return Err(Error::NotPublisher {
                    action: "publish a version of",
                    model: release.name.clone(),
                    unit: first.publisher.unit.clone(),
                    fingerprint: first.publisher.fingerprint.clone(),
                    yours: format!(
                        "{} (unit {})",
                        release.publisher.fingerprint, release.publisher.unit
                    ),
                });
            }
        }
        if let Some(existing) = index.get(&version) {
            if existing.files == release.files {
                return Ok(Published {
                    name: release.name.clone(),
                    entry: existing.clone(),
                    added: false,
                });
            }
            let differs: Vec<&str> = bundle::ENTRY_NAMES[..2]
                .iter()
                .copied()
                .filter(|f| existing.files.get(*f) != release.files.get(*f))
                .collect();
            return Err(Error::VersionConflict {
                registry: self.what(),
                name: release.name.clone(),
                version: release.version.clone(),
                differs: format!("{} differ", differs.join(" and ")),
            });
        }
        let entry = Entry::of_bundle(
            &bundle,
            &head.title,
            head.description.as_deref(),
            bytes.len() as u64,
            now,
        );
        index.versions.push(entry.clone());
        index.versions.sort_by_key(Entry::semver);
        write_atomically(&self.bundle_path(&release.name, &release.version), bytes)?;
        write_atomically(&self.index_path(&release.name), &index.to_json())?;
        Ok(Published {
            name: release.name.clone(),
            entry,
            added: true,
        })
    }

    /// Yanks `name@version`, signed by `key`, which must be the key that
    /// published it. Returns `false` when it was already yanked.
    pub fn yank(
        &self,
        name: &str,
        version: &semver::Version,
        key: &UnitKey,
        reason: Option<&str>,
        now: &str,
    ) -> Result<bool> {
        let _lock = Lock::take(&self.root)?;
        let mut index = self.read_index(name)?.ok_or_else(|| Error::UnknownModel {
            registry: self.what(),
            name: name.to_string(),
            known: self.names().unwrap_or_default(),
        })?;
        let changed = index.yank(version, key, reason, now)?;
        if changed {
            write_atomically(&self.index_path(name), &index.to_json())?;
        }
        Ok(changed)
    }
}

/// `<name>-<version>.jiandu`.
pub fn bundle_file_name(name: &str, version: &str) -> String {
    format!("{name}-{version}.{}", bundle::EXTENSION)
}

/// Writes `bytes` next to `path` and renames it into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("registry paths have a folder");
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .expect("registry paths have a file name")
            .to_string_lossy()
    ));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    write().map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

/// The registry's write lock: a file created exclusively, removed when
/// dropped. Another writer (another host on the same shared folder) is
/// refused rather than allowed to interleave index writes.
struct Lock(PathBuf);

impl Lock {
    fn take(root: &Path) -> Result<Lock> {
        std::fs::create_dir_all(root).map_err(|e| io_err(root, e))?;
        let path = root.join(".lock");
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => Ok(Lock(path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Registry {
                registry: root.display().to_string(),
                message: format!(
                    "another publish or yank is writing it ({} exists; remove it if no one is)",
                    path.display()
                ),
            }),
            Err(e) => Err(io_err(path, e)),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
