//! A registry's index of one model: every published version with its
//! digests, publisher and yank, and choosing a version by semver.
//!
//! The index is JSON, one file per model (`index/<name>.json`, see
//! [`crate::dir`]). It is not signed as a whole: what a unit installs is
//! decided by the bundle's own signature, and the index only says where to
//! look. A yank, though, carries the publisher's signature, so anyone can
//! check that the publisher (and nobody else) withdrew a version.

use crate::bundle::{check_name, Bundle, FileDigest, Publisher};
use crate::error::{Error, Result};
use crate::keys::UnitKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `format` of an index file.
pub const INDEX_FORMAT: &str = "jiandu-index-v1";
/// Largest index file accepted.
pub const MAX_INDEX: u64 = 16 << 20;
/// `format` of a yank statement.
pub const YANK_FORMAT: &str = "jiandu-yank-v1";
const YANK_CONTEXT: &[u8] = b"jiandu-yank-v1\n";

/// The index of one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub format: String,
    pub name: String,
    /// Oldest first.
    pub versions: Vec<Entry>,
}

/// One published version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub version: String,
    /// Contract version requirement.
    pub sdk: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// sha256 of the bundle file.
    pub bundle_sha256: String,
    pub bundle_size: u64,
    /// `model.toml` and `model.wasm`, as in the release statement.
    pub files: BTreeMap<String, FileDigest>,
    pub publisher: Publisher,
    /// When the bundle was packed.
    pub released_at: String,
    /// When it was added to this registry.
    pub published_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yanked: Option<Yank>,
}

/// A publisher's signed withdrawal of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Yank {
    pub statement: YankStatement,
    /// The publisher's signature of the statement's canonical JSON, hex.
    pub signature: String,
}

/// What a yank signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YankStatement {
    pub format: String,
    pub name: String,
    pub version: String,
    pub bundle_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub yanked_at: String,
}

impl YankStatement {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut m = YANK_CONTEXT.to_vec();
        m.extend(serde_json::to_vec(self).expect("a yank statement serializes"));
        m
    }
}

impl Entry {
    /// The entry of a verified bundle.
    pub fn of_bundle(
        bundle: &Bundle,
        title: &str,
        description: Option<&str>,
        size: u64,
        now: &str,
    ) -> Entry {
        let r = bundle.release();
        Entry {
            version: r.version.clone(),
            sdk: r.sdk.clone(),
            title: title.to_string(),
            description: description.map(str::to_string),
            bundle_sha256: bundle.sha256().to_string(),
            bundle_size: size,
            files: r.files.clone(),
            publisher: r.publisher.clone(),
            released_at: r.created_at.clone(),
            published_at: now.to_string(),
            yanked: None,
        }
    }

    /// The parsed version.
    pub fn semver(&self) -> semver::Version {
        semver::Version::parse(&self.version).expect("index versions are checked when read")
    }

    /// `1.2.0`, or `1.2.0 (yanked)`.
    pub fn label(&self) -> String {
        if self.yanked.is_some() {
            format!("{} (yanked)", self.version)
        } else {
            self.version.clone()
        }
    }

    /// Whether the yank, if any, is signed by the publisher of the version.
    pub fn yank_is_signed(&self, name: &str) -> bool {
        let Some(y) = &self.yanked else {
            return true;
        };
        let s = &y.statement;
        if s.format != YANK_FORMAT
            || s.name != name
            || s.version != self.version
            || s.bundle_sha256 != self.bundle_sha256
        {
            return false;
        }
        self.publisher
            .public_key()
            .and_then(|k| Ok(k.verify(&s.signed_bytes(), &y.signature)?))
            .unwrap_or(false)
    }
}

impl Index {
    /// An index with no versions yet.
    pub fn new(name: &str) -> Index {
        Index {
            format: INDEX_FORMAT.to_string(),
            name: name.to_string(),
            versions: Vec::new(),
        }
    }

