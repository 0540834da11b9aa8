//! `jiandu model build`: a model crate built, checked against the contract
//! and only then installed.

use crate::catalog::{self, BuildObserver, Installed};
use crate::runtime::Runtime;
use crate::{Error, Result, Store};
use std::path::Path;

/// Builds the model crate at `crate_dir` into a staging folder of the store,
/// loads the component there (imports, exports, `describe` against
/// `model.toml`) and only then installs it, forgetting the compiled code of
/// the version it replaces. A model that fails leaves nothing behind, and an
/// installed version of it keeps serving. `observer` hears each step.
pub fn build_and_install(
    store: &Store,
    runtime: &Runtime,
    crate_dir: &Path,
    observer: &mut dyn BuildObserver,
) -> Result<Installed> {
    let staging = store
        .root()
        .join(".staging")
        .join(std::process::id().to_string());
    let result = build_in(store, runtime, crate_dir, &staging, observer);
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn build_in(
    store: &Store,
    runtime: &Runtime,
    crate_dir: &Path,
    staging: &Path,
    observer: &mut dyn BuildObserver,
) -> Result<Installed> {
    let scripted = crate::plans::is_plan_model(crate_dir);
    let built = if scripted {
        check_declarations(store, crate_dir, observer)?;
        check_plan(store, crate_dir, observer)?;
        catalog::build_plan(crate_dir, staging, observer)?
    } else {
        check_package(crate_dir)?;
        check_declarations(store, crate_dir, observer)?;
        catalog::build(crate_dir, staging, observer)?
    };
    observer.step("checking the component against the contract");
    // The check compiles the component: into the module cache when there
    // is one (a file keyed by the wasm's sha256, which the installed copy
    // keeps), so that the first run loads it instead of compiling again.
    let checked = match crate::cache::ModuleCache::open(store, runtime) {
        Ok(cache) => cache.load(runtime, &built).map(drop),
        Err(_) => runtime.load(&built).map(drop),
    };
    if let Err(e) = checked {
        return Err(Error::model(
            &built.manifest.id(),
            format!(
                "built from {}: {}; nothing was installed",
                crate_dir.display(),
                e.reason
            ),
        ));
    }
    let manifest_path = built.dir.join("model.toml");
    let manifest_text =
        catalog::read_model_text(&built.dir, &manifest_path, catalog::MAX_MANIFEST_BYTES)?;
    let replaced = catalog::load(&store.models_dir(), &built.manifest.name).ok();
    let dir = match &built.plan {
        Some(plan) => catalog::install_plan(
            &store.models_dir(),
            &manifest_text,
            &built.manifest,
            &built.wasm,
            plan,
        )?,
        None => catalog::install(
            &store.models_dir(),
            &manifest_text,
            &built.manifest,
            &built.wasm,
        )?,
    };
    let installed = catalog::load_dir(&dir)?;
    crate::cache::forget_replaced(store, replaced.as_ref(), &installed);
    Ok(installed)
}

/// Checks a scripted model's plan against the store's schemas and its
/// parameters before anything is built: errors name the plan file, line
/// and column, and what was expected.
fn check_plan(store: &Store, dir: &Path, observer: &mut dyn BuildObserver) -> Result<()> {
    let (_, manifest) = catalog::read_manifest(dir)?;
    let file = manifest
        .plan
        .as_deref()
        .expect("a scripted model names its plan");
    let plan_path = dir.join(file);
    let plan = catalog::read_model_text(dir, &plan_path, catalog::MAX_PLAN_FILE_BYTES)?;
    observer.step(&format!("checking the plan {}", plan_path.display()));
    let hash = crate::plans::check(store, &manifest, &plan_path, &plan)?;
    observer.step(&format!("plan checked (sha256 {hash})"));
    Ok(())
}

/// Cargo's package name and version must be model.toml's: the module
/// describes itself by the first, the host knows the model by the second.
/// Checked before anything is compiled; the error names both files, the
/// lines and the values.
pub fn check_package(crate_dir: &Path) -> Result<()> {
    let cargo = crate_dir.join("Cargo.toml");
    let model = crate_dir.join("model.toml");
    // Missing files are named by the build itself; a model.toml that is
    // no plain file of a sensible size is refused before anything reads it.
    if !model.exists() && std::fs::symlink_metadata(&model).is_err() {
        return Ok(());
    }
    let model_text = catalog::read_model_text(crate_dir, &model, catalog::MAX_MANIFEST_BYTES)?;
    let Ok(cargo_text) = catalog::read_model_text(crate_dir, &cargo, catalog::MAX_MANIFEST_BYTES)
    else {
        return Ok(());
    };
    let (Ok(cargo_doc), Ok(model_doc)) = (
        cargo_text.parse::<toml::Table>(),
        model_text.parse::<toml::Table>(),
    ) else {
        return Ok(());
    };
    let Some(package) = cargo_doc.get("package").and_then(|p| p.as_table()) else {
        return Ok(());
    };
    for key in ["name", "version"] {
        // `version.workspace = true` and the like: cargo's to resolve.
        let (Some(ours), Some(theirs)) = (
            package.get(key).and_then(|v| v.as_str()),
            model_doc.get(key).and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        if ours != theirs {
            return Err(Error::file(
                crate_dir,
                format!(
                    "Cargo.toml says {key} = \"{ours}\" (line {}) but model.toml says {key} = \"{theirs}\" (line {}): they must be the same; change `{key}` in one of {} and {}; nothing was installed",
                    key_line(&cargo_text, key, ours),
                    key_line(&model_text, key, theirs),
                    cargo.display(),
                    model.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The line (from 1) where `key = "value"` is written in `text`.
fn key_line(text: &str, key: &str, value: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.starts_with(key) && l.contains(&format!("\"{value}\""))
        })
        .map_or(0, |i| i + 1)
}

/// Checks what `model.toml` declares against the store's schemas before
/// anything is compiled: a field a dataset does not have is an error
/// naming the line, the field and the fields there are (the closest
/// first); a dataset the store does not hold yet is said, not refused
/// (its data may come later).
pub fn check_declarations(
    store: &Store,
    crate_dir: &Path,
    observer: &mut dyn BuildObserver,
) -> Result<()> {
    let path = crate_dir.join("model.toml");
    let Ok(text) = catalog::read_model_text(crate_dir, &path, catalog::MAX_MANIFEST_BYTES) else {
        // The build itself names a missing or unreadable manifest.
        return Ok(());
    };
    let Ok(manifest) = catalog::Manifest::parse(&path, &text) else {
        return Ok(());
    };
    let mut problems = Vec::new();
    for (dataset, decl) in &manifest.datasets {
        let Some(head) = crate::dataset::head(store, dataset)? else {
            observer.step(&format!(
                "note: this store holds no dataset `{dataset}` yet (declared in model.toml); its fields are checked once it does"
            ));
            continue;
        };
        let schema = &head.schema;
        for field in decl.fields.iter().flatten() {
            if schema.field_index(field).is_some() || schema.derived(field).is_some() {
                continue;
            }
            let names: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
            let mut by_closeness = names.clone();
            by_closeness.sort_by_key(|n| distance(n, field));
            let line = line_of(&text, dataset, field)
                .map(|l| format!("{}:{l}: ", path.display()))
                .unwrap_or_default();
            problems.push(format!(
                "{line}dataset `{dataset}` has no field `{field}`{}; its fields: {}",
                by_closeness
                    .first()
                    .filter(|n| distance(n, field) <= 2)
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default(),
                names.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::model(
        &manifest.id(),
        format!(
            "model.toml declares fields the store's datasets do not have; nothing was built:\n  {}",
            problems.join("\n  ")
        ),
    ))
}

/// The line (from 1) of `model.toml` text where `field` is declared for
/// `dataset`: the first line after the dataset's table that names it.
fn line_of(text: &str, dataset: &str, field: &str) -> Option<usize> {
    let quoted = format!("\"{field}\"");
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            inside =
                t.trim_matches(|c| c == '[' || c == ']').trim() == format!("datasets.{dataset}");
        }
        if (inside || t.starts_with(dataset)) && line.contains(&quoted) {
            return Some(i + 1);
        }
    }
    None
}

/// Edit distance between two names (characters, not bytes).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_compared_by_edits() {
        assert_eq!(distance("name", "nmae"), 2);
        assert_eq!(distance("credit_code", "credit_code"), 0);
        assert_eq!(distance("姓名", "姓"), 1);
    }

    #[test]
    fn a_declared_field_is_found_on_its_line() {
        let text = "name = \"m\"\n[datasets.employers]\nfields = [\"credit_code\", \"nmae\"]\n[datasets.payments]\nfields = [\"nmae\"]\n";
        assert_eq!(line_of(text, "employers", "nmae"), Some(3));
        assert_eq!(line_of(text, "payments", "nmae"), Some(5));
        let inline = "[datasets]\nemployers = { fields = [\"nmae\"] }\n";
        assert_eq!(line_of(inline, "employers", "nmae"), Some(2));
    }

    #[test]
    fn a_cargo_name_or_version_other_than_model_tomls_names_both_files_before_compiling() {
        let dir = tempfile::tempdir().unwrap();
        let cargo = "[package]\nname = \"fund-check\"\nversion = \"0.1.1\"\n";
        std::fs::write(dir.path().join("Cargo.toml"), cargo).unwrap();
        std::fs::write(
            dir.path().join("model.toml"),
            "name = \"fund-check\"\nversion = \"0.1.0\"\n",
        )
        .unwrap();
        let err = check_package(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("Cargo.toml says version = \"0.1.1\" (line 3) but model.toml says version = \"0.1.0\" (line 2)"),
            "{err}"
        );
        assert!(err.contains("change `version`"), "{err}");
        std::fs::write(
            dir.path().join("model.toml"),
            "name = \"fund_check\"\nversion = \"0.1.1\"\n",
        )
        .unwrap();
        let err = check_package(dir.path()).unwrap_err().to_string();
        assert!(err.contains("name = \"fund-check\""), "{err}");
        std::fs::write(
            dir.path().join("model.toml"),
            "name = \"fund-check\"\nversion = \"0.1.1\"\n",
        )
        .unwrap();
        check_package(dir.path()).unwrap();
        // A version cargo resolves from a workspace is cargo's to check.
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"fund-check\"\nversion.workspace = true\n",
        )
        .unwrap();
        check_package(dir.path()).unwrap();
    }
}
