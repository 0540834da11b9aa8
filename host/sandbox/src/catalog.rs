//! Models on disk: a folder with `model.toml` and `model.wasm`, one per model
//! under the store's `models/` folder, and building such a folder from a
//! model crate.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

include!("model_profile.rs");

/// The plan interpreter's core module, built from `plan/interpreter` of
/// this repository with the models' profile when this crate was built
/// (`build.rs`): every scripted model runs this one component, and
/// building a plan model needs no compiler.
pub const PLAN_INTERPRETER: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/plan-interpreter.wasm"));

/// Longest parameter value accepted from a user.
pub const MAX_PARAM_BYTES: usize = 4096;

/// The largest `model.toml` read: a manifest is a page of settings.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// The largest plan file read (the plan parser's own limit).
pub const MAX_PLAN_FILE_BYTES: u64 = 1 << 20;

/// Reads a model folder's text file `path` (its `model.toml` or plan) as
/// a model from anywhere may have made it: a regular file inside the
/// folder `dir` (a link is followed only to a file inside it), of at most
/// `limit` bytes, refused before it is read whole. A FIFO, a device
/// (`/dev/zero`) or a link to `/etc/passwd` is refused by name.
pub fn read_model_text(dir: &Path, path: &Path, limit: u64) -> Result<String> {
    let fail = |m: String| Error::file(path, m);
    let link = std::fs::symlink_metadata(path).map_err(|e| Error::file(path, e))?;
    if link.file_type().is_symlink() {
        let target = std::fs::canonicalize(path).map_err(|e| Error::file(path, e))?;
        let inside = std::fs::canonicalize(dir)
            .map(|d| target.starts_with(d))
            .unwrap_or(false);
        if !inside {
            return Err(fail(format!(
                "is a link to {}, outside the model's folder; a model's files are its own",
                target.display()
            )));
        }
    }
    use jiandu_fsio::ReadError;
    let bytes = jiandu_fsio::read_regular(path, limit).map_err(|e| {
        match e {
        ReadError::Io(e) => Error::file(path, e),
        ReadError::NotRegular => fail(
            "is not a regular file (a folder, FIFO or device); a model's files are plain text files"
                .into(),
        ),
        ReadError::TooLarge(n) => fail(format!(
            "is {} bytes long; at most {limit} bytes are read",
            n.map_or_else(|| "more than that".into(), |n| n.to_string())
        )),
    }
    })?;
    String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "is not UTF-8 text (byte {} is not valid UTF-8)",
            e.utf8_error().valid_up_to() + 1
        ))
    })
}

/// [`read_model_text`] of `model.toml` in `dir`.
fn read_manifest_text(dir: &Path) -> Result<(PathBuf, String)> {
    let path = dir.join("model.toml");
    let text = read_model_text(dir, &path, MAX_MANIFEST_BYTES)?;
    Ok((path, text))
}

pub use jiandu_store::names::check_name;

/// A parameter's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    Int,
    Decimal,
    Float,
    Date,
    String,
    Bool,
}

/// A declared parameter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDecl {
    #[serde(rename = "type")]
    pub ty: ParamType,
    #[serde(default)]
    pub default: Option<toml::Value>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A declared dataset and the fields the model reads from it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetDecl {
    /// Fields read; all fields when absent.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}

/// Resource requests; capped by host policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsDecl {
    pub memory_mib: Option<u64>,
    pub fuel: Option<u64>,
    pub wall_seconds: Option<u64>,
}

/// Triggers for `jiandu serve`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggersDecl {
    /// Run every this many seconds.
    pub interval_seconds: Option<u64>,
    /// Run when one of these datasets gets a new version.
    #[serde(default)]
    pub on_new_data: Vec<String>,
}

/// `[partition]`: the model may run as several instances at once, each
/// over one range of `key`, its leads merged. Declared datasets whose first
/// primary-key field holds the key (named `key`, or as `fields` says) are
/// cut into the same ranges; the others are read whole by every instance.
/// The model's leads for a key must come from the records of that key
/// only (no global ranking, no totals across keys).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionDecl {
    pub key: String,
    /// Datasets whose first key field holds `key` under another name.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

impl PartitionDecl {
    /// The name of the key field in `dataset`.
    pub fn field_in<'a>(&'a self, dataset: &str) -> &'a str {
        self.fields
            .get(dataset)
            .map_or(self.key.as_str(), String::as_str)
    }
}

/// `model.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub title: String,
    #[serde(default)]
    pub title_en: Option<String>,
    pub unit: String,
    /// Contract version requirement, e.g. `^0.1`.
    pub sdk: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub legal_basis: Vec<String>,
    #[serde(default)]
    pub datasets: BTreeMap<String, DatasetDecl>,
    #[serde(default)]
    pub params: BTreeMap<String, ParamDecl>,
    #[serde(default)]
    pub limits: LimitsDecl,
    #[serde(default)]
    pub triggers: TriggersDecl,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<PartitionDecl>,
    /// A scripted model: the rule plan file beside `model.toml` that the
    /// plan interpreter runs (`model.wasm` is then the interpreter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
}