    /// Parses index JSON, checking that it is the index of `name` and that
    /// every version is semver; `what` names the file in errors.
    pub fn parse(bytes: &[u8], name: &str, what: &str) -> Result<Index> {
        let bad = |message: String| Error::Registry {
            registry: what.to_string(),
            message,
        };
        let index: Index =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("unreadable index: {e}")))?;
        if index.format != INDEX_FORMAT {
            return Err(bad(format!(
                "format `{}` is not {INDEX_FORMAT}",
                index.format
            )));
        }
        if index.name != name {
            return Err(bad(format!(
                "is the index of `{}`, not `{name}`",
                index.name
            )));
        }
        check_name(&index.name).map_err(bad)?;
        for e in &index.versions {
            semver::Version::parse(&e.version)
                .map_err(|err| bad(format!("version `{}`: {err}", e.version)))?;
        }
        Ok(index)
    }

    /// Pretty JSON of the index.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("an index serializes");
        v.push(b'\n');
        v
    }

    /// The entry of exactly `version`.
    pub fn get(&self, version: &semver::Version) -> Option<&Entry> {
        self.versions.iter().find(|e| &e.semver() == version)
    }

    /// Versions, newest first, with `(yanked)` marks.
    pub fn available(&self) -> Vec<String> {
        let mut v: Vec<&Entry> = self.versions.iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.semver()));
        v.into_iter().map(Entry::label).collect()
    }

    /// The newest version that is not yanked.
    pub fn latest(&self) -> Option<&Entry> {
        self.versions
            .iter()
            .filter(|e| e.yanked.is_none())
            .max_by_key(|e| e.semver())
    }

    /// The highest version matching `req` that is not yanked. When every
    /// match is yanked, the error names the highest of them; when nothing
    /// matches, it lists what exists.
    pub fn resolve(&self, req: &semver::VersionReq) -> Result<&Entry> {
        let matching: Vec<&Entry> = self
            .versions
            .iter()
            .filter(|e| req.matches(&e.semver()))
            .collect();
        if let Some(best) = matching
            .iter()
            .filter(|e| e.yanked.is_none())
            .max_by_key(|e| e.semver())
        {
            return Ok(best);
        }
        let available: Vec<String> = self.available();
        match matching.into_iter().max_by_key(|e| e.semver()) {
            Some(yanked) => {
                let y = yanked
                    .yanked
                    .as_ref()
                    .expect("only yanked versions are left");
                Err(Error::Yanked {
                    model: format!("{}@{}", self.name, yanked.version),
                    by: yanked.publisher.unit.clone(),
                    reason: y.statement.reason.clone(),
                    available,
                })
            }
            None => Err(Error::NoMatch {
                name: self.name.clone(),
                req: req.to_string(),
                available,
            }),
        }
    }

    /// Marks `version` yanked, signed by `key`, which must be the key that
    /// published it. Yanking a yanked version changes nothing and returns
    /// `false`.
    pub fn yank(
        &mut self,
        version: &semver::Version,
        key: &UnitKey,
        reason: Option<&str>,
        now: &str,
    ) -> Result<bool> {
        let name = self.name.clone();
        let available = self.available();
        let entry = self
            .versions
            .iter_mut()
            .find(|e| &e.semver() == version)
            .ok_or_else(|| Error::NoMatch {
                name: name.clone(),
                req: format!("={version}"),
                available,
            })?;
        let public = key.public();
        if entry.publisher.key != public.to_hex() {
            return Err(Error::NotPublisher {
                action: "yank",
                model: format!("{name}@{version}"),
                unit: entry.publisher.unit.clone(),
                fingerprint: entry.publisher.fingerprint.clone(),
                yours: public.fingerprint(),
            });
        }
        if entry.yanked.is_some() {
            return Ok(false);
        }
        let statement = YankStatement {
            format: YANK_FORMAT.to_string(),
            name,
            version: entry.version.clone(),
            bundle_sha256: entry.bundle_sha256.clone(),
            reason: reason.map(str::to_string),
            yanked_at: now.to_string(),
        };
        let signature = key.sign(&statement.signed_bytes());
        entry.yanked = Some(Yank {
            statement,
            signature,
        });
        Ok(true)
    }
}

