//! Where models are imported from: a registry folder, a registry served over
//! HTTP (`jiandu registry serve`), or a single bundle file. All three are
//! read the same way, and [`fetch`] does every check a bundle must pass
//! before a host considers installing it.

use crate::bundle::{self, Bundle, ManifestHead, MAX_BUNDLE};
use crate::dir::DirRegistry;
use crate::error::{Error, Result};
use crate::http;
use crate::index::{Entry, Index, IndexState, SignedIndex};
use crate::keys::PublicKey;
use std::path::PathBuf;

/// A place to read models from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A registry folder.
    Dir(DirRegistry),
    /// A registry served over HTTP, e.g. `http://10.1.2.3:7878`.
    Http(http::Client),
    /// One bundle file (`*.jiandu`).
    File(PathBuf),
}

impl Source {
    /// `http://…` is a served registry, an existing file a bundle, anything
    /// else a registry folder.
    pub fn parse(text: &str) -> Result<Source> {
        if text.starts_with("http://") || text.starts_with("https://") {
            return Ok(Source::Http(http::Client::new(text)?));
        }
        // Absolute, so that provenance and messages say which folder.
        let path = std::fs::canonicalize(text).unwrap_or_else(|_| PathBuf::from(text));
        if path.is_file() {
            Ok(Source::File(path))
        } else {
            Ok(Source::Dir(DirRegistry::new(path)))
        }
    }

    /// The folder, URL or file, for messages.
    pub fn describe(&self) -> String {
        match self {
            Source::Dir(d) => d.root().display().to_string(),
            Source::Http(c) => c.base().to_string(),
            Source::File(p) => p.display().to_string(),
        }
    }

    /// Names of the models available.
    pub fn names(&self) -> Result<Vec<String>> {
        match self {
            Source::Dir(d) => d.names(),
            Source::Http(c) => c.names(),
            Source::File(p) => Ok(vec![Bundle::read_file(p)?.release().name.clone()]),
        }
    }

    /// The signed index of `name`, its signature checked against the
    /// publisher it names; `None` for a bundle file, which has no index.
    /// An error listing what the registry has when it does not have `name`.
    pub fn signed_index(&self, name: &str) -> Result<Option<SignedIndex>> {
        let found = match self {
            Source::Dir(d) => d.read_index(name)?.map(Some),
            Source::Http(c) => c.index(name)?.map(Some),
            Source::File(p) => {
                let b = Bundle::read_file(p)?;
                (b.release().name == name).then_some(None)
            }
        };
        found.ok_or_else(|| self.unknown(name))
    }

    fn unknown(&self, name: &str) -> Error {
        Error::UnknownModel {
            registry: self.describe(),
            name: name.to_string(),
            known: self.names().unwrap_or_default(),
        }
    }

    /// The index document of `name` (its signature checked, not whether
    /// its publisher is trusted or the index current); a bundle file stands
    /// for an unsigned index of its one version.
    pub fn index(&self, name: &str) -> Result<Index> {
        match self {
            Source::File(p) => {
                let b = Bundle::read_file(p)?;
                if b.release().name != name {
                    return Err(self.unknown(name));
                }
                Ok(single_index(&b))
            }
            _ => Ok(self
                .signed_index(name)?
                .expect("a registry's index is signed")
                .signed),
        }
    }

    /// The indexes of every model.
    pub fn indexes(&self) -> Result<Vec<Index>> {
        self.names()?.iter().map(|n| self.index(n)).collect()
    }

    /// The bytes of the bundle of `name@version`.
    pub fn bundle(&self, name: &str, version: &str) -> Result<Vec<u8>> {
        match self {
            Source::Dir(d) => d.read_bundle(name, version),
            Source::Http(c) => c.bundle(name, version),
            Source::File(p) => bundle::read_limited(p, MAX_BUNDLE),
        }
    }
}

/// The index a lone bundle file stands for: its one version, as the bundle
/// itself states it (nothing is verified yet).
fn single_index(b: &Bundle) -> Index {
    let r = b.release();
    let mut index = Index::new("", &r.name, &r.publisher);
    index.versions.push(Entry {
        version: r.version.clone(),
        sdk: r.sdk.clone(),
        title: String::new(),
        description: None,
        bundle_sha256: b.sha256().to_string(),
        bundle_size: 0,
        files: r.files.clone(),
        released_at: r.created_at.clone(),
        published_at: r.created_at.clone(),
        yanks: Vec::new(),
    });
    index
}

