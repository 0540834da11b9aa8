//! Model bundles: one file a unit hands to another, holding a model and the
//! publisher's signature over what it is.
//!
//! A bundle is a plain (uncompressed) tar archive with exactly four regular
//! files, five for a scripted model:
//!
//! | entry | what |
//! |---|---|
//! | `model.toml` | the model's manifest, as the author wrote it |
//! | `model.wasm` | the model component (the plan interpreter for a scripted model) |
//! | `model.plan` | a scripted model's rule plan, the file its `model.toml` names as `plan` (absent for other models) |
//! | `release.json` | the [`Release`] statement: name, version, sdk requirement, sha256 and size of each model file, publisher and key, time |
//! | `release.sig` | the publisher's Ed25519 signature of `release.json`, hex |
//!
//! Reading a bundle never extracts anything to disk: the archive is read
//! fully in memory, and anything but those four names as regular files is
//! refused — links, directories, devices, `..` or absolute paths, a name
//! twice, an entry over its size limit ([`MAX_WASM`], [`MAX_TOML`]), a plan
//! the manifest does not name or a manifest naming a plan the bundle lacks.
//!
//! A bundle is canonical: its bytes are exactly what [`pack`] writes for
//! its four files (fixed header fields, zero padding, two end blocks and
//! nothing after, the signature as 128 lowercase hex characters and a
//! newline), and [`Bundle::read`] refuses any other archive of the same
//! files. Since Ed25519 signing is deterministic and signatures are
//! verified strictly, a bundle's sha256 names exactly one release.
//!
//! Verifying ([`Bundle::verify`]) checks, in this order, that the signature
//! is the named key's over the exact bytes of `release.json`, that the key
//! is trusted, that each file has the digest and size the statement
//! gives, and that `model.toml` names the same model, version and sdk
//! requirement as the statement.

use crate::error::{Error, Result};
use crate::keys::{PublicKey, UnitKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;

/// The manifest entry.
pub const MODEL_TOML: &str = "model.toml";
/// The component entry.
pub const MODEL_WASM: &str = "model.wasm";
/// A scripted model's plan entry.
pub const MODEL_PLAN: &str = "model.plan";
/// The release statement entry.
pub const RELEASE_JSON: &str = "release.json";
/// The signature entry.
pub const RELEASE_SIG: &str = "release.sig";
/// Every entry a bundle may hold, in the order they are written.
pub const ENTRY_NAMES: [&str; 5] = [
    MODEL_TOML,
    MODEL_WASM,
    MODEL_PLAN,
    RELEASE_JSON,
    RELEASE_SIG,
];
/// The model's files, which the release statement lists with their digests.
pub const MODEL_FILES: [&str; 3] = [MODEL_TOML, MODEL_WASM, MODEL_PLAN];

/// Largest `model.wasm` accepted.
pub const MAX_WASM: u64 = 64 << 20;
/// Largest `model.toml` accepted.
pub const MAX_TOML: u64 = 1 << 20;
/// Largest `release.json` accepted.
pub const MAX_RELEASE: u64 = 64 << 10;
/// Largest `release.sig` accepted.
pub const MAX_SIG: u64 = 1 << 10;
/// Largest bundle file accepted: the entries plus room for tar headers.
pub const MAX_BUNDLE: u64 = MAX_WASM + MAX_TOML + MAX_RELEASE + MAX_SIG + (64 << 10);

/// File extension of bundles.
pub const EXTENSION: &str = "jiandu";

/// `format` of the release statements this version writes: RFC 8785
/// canonical JSON.
pub const RELEASE_FORMAT: &str = "jiandu-release-v2";

/// `format` of the release statements of earlier versions, still read:
/// compact JSON in the struct's field order.
pub const RELEASE_FORMAT_V1: &str = "jiandu-release-v1";

/// What a signature covers is prefixed with its purpose (the statement's
/// format and a newline), so a release signature can never pass for a
/// signature of anything else the unit key signs (ledger entries, yanks).
fn signing_context(format: &str) -> Vec<u8> {
    format!("{format}\n").into_bytes()
}

/// sha256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks a model name: lowercase letters, digits, `-` and `_`, starting
/// with a letter or digit, at most 64 characters. Names become file names
/// in registries, so nothing else is accepted.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid model name (lowercase letters, digits, - and _, at most 64)"
        ))
    }
}

