//! Scripted models (rule plans): checking a plan against the store's
//! schemas before it is installed, and handing it to the interpreter at a
//! run.
//!
//! A scripted model is a folder with `model.toml` (saying `plan = "…"`)
//! and the plan file it names. `jiandu model build` checks every step,
//! field and expression of the plan against the schemas of the datasets the
//! model declares and its parameters (`jiandu-plan`), then installs the
//! plan interpreter (built from this repository) as the model's component
//! beside the plan. At a run the interpreter asks for the plan through the
//! contract's `plan` call and gets [`source`]: the plan, `model.toml` and
//! those schemas. The run's ledger entry names the plan file and its hash
//! (SHA-256 of the canonical JSON of the parsed plan) beside the
//! interpreter's digest.

use crate::catalog::{Installed, Manifest};
use crate::{Error, Result, Store};
use std::path::Path;

/// Whether the folder holds a scripted model: a `model.toml` that names a
/// plan.
pub fn is_plan_model(dir: &Path) -> bool {
    crate::catalog::read_manifest(dir).is_ok_and(|(_, m)| m.plan.is_some())
}

/// The schema files (as TOML) of the datasets `manifest` declares, from
/// the store; a dataset the store does not hold is an error, since the
/// plan cannot be checked without it.
fn schemas(store: &Store, manifest: &Manifest) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for dataset in manifest.datasets.keys() {
        let Some(head) = crate::dataset::head(store, dataset)? else {
            return Err(Error::model(
                &manifest.id(),
                format!(
                    "its plan reads dataset `{dataset}`, which this store does not hold: ingest it first (a plan is checked against its datasets' schemas)"
                ),
            ));
        };
        out.push(
            toml::to_string(&head.schema)
                .map_err(|e| Error::Other(format!("schema of `{dataset}`: {e}")))?,
        );
    }
    Ok(out)
}

/// `manifest` as the TOML the plan catalog reads.
fn model_toml(manifest: &Manifest) -> Result<String> {
    toml::to_string(manifest)
        .map_err(|e| Error::Other(format!("model.toml of {}: {e}", manifest.id())))
}

/// What a plan of `manifest` is checked against: its datasets' schemas in
/// the store and its parameters; `refused` words a catalog that cannot be
/// made.
fn catalog(
    store: &Store,
    manifest: &Manifest,
    refused: &dyn Fn(&dyn std::fmt::Display) -> Error,
) -> Result<jiandu_plan::Catalog> {
    let schemas = schemas(store, manifest)?;
    let schemas: Vec<&str> = schemas.iter().map(String::as_str).collect();
    jiandu_plan::Catalog::from_toml(&model_toml(manifest)?, &schemas).map_err(|e| refused(&e))
}

/// Parses and checks the plan `file` (text `plan`, named `path` in errors)
/// of `manifest` against the store; returns its hash.
pub fn check(store: &Store, manifest: &Manifest, path: &Path, plan: &str) -> Result<String> {
    let refused = |e: &dyn std::fmt::Display| {
        Error::model(&manifest.id(), format!("{e}\nnothing was installed"))
    };
    let parsed =
        jiandu_plan::Plan::parse(&path.display().to_string(), plan).map_err(|e| refused(&e))?;
    let catalog = catalog(store, manifest, &refused)?;
    jiandu_plan::check_plan(&parsed, &catalog).map_err(|e| refused(&e))?;
    Ok(parsed.hash())
}

/// The plan file and hash of an installed scripted model, for the ledger;
/// `None` for a compiled model.
pub fn plan_ref(installed: &Installed) -> Option<crate::ledger::PlanRef> {
    Some(crate::ledger::PlanRef {
        file: installed.manifest.plan.clone()?,
        sha256: installed.plan_sha256.clone()?,
    })
}

/// What the interpreter's `plan` call returns for a run of `installed`:
/// the plan, `model.toml` and the declared datasets' schemas, as JSON.
pub fn source(store: &Store, installed: &Installed) -> Result<Option<String>> {
    let (Some(file), Some(plan)) = (&installed.manifest.plan, &installed.plan) else {
        return Ok(None);
    };
    let manifest = &installed.manifest;
    let source = serde_json::json!({
        "file": file,
        "plan": plan,
        "model-toml": model_toml(manifest)?,
        "schemas": schemas(store, manifest)?,
    });
    Ok(Some(source.to_string()))
}

/// An installed scripted model at `version`: the installed one when
/// `version` is `None` or is its version, else the version kept in the
/// store's `.versions` (the latest kept, when one version was built twice).
pub fn version(store: &Store, name: &str, version: Option<&str>) -> Result<Installed> {
    let models = store.models_dir();
    let current = crate::catalog::load(&models, name);
    if let Ok(installed) = &current {
        if version.is_none_or(|v| v == installed.manifest.version) {
            return current;
        }
    }
    let Some(wanted) = version else {
        return current;
    };
    let versions = crate::catalog::versions_dir(&models);
    let mut found: Option<(std::time::SystemTime, Installed)> = None;
    if let Ok(entries) = std::fs::read_dir(&versions) {
        for entry in entries.flatten() {
            let dir = entry.path();
            // Kept folders are named `<name>@<version>-…`: only this
            // version's are read.
            if !entry
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{name}@{wanted}-"))
            {
                continue;
            }
            let Ok(kept) = crate::catalog::load_dir(&dir) else {
                continue;
            };
            if kept.manifest.name != name || kept.manifest.version != wanted {
                continue;
            }
            let at = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            if found.as_ref().is_none_or(|(t, _)| at > *t) {
                found = Some((at, kept));
            }
        }
    }
    found.map(|(_, i)| i).ok_or_else(|| {
        Error::model(
            &format!("{name}@{wanted}"),
            "is neither installed nor kept in this store",
        )
    })
}

/// The parsed plan of `installed` and the catalog it is read against.
fn parsed(
    store: &Store,
    installed: &Installed,
) -> Result<(jiandu_plan::Plan, jiandu_plan::Catalog)> {
    let manifest = &installed.manifest;
    let (Some(file), Some(text)) = (&manifest.plan, &installed.plan) else {
        return Err(Error::model(
            &manifest.id(),
            "is not a scripted model (its model.toml names no plan); its rule is in its crate's README",
        ));
    };
    let plan = jiandu_plan::Plan::parse(file, text).map_err(|e| Error::model(&manifest.id(), e))?;
    let catalog = catalog(store, manifest, &|e| Error::model(&manifest.id(), e))?;
    Ok((plan, catalog))
}

/// `model explain`: the plan as numbered Chinese sentences, one per step,
/// with parameter values, units and legal basis.
pub fn explain(store: &Store, installed: &Installed) -> Result<Vec<String>> {
    let (plan, catalog) = parsed(store, installed)?;
    Ok(jiandu_plan::explain(&plan, &catalog))
}

/// `model diff`: what changed from `old` to `new`, in the words of
/// [`explain`].
pub fn diff(store: &Store, old: &Installed, new: &Installed) -> Result<Vec<String>> {
    let (old_plan, old_catalog) = parsed(store, old)?;
    let (new_plan, new_catalog) = parsed(store, new)?;
    Ok(jiandu_plan::diff(
        &old_plan,
        &old_catalog,
        &new_plan,
        &new_catalog,
    ))
}
