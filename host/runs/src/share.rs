//! Sharing models between units: packing an installed model into a signed
//! bundle, and importing one from a registry.
//!
//! Import is a plan and a commit. [`plan_import`] does every check and
//! changes nothing: the registry's signed index is trusted, current and
//! not older than the one this store last accepted from that registry (kept
//! in meta under [`seen_index_key`]), the bundle verifies against the trust
//! store ([`crate::trust`]) with every digest
//! ([`jiandu_registry::source::fetch`]), the name and code the bundle and
//! index give their publisher are those the trust store has for its key
//! (which is what provenance and the ledger record), the model's contract
//! requirement fits this host, it does not replace a
//! model built here or published by another unit, it is not older than the
//! installed version, and the component loads in the sandbox. The caller
//! shows the plan (what the model reads, its parameters) and asks; then
//! [`commit_import`] installs it through [`catalog::install_imported`], the
//! same write-and-rename path a build uses, which a running `jiandu serve`
//! picks up as a reload.

use crate::catalog::{self, Installed, Manifest, Provenance};
use crate::contract;
use crate::runtime::Runtime;
use crate::trust::{self, TrustedKey};
use crate::{Error, Result, Store};
use jiandu_registry::bundle::{self, Signer};
use jiandu_registry::index::IndexState;
use jiandu_registry::source::{self, Checks, Fetched, Source};
use std::path::{Path, PathBuf};

fn reg_err(e: jiandu_registry::Error) -> Error {
    Error::Other(e.to_string())
}

/// A packed bundle.
#[derive(Debug, Clone)]
pub struct Packed {
    pub path: PathBuf,
    pub id: String,
    pub sha256: String,
    pub size: u64,
    pub fingerprint: String,
}

/// Packs the installed model `name` into a bundle signed with this store's
/// unit key, written to `out`. The model must load in the sandbox, and a
/// model imported from another unit is not re-signed.
pub fn pack(store: &Store, runtime: &Runtime, name: &str, out: &Path) -> Result<Packed> {
    let unit = crate::unit::current(store)?.ok_or_else(|| {
        Error::Other(
            "this store has no unit to sign with; create one with `jiandu unit init --name … --code …`"
                .into(),
        )
    })?;
    let key = crate::unit::signing_key(store)?.expect("a store with a unit has its key");
    let installed = catalog::load(&store.models_dir(), name)?;
    let id = installed.manifest.id();
    if let Some(p) = &installed.provenance {
        if p.key != unit.public_key {
            return Err(Error::model(
                &id,
                format!(
                    "was imported from {} (key {}); only its publisher packs it",
                    p.publisher_unit, p.fingerprint
                ),
            ));
        }
    }
    runtime.load(&installed).map_err(|e| {
        Error::model(
            &id,
            format!("does not load, so it is not packed: {}", e.reason),
        )
    })?;
    let toml_path = installed.dir.join("model.toml");
    let toml = std::fs::read(&toml_path).map_err(|e| Error::file(&toml_path, e))?;
    let signer = Signer {
        key: &key,
        unit: &unit.name,
        code: &unit.code,
    };
    let bytes = bundle::pack(
        &toml,
        &installed.wasm,
        installed.plan.as_deref().map(str::as_bytes),
        &signer,
        &crate::time::now_text(),
    )
    .map_err(|e| Error::model(&id, e))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
    }
    crate::fsio::write_atomic(out, &bytes).map_err(|e| Error::file(out, e))?;
    Ok(Packed {
        path: out.to_path_buf(),
        id,
        sha256: bundle::sha256_hex(&bytes),
        size: bytes.len() as u64,
        fingerprint: unit.fingerprint,
    })
}

/// What an import will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The model is not installed yet.
    Install,
    /// A lower version of the same publisher is installed.
    Upgrade { from: String },
    /// This exact bundle is already installed: nothing to do.
    AlreadyInstalled,
}

/// A verified import, ready to show and to commit.
#[derive(Debug, Clone)]
pub struct Plan {
    pub source: String,
    pub fetched: Fetched,
    pub manifest: Manifest,
    pub manifest_text: String,
    /// The trust store's entry for the publisher's key.
    pub trusted: TrustedKey,
    pub action: Action,
}