/// Digest and size of one file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDigest {
    pub sha256: String,
    pub size: u64,
}

impl FileDigest {
    pub fn of(bytes: &[u8]) -> FileDigest {
        FileDigest {
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
        }
    }
}

/// The unit that signed a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publisher {
    /// The unit's name, as the unit gave it.
    pub unit: String,
    /// The unit's organisation code.
    pub code: String,
    /// Ed25519 public key, hex.
    pub key: String,
    /// Fingerprint of `key` (see [`PublicKey::fingerprint`]).
    pub fingerprint: String,
}

impl Publisher {
    /// The publisher's key, checked against the fingerprint it comes with.
    pub fn public_key(&self) -> Result<PublicKey> {
        let key = PublicKey::parse(&self.key)?;
        if key.fingerprint() != self.fingerprint {
            return Err(Error::BadRelease(format!(
                "publisher fingerprint {} is not the fingerprint of key {} ({})",
                self.fingerprint,
                self.key,
                key.fingerprint()
            )));
        }
        Ok(key)
    }

    /// `unit (code), key fingerprint`.
    pub fn describe(&self) -> String {
        format!("{} ({}), key {}", self.unit, self.code, self.fingerprint)
    }
}

/// The release statement: what the publisher signs.
///
/// It is written as RFC 8785 canonical JSON ([`crate::canonical`]; the
/// statements of format [`RELEASE_FORMAT_V1`] were compact JSON in field
/// order), and the signature covers its exact bytes: each format has one
/// spelling, so a bundle's bytes are a function of what was signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// Always [`RELEASE_FORMAT`].
    pub format: String,
    pub name: String,
    pub version: String,
    /// Contract version requirement of the model, e.g. `^0.1`.
    pub sdk: String,
    /// `model.toml` and `model.wasm`.
    pub files: BTreeMap<String, FileDigest>,
    pub publisher: Publisher,
    /// When the bundle was packed (RFC 3339).
    pub created_at: String,
}

impl Release {
    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The canonical bytes that are signed, in the spelling of its format.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        if self.format == RELEASE_FORMAT_V1 {
            serde_json::to_vec(self).expect("a release statement serializes")
        } else {
            crate::canonical::to_vec(self)
        }
    }
}

/// The few fields of `model.toml` a bundle must agree with. The host parses
/// the whole manifest; a bundle only needs to know what it is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ManifestHead {
    pub name: String,
    pub version: String,
    pub sdk: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    /// A scripted model's plan file.
    #[serde(default)]
    pub plan: Option<String>,
}

impl ManifestHead {
    /// Parses `model.toml` bytes; `model` names the bundle in errors.
    pub fn parse(model: &str, bytes: &[u8]) -> Result<ManifestHead> {
        let bad = |message: String| Error::Inconsistent {
            model: model.to_string(),
            message,
        };
        let text = std::str::from_utf8(bytes).map_err(|_| bad("model.toml is not UTF-8".into()))?;
        let head: ManifestHead = toml::from_str(text)
            .map_err(|e| bad(format!("model.toml: {}", e.to_string().trim_end())))?;
        check_name(&head.name).map_err(|e| bad(format!("model.toml: name: {e}")))?;
        semver::Version::parse(&head.version)
            .map_err(|e| bad(format!("model.toml: version `{}`: {e}", head.version)))?;
        semver::VersionReq::parse(&head.sdk)
            .map_err(|e| bad(format!("model.toml: sdk `{}`: {e}", head.sdk)))?;
        Ok(head)
    }
}

/// Who signs a bundle: the unit's key and how the unit is named.
pub struct Signer<'a> {
    pub key: &'a UnitKey,
    pub unit: &'a str,
    pub code: &'a str,
}

