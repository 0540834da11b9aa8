//! A registry's index of one model, signed by its publisher: every
//! published version with its digests, every yank and un-yank with its
//! reason, a version number that only grows and an expiry time.
//!
//! The index is JSON, one file per model (`index/<name>.json`, see
//! [`crate::dir`]): a document ([`Index`]) and the publisher's Ed25519
//! signature of its canonical JSON ([`SignedIndex`]). What a unit installs
//! is still decided by the bundle's own signature; the signed index decides
//! which versions are on offer. That takes TUF's two protections for
//! registries, without its roles and delegations:
//!
//! - **rollback**: an importer remembers the highest index version it has
//!   seen per registry and model ([`IndexState`]) and refuses an older one
//!   ([`SignedIndex::check_fresh`]), so an old copy of the index cannot
//!   bring back a version the publisher has since withdrawn;
//! - **freeze**: every index expires ([`DEFAULT_VALID_DAYS`] after it was
//!   signed unless the publisher says otherwise), so an index kept from
//!   someone cannot hide new yanks forever.
//!
//! A yank or an un-yank is an edit of the signed document, so only the
//! publisher can make one, and deleting it from the file breaks the
//! signature rather than making a withdrawn version installable again.
//!
//! Each index names the registry it belongs to (the id in the registry's
//! `registry.json`), inside what is signed: an index copied into another
//! folder is still compared with what was seen from its own registry.

use crate::bundle::{check_name, Bundle, FileDigest, Publisher};
use crate::error::{Error, Result};
use crate::keys::UnitKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// `format` of the index documents this version signs: RFC 8785 canonical
/// JSON.
pub const INDEX_FORMAT: &str = "jiandu-index-v3";
/// `format` of the signed index documents of earlier versions, still read:
/// compact JSON in the struct's field order. Signing one again writes it
/// as [`INDEX_FORMAT`].
pub const INDEX_FORMAT_V2: &str = "jiandu-index-v2";
/// `format` of the unsigned indexes of earlier releases, refused by name.
pub const UNSIGNED_INDEX_FORMAT: &str = "jiandu-index-v1";
/// Largest index file accepted.
pub const MAX_INDEX: u64 = 16 << 20;
/// How long an index stays valid after it is signed, unless the publisher
/// says otherwise.
pub const DEFAULT_VALID_DAYS: u32 = 365;
/// The longest validity a publisher may give an index: ten years. An index
/// that never expires would give no protection against a frozen copy.
pub const MAX_VALID_DAYS: u32 = 3650;

/// The index document of one model: what the publisher signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// Always [`INDEX_FORMAT`].
    pub format: String,
    /// Id of the registry the index belongs to (its `registry.json`).
    pub registry: String,
    pub name: String,
    /// Grows by one with each document the publisher signs.
    pub version: u64,
    /// When this version of the document was signed (RFC 3339).
    pub signed_at: String,
    /// After this time (RFC 3339) the document is refused.
    pub expires: String,
    /// The unit whose key signs the document and every bundle it lists.
    pub publisher: Publisher,
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
    /// When the bundle was packed.
    pub released_at: String,
    /// When it was added to this registry.
    pub published_at: String,
    /// Yanks and un-yanks, oldest first; the last one says whether the
    /// version is withdrawn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub yanks: Vec<YankEvent>,
}

/// Whether a [`YankEvent`] withdraws a version or restores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum YankAction {
    Yank,
    Unyank,
}

/// A publisher's withdrawal of a version, or its restoration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YankEvent {
    pub action: YankAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: String,
    /// The index version that first carried it.
    pub index_version: u64,
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
            released_at: r.created_at.clone(),
            published_at: now.to_string(),
            yanks: Vec::new(),
        }
    }

    /// The parsed version.
    pub fn semver(&self) -> semver::Version {
        semver::Version::parse(&self.version).expect("index versions are checked when read")
    }

    /// The yank in force, if the version is withdrawn.
    pub fn yanked(&self) -> Option<&YankEvent> {
        self.yanks.last().filter(|y| y.action == YankAction::Yank)
    }

    /// `1.2.0`, or `1.2.0 (yanked)`.
    pub fn label(&self) -> String {
        if self.yanked().is_some() {
            format!("{} (yanked)", self.version)
        } else {
            self.version.clone()
        }
    }
}