/// Models whose name, title, description or publisher contains `text`
/// (case-insensitive); all of them when `text` is empty.
pub fn search<'a>(indexes: &'a [Index], text: &str) -> Vec<&'a Index> {
    let needle = text.to_lowercase();
    indexes
        .iter()
        .filter(|i| {
            needle.is_empty()
                || i.name.to_lowercase().contains(&needle)
                || i.publisher.unit.to_lowercase().contains(&needle)
                || i.versions.iter().any(|e| {
                    e.title.to_lowercase().contains(&needle)
                        || e.description
                            .as_ref()
                            .is_some_and(|d| d.to_lowercase().contains(&needle))
                })
        })
        .collect()
}

/// A bundle that passed every check [`fetch`] makes.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The index entry it was chosen by.
    pub entry: Entry,
    pub bundle: Bundle,
    pub head: ManifestHead,
    /// The signed index it was chosen from; `None` for a bundle file.
    pub index: Option<SignedIndex>,
}

/// What [`fetch`] asks of the importer.
pub struct Checks<'a> {
    /// Whether a publisher key is in the importer's trust store.
    pub is_trusted: &'a dyn Fn(&PublicKey) -> bool,
    /// What the importer last accepted of this model's index from the
    /// registry with this id, if anything.
    pub seen: &'a dyn Fn(&str) -> Option<IndexState>,
    /// The current time, RFC 3339.
    pub now: &'a str,
}

/// Picks the highest non-yanked version of `name` matching `req`, reads its
/// bundle and verifies it. From a registry: the index is signed by the
/// publisher it names, that publisher's key is trusted, the index has not
/// expired and is not older than the one last seen from that registry
/// (`checks.seen`). Then, from a registry or a bundle file: the bundle's
/// key is trusted, its signature holds, every file has its signed digest,
/// and the bundle is the one the index lists (same version, publisher,
/// files and bundle digest).
pub fn fetch(
    source: &Source,
    name: &str,
    req: &semver::VersionReq,
    checks: &Checks<'_>,
) -> Result<Fetched> {
    let signed = source.signed_index(name)?;
    let index = match &signed {
        Some(s) => {
            let doc = &s.signed;
            let key = doc.publisher.public_key()?;
            if !(checks.is_trusted)(&key) {
                return Err(Error::UnknownIndexKey {
                    name: name.to_string(),
                    registry: source.describe(),
                    unit: doc.publisher.unit.clone(),
                    fingerprint: key.fingerprint(),
                    key: key.to_hex(),
                });
            }
            s.check_fresh((checks.seen)(&doc.registry).as_ref(), checks.now)?;
            doc.clone()
        }
        None => source.index(name)?,
    };
    let entry = index.resolve(req)?.clone();
    let id = format!("{name}@{}", entry.version);
    let bytes = source.bundle(name, &entry.version)?;
    let what = match source {
        Source::File(p) => p.display().to_string(),
        _ => format!("{} in {}", id, source.describe()),
    };
    let bundle = Bundle::read(&bytes, &what)?;
    let head = bundle.verify(checks.is_trusted)?;
    let r = bundle.release();
    let inconsistent = |message: String| Error::Inconsistent {
        model: id.clone(),
        message,
    };
    if r.name != name || r.version != entry.version {
        return Err(inconsistent(format!(
            "the registry lists it, but its bundle holds {}",
            r.id()
        )));
    }
    if r.publisher.key != index.publisher.key {
        return Err(inconsistent(format!(
            "the registry says it was published by {}, but the bundle is signed by {}",
            index.publisher.describe(),
            r.publisher.describe()
        )));
    }
    for file in &bundle::MODEL_FILES {
        if entry.files.get(*file) != r.files.get(*file) {
            return Err(Error::DigestMismatch {
                model: id.clone(),
                file,
                expected_by: format!("the index of {}", source.describe()),
                expected: entry
                    .files
                    .get(*file)
                    .map(|d| d.sha256.clone())
                    .unwrap_or_else(|| "nothing".into()),
                actual: r
                    .files
                    .get(*file)
                    .map(|d| d.sha256.clone())
                    .unwrap_or_default(),
            });
        }
    }
    if bundle.sha256() != entry.bundle_sha256 {
        return Err(Error::DigestMismatch {
            model: id,
            file: "the bundle file",
            expected_by: format!("the index of {}", source.describe()),
            expected: entry.bundle_sha256.clone(),
            actual: bundle.sha256().to_string(),
        });
    }
    Ok(Fetched {
        entry,
        bundle,
        head,
        index: signed,
    })
}