/// Packs `model.toml` and `model.wasm` (and a scripted model's plan, which
/// its `model.toml` must name) into a signed bundle. `created_at` is the
/// time written into the release statement.
pub fn pack(
    model_toml: &[u8],
    model_wasm: &[u8],
    model_plan: Option<&[u8]>,
    signer: &Signer<'_>,
    created_at: &str,
) -> Result<Vec<u8>> {
    let head = ManifestHead::parse("the model to pack", model_toml)?;
    if head.plan.is_some() != model_plan.is_some() {
        return Err(Error::Inconsistent {
            model: format!("{}@{}", head.name, head.version),
            message: match &head.plan {
                Some(p) => format!("model.toml names the plan `{p}`, which is not being packed"),
                None => "a plan is being packed, but model.toml names none".into(),
            },
        });
    }
    for (what, bytes, limit) in [
        (MODEL_TOML, model_toml, MAX_TOML),
        (MODEL_WASM, model_wasm, MAX_WASM),
        (MODEL_PLAN, model_plan.unwrap_or_default(), MAX_TOML),
    ] {
        if bytes.len() as u64 > limit {
            return Err(Error::TooLarge {
                what: what.to_string(),
                size: bytes.len() as u64,
                limit,
            });
        }
    }
    let public = signer.key.public();
    let release = Release {
        format: RELEASE_FORMAT.to_string(),
        name: head.name,
        version: head.version,
        sdk: head.sdk,
        files: [
            Some((MODEL_TOML.to_string(), FileDigest::of(model_toml))),
            Some((MODEL_WASM.to_string(), FileDigest::of(model_wasm))),
            model_plan.map(|p| (MODEL_PLAN.to_string(), FileDigest::of(p))),
        ]
        .into_iter()
        .flatten()
        .collect(),
        publisher: Publisher {
            unit: signer.unit.to_string(),
            code: signer.code.to_string(),
            key: public.to_hex(),
            fingerprint: public.fingerprint(),
        },
        created_at: created_at.to_string(),
    };
    let release_json = release.to_canonical_json();
    let signature = format!(
        "{}\n",
        signer
            .key
            .sign(&signed_bytes(&release.format, &release_json))
    );
    write_tar(&bundle_entries(
        model_toml,
        model_wasm,
        model_plan,
        &release_json,
        signature.as_bytes(),
    ))
}

