//! A registry in a plain directory: a shared folder or a USB stick carried
//! between networks that have no internet.
//!
//! ```text
//! <dir>/registry.json                  the registry's id, signed into each index
//! <dir>/index/<name>.json              the model's signed index (see crate::index)
//! <dir>/bundles/<name>-<version>.jiandu the bundles, as packed
//! <dir>/.lock                           held while a publish or yank writes
//! ```
//!
//! Files are written beside their final names and renamed into place, so a
//! reader never sees half an index or half a bundle. Publishing checks the
//! bundle's signature and digests against the key it names (not against any
//! trust store: the registry is only a shelf, each importing unit decides
//! whom it trusts), and only that key's holder can publish it: the index is
//! signed again with every change.

use crate::bundle::{self, check_name, Bundle, ManifestHead, Publisher, MAX_BUNDLE};
use crate::error::{io_err, Error, Result};
use crate::index::{Entry, Index, SignedIndex, YankAction, MAX_INDEX};
use crate::keys::UnitKey;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file naming a registry.
pub const REGISTRY_FILE: &str = "registry.json";
/// `format` of [`REGISTRY_FILE`].
pub const REGISTRY_FORMAT: &str = "jiandu-registry-v1";

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
    /// The newly signed index; `None` when nothing changed.
    pub index: Option<SignedIndex>,
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

    /// The signed index of `name`, if the registry has that model. Its
    /// signature is checked against the publisher it names.
    pub fn read_index(&self, name: &str) -> Result<Option<SignedIndex>> {
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
        SignedIndex::parse(&bytes, name, &path.display().to_string()).map(Some)
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

    /// This registry's id, creating `registry.json` with a new random one
    /// if the folder has none yet. The id is signed into every index, so
    /// an importer tells this registry's indexes from another's.
    fn id_or_create(&self) -> Result<String> {
        if let Some(id) = self.id()? {
            return Ok(id);
        }
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes).map_err(|e| io_err(&self.root, e))?;
        let id = hex::encode(bytes);
        let file = RegistryFile {
            format: REGISTRY_FORMAT.to_string(),
            id: id.clone(),
        };
        let mut json = serde_json::to_vec_pretty(&file).expect("registry.json serializes");
        json.push(b'\n');
        write_atomically(&self.root.join(REGISTRY_FILE), &json)?;
        Ok(id)
    }

    /// This registry's id (`registry.json`), if anything was published.
    pub fn id(&self) -> Result<Option<String>> {
        let path = self.root.join(REGISTRY_FILE);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        let bytes = bundle::read_registry_file(&path, 4096)?;
        let file: RegistryFile = serde_json::from_slice(&bytes)
            .map_err(|e| io_err(&path, format!("unreadable: {e}")))?;
        if file.format != REGISTRY_FORMAT || file.id.is_empty() {
            return Err(io_err(&path, format!("is not a {REGISTRY_FORMAT} file")));
        }
        Ok(Some(file.id))
    }

    /// The index of `name` for a change signed by `key`: the current one
    /// (which must be this registry's and `key`'s), or a new one.
    fn index_for_change(
        &self,
        name: &str,
        key: &UnitKey,
        publisher: Option<&Publisher>,
        action: &'static str,
    ) -> Result<Index> {
        let id = self.id_or_create()?;
        let index = match self.read_index(name)? {
            Some(signed) => signed.signed,
            None => match publisher {
                Some(p) => return Ok(Index::new(&id, name, p)),
                None => {
                    return Err(Error::UnknownModel {
                        registry: self.what(),
                        name: name.to_string(),
                        known: self.names().unwrap_or_default(),
                    })
                }
            },
        };
        let public = key.public();
        if index.publisher.key != public.to_hex() {
            return Err(Error::NotPublisher {
                action,
                model: name.to_string(),
                unit: index.publisher.unit.clone(),
                fingerprint: index.publisher.fingerprint.clone(),
                yours: format!(
                    "{}{}",
                    public.fingerprint(),
                    publisher
                        .map(|p| format!(" (unit {})", p.unit))
                        .unwrap_or_default()
                ),
            });
        }
        if index.registry != id {
            return Err(Error::Registry {
                registry: self.what(),
                message: format!(
                    "the index of {name} belongs to registry {} but this folder is registry {id}; it was copied here from another registry: remove it and publish the bundles again",
                    index.registry
                ),
            });
        }
        Ok(index)
    }

    /// Adds a bundle, signed by `key`, which must be the key that signed
    /// the bundle (and every version of the model before it). The bundle's
    /// signature and digests must hold; a version already published must
    /// have the same files. The model's index is signed again, one version
    /// higher, valid for `valid_days` from `now`.
    pub fn publish(
        &self,
        bytes: &[u8],
        what: &str,
        key: &UnitKey,
        now: &str,
        valid_days: u32,
    ) -> Result<Published> {
        let bundle = Bundle::read(bytes, what)?;
        let head: ManifestHead = bundle.verify_signed()?;
        let release = bundle.release();
        let version = semver::Version::parse(&release.version).map_err(|e| {
            Error::BadRelease(format!("{what}: version `{}`: {e}", release.version))
        })?;
        let public = key.public();
        if release.publisher.key != public.to_hex() {
            return Err(Error::NotPublisher {
                action: "publish",
                model: release.id(),
                unit: release.publisher.unit.clone(),
                fingerprint: release.publisher.fingerprint.clone(),
                yours: format!(
                    "{}; a bundle is published by the unit that signed it, whose key signs the registry's index",
                    public.fingerprint()
                ),
            });
        }
        let _lock = Lock::take(&self.root)?;
        let mut index = self.index_for_change(
            &release.name,
            key,
            Some(&release.publisher),
            "publish a version of",
        )?;
        if let Some(existing) = index.get(&version) {
            if existing.files == release.files {
                return Ok(Published {
                    name: release.name.clone(),
                    entry: existing.clone(),
                    index: None,
                    added: false,
                });
            }
            let differs: Vec<&str> = bundle::MODEL_FILES
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
        // The unit's name and code as it signs them now.
        index.publisher = release.publisher.clone();
        let signed = index.sign(key, now, valid_days)?;
        write_atomically(&self.bundle_path(&release.name, &release.version), bytes)?;
        write_atomically(&self.index_path(&release.name), &signed.to_json())?;
        Ok(Published {
            name: release.name.clone(),
            entry,
            index: Some(signed),
            added: true,
        })
    }

    /// Yanks (`YankAction::Yank`) or un-yanks `name@version`, signed by
    /// `key`, which must be the key that published it. Returns the newly
    /// signed index, or `None` when the version was already in that state.
    pub fn set_yanked(
        &self,
        name: &str,
        version: &semver::Version,
        action: YankAction,
        change: &Change<'_>,
    ) -> Result<Option<SignedIndex>> {
        let _lock = Lock::take(&self.root)?;
        let what = match action {
            YankAction::Yank => "yank",
            YankAction::Unyank => "un-yank",
        };
        let mut index = self.index_for_change(name, change.key, None, what)?;
        if !index.set_yanked(version, action, change.reason, change.now)? {
            return Ok(None);
        }
        let signed = index.sign(change.key, change.now, change.valid_days)?;
        write_atomically(&self.index_path(name), &signed.to_json())?;
        Ok(Some(signed))
    }

    /// Signs the index of `name` again, unchanged but one version higher
    /// and valid for `change.valid_days` from `change.now`: what a
    /// publisher does before an index expires.
    pub fn resign(&self, name: &str, change: &Change<'_>) -> Result<SignedIndex> {
        let _lock = Lock::take(&self.root)?;
        let index = self.index_for_change(name, change.key, None, "sign the index of")?;
        let signed = index.sign(change.key, change.now, change.valid_days)?;
        write_atomically(&self.index_path(name), &signed.to_json())?;
        Ok(signed)
    }
}

/// Who changes an index, when, why, and for how long the newly signed
/// index is valid.
pub struct Change<'a> {
    pub key: &'a UnitKey,
    pub now: &'a str,
    pub reason: Option<&'a str>,
    pub valid_days: u32,
}

/// `registry.json`: what makes a folder a registry with an identity.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    format: String,
    id: String,
}

/// `<name>-<version>.jiandu`.
pub fn bundle_file_name(name: &str, version: &str) -> String {
    format!("{name}-{version}.{}", bundle::EXTENSION)
}

/// Writes `bytes` to `path` durably, all or nothing ([`jiandu_fsio`]).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("registry paths have a folder");
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    jiandu_fsio::write_atomic_shared(path, bytes).map_err(|e| io_err(path, e))
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