impl Manifest {
    /// Parses and checks `model.toml` text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest> {
        let m: Manifest =
            toml::from_str(text).map_err(|e| Error::file(path, e.to_string().trim_end()))?;
        let bad = |msg: String| Error::file(path, msg);
        check_name(&m.name).map_err(|e| bad(format!("name: {e}")))?;
        semver::Version::parse(&m.version)
            .map_err(|e| bad(format!("version `{}`: {e}", m.version)))?;
        let req =
            semver::VersionReq::parse(&m.sdk).map_err(|e| bad(format!("sdk `{}`: {e}", m.sdk)))?;
        if !crate::contract::admits(&req) {
            return Err(bad(format!(
                "requires sdk {} but this host loads contract {}",
                m.sdk,
                crate::contract::supported_text()
            )));
        }
        let limits = [
            ("memory_mib", m.limits.memory_mib),
            ("fuel", m.limits.fuel),
            ("wall_seconds", m.limits.wall_seconds),
        ];
        if let Some((key, _)) = limits.iter().find(|(_, v)| *v == Some(0)) {
            return Err(bad(format!(
                "[limits] {key} = 0: every run would fail at once; give a budget above 0, or leave it out for the policy's default"
            )));
        }
        for (name, p) in &m.params {
            if let Some(d) = &p.default {
                check_param(name, p.ty, &toml_text(d))
                    .map_err(|e| bad(format!("default of {e}")))?;
            }
        }
        // Dataset names become paths and keys of the store, like model names.
        for name in m.datasets.keys() {
            check_name(name).map_err(|e| bad(format!("[datasets]: {e}")))?;
        }
        for name in &m.triggers.on_new_data {
            check_name(name).map_err(|e| bad(format!("triggers.on_new_data: {e}")))?;
        }
        if let Some(plan) = &m.plan {
            if !is_plan_file_name(plan) {
                return Err(bad(format!(
                    "plan = `{plan}`: name a file beside model.toml ending in `.toml`, such as `rule.plan.toml`"
                )));
            }
        }
        if let Some(p) = &m.partition {
            for ds in p.fields.keys() {
                if !m.datasets.contains_key(ds) {
                    return Err(bad(format!(
                        "[partition] fields names `{ds}`, which [datasets] does not declare"
                    )));
                }
            }
        }
        m.check_text().map_err(bad)?;
        Ok(m)
    }

    /// Refuses control characters (and bidirectional overrides) in every
    /// string of the manifest, naming the key: its text is shown to
    /// operators (`model show`, `registry search`) and must not act on
    /// their terminal. Descriptions may run over several lines.
    fn check_text(&self) -> std::result::Result<(), String> {
        // (key, text, whether newlines and tabs may stay)
        let mut texts: Vec<(String, &str, bool)> = vec![
            ("title".into(), &self.title, false),
            ("unit".into(), &self.unit, false),
        ];
        texts.extend(
            self.title_en
                .iter()
                .map(|t| ("title_en".into(), t.as_str(), false)),
        );
        texts.extend(
            self.description
                .iter()
                .map(|t| ("description".into(), t.as_str(), true)),
        );
        for (i, b) in self.legal_basis.iter().enumerate() {
            texts.push((format!("legal_basis[{i}]"), b, false));
        }
        for (name, d) in &self.datasets {
            for (i, f) in d.fields.iter().flatten().enumerate() {
                texts.push((format!("datasets.{name}.fields[{i}]"), f, false));
            }
        }
        for (name, p) in &self.params {
            // The name first: the keys below are named after it.
            texts.push((
                format!("params: the name `{}`", name.escape_debug()),
                name,
                false,
            ));
            if let Some(u) = &p.unit {
                texts.push((format!("params.{name}.unit"), u, false));
            }
            if let Some(d) = &p.description {
                texts.push((format!("params.{name}.description"), d, true));
            }
            if let Some(toml::Value::String(d)) = &p.default {
                texts.push((format!("params.{name}.default"), d, false));
            }
        }
        for (key, text, lines) in texts {
            let refused =
                |c: char| crate::text::is_unsafe(c) && !(lines && matches!(c, '\n' | '\t'));
            if let Some(c) = text.chars().find(|&c| refused(c)) {
                return Err(format!(
                    "{key}: contains the control character U+{:04X}; model.toml text is \
                     shown to people and may hold no control characters",
                    c as u32
                ));
            }
        }
        Ok(())
    }

    /// Reads `model.toml`.
    pub fn load(path: &Path) -> Result<Manifest> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let text = read_model_text(dir, path, MAX_MANIFEST_BYTES)?;
        Manifest::parse(path, &text)
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The parameters of a run: defaults overridden by `given`, each
    /// checked against its declared type.
    pub fn resolve_params(
        &self,
        given: &[(String, String)],
    ) -> std::result::Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        for (name, p) in &self.params {
            if let Some(d) = &p.default {
                out.insert(name.clone(), toml_text(d));
            }
        }
        for (i, (name, value)) in given.iter().enumerate() {
            if given[..i].iter().any(|(n, _)| n == name) {
                return Err(format!(
                    "parameter `{name}` is given twice; give each parameter once"
                ));
            }
            let Some(decl) = self.params.get(name) else {
                let known: Vec<&str> = self.params.keys().map(String::as_str).collect();
                return Err(format!(
                    "unknown parameter `{name}`; {} declares: {}",
                    self.name,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            };
            if value.len() > MAX_PARAM_BYTES {
                return Err(format!(
                    "parameter `{name}` is {} bytes long (at most {MAX_PARAM_BYTES})",
                    value.len()
                ));
            }
            check_param(name, decl.ty, value)?;
            out.insert(name.clone(), value.trim().to_string());
        }
        for name in self.params.keys() {
            if !out.contains_key(name) {
                return Err(format!(
                    "parameter `{name}` has no default; give it with --param {name}=…"
                ));
            }
        }
        Ok(out)
    }
}