/// A bundle's entries in the order they are written.
fn bundle_entries<'a>(
    model_toml: &'a [u8],
    model_wasm: &'a [u8],
    model_plan: Option<&'a [u8]>,
    release_json: &'a [u8],
    signature: &'a [u8],
) -> Vec<(&'static str, &'a [u8])> {
    [
        Some((MODEL_TOML, model_toml)),
        Some((MODEL_WASM, model_wasm)),
        model_plan.map(|p| (MODEL_PLAN, p)),
        Some((RELEASE_JSON, release_json)),
        Some((RELEASE_SIG, signature)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn signed_bytes(format: &str, release_json: &[u8]) -> Vec<u8> {
    let mut message = signing_context(format);
    message.extend_from_slice(release_json);
    message
}

/// The archive's entries by name: regular files only, each one of the
/// four known names at most once, within its size limit; anything else
/// (links, paths out of the folder, other names) refused.
fn entries(bytes: &[u8], what: &str) -> Result<BTreeMap<&'static str, Vec<u8>>> {
    let not_bundle = |message: String| Error::NotABundle {
        what: what.to_string(),
        message,
    };
    let mut files: BTreeMap<&'static str, Vec<u8>> = BTreeMap::new();
    let mut archive = tar::Archive::new(bytes);
    let entries = archive
        .entries()
        .map_err(|e| not_bundle(format!("unreadable tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| not_bundle(format!("unreadable tar entry: {e}")))?;
        let name = entry_name(&entry)?;
        if files.contains_key(name) {
            return Err(Error::DuplicateEntry {
                entry: name.to_string(),
            });
        }
        let limit = match name {
            MODEL_WASM => MAX_WASM,
            MODEL_TOML | MODEL_PLAN => MAX_TOML,
            RELEASE_JSON => MAX_RELEASE,
            _ => MAX_SIG,
        };
        let size = entry
            .header()
            .size()
            .map_err(|e| not_bundle(format!("entry `{name}`: {e}")))?;
        if size > limit {
            return Err(Error::TooLarge {
                what: format!("bundle entry `{name}`"),
                size,
                limit,
            });
        }
        let mut data = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(limit + 1)
            .read_to_end(&mut data)
            .map_err(|e| not_bundle(format!("entry `{name}`: {e}")))?;
        if data.len() as u64 != size {
            return Err(not_bundle(format!(
                "entry `{name}` is cut short ({} of {size} bytes)",
                data.len()
            )));
        }
        files.insert(name, data);
    }
    Ok(files)
}

/// The known name of a tar entry that is a regular file inside the
/// bundle; anything else is refused.
fn entry_name<R: Read>(entry: &tar::Entry<'_, R>) -> Result<&'static str> {
    let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    if is_traversal(&path) {
        return Err(Error::PathTraversal { entry: path });
    }
    let kind = entry.header().entry_type();
    if kind.is_symlink() || kind.is_hard_link() {
        let target = entry
            .link_name_bytes()
            .map(|t| String::from_utf8_lossy(&t).into_owned())
            .unwrap_or_default();
        return Err(Error::Link {
            entry: path,
            target,
        });
    }
    if !(kind.is_file() || kind.is_contiguous()) {
        return Err(Error::NotRegularFile {
            entry: path,
            kind: kind_name(kind),
        });
    }
    match ENTRY_NAMES.iter().find(|n| **n == path) {
        Some(&name) => Ok(name),
        None => Err(Error::UnexpectedEntry {
            entry: path,
            expected: &ENTRY_NAMES,
        }),
    }
}

/// `release.json` parsed, in a known format and in that format's one
/// spelling.
fn release_statement(release_json: &[u8], what: &str) -> Result<Release> {
    let release: Release = serde_json::from_slice(release_json)
        .map_err(|e| Error::BadRelease(format!("{what}: release.json: {e}")))?;
    if release.to_canonical_json() != release_json {
        return Err(Error::BadRelease(format!(
            "{what}: release.json is not in canonical form"
        )));
    }
    if release.format != RELEASE_FORMAT && release.format != RELEASE_FORMAT_V1 {
        return Err(Error::BadRelease(format!(
            "{what}: format `{}` is neither {RELEASE_FORMAT} nor {RELEASE_FORMAT_V1}",
            release.format
        )));
    }
    Ok(release)
}

/// The archive must be byte for byte what the packer writes for these
/// four files: no padding, header field, end block or trailing byte the
/// signature does not pin down. So a bundle's sha256 names one release,
/// and two files for the same release cannot both pass.
fn check_canonical(bytes: &[u8], what: &str, entries: &[(&str, &[u8])]) -> Result<()> {
    let canonical = write_tar(entries)?;
    if canonical == bytes {
        return Ok(());
    }
    let at = canonical
        .iter()
        .zip(bytes)
        .position(|(a, b)| a != b)
        .unwrap_or(canonical.len().min(bytes.len()));
    Err(Error::NotCanonical {
        what: what.to_string(),
        message: format!(
            "byte {at} ({}) is not what `jiandu model pack` writes",
            region_at(entries, at, bytes.len())
        ),
    })
}

/// A tar archive of regular files with fixed metadata, so the same files
/// always give the same bytes.
fn write_tar(entries: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let tar_err = |e: std::io::Error| Error::NotABundle {
        what: "the bundle being written".into(),
        message: e.to_string(),
    };
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_path(name).map_err(tar_err)?;
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        builder.append(&header, *bytes).map_err(tar_err)?;
    }
    builder.into_inner().map_err(tar_err)
}

/// A bundle read into memory, its structure checked, not yet verified.
#[derive(Debug, Clone)]
pub struct Bundle {
    release: Release,
    release_json: Vec<u8>,
    signature: String,
    model_toml: Vec<u8>,
    model_wasm: Vec<u8>,
    model_plan: Option<Vec<u8>>,
    sha256: String,
}

impl Bundle {
    /// Reads a bundle from its bytes; `what` names it in errors (a file
    /// name). Checks the archive's structure and parses the release
    /// statement; it does not verify anything (see [`Bundle::verify`]).
    pub fn read(bytes: &[u8], what: &str) -> Result<Bundle> {
        if bytes.len() as u64 > MAX_BUNDLE {
            return Err(Error::TooLarge {
                what: what.to_string(),
                size: bytes.len() as u64,
                limit: MAX_BUNDLE,
            });
        }
        let mut files = entries(bytes, what)?;
        let mut take = |name: &'static str| {
            files.remove(name).ok_or_else(|| Error::MissingEntry {
                entry: name.to_string(),
            })
        };
        let model_toml = take(MODEL_TOML)?;
        let model_wasm = take(MODEL_WASM)?;
        let release_json = take(RELEASE_JSON)?;
        let signature = take(RELEASE_SIG)?;
        let model_plan = files.remove(MODEL_PLAN);
        let release = release_statement(&release_json, what)?;
        let signature = signature_text(&signature).ok_or_else(|| Error::NotCanonical {
            what: what.to_string(),
            message: "release.sig is not 128 lowercase hex characters and a newline".into(),
        })?;
        check_canonical(
            bytes,
            what,
            &bundle_entries(
                &model_toml,
                &model_wasm,
                model_plan.as_deref(),
                &release_json,
                signature.as_bytes(),
            ),
        )?;
        let signature = signature.trim_end_matches('\n').to_string();
        Ok(Bundle {
            release,
            release_json,
            signature,
            model_toml,
            model_wasm,
            model_plan,
            sha256: sha256_hex(bytes),
        })
    }

    /// Reads a bundle file.
    pub fn read_file(path: &std::path::Path) -> Result<Bundle> {
        let bytes = read_limited(path, MAX_BUNDLE)?;
        Bundle::read(&bytes, &path.display().to_string())
    }

    /// The release statement (not yet verified).
    pub fn release(&self) -> &Release {
        &self.release
    }

    /// sha256 of the whole bundle file, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// `model.toml` bytes.
    pub fn model_toml(&self) -> &[u8] {
        &self.model_toml
    }

    /// `model.wasm` bytes.
    pub fn model_wasm(&self) -> &[u8] {
        &self.model_wasm
    }

    /// A scripted model's plan, as its `model.toml` names it.
    pub fn model_plan(&self) -> Option<&[u8]> {
        self.model_plan.as_deref()
    }

    /// Verifies the bundle for import: the publisher's key must be trusted
    /// (`is_trusted`), then the signature, digests and manifest must hold.
    pub fn verify(&self, is_trusted: &dyn Fn(&PublicKey) -> bool) -> Result<ManifestHead> {
        let key = self.verify_signature()?;
        if !is_trusted(&key) {
            return Err(Error::UnknownKey {
                model: self.release.id(),
                unit: self.release.publisher.unit.clone(),
                fingerprint: key.fingerprint(),
                key: key.to_hex(),
            });
        }
        self.verify_files()
    }

    /// Verifies signature, digests and manifest against the key the
    /// release statement names, without asking whether that key is
    /// trusted. A registry does this before accepting a bundle.
    pub fn verify_signed(&self) -> Result<ManifestHead> {
        self.verify_signature()?;
        self.verify_files()
    }

    /// The signer's key, once the signature of `release.json` holds.
    fn verify_signature(&self) -> Result<PublicKey> {
        let r = &self.release;
        let key = r.publisher.public_key()?;
        let signed = key
            .verify(
                &signed_bytes(&self.release.format, &self.release_json),
                &self.signature,
            )
            .unwrap_or(false);
        if !signed {
            return Err(Error::BadSignature {
                model: r.id(),
                unit: r.publisher.unit.clone(),
                fingerprint: key.fingerprint(),
            });
        }
        Ok(key)
    }

    /// Digests and manifest against the (verified) release statement.
    fn verify_files(&self) -> Result<ManifestHead> {
        let r = &self.release;
        let expected_files = 2 + self.model_plan.is_some() as usize;
        if r.files.len() != expected_files
            || r.files.keys().any(|f| !MODEL_FILES.contains(&f.as_str()))
        {
            return Err(Error::BadRelease(format!(
                "{}: the statement lists {} files, not {MODEL_TOML} and {MODEL_WASM}{}",
                r.id(),
                r.files.len(),
                if self.model_plan.is_some() {
                    " and the plan"
                } else {
                    ""
                }
            )));
        }
        let files = [
            Some((MODEL_TOML, &self.model_toml)),
            Some((MODEL_WASM, &self.model_wasm)),
            self.model_plan.as_ref().map(|p| (MODEL_PLAN, p)),
        ];
        for (name, bytes) in files.into_iter().flatten() {
            let expected = r.files.get(name).ok_or_else(|| {
                Error::BadRelease(format!("{}: the statement has no digest of {name}", r.id()))
            })?;
            let actual = FileDigest::of(bytes);
            if actual.sha256 != expected.sha256 || actual.size != expected.size {
                return Err(Error::DigestMismatch {
                    model: r.id(),
                    file: name,
                    expected_by: "the signed release statement".into(),
                    expected: expected.sha256.clone(),
                    actual: actual.sha256,
                });
            }
        }
        let head = ManifestHead::parse(&r.id(), &self.model_toml)?;
        let differs = |field: &str, toml: &str, release: &str| Error::Inconsistent {
            model: r.id(),
            message: format!(
                "model.toml says {field} `{toml}` but the release statement says `{release}`"
            ),
        };
        if head.name != r.name {
            return Err(differs("name", &head.name, &r.name));
        }
        if head.version != r.version {
            return Err(differs("version", &head.version, &r.version));
        }
        if head.sdk != r.sdk {
            return Err(differs("sdk", &head.sdk, &r.sdk));
        }
        if head.plan.is_some() != self.model_plan.is_some() {
            return Err(Error::Inconsistent {
                model: r.id(),
                message: match &head.plan {
                    Some(p) => {
                        format!("model.toml names the plan `{p}`, which the bundle does not hold")
                    }
                    None => "the bundle holds a plan, but model.toml names none".into(),
                },
            });
        }
        Ok(head)
    }
}

/// The text of `release.sig` when it is in the one form the packer writes
/// (128 lowercase hex characters and a newline), with that newline.
fn signature_text(bytes: &[u8]) -> Option<String> {
    let (hex, newline) = bytes.split_at_checked(128)?;
    let ok = newline == b"\n"
        && hex
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
    ok.then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// Where byte `at` of a bundle of `len` bytes falls in the archive the
/// packer writes for `entries`: a header, an entry's data or padding, the
/// end-of-archive blocks, or past them.
fn region_at(entries: &[(&str, &[u8])], at: usize, len: usize) -> String {
    let mut start = 0;
    for (name, data) in entries {
        let data_start = start + 512;
        let padded_end = data_start + data.len().div_ceil(512) * 512;
        if at < data_start {
            return format!("in the tar header of `{name}`");
        }
        if at < data_start + data.len() {
            return format!("in the data of `{name}`");
        }
        if at < padded_end {
            return format!("in the padding after `{name}`, which must be zeros");
        }
        start = padded_end;
    }
    if at < start + 1024 {
        if at >= len {
            return "the archive ends before its two end-of-archive blocks".into();
        }
        return "in the end-of-archive blocks, which must be zeros".into();
    }
    "after the end of the archive, where nothing may follow".into()
}

/// Whether a tar path leaves the folder it would be extracted into.
fn is_traversal(path: &str) -> bool {
    path.starts_with('/')
        || path.starts_with('\\')
        || path.as_bytes().get(1) == Some(&b':')
        || path.split(['/', '\\']).any(|c| c == "..")
}

fn kind_name(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Directory => "directory".into(),
        tar::EntryType::Char => "character device".into(),
        tar::EntryType::Block => "block device".into(),
        tar::EntryType::Fifo => "fifo".into(),
        tar::EntryType::GNUSparse => "sparse file".into(),
        other => format!("tar entry of type {:?}", other.as_byte() as char),
    }
}

/// Reads a file inside a registry folder: like [`read_limited`], but a
/// symlink is refused, so a registry (a shared folder anyone may write to)
/// cannot point a reader, or the HTTP front, at a file outside it.
pub(crate) fn read_registry_file(path: &std::path::Path, limit: u64) -> Result<Vec<u8>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(crate::error::io_err(
            path,
            "is a symlink; a registry holds regular files only",
        )),
        _ => read_limited(path, limit),
    }
}

/// Reads a regular file of at most `limit` bytes (`jiandu_fsio::read_regular`:
/// a FIFO or a device is refused, not waited on).
pub(crate) fn read_limited(path: &std::path::Path, limit: u64) -> Result<Vec<u8>> {
    use jiandu_fsio::ReadError;
    jiandu_fsio::read_regular(path, limit).map_err(|e| match e {
        ReadError::Io(e) => crate::error::io_err(path, e),
        ReadError::NotRegular => crate::error::io_err(path, "is not a regular file"),
        ReadError::TooLarge(size) => Error::TooLarge {
            what: path.display().to_string(),
            size: size.unwrap_or(limit + 1),
            limit,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_bundle_path_that_is_a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("m-1.0.0.jiandu");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // No writer ever opens it: reading it as a file would block here.
        let err = read_limited(&fifo, MAX_BUNDLE).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = Bundle::read_file(&fifo).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }

    const TOML: &str =
        "name = \"m\"\nversion = \"1.0.0\"\ntitle = \"测试\"\nunit = \"u\"\nsdk = \"^0.1\"\n";

    fn signer_key() -> UnitKey {
        UnitKey::generate().unwrap()
    }

    fn packed(key: &UnitKey) -> Vec<u8> {
        let signer = Signer {
            key,
            unit: "温宿县人民检察院",
            code: "11652922MB1234567X",
        };
        pack(
            TOML.as_bytes(),
            b"\0asm-component",
            None,
            &signer,
            "2024-01-01T00:00:00+08:00",
        )
        .unwrap()
    }

    #[test]
    fn packed_bundle_reads_back_and_verifies() {
        let key = signer_key();
        let bytes = packed(&key);
        assert_eq!(
            bytes,
            packed(&key),
            "same files, key and time give the same bytes"
        );
        let b = Bundle::read(&bytes, "m.jiandu").unwrap();
        let head = b.verify(&|k| *k == key.public()).unwrap();
        assert_eq!(head.name, "m");
        assert_eq!(
            b.release().publisher.fingerprint,
            key.public().fingerprint()
        );
        assert_eq!(b.model_wasm(), b"\0asm-component");
        assert_eq!(b.sha256(), sha256_hex(&bytes));
    }

    #[test]
    fn release_statements_are_rfc_8785_and_earlier_ones_still_read() {
        let key = signer_key();
        let b = Bundle::read(&packed(&key), "m.jiandu").unwrap();
        let release = b.release().clone();
        assert_eq!(release.format, RELEASE_FORMAT);
        let json = String::from_utf8(release.to_canonical_json()).unwrap();
        assert!(json.starts_with(r#"{"created_at":"#), "keys sorted: {json}");
        // A bundle of the earlier format: release.json in field order,
        // signed under its own context.
        let v1 = Release {
            format: RELEASE_FORMAT_V1.into(),
            ..release
        };
        let v1_json = v1.to_canonical_json();
        assert!(v1_json.starts_with(br#"{"format":"jiandu-release-v1","name":"#));
        let sig = format!("{}\n", key.sign(&signed_bytes(RELEASE_FORMAT_V1, &v1_json)));
        let bytes = write_tar(&[
            (MODEL_TOML, TOML.as_bytes()),
            (MODEL_WASM, b"\0asm-component"),
            (RELEASE_JSON, &v1_json),
            (RELEASE_SIG, sig.as_bytes()),
        ])
        .unwrap();
        let old = Bundle::read(&bytes, "old.jiandu").unwrap();
        old.verify(&|k| *k == key.public()).unwrap();
        // Its statement respelt in the current form is not canonical for
        // its format, and a v1 signature does not pass for a v2 statement.
        let respelt = crate::canonical::to_vec(&v1);
        let bytes = write_tar(&[
            (MODEL_TOML, TOML.as_bytes()),
            (MODEL_WASM, b"\0asm-component"),
            (RELEASE_JSON, &respelt),
            (RELEASE_SIG, sig.as_bytes()),
        ])
        .unwrap();
        let err = Bundle::read(&bytes, "respelt.jiandu")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not in canonical form"), "{err}");
    }

    #[test]
    fn untrusted_key_is_named() {
        let key = signer_key();
        let b = Bundle::read(&packed(&key), "m.jiandu").unwrap();
        let err = b.verify(&|_| false).unwrap_err().to_string();
        assert!(err.contains(&key.public().fingerprint()), "{err}");
        assert!(err.contains("not in the trust store"), "{err}");
    }

    #[test]
    fn traversal_paths_are_recognised() {
        for p in [
            "../model.wasm",
            "a/../../b",
            "/etc/passwd",
            "..\\x",
            "C:evil",
        ] {
            assert!(is_traversal(p), "{p}");
        }
        for p in ["model.wasm", "a..b", "release.json"] {
            assert!(!is_traversal(p), "{p}");
        }
    }
}
