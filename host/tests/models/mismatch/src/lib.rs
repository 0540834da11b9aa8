//! A model whose module describes itself as `mismatch@0.9.0` while its
//! model.toml says 1.0.0: the host refuses it at load and installs nothing.

use jiandu_sdk::{export_model, Context, Model, Result};

pub struct Mismatch;

impl Model for Mismatch {
    fn run(_ctx: &mut Context) -> Result<()> {
        Ok(())
    }
}

export_model!(Mismatch);