fn toml_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn check_param(name: &str, ty: ParamType, value: &str) -> std::result::Result<(), String> {
    let v = value.trim();
    let ok = match ty {
        ParamType::Int => v.parse::<i64>().is_ok(),
        // Written out (`0.015`, `-3`): no exponent, no more decimals than a
        // decimal holds, as every model (and the plan interpreter) reads it.
        ParamType::Decimal => {
            v.bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-'))
                && rust_decimal::Decimal::from_str_exact(v).is_ok()
        }
        ParamType::Float => v.parse::<f64>().is_ok_and(f64::is_finite),
        // `YYYY-MM-DD`, a four-digit year.
        ParamType::Date => {
            v.len() == 10
                && v.as_bytes()[..4].iter().all(u8::is_ascii_digit)
                && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()
        }
        ParamType::Bool => v.parse::<bool>().is_ok(),
        ParamType::String => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "parameter `{name}` = `{}`: not a valid {ty:?}",
            crate::text::shorten(v, 40)
        )
        .to_lowercase())
    }
}

/// An installed model: its folder's two files, and where it came from when
/// it was imported from another unit.
#[derive(Debug, Clone)]
pub struct Installed {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// A scripted model's plan file (`manifest.plan`), as text.
    pub plan: Option<String>,
    /// Its hash: SHA-256 of the RFC 8785 canonical JSON of the parsed plan
    /// (`jiandu_plan::Plan::hash`), what the ledger names it by.
    pub plan_sha256: Option<String>,
    pub wasm: Vec<u8>,
    /// sha256 of `model.wasm`, hex.
    pub wasm_sha256: String,
    /// `provenance.json`: who published it; `None` for a model built here.
    pub provenance: Option<Provenance>,
}

impl Installed {
    /// What the model runs: its wasm's digest, and for a scripted model
    /// also its plan's (`<wasm sha256>-<plan sha256>`); two installs that
    /// run the same have the same.
    pub fn code_digest(&self) -> String {
        match &self.plan_sha256 {
            Some(plan) => format!("{}-{plan}", self.wasm_sha256),
            None => self.wasm_sha256.clone(),
        }
    }
}

/// File beside `model.toml` recording where an imported model came from.
pub const PROVENANCE_FILE: &str = "provenance.json";

/// Where an imported model came from: the publisher whose signature was
/// verified on import and the bundle it was installed from. It holds the
/// digests of the two model files, so a model changed after import no
/// longer passes for the publisher's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The publishing unit, as named in its signed release statement.
    pub publisher_unit: String,
    pub publisher_code: String,
    /// The publisher's Ed25519 public key, hex.
    pub key: String,
    pub fingerprint: String,
    /// sha256 of the bundle file the model was installed from.
    pub bundle_sha256: String,
    pub wasm_sha256: String,
    pub toml_sha256: String,
    /// sha256 of a scripted model's plan file, as imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_sha256: Option<String>,
    /// The registry folder, URL or bundle file it was imported from.
    pub source: String,
    /// When the publisher packed it.
    pub released_at: String,
    pub imported_at: String,
}

impl Provenance {
    /// What the ledger records as the publisher of a run's model.
    pub fn publisher(&self) -> String {
        format!(
            "{} ({}), key {}, bundle sha256 {}",
            self.publisher_unit, self.publisher_code, self.fingerprint, self.bundle_sha256
        )
    }
}