impl Plan {
    /// `name@version`.
    pub fn id(&self) -> String {
        self.manifest.id()
    }

    /// The provenance the model is installed with.
    pub fn provenance(&self) -> Provenance {
        let r = self.fetched.bundle.release();
        Provenance {
            // Who the publisher is, as this store trusts its key (and the
            // bundle, checked against it, agrees).
            publisher_unit: self.trusted.unit.clone(),
            publisher_code: self.trusted.code.clone(),
            key: r.publisher.key.clone(),
            fingerprint: r.publisher.fingerprint.clone(),
            bundle_sha256: self.fetched.bundle.sha256().to_string(),
            wasm_sha256: bundle::sha256_hex(self.fetched.bundle.model_wasm()),
            toml_sha256: bundle::sha256_hex(self.manifest_text.as_bytes()),
            plan_sha256: self.fetched.bundle.model_plan().map(bundle::sha256_hex),
            source: self.source.clone(),
            released_at: r.created_at.clone(),
            imported_at: crate::time::now_text(),
        }
    }
}

/// Chooses, fetches and checks `name` matching `req` from `source`, without
/// changing anything. See the module docs for the checks.
pub fn plan_import(
    store: &Store,
    runtime: &Runtime,
    source: &Source,
    name: &str,
    req: &semver::VersionReq,
) -> Result<Plan> {
    let (fetched, trusted) = fetch_trusted(store, source, name, req)?;
    let release = fetched.bundle.release();
    let id = release.id();
    check_contract(
        fetched.index.as_ref().map(|i| &i.signed),
        name,
        req,
        &id,
        &release.sdk,
    )?;
    let manifest_text = String::from_utf8(fetched.bundle.model_toml().to_vec())
        .map_err(|_| Error::model(&id, "model.toml is not UTF-8"))?;
    let toml_path = PathBuf::from(format!("{id}/model.toml"));
    let manifest = Manifest::parse(&toml_path, &manifest_text)?;
    let plan_text = match fetched.bundle.model_plan() {
        Some(bytes) => Some(
            String::from_utf8(bytes.to_vec())
                .map_err(|_| Error::model(&id, "its plan is not UTF-8"))?,
        ),
        None => None,
    };
    let plan_sha256 = match (&manifest.plan, &plan_text) {
        (Some(file), Some(text)) => Some(
            catalog::plan_hash(&format!("{id}/{file}"), text).map_err(|e| Error::model(&id, e))?,
        ),
        _ => None,
    };
    let dir = store.models_dir().join(name);
    let action = action_over_installed(&dir, name, &manifest, &manifest_text, &fetched)?;
    if action != Action::AlreadyInstalled {
        let candidate = Installed {
            dir: dir.clone(),
            manifest: manifest.clone(),
            wasm: fetched.bundle.model_wasm().to_vec(),
            wasm_sha256: bundle::sha256_hex(fetched.bundle.model_wasm()),
            plan: plan_text.clone(),
            plan_sha256,
            provenance: None,
        };
        runtime
            .load(&candidate)
            .map_err(|e| Error::model(&id, format!("does not load in this host: {}", e.reason)))?;
    }
    Ok(Plan {
        source: source.describe(),
        fetched,
        manifest,
        manifest_text,
        trusted,
        action,
    })
}

/// Fetches the bundle with every check a registry's files get (signed
/// index, freshness against what this store has seen, a trusted
/// publisher, digests), and checks that the bundle and the index name the
/// publisher as this unit's trust store does.
fn fetch_trusted(
    store: &Store,
    source: &Source,
    name: &str,
    req: &semver::VersionReq,
) -> Result<(Fetched, TrustedKey)> {
    let trusted = trust::list(store)?;
    let now = crate::time::now_text();
    // A store that cannot say what it has seen refuses rather than
    // accepting any index as the first.
    let seen_error = std::cell::RefCell::new(None);
    let checks = Checks {
        is_trusted: &|k| trusted.iter().any(|t| t.key == k.to_hex()),
        seen: &|registry| match seen_index(store, registry, name) {
            Ok(seen) => seen,
            Err(e) => {
                *seen_error.borrow_mut() = Some(e);
                None
            }
        },
        now: &now,
    };
    let fetched = source::fetch(source, name, req, &checks);
    if let Some(e) = seen_error.into_inner() {
        return Err(e);
    }
    let fetched = fetched.map_err(reg_err)?;
    let release = fetched.bundle.release();
    let publisher = &release.publisher;
    let trusted = trusted
        .into_iter()
        .find(|t| t.key == publisher.key)
        .expect("fetch checked the key is trusted");
    trust::check_identity(
        &trusted,
        &publisher.unit,
        &publisher.code,
        &format!("bundle {}", release.id()),
    )?;
    if let Some(index) = &fetched.index {
        let p = &index.signed.publisher;
        trust::check_identity(
            &trusted,
            &p.unit,
            &p.code,
            &format!("the index of {name} in {}", source.describe()),
        )?;
    }
    Ok((fetched, trusted))
}