/// What an importer keeps of the last index it accepted from a registry
/// for one model: enough to refuse an older one, or a different one under
/// the same version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexState {
    /// The registry's id, from the signed document.
    pub registry: String,
    pub version: u64,
    pub expires: String,
    /// sha256 of the signed document's canonical JSON.
    pub sha256: String,
}

/// An index document with its publisher's signature, as kept in the
/// registry's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedIndex {
    pub signed: Index,
    /// The publisher's signature of the document's format line and its
    /// canonical JSON, hex.
    pub signature: String,
}

impl Index {
    /// The document of a model not yet published in `registry`: version 0,
    /// to become 1 when first signed.
    pub fn new(registry: &str, name: &str, publisher: &Publisher) -> Index {
        Index {
            format: INDEX_FORMAT.to_string(),
            registry: registry.to_string(),
            name: name.to_string(),
            version: 0,
            signed_at: String::new(),
            expires: String::new(),
            publisher: publisher.clone(),
            versions: Vec::new(),
        }
    }

    /// The canonical bytes that are signed, in the spelling of its format
    /// (RFC 8785, or field order for [`INDEX_FORMAT_V2`]).
    pub fn to_canonical_json(&self) -> Vec<u8> {
        if self.format == INDEX_FORMAT_V2 {
            serde_json::to_vec(self).expect("an index serializes")
        } else {
            crate::canonical::to_vec(self)
        }
    }