/// sha256 hex of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads the installed model `name`.
pub fn load(models_dir: &Path, name: &str) -> Result<Installed> {
    check_name(name).map_err(|e| Error::model(name, e))?;
    let dir = models_dir.join(name);
    if !dir.is_dir() {
        let known = list_names(models_dir).unwrap_or_default();
        return Err(Error::model(
            name,
            format!(
                "not installed in {}; installed: {}",
                models_dir.display(),
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    load_dir(&dir)
}

/// Reads a model folder.
pub fn load_dir(dir: &Path) -> Result<Installed> {
    let (toml_path, toml_text) = read_manifest_text(dir)?;
    let manifest = Manifest::parse(&toml_path, &toml_text)?;
    let wasm_path = dir.join("model.wasm");
    let wasm = std::fs::read(&wasm_path).map_err(|e| Error::file(&wasm_path, e))?;
    let wasm_sha256 = sha256_hex(&wasm);
    let (plan, plan_sha256) = match &manifest.plan {
        Some(file) => {
            let path = dir.join(file);
            let text = read_model_text(dir, &path, MAX_PLAN_FILE_BYTES)?;
            let hash =
                plan_hash(&path.display().to_string(), &text).map_err(|e| Error::file(&path, e))?;
            (Some(text), Some(hash))
        }
        None => (None, None),
    };
    let provenance = load_provenance(
        dir,
        &wasm_sha256,
        &sha256_hex(toml_text.as_bytes()),
        plan.as_deref().map(|p| sha256_hex(p.as_bytes())),
    )?;
    Ok(Installed {
        dir: dir.to_path_buf(),
        wasm_sha256,
        manifest,
        plan,
        plan_sha256,
        wasm,
        provenance,
    })
}

/// Reads `provenance.json`, refusing one that does not describe the files
/// beside it.
fn load_provenance(
    dir: &Path,
    wasm_sha256: &str,
    toml_sha256: &str,
    plan_sha256: Option<String>,
) -> Result<Option<Provenance>> {
    let path = dir.join(PROVENANCE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::file(&path, e)),
    };
    let p: Provenance = serde_json::from_slice(&bytes)
        .map_err(|e| Error::file(&path, format!("unreadable: {e}")))?;
    let none = "none".to_string();
    let plan_actual = plan_sha256.unwrap_or_else(|| none.clone());
    for (file, recorded, actual) in [
        ("model.wasm", &p.wasm_sha256, wasm_sha256),
        ("model.toml", &p.toml_sha256, toml_sha256),
        (
            "the plan",
            p.plan_sha256.as_ref().unwrap_or(&none),
            plan_actual.as_str(),
        ),
    ] {
        if recorded != actual {
            return Err(Error::file(
                &path,
                format!(
                    "{file} changed after it was imported from {} (sha256 {actual}, imported {recorded}); import it again",
                    p.publisher_unit
                ),
            ));
        }
    }
    Ok(Some(p))
}

/// Names of installed models.
pub fn list_names(models_dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let entries = match std::fs::read_dir(models_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(Error::file(models_dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::file(models_dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().join("model.toml").is_file() && check_name(&name).is_ok() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Writes a model folder: files are written beside their final names and
/// renamed into place, so a watcher never sees half a file. A model built
/// here has no provenance: an earlier import's `provenance.json` is removed.
pub fn install(
    models_dir: &Path,
    manifest_text: &str,
    manifest: &Manifest,
    component: &[u8],
) -> Result<PathBuf> {
    write_model(models_dir, manifest_text, manifest, component, None, None)
}

/// [`install`] for a scripted model: `component` is the plan interpreter
/// and `plan` the text of the plan file `manifest.plan` names.
pub fn install_plan(
    models_dir: &Path,
    manifest_text: &str,
    manifest: &Manifest,
    component: &[u8],
    plan: &str,
) -> Result<PathBuf> {
    write_model(
        models_dir,
        manifest_text,
        manifest,
        component,
        None,
        Some(plan),
    )
}

/// [`install`] for a model imported from another unit, with where it came
/// from (and a scripted model's plan).
pub fn install_imported(
    models_dir: &Path,
    manifest_text: &str,
    manifest: &Manifest,
    component: &[u8],
    plan: Option<&str>,
    provenance: &Provenance,
) -> Result<PathBuf> {
    write_model(
        models_dir,
        manifest_text,
        manifest,
        component,
        Some(provenance),
        plan,
    )
}

fn write_model(
    models_dir: &Path,
    manifest_text: &str,
    manifest: &Manifest,
    component: &[u8],
    provenance: Option<&Provenance>,
    plan: Option<&str>,
) -> Result<PathBuf> {
    let dir = models_dir.join(&manifest.name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::file(&dir, e))?;
    let provenance_json = provenance.map(|p| {
        let mut v = serde_json::to_vec_pretty(p).expect("provenance serializes");
        v.push(b'\n');
        v
    });
    let mut files = vec![
        ("model.wasm", component),
        ("model.toml", manifest_text.as_bytes()),
    ];
    if let Some(json) = &provenance_json {
        files.push((PROVENANCE_FILE, json));
    }
    if let (Some(file), Some(text)) = (&manifest.plan, plan) {
        files.push((file.as_str(), text.as_bytes()));
    }
    for (name, bytes) in files {
        let path = dir.join(name);
        crate::fsio::write_atomic(&path, bytes).map_err(|e| Error::file(&path, e))?;
    }
    if provenance.is_none() {
        let path = dir.join(PROVENANCE_FILE);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::file(&path, e)),
        }
    }
    let kept_plan = match (&manifest.plan, plan) {
        (Some(file), Some(text)) => {
            let hash = plan_hash(file, text).map_err(|e| Error::model(&manifest.id(), e))?;
            Some((file.as_str(), text, hash))
        }
        _ => None,
    };
    keep_version(
        models_dir,
        (&manifest.name, &manifest.version),
        manifest_text,
        component,
        provenance_json.as_deref(),
        kept_plan,
    )?;
    Ok(dir)
}

/// Where every installed version is kept by its wasm digest, so that a
/// recorded run can be replayed after its model was replaced
/// (`jiandu audit replay`). A dot folder: not a model name, so listing and
/// `serve` pass it by.
pub fn versions_dir(models_dir: &Path) -> PathBuf {
    models_dir.join(".versions")
}

/// Where a version is kept: `.versions/<name>@<version>-<wasm sha256>/`,
/// or for a scripted model (whose wasm is the interpreter every plan
/// shares) `.versions/<name>@<version>-<wasm sha256>-<plan sha256>/`. The
/// name and version are part of it: two models may share their code (two
/// plan models with one plan, a version bumped without a change of rule),
/// and each run is replayed with its own model.toml.
pub fn kept_dir(
    models_dir: &Path,
    (name, version): (&str, &str),
    wasm_sha256: &str,
    plan_sha256: Option<&str>,
) -> PathBuf {
    versions_dir(models_dir).join(match plan_sha256 {
        Some(plan) => format!("{name}@{version}-{wasm_sha256}-{plan}"),
        None => format!("{name}@{version}-{wasm_sha256}"),
    })
}

/// Keeps `component` and its manifest (and provenance, and a scripted
/// model's plan file) under [`kept_dir`], once: a folder put together
/// aside and renamed into place.
fn keep_version(
    models_dir: &Path,
    id: (&str, &str),
    manifest_text: &str,
    component: &[u8],
    provenance_json: Option<&[u8]>,
    plan: Option<(&str, &str, String)>,
) -> Result<()> {
    let versions = versions_dir(models_dir);
    let dir = kept_dir(
        models_dir,
        id,
        &sha256_hex(component),
        plan.as_ref().map(|(_, _, h)| h.as_str()),
    );
    if dir.join("model.wasm").is_file() {
        return Ok(());
    }
    let name = dir.file_name().expect("a kept folder").to_string_lossy();
    let tmp = versions.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::file(&tmp, e))?;
    let mut files = vec![
        ("model.wasm", component),
        ("model.toml", manifest_text.as_bytes()),
    ];
    if let Some(json) = provenance_json {
        files.push((PROVENANCE_FILE, json));
    }
    if let Some((file, text, _)) = &plan {
        files.push((file, text.as_bytes()));
    }
    for (name, bytes) in files {
        let path = tmp.join(name);
        crate::fsio::write_atomic(&path, bytes).map_err(|e| Error::file(&path, e))?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(|e| Error::file(&dir, e))?;
    crate::fsio::sync_dir(&versions).map_err(|e| Error::file(&versions, e))
}

/// Turns a core wasm module built with `jiandu-sdk` into a component.
pub fn componentize(core: &[u8]) -> std::result::Result<Vec<u8>, String> {
    wit_component::ComponentEncoder::default()
        .module(core)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| format!("{e:#}"))
}

/// Progress messages from a build.
pub trait BuildObserver {
    fn step(&mut self, message: &str);

    /// One line of the compiler's own output (diagnostics, progress), in
    /// the order cargo wrote them. By default it goes to this process's
    /// standard error.
    fn compiler(&mut self, line: &str) {
        eprintln!("{line}");
    }
}

impl<F: FnMut(&str)> BuildObserver for F {
    fn step(&mut self, message: &str) {
        self(message)
    }
}

/// Whether rustup lists the wasm target as installed; `None` without
/// rustup.
fn wasm_target_installed() -> Option<bool> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == WASM_TARGET),
    )
}

/// Makes sure the wasm target is installed, installing it through rustup.
/// Builds started at once (several `model build`s, parallel tests) install
/// it one at a time: rustup's own install is not safe to run twice at once.
pub fn ensure_wasm_target(observer: &mut dyn BuildObserver) -> Result<()> {
    match wasm_target_installed() {
        Some(true) => return Ok(()),
        Some(false) => {}
        // No rustup: let cargo try; it reports a missing target itself.
        None => return Ok(()),
    }
    let lock_path = std::env::temp_dir().join("jiandu-rustup-target.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::file(&lock_path, e))?;
    lock.lock().map_err(|e| Error::file(&lock_path, e))?;
    // Another build may have installed it while this one waited.
    if wasm_target_installed() == Some(true) {
        return Ok(());
    }
    observer.step(&format!(
        "installing the {WASM_TARGET} target through rustup (once)"
    ));
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .map_err(|e| Error::Other(format!("cannot run rustup: {e}")))?;
    if !status.success() {
        return Err(Error::Other(format!(
            "`rustup target add {WASM_TARGET}` failed; install the target and retry"
        )));
    }
    Ok(())
}

/// A plan's hash as the ledger names it (`jiandu_plan::Plan::hash`), or
/// why `text` (the plan file `file`) is not a plan.
pub fn plan_hash(file: &str, text: &str) -> std::result::Result<String, String> {
    jiandu_plan::Plan::parse(file, text)
        .map(|p| p.hash())
        .map_err(|e| format!("not a plan: {e}"))
}

/// The `model.toml` of the folder `dir`: its text and what it says.
pub fn read_manifest(dir: &Path) -> Result<(String, Manifest)> {
    let (path, text) = read_manifest_text(dir)?;
    let manifest = Manifest::parse(&path, &text)?;
    Ok((text, manifest))
}

/// Builds the model crate at `crate_dir` and installs it into `models_dir`.
/// Returns the installed model.
pub fn build(
    crate_dir: &Path,
    models_dir: &Path,
    observer: &mut dyn BuildObserver,
) -> Result<Installed> {
    let (manifest_text, manifest) = read_manifest(crate_dir)?;
    ensure_wasm_target(observer)?;
    let cargo_toml = crate_dir.join("Cargo.toml");
    if !cargo_toml.is_file() {
        return Err(Error::file(
            crate_dir,
            "has no Cargo.toml; `model build` takes a model crate folder",
        ));
    }
    let core = compile(&cargo_toml, &manifest.id(), observer)?;
    observer.step("turning the module into a component");
    let component = componentize(&core)
        .map_err(|e| Error::model(&manifest.id(), format!("not a Jiandu model: {e}")))?;
    let dir = install(models_dir, &manifest_text, &manifest, &component)?;
    load_dir(&dir)
}

/// Builds the crate of `cargo_toml` for the wasm target with the models'
/// profile and returns the core module; `id` names it in errors.
fn compile(cargo_toml: &Path, id: &str, observer: &mut dyn BuildObserver) -> Result<Vec<u8>> {
    let target_dir = models_target_dir(cargo_toml)?;
    observer.step(&format!("building {id} for {WASM_TARGET}"));
    let mut command = model_cargo();
    command
        .args([
            "build",
            "--release",
            "--lib",
            "--message-format=json-render-diagnostics",
            "--target",
            WASM_TARGET,
        ])
        .arg("--manifest-path")
        .arg(cargo_toml)
        .arg("--target-dir")
        .arg(&target_dir);
    let output = run_forwarding(command, observer)?;
    if !output.status.success() {
        return Err(Error::model(
            id,
            "cargo build failed (its messages are above)",
        ));
    }
    let wasm_path = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .rfind(|f| f.extension().is_some_and(|e| e == "wasm"))
        .ok_or_else(|| {
            Error::model(
                id,
                "the build produced no .wasm; set crate-type = [\"cdylib\", \"rlib\"] in [lib]",
            )
        })?;
    std::fs::read(&wasm_path).map_err(|e| Error::file(&wasm_path, e))
}

/// Whether `name` can be a plan file beside `model.toml`.
fn is_plan_file_name(name: &str) -> bool {
    name.ends_with(".toml")
        && name != "model.toml"
        && name != "Cargo.toml"
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Builds a scripted model: the plan interpreter this host carries
/// ([`PLAN_INTERPRETER`]) as its component, beside the plan file its
/// `model.toml` names, installed into `models_dir`. No compiler runs. The
/// plan is checked by the caller, which knows the store's schemas.
pub fn build_plan(
    model_dir: &Path,
    models_dir: &Path,
    observer: &mut dyn BuildObserver,
) -> Result<Installed> {
    let (manifest_text, manifest) = read_manifest(model_dir)?;
    let Some(file) = &manifest.plan else {
        return Err(Error::file(
            model_dir.join("model.toml"),
            "names no `plan`; a scripted model's model.toml says `plan = \"rule.plan.toml\"`",
        ));
    };
    let plan_path = model_dir.join(file);
    let plan = read_model_text(model_dir, &plan_path, MAX_PLAN_FILE_BYTES)?;
    observer.step("turning the plan interpreter into a component");
    let component = componentize(PLAN_INTERPRETER)
        .map_err(|e| Error::model(&manifest.id(), format!("the plan interpreter: {e}")))?;
    let dir = install_plan(models_dir, &manifest_text, &manifest, &component, &plan)?;
    load_dir(&dir)
}

/// Runs `command`, its standard output kept and each line of its standard
/// error handed to `observer` as it comes (so that a build run by a server
/// reaches the client that asked for it, not the server's log).
fn run_forwarding(
    mut command: Command,
    observer: &mut dyn BuildObserver,
) -> Result<std::process::Output> {
    use std::io::{BufRead, Read};
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::Other(format!("cannot run cargo: {e}")))?;
    let mut stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).map(|_| bytes)
    });
    for line in std::io::BufReader::new(stderr).split(b'\n') {
        let line = line.map_err(|e| Error::Other(format!("reading cargo's output: {e}")))?;
        observer.compiler(String::from_utf8_lossy(&line).trim_end_matches('\r'));
    }
    let status = child
        .wait()
        .map_err(|e| Error::Other(format!("waiting for cargo: {e}")))?;
    let stdout = out
        .join()
        .expect("reading stdout does not panic")
        .map_err(|e| Error::Other(format!("reading cargo's output: {e}")))?;
    Ok(std::process::Output {
        status,
        stdout,
        stderr: Vec::new(),
    })
}