/// What importing does to the model installed in `dir`, if any: install
/// it, upgrade it, or nothing (the same release); refused if it would
/// replace a model built here or another publisher's, downgrade, or put
/// other files under the same version.
fn action_over_installed(
    dir: &Path,
    name: &str,
    manifest: &Manifest,
    manifest_text: &str,
    fetched: &Fetched,
) -> Result<Action> {
    if !dir.join("model.toml").is_file() && !dir.join("model.wasm").is_file() {
        return Ok(Action::Install);
    }
    let publisher = &fetched.bundle.release().publisher;
    let id = manifest.id();
    let current = catalog::load_dir(dir).map_err(|e| {
        Error::model(
            &id,
            format!("the installed {name} is unreadable ({e}); not replacing it"),
        )
    })?;
    let Some(p) = &current.provenance else {
        return Err(Error::model(
            &id,
            format!(
                "{} is installed here and was built by this unit, not imported; importing would replace it with {}'s (remove {} first to do that)",
                current.manifest.id(),
                publisher.unit,
                dir.display()
            ),
        ));
    };
    if p.key != publisher.key {
        return Err(Error::model(
            &id,
            format!(
                "{} is installed from {} (key {}); this bundle is from {} (key {}); a model is not replaced by another publisher's",
                current.manifest.id(),
                p.publisher_unit,
                p.fingerprint,
                publisher.unit,
                publisher.fingerprint
            ),
        ));
    }
    let version = semver::Version::parse(&manifest.version).expect("the manifest checked it");
    let installed_version = semver::Version::parse(&current.manifest.version)
        .expect("an installed manifest has a checked version");
    match version.cmp(&installed_version) {
        std::cmp::Ordering::Less => Err(Error::model(
            &id,
            format!(
                "refusing to downgrade {name} from {installed_version} (installed) to {version}; a lower version is never installed over a higher one"
            ),
        )),
        std::cmp::Ordering::Equal => {
            let same = current.wasm_sha256 == bundle::sha256_hex(fetched.bundle.model_wasm())
                && p.toml_sha256 == bundle::sha256_hex(manifest_text.as_bytes());
            if !same {
                return Err(Error::model(
                    &id,
                    format!(
                        "{id} is installed with other files (bundle sha256 {}, this one {}); the same version was re-signed with different content: refused",
                        p.bundle_sha256,
                        fetched.bundle.sha256()
                    ),
                ));
            }
            Ok(Action::AlreadyInstalled)
        }
        std::cmp::Ordering::Greater => Ok(Action::Upgrade {
            from: current.manifest.version.clone(),
        }),
    }
}

/// The contract requirement of the chosen version must fit this host; if
/// it does not, the error names both versions and any older version that
/// would fit.
fn check_contract(
    index: Option<&jiandu_registry::index::Index>,
    name: &str,
    req: &semver::VersionReq,
    id: &str,
    sdk: &str,
) -> Result<()> {
    let fits = |sdk: &str| semver::VersionReq::parse(sdk).is_ok_and(|r| contract::admits(&r));
    if fits(sdk) {
        return Ok(());
    }
    let older = index.and_then(|index| {
        index
            .versions
            .iter()
            .filter(|e| e.yanked().is_none() && req.matches(&e.semver()) && fits(&e.sdk))
            .max_by_key(|e| e.semver())
            .map(|e| e.version.clone())
    });
    Err(Error::model(
        id,
        format!(
            "sdk incompatible: it requires sdk {sdk} but this host loads contract {}{}",
            contract::supported_text(),
            match older {
                Some(v) => format!("; {name}@{v} fits this host: import {name}@{v}"),
                None => String::new(),
            }
        ),
    ))
}