    /// `name@version`, for messages.
    fn id(&self, version: &str) -> String {
        format!("{}@{version}", self.name)
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
            .filter(|e| e.yanked().is_none())
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
            .filter(|e| e.yanked().is_none())
            .max_by_key(|e| e.semver())
        {
            return Ok(best);
        }
        let available: Vec<String> = self.available();
        match matching.into_iter().max_by_key(|e| e.semver()) {
            Some(yanked) => {
                let y = yanked.yanked().expect("only yanked versions are left");
                Err(Error::Yanked {
                    model: self.id(&yanked.version),
                    by: self.publisher.unit.clone(),
                    reason: y.reason.clone(),
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

    /// Withdraws (`Yank`) or restores (`Unyank`) `version`, as of the next
    /// signature. Returns `false`, changing nothing, when the version is
    /// already in that state.
    pub fn set_yanked(
        &mut self,
        version: &semver::Version,
        action: YankAction,
        reason: Option<&str>,
        now: &str,
    ) -> Result<bool> {
        let name = self.name.clone();
        let available = self.available();
        let next = self.version.saturating_add(1);
        let entry = self
            .versions
            .iter_mut()
            .find(|e| &e.semver() == version)
            .ok_or_else(|| Error::NoMatch {
                name,
                req: format!("={version}"),
                available,
            })?;
        let yanked = entry.yanked().is_some();
        if yanked == (action == YankAction::Yank) {
            return Ok(false);
        }
        entry.yanks.push(YankEvent {
            action,
            reason: reason.map(str::to_string),
            at: now.to_string(),
            index_version: next,
        });
        Ok(true)
    }

    /// Signs the document as its next version with `key`, which must be
    /// the publisher's, valid for `valid_days` from `now` (RFC 3339).
    pub fn sign(mut self, key: &UnitKey, now: &str, valid_days: u32) -> Result<SignedIndex> {
        let public = key.public();
        if self.publisher.key != public.to_hex() {
            return Err(Error::NotPublisher {
                action: "sign the index of",
                model: self.name.clone(),
                unit: self.publisher.unit.clone(),
                fingerprint: self.publisher.fingerprint.clone(),
                yours: public.fingerprint(),
            });
        }
        if valid_days == 0 || valid_days > MAX_VALID_DAYS {
            return Err(Error::Registry {
                registry: self.registry.clone(),
                message: format!(
                    "an index is valid for 1 to {MAX_VALID_DAYS} days, not {valid_days}"
                ),
            });
        }
        let signed_at = parse_time(now, "the signing time")?;
        self.version = self.version.checked_add(1).ok_or_else(|| Error::Registry {
            registry: self.registry.clone(),
            message: format!("the index of {} has no version left to sign", self.name),
        })?;
        self.signed_at = now.to_string();
        self.format = INDEX_FORMAT.to_string();
        self.expires = (signed_at + chrono::Duration::days(i64::from(valid_days)))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
        let signature = key.sign(&signed_message(&self.format, &self.to_canonical_json()));
        Ok(SignedIndex {
            signed: self,
            signature,
        })
    }
}

/// What an index signature covers is prefixed with its purpose (the
/// document's format and a newline), so it can never pass for the
/// signature of a release, a ledger entry or anything else the unit key
/// signs.
fn signed_message(format: &str, canonical: &[u8]) -> Vec<u8> {
    [format.as_bytes(), b"\n", canonical].concat()
}

fn parse_time(text: &str, what: &str) -> Result<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|e| Error::BadTime(format!("{what} `{text}` is not an RFC 3339 time: {e}")))
}

impl SignedIndex {
    /// Parses an index file, checking that it is the index of `name`,
    /// signed by the publisher it names, with semver versions; `what`
    /// names the file in errors. Whether that publisher is trusted, and
    /// whether the index is current, is for the importer to ask
    /// ([`SignedIndex::check_fresh`]).
    pub fn parse(bytes: &[u8], name: &str, what: &str) -> Result<SignedIndex> {
        let bad = |message: String| Error::Registry {
            registry: what.to_string(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("unreadable index: {e}")))?;
        if value.get("format").and_then(|f| f.as_str()) == Some(UNSIGNED_INDEX_FORMAT) {
            return Err(bad(format!(
                "is an unsigned index ({UNSIGNED_INDEX_FORMAT}) written by an earlier release; it is not trusted: the publisher publishes its bundles again into a new registry folder"
            )));
        }
        let index: SignedIndex =
            serde_json::from_value(value).map_err(|e| bad(format!("unreadable index: {e}")))?;
        let doc = &index.signed;
        if doc.format != INDEX_FORMAT && doc.format != INDEX_FORMAT_V2 {
            return Err(bad(format!(
                "format `{}` is neither {INDEX_FORMAT} nor {INDEX_FORMAT_V2}",
                doc.format
            )));
        }
        if doc.name != name {
            return Err(bad(format!("is the index of `{}`, not `{name}`", doc.name)));
        }
        check_name(&doc.name).map_err(bad)?;
        let key = doc.publisher.public_key()?;
        let signed = key
            .verify(
                &signed_message(&doc.format, &doc.to_canonical_json()),
                &index.signature,
            )
            .unwrap_or(false);
        if !signed {
            return Err(Error::BadIndexSignature {
                index: what.to_string(),
                unit: doc.publisher.unit.clone(),
                fingerprint: doc.publisher.fingerprint.clone(),
            });
        }
        for e in &doc.versions {
            semver::Version::parse(&e.version)
                .map_err(|err| bad(format!("version `{}`: {err}", e.version)))?;
        }
        parse_time(&doc.expires, "the expiry")?;
        Ok(index)
    }

    /// Pretty JSON of the file.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("an index serializes");
        v.push(b'\n');
        v
    }

    /// sha256 of the signed document's canonical JSON, hex.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.signed.to_canonical_json()))
    }

    /// What an importer remembers of this index once it accepts it.
    pub fn state(&self) -> IndexState {
        IndexState {
            registry: self.signed.registry.clone(),
            version: self.signed.version,
            expires: self.signed.expires.clone(),
            sha256: self.sha256(),
        }
    }

    /// Refuses an index that expired before `now` (freeze), that is older
    /// than the one `seen` last from its registry (rollback), or that has
    /// the version seen but other content.
    pub fn check_fresh(&self, seen: Option<&IndexState>, now: &str) -> Result<()> {
        let doc = &self.signed;
        let expires = parse_time(&doc.expires, "the expiry")?;
        if expires <= parse_time(now, "the current time")? {
            return Err(Error::IndexExpired {
                name: doc.name.clone(),
                registry: doc.registry.clone(),
                version: doc.version,
                expires: doc.expires.clone(),
                now: now.to_string(),
            });
        }
        let Some(seen) = seen else { return Ok(()) };
        if doc.version < seen.version {
            return Err(Error::IndexRollback {
                name: doc.name.clone(),
                registry: doc.registry.clone(),
                offered: doc.version,
                seen: seen.version,
            });
        }
        if doc.version == seen.version && self.sha256() != seen.sha256 {
            return Err(Error::IndexFork {
                name: doc.name.clone(),
                registry: doc.registry.clone(),
                version: doc.version,
                seen: seen.sha256.clone(),
                offered: self.sha256(),
            });
        }
        Ok(())
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

    const NOW: &str = "2025-03-01T09:00:00+08:00";

    fn publisher(key: &UnitKey) -> Publisher {
        let p = key.public();
        Publisher {
            unit: "A".into(),
            code: "c".into(),
            key: p.to_hex(),
            fingerprint: p.fingerprint(),
        }
    }

    fn entry(version: &str) -> Entry {
        Entry {
            version: version.into(),
            sdk: "^0.1".into(),
            title: "t".into(),
            description: None,
            bundle_sha256: format!("{version}-digest"),
            bundle_size: 1,
            files: BTreeMap::new(),
            released_at: "t".into(),
            published_at: "t".into(),
            yanks: Vec::new(),
        }
    }

    fn index(key: &UnitKey) -> Index {
        let mut i = Index::new("reg-1", "m", &publisher(key));
        for v in ["1.0.0", "1.2.0", "1.10.0", "2.0.0-rc.1", "0.9.0"] {
            i.versions.push(entry(v));
        }
        i
    }

    fn req(s: &str) -> semver::VersionReq {
        parse_spec(&format!("m@{s}")).unwrap().1
    }

    fn reparse(signed: &SignedIndex) -> Result<SignedIndex> {
        SignedIndex::parse(&signed.to_json(), "m", "index/m.json")
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
    fn yanked_versions_are_skipped_named_when_asked_for_and_can_come_back() {
        let key = UnitKey::generate().unwrap();
        let mut i = index(&key);
        let v = semver::Version::parse("1.10.0").unwrap();
        assert!(i
            .set_yanked(&v, YankAction::Yank, Some("wrong ratio"), NOW)
            .unwrap());
        assert!(
            !i.set_yanked(&v, YankAction::Yank, None, NOW).unwrap(),
            "second yank is a no-op"
        );
        assert_eq!(i.resolve(&req("^1.0")).unwrap().version, "1.2.0");
        let err = i.resolve(&req("1.10.0")).unwrap_err().to_string();
        assert!(
            err.contains("m@1.10.0 is yanked by A (wrong ratio)"),
            "{err}"
        );
        assert!(err.contains("1.10.0 (yanked), 1.2.0"), "{err}");
        assert!(i
            .set_yanked(&v, YankAction::Unyank, Some("ratio was right"), NOW)
            .unwrap());
        assert_eq!(i.resolve(&req("^1.0")).unwrap().version, "1.10.0");
        assert_eq!(i.get(&v).unwrap().yanks.len(), 2, "both are on the record");
    }

    #[test]
    fn indexes_are_signed_as_rfc_8785_and_earlier_ones_still_verify() {
        let key = UnitKey::generate().unwrap();
        let signed = index(&key).sign(&key, NOW, 30).unwrap();
        assert_eq!(signed.signed.format, INDEX_FORMAT);
        let bytes = serde_json::to_vec(&signed).unwrap();
        SignedIndex::parse(&bytes, "m", "index").unwrap();
        // An index signed by an earlier version: field order, its own
        // context. It still verifies; signing it again upgrades it.
        let mut old = signed.signed.clone();
        old.format = INDEX_FORMAT_V2.into();
        let legacy = serde_json::to_vec(&old).unwrap();
        let sig = key.sign(&[INDEX_FORMAT_V2.as_bytes(), b"\n", &legacy].concat());
        let old_signed = SignedIndex {
            signed: old.clone(),
            signature: sig.clone(),
        };
        let parsed =
            SignedIndex::parse(&serde_json::to_vec(&old_signed).unwrap(), "m", "index").unwrap();
        assert_eq!(parsed.signed.format, INDEX_FORMAT_V2);
        let resigned = parsed.signed.sign(&key, NOW, 30).unwrap();
        assert_eq!(resigned.signed.format, INDEX_FORMAT);
        // The earlier signature does not pass for the document under the
        // current format.
        let mut claimed = old;
        claimed.format = INDEX_FORMAT.into();
        let forged = SignedIndex {
            signed: claimed,
            signature: sig,
        };
        assert!(SignedIndex::parse(&serde_json::to_vec(&forged).unwrap(), "m", "index").is_err());
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
    fn only_the_publisher_signs_and_versions_grow_with_each_signature() {
        let key = UnitKey::generate().unwrap();
        let other = UnitKey::generate().unwrap();
        let err = index(&key).sign(&other, NOW, 30).unwrap_err().to_string();
        assert!(
            err.contains("only the publisher can sign the index of m"),
            "{err}"
        );
        let first = index(&key).sign(&key, NOW, 30).unwrap();
        assert_eq!(first.signed.version, 1);
        assert_eq!(first.signed.expires, "2025-03-31T09:00:00+08:00");
        let second = first.signed.clone().sign(&key, NOW, 30).unwrap();
        assert_eq!(second.signed.version, 2);
        assert_eq!(reparse(&second).unwrap(), second);
        assert!(index(&key).sign(&key, NOW, 0).is_err());
        assert!(index(&key).sign(&key, NOW, MAX_VALID_DAYS + 1).is_err());
    }

    #[test]
    fn any_edit_of_the_document_breaks_its_signature() {
        let key = UnitKey::generate().unwrap();
        let mut i = index(&key);
        let v = semver::Version::parse("1.10.0").unwrap();
        i.set_yanked(&v, YankAction::Yank, Some("wrong"), NOW)
            .unwrap();
        let signed = i.sign(&key, NOW, 30).unwrap();
        let mut unyanked = signed.clone();
        unyanked.signed.versions[2].yanks.clear();
        let mut later = signed.clone();
        later.signed.expires = "2099-01-01T00:00:00+08:00".into();
        let mut upgraded = signed.clone();
        upgraded.signed.version = 99;
        let mut moved = signed.clone();
        moved.signed.registry = "reg-2".into();
        for (case, edited) in [
            ("yank removed", unyanked),
            ("expiry extended", later),
            ("version raised", upgraded),
            ("registry changed", moved),
        ] {
            let err = reparse(&edited).unwrap_err();
            assert!(
                matches!(err, Error::BadIndexSignature { .. }),
                "{case}: {err}"
            );
        }
        // Signed by someone else in the publisher's name.
        let other = UnitKey::generate().unwrap();
        let mut forged = signed.clone();
        forged.signature = other.sign(&signed_message(
            &signed.signed.format,
            &signed.signed.to_canonical_json(),
        ));
        assert!(matches!(
            reparse(&forged).unwrap_err(),
            Error::BadIndexSignature { .. }
        ));
        reparse(&signed).unwrap();
    }

    #[test]
    fn an_expired_an_older_or_a_forked_index_is_refused() {
        let key = UnitKey::generate().unwrap();
        let v1 = index(&key).sign(&key, NOW, 30).unwrap();
        let v2 = v1.signed.clone().sign(&key, NOW, 30).unwrap();
        v2.check_fresh(None, NOW).unwrap();
        v2.check_fresh(Some(&v1.state()), NOW).unwrap();
        v2.check_fresh(Some(&v2.state()), NOW).unwrap();

        let err = v1
            .check_fresh(Some(&v2.state()), NOW)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("index version 1") && err.contains("version 2 was seen"),
            "{err}"
        );
        let err = v2
            .check_fresh(None, "2025-03-31T09:00:00+08:00")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expired at 2025-03-31T09:00:00+08:00"),
            "{err}"
        );

        let mut other = v1.signed.clone();
        other.versions.pop();
        let fork = other.sign(&key, NOW, 30).unwrap();
        assert_eq!(fork.signed.version, 2);
        let err = fork
            .check_fresh(Some(&v2.state()), NOW)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("other content than the version 2 seen"),
            "{err}"
        );
    }

    #[test]
    fn an_unsigned_index_of_an_earlier_release_is_refused_by_name() {
        let err = SignedIndex::parse(
            br#"{"format":"jiandu-index-v1","name":"m","versions":[]}"#,
            "m",
            "index/m.json",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unsigned index"), "{err}");
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
