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
    let built = catalog::build(crate_dir, staging, observer)?;
    observer.step("checking the component against the contract");
    if let Err(e) = runtime.load(&built) {
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
        std::fs::read_to_string(&manifest_path).map_err(|e| Error::file(&manifest_path, e))?;
    let replaced = catalog::load(&store.models_dir(), &built.manifest.name).ok();
    let dir = catalog::install(
        &store.models_dir(),
        &manifest_text,
        &built.manifest,
        &built.wasm,
    )?;
    let installed = catalog::load_dir(&dir)?;
    crate::cache::forget_replaced(store, replaced.as_ref(), &installed);
    Ok(installed)
}
