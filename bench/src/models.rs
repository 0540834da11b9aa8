//! The two benchmark models, built to wasm the way `jiandu model build`
//! builds them, and linked natively into this binary.

use anyhow::{Context as _, Result};
use jiandu::catalog::{self, Installed};
use std::path::{Path, PathBuf};

/// The sample 残保金 model (`plugins/disability-fund-arrears`).
pub const COLLISION_MODEL: &str = "disability-fund-arrears";
/// The scan model (`bench/models/scan-one-percent`).
pub const SCAN_MODEL: &str = "scan-one-percent";

/// Both models, built and installed in a models folder.
pub struct Models {
    pub scan: Installed,
    pub collision: Installed,
}

/// The repository's root folder (the parent of `bench/`).
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The crate folder of a benchmark model.
pub fn crate_dir(model: &str) -> PathBuf {
    match model {
        SCAN_MODEL => repo_root().join("bench").join("models").join(model),
        _ => repo_root().join("plugins").join(model),
    }
}

/// Builds both models for wasm and installs them into `models_dir`.
pub fn build(models_dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<Models> {
    let mut one = |name: &str| -> Result<Installed> {
        let dir = crate_dir(name);
        let mut step = |m: &str| progress(m);
        catalog::build(&dir, models_dir, &mut step)
            .with_context(|| format!("building {}", dir.display()))
    };
    Ok(Models {
        scan: one(SCAN_MODEL)?,
        collision: one(COLLISION_MODEL)?,
    })
}