/// Parses `name`, `name@1.2.3` (exactly that version) or `name@<semver
/// requirement>` (`name@^1.2`, `name@>=1, <2`).
pub fn parse_spec(spec: &str) -> Result<(String, semver::VersionReq), String> {
    let (name, req) = match spec.split_once('@') {
        Some((n, r)) => (n.trim(), Some(r.trim())),
        None => (spec.trim(), None),
    };
    check_name(name)?;
    let req = match req {
        None | Some("") | Some("*") => semver::VersionReq::STAR,
        Some(r) => match semver::Version::parse(r) {
            // A bare version means that version, as with `cargo install`.
            Ok(v) => {
                semver::VersionReq::parse(&format!("={v}")).expect("=version is a requirement")
            }
            Err(_) => semver::VersionReq::parse(r)
                .map_err(|e| format!("`{r}` is not a version or version requirement: {e}"))?,
        },
    };
    Ok((name.to_string(), req))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: &str, key: &UnitKey) -> Entry {
        let p = key.public();
        Entry {
            version: version.into(),
            sdk: "^0.1".into(),
            title: "t".into(),
            description: None,
            bundle_sha256: format!("{version}-digest"),
            bundle_size: 1,
            files: BTreeMap::new(),
            publisher: Publisher {
                unit: "A".into(),
                code: "c".into(),
                key: p.to_hex(),
                fingerprint: p.fingerprint(),
            },
            released_at: "t".into(),
            published_at: "t".into(),
            yanked: None,
        }
    }

    fn index(key: &UnitKey) -> Index {
        let mut i = Index::new("m");
        for v in ["1.0.0", "1.2.0", "1.10.0", "2.0.0-rc.1", "0.9.0"] {
            i.versions.push(entry(v, key));
        }
        i
    }

    fn req(s: &str) -> semver::VersionReq {
        parse_spec(&format!("m@{s}")).unwrap().1
    }

    #[test]
    fn highest_matching_version_wins_by_semver_not_text() {
        let key = UnitKey::generate().unwrap();
        let i = index(&key);
        assert_eq!(
            i.resolve(&semver::VersionReq::STAR).unwrap().version,
            "1.10.0"
        );
        assert_eq!(i.resolve(&req("^1.0")).unwrap().version, "1.10.0");
        assert_eq!(i.resolve(&req("1.2.0")).unwrap().version, "1.2.0");
        assert_eq!(i.resolve(&req("<1.0")).unwrap().version, "0.9.0");
    }

    #[test]
    fn yanked_versions_are_skipped_and_named_when_asked_for() {
        let key = UnitKey::generate().unwrap();
        let mut i = index(&key);
        let v = semver::Version::parse("1.10.0").unwrap();
        assert!(i.yank(&v, &key, Some("wrong ratio"), "now").unwrap());
        assert!(
            !i.yank(&v, &key, None, "later").unwrap(),
            "second yank is a no-op"
        );
        assert!(i.get(&v).unwrap().yank_is_signed("m"));
        assert_eq!(i.resolve(&req("^1.0")).unwrap().version, "1.2.0");
        let err = i.resolve(&req("1.10.0")).unwrap_err().to_string();
        assert!(
            err.contains("m@1.10.0 is yanked by A (wrong ratio)"),
            "{err}"
        );
        assert!(err.contains("1.10.0 (yanked), 1.2.0"), "{err}");
    }

    #[test]
    fn no_match_lists_what_exists() {
        let key = UnitKey::generate().unwrap();
        let err = index(&key).resolve(&req("^3")).unwrap_err().to_string();
        assert!(err.contains("no version of m matches `^3`"), "{err}");
        assert!(
            err.contains("2.0.0-rc.1, 1.10.0, 1.2.0, 1.0.0, 0.9.0"),
            "{err}"
        );
    }

    #[test]
    fn only_the_publisher_can_yank_and_a_forged_yank_does_not_verify() {
        let key = UnitKey::generate().unwrap();
        let other = UnitKey::generate().unwrap();
        let mut i = index(&key);
        let v = semver::Version::parse("1.0.0").unwrap();
        let err = i.yank(&v, &other, None, "now").unwrap_err().to_string();
        assert!(err.contains("only the publisher can yank m@1.0.0"), "{err}");
        assert!(err.contains(&other.public().fingerprint()), "{err}");
        // A yank written by someone else into the index file.
        let mut forged = index(&other);
        forged.versions[0].publisher = i.versions[0].publisher.clone();
        forged.versions[0].bundle_sha256 = i.versions[0].bundle_sha256.clone();
        let mut by_other = index(&other);
        by_other.yank(&v, &other, None, "now").unwrap();
        forged.versions[0].yanked = by_other.versions[0].yanked.clone();
        assert!(!forged.versions[0].yank_is_signed("m"));
    }

    #[test]
    fn specs_parse_with_bare_versions_meaning_exactly() {
        assert_eq!(parse_spec("m").unwrap().1, semver::VersionReq::STAR);
        assert_eq!(parse_spec("m@1.2.3").unwrap().1.to_string(), "=1.2.3");
        assert_eq!(parse_spec("m@^1.2").unwrap().1.to_string(), "^1.2");
        assert!(parse_spec("../m").is_err());
        assert!(parse_spec("m@banana").is_err());
    }
}