/// `<workspace target dir>/jiandu-models`: model builds get their own
/// target folder so that their profile never disturbs the host's build.
fn models_target_dir(cargo_toml: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(cargo_toml)
        .output()
        .map_err(|e| Error::Other(format!("cannot run cargo: {e}")))?;
    if !out.status.success() {
        return Err(Error::file(
            cargo_toml,
            format!(
                "cargo metadata failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::Other(format!("cargo metadata: {e}")))?;
    let target = meta["target_directory"]
        .as_str()
        .ok_or_else(|| Error::Other("cargo metadata gave no target_directory".into()))?;
    Ok(Path::new(target).join("jiandu-models"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_file_that_is_no_plain_file_of_its_folder_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("passwd");
        std::fs::write(&secret, "root:x:0:0").unwrap();
        let refused = |name: &str| {
            read_model_text(d, &d.join(name), 1 << 20)
                .unwrap_err()
                .to_string()
        };

        // A link out of the folder, even to a readable file; to a device.
        std::os::unix::fs::symlink(&secret, d.join("out.toml")).unwrap();
        let err = refused("out.toml");
        assert!(
            err.contains("outside the model's folder") && !err.contains("root:x"),
            "{err}"
        );
        std::os::unix::fs::symlink("/dev/zero", d.join("zero.toml")).unwrap();
        assert!(refused("zero.toml").contains("outside the model's folder"));
        // A FIFO would block the read (and the store's lock) forever.
        let fifo = d.join("fifo.toml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            assert!(refused("fifo.toml").contains("not a regular file"));
        }
        // Larger than the limit: refused by its size, not read (a sparse
        // file of 3 GiB takes no disk).
        let big = std::fs::File::create(d.join("big.toml")).unwrap();
        big.set_len(3 << 30).unwrap();
        assert!(refused("big.toml")
            .contains("is 3221225472 bytes long; at most 1048576 bytes are read"));
        // A link inside the folder is the folder's own file.
        std::fs::write(d.join("rule.toml"), "format = 1").unwrap();
        std::os::unix::fs::symlink("rule.toml", d.join("link.toml")).unwrap();
        assert_eq!(
            read_model_text(d, &d.join("link.toml"), 100).unwrap(),
            "format = 1"
        );
        // Not UTF-8.
        std::fs::write(d.join("gbk.toml"), b"name = \"\xd6\xd0\"").unwrap();
        assert!(refused("gbk.toml").contains("is not UTF-8 text (byte 9"));
    }

    const TOML: &str = r#"
name = "m"
version = "1.0.0"
title = "测试"
unit = "u"
sdk = "^0.1"
[datasets]
a = { fields = ["x"] }
[params]
ratio = { type = "decimal", default = "0.015" }
as_of = { type = "date", default = "2024-12-31" }
year = { type = "int", default = 2024 }
"#;

    #[test]
    fn params_take_defaults_and_overrides_are_type_checked() {
        let m = Manifest::parse(Path::new("model.toml"), TOML).unwrap();
        let p = m
            .resolve_params(&[("ratio".into(), "0.02".into())])
            .unwrap();
        assert_eq!(p["ratio"], "0.02");
        assert_eq!(p["year"], "2024");
        assert_eq!(p["as_of"], "2024-12-31");
        let err = m
            .resolve_params(&[("year".into(), "soon".into())])
            .unwrap_err();
        assert!(err.contains("year"), "{err}");
        let err = m
            .resolve_params(&[("nope".into(), "1".into())])
            .unwrap_err();
        assert!(
            err.contains("unknown parameter `nope`") && err.contains("ratio"),
            "{err}"
        );
        // Refused before a run starts, as every model would read them:
        // an exponent, more decimals than a decimal holds, a year not of
        // four digits; and a parameter given twice.
        for (name, value) in [
            ("ratio", "1e5"),
            ("ratio", "0.0000000000000000000000000000001"),
            ("ratio", "NaN"),
            ("as_of", "-2024-01-01"),
            ("as_of", "24-01-01"),
        ] {
            let err = m
                .resolve_params(&[(name.into(), value.into())])
                .unwrap_err();
            assert!(err.contains("not a valid"), "{value}: {err}");
        }
        let err = m
            .resolve_params(&[("ratio".into(), "1".into()), ("ratio".into(), "2".into())])
            .unwrap_err();
        assert!(err.contains("`ratio` is given twice"), "{err}");
    }

    #[test]
    fn a_zero_budget_in_limits_is_refused() {
        for key in ["memory_mib", "fuel", "wall_seconds"] {
            let text = format!("{TOML}\n[limits]\n{key} = 0\n");
            let err = Manifest::parse(Path::new("model.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("[limits] {key} = 0")), "{err}");
        }
    }

    #[test]
    fn huge_parameter_is_refused() {
        let m = Manifest::parse(Path::new("model.toml"), TOML).unwrap();
        let err = m
            .resolve_params(&[("ratio".into(), "1".repeat(MAX_PARAM_BYTES + 1))])
            .unwrap_err();
        assert!(err.contains("bytes long"), "{err}");
    }

    #[test]
    fn other_contract_version_is_refused() {
        let text = TOML.replace("^0.1", "^2.0");
        let err = Manifest::parse(Path::new("model.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("requires sdk ^2.0"), "{err}");
    }

    #[test]
    fn a_partition_names_its_key_and_only_declared_datasets() {
        let split = format!("{TOML}[partition]\nkey = \"x\"\nfields = {{ a = \"y\" }}\n");
        let m = Manifest::parse(Path::new("model.toml"), &split).unwrap();
        let p = m.partition.as_ref().unwrap();
        assert_eq!((p.field_in("a"), p.field_in("b")), ("y", "x"));
        let stray = split.replace("{ a = ", "{ b = ");
        let err = Manifest::parse(Path::new("model.toml"), &stray)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[partition] fields names `b`, which [datasets] does not declare"),
            "{err}"
        );
    }

    #[test]
    fn provenance_travels_with_the_files_it_describes() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest::parse(Path::new("model.toml"), TOML).unwrap();
        let p = Provenance {
            publisher_unit: "阿克苏地区人民检察院".into(),
            publisher_code: "c".into(),
            key: "00".repeat(32),
            fingerprint: "ab:cd".into(),
            bundle_sha256: "b".repeat(64),
            wasm_sha256: sha256_hex(b"wasm"),
            toml_sha256: sha256_hex(TOML.as_bytes()),
            plan_sha256: None,
            source: "/mnt/usb".into(),
            released_at: "t".into(),
            imported_at: "t".into(),
        };
        let model_dir = install_imported(dir.path(), TOML, &m, b"wasm", None, &p).unwrap();
        let loaded = load_dir(&model_dir).unwrap();
        assert_eq!(loaded.provenance.as_ref(), Some(&p));
        assert!(
            p.publisher().contains("阿克苏地区人民检察院")
                && p.publisher().contains(&p.bundle_sha256)
        );

        std::fs::write(model_dir.join("model.wasm"), b"wasM").unwrap();
        let err = load_dir(&model_dir).unwrap_err().to_string();
        assert!(
            err.contains("model.wasm changed after it was imported"),
            "{err}"
        );

        // A model built here over an imported one is no longer the publisher's.
        install(dir.path(), TOML, &m, b"local").unwrap();
        assert_eq!(load_dir(&model_dir).unwrap().provenance, None);
        assert!(!model_dir.join(PROVENANCE_FILE).exists());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("disability-fund-arrears").is_ok());
        assert!(check_name("../etc").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("Upper").is_err());
    }

    fn refusal(text: &str) -> String {
        Manifest::parse(Path::new("model.toml"), text)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn dataset_names_are_checked_like_model_names() {
        let err = refusal(&TOML.replace("a = { fields", "\"../x\" = { fields"));
        assert!(
            err.contains("[datasets]") && err.contains("`../x`"),
            "{err}"
        );
        let err = refusal(&format!("{TOML}[triggers]\non_new_data = [\"A/b\"]\n"));
        assert!(err.contains("triggers.on_new_data"), "{err}");
    }

    #[test]
    fn control_characters_in_manifest_text_are_refused_naming_the_key() {
        let cases = [
            (TOML.replace("测试", "测\\u001b[2J试"), "title:", "U+001B"),
            (
                TOML.replace(
                    "unit = \"u\"",
                    "unit = \"u\"\nlegal_basis = [\"ok\", \"第\\u0007条\"]",
                ),
                "legal_basis[1]:",
                "U+0007",
            ),
            (
                TOML.replace("unit = \"u\"", "unit = \"u\\r\""),
                "unit:",
                "U+000D",
            ),
            (
                TOML.replace(
                    "default = \"0.015\"",
                    "default = \"0.015\", description = \"r\\u009b\"",
                ),
                "params.ratio.description:",
                "U+009B",
            ),
            (
                TOML.replace("fields = [\"x\"]", "fields = [\"x\\u007f\"]"),
                "datasets.a.fields[0]:",
                "U+007F",
            ),
            (
                TOML.replace("as_of = {", "\"as\\u001bof\" = {"),
                "params: the name `as\\u{1b}of`",
                "U+001B",
            ),
        ];
        for (text, key, char) in cases {
            let err = refusal(&text);
            assert!(err.contains(key) && err.contains(char), "{key}: {err}");
        }
        // A description may run over several lines.
        let text = TOML.replace(
            "unit = \"u\"",
            "unit = \"u\"\ndescription = \"\"\"\none\n\ttwo\n\"\"\"",
        );
        assert!(Manifest::parse(Path::new("model.toml"), &text).is_ok());
    }
}