/// Where this store keeps the registry index it last accepted for a
/// model: per registry id (signed into the index) and model name.
pub fn seen_index_key(registry: &str, model: &str) -> String {
    format!("registry-index/{registry}/{model}")
}

/// The index of `model` this store last accepted from `registry`.
pub fn seen_index(store: &Store, registry: &str, model: &str) -> Result<Option<IndexState>> {
    store.get_meta(&seen_index_key(registry, model))
}

/// Remembers the index a plan was made from, unless a newer one was
/// accepted meanwhile: from now on an older one is refused.
fn remember_index(store: &Store, plan: &Plan) -> Result<()> {
    let Some(index) = &plan.fetched.index else {
        return Ok(());
    };
    let state = index.state();
    let seen = seen_index(store, &state.registry, &plan.manifest.name)?;
    if seen.is_none_or(|s| s.version < state.version) {
        store.put_meta(
            &seen_index_key(&state.registry, &plan.manifest.name),
            &state,
        )?;
        store.flush()?;
    }
    Ok(())
}

/// Installs a planned import with its provenance, and remembers the
/// registry index it came from. An already installed bundle is left as it
/// is.
pub fn commit_import(store: &Store, plan: &Plan) -> Result<Installed> {
    let dir = store.models_dir().join(&plan.manifest.name);
    remember_index(store, plan)?;
    if plan.action == Action::AlreadyInstalled {
        return catalog::load_dir(&dir);
    }
    check_rule_plan(store, plan)?;
    let replaced = catalog::load(&store.models_dir(), &plan.manifest.name).ok();
    catalog::install_imported(
        &store.models_dir(),
        &plan.manifest_text,
        &plan.manifest,
        plan.fetched.bundle.model_wasm(),
        plan.fetched
            .bundle
            .model_plan()
            .map(|p| std::str::from_utf8(p).expect("checked UTF-8 when planned")),
        &plan.provenance(),
    )?;
    let installed = catalog::load_dir(&dir)?;
    crate::cache::forget_replaced(store, replaced.as_ref(), &installed);
    Ok(installed)
}

/// A scripted model's plan checked against this store's schemas, as
/// `model build` checks one, when the store holds every dataset it reads:
/// what checked in the publisher's store may not here (a field personal
/// here and not there, shown in a title, say). Without the data it is
/// checked when it first runs.
fn check_rule_plan(store: &Store, plan: &Plan) -> Result<()> {
    let (Some(file), Some(text)) = (&plan.manifest.plan, plan.fetched.bundle.model_plan()) else {
        return Ok(());
    };
    for dataset in plan.manifest.datasets.keys() {
        if crate::dataset::head(store, dataset)?.is_none() {
            return Ok(());
        }
    }
    let text = std::str::from_utf8(text).map_err(|e| {
        Error::model(
            &plan.manifest.id(),
            format!("{file} is not UTF-8 text: {e}"),
        )
    })?;
    crate::plans::check(store, &plan.manifest, Path::new(file), text).map(|_| ())
}

/// What a model reads from one dataset, as shown before an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reads {
    pub dataset: String,
    /// Declared fields; `None` means every field.
    pub fields: Option<Vec<String>>,
    /// The fields among them that this store's schema marks personal;
    /// `None` when the dataset is not in this store yet.
    pub personal: Option<Vec<String>>,
}

/// The datasets a manifest reads, with personal fields marked from this
/// store's schemas.
pub fn reads(store: &Store, manifest: &Manifest) -> Result<Vec<Reads>> {
    let mut out = Vec::new();
    for (ds, decl) in &manifest.datasets {
        let personal = crate::dataset::head(store, ds)?.map(|h| {
            h.schema
                .fields
                .iter()
                .filter(|f| f.personal.is_some())
                .filter(|f| decl.fields.as_ref().is_none_or(|l| l.contains(&f.name)))
                .map(|f| f.name.clone())
                .collect()
        });
        out.push(Reads {
            dataset: ds.clone(),
            fields: decl.fields.clone(),
            personal,
        });
    }
    Ok(out)
}
