//! `jiandu model build|list|show`

use super::output::{self, Format};
use super::Ctx;
use anyhow::Result;
use jiandu::catalog;
use jiandu::runtime::Runtime;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Build a model crate to WebAssembly and install it into the store.
    ///
    /// Installs the wasm32-unknown-unknown target through rustup if it is
    /// missing, builds the crate, turns the module into a component, checks
    /// it against the contract and writes model.wasm + model.toml into the
    /// store's models folder.
    ///
    /// Example: `jiandu model build plugins/disability-fund-arrears`
    Build {
        /// Folder of the model crate (Cargo.toml + model.toml).
        crate_dir: PathBuf,
    },
    /// List installed models.
    ///
    /// Example: `jiandu model list --format csv`
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show what an installed model reads, its parameters and its limits.
    ///
    /// Example: `jiandu model show disability-fund-arrears`
    Show { name: String },
}

pub fn exec(ctx: &Ctx, cmd: Command) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        Command::Build { crate_dir } => {
            let pb = super::spinner(format!("building {}", crate_dir.display()));
            let built = catalog::build(&crate_dir, &store.models_dir(), &mut |m: &str| {
                pb.println(format!("• {m}"));
                pb.set_message(m.to_string());
            });
            let built = match built {
                Ok(b) => b,
                Err(e) => {
                    pb.finish_and_clear();
                    return Err(e.into());
                }
            };
            pb.set_message("checking the component against the contract");
            let policy = ctx.policy(&store)?;
            let runtime = Runtime::new(policy.defaults.stack_kib)?;
            let checked = runtime.load(&built);
            pb.finish_and_clear();
            if let Err(e) = checked {
                let _ = std::fs::remove_dir_all(&built.dir);
                anyhow::bail!(
                    "model {}: {} (not installed)",
                    built.manifest.id(),
                    e.reason
                );
            }
            println!(
                "installed {} into {} (model.wasm sha256 {})",
                built.manifest.id(),
                built.dir.display(),
                built.wasm_sha256
            );
        }
        Command::List { format } => {
            let mut rows = Vec::new();
            for name in catalog::list_names(&store.models_dir())? {
                match catalog::load(&store.models_dir(), &name) {
                    Ok(m) => rows.push(vec![
                        m.manifest.name.clone(),
                        m.manifest.version.clone(),
                        m.manifest.title.clone(),
                        m.manifest.unit.clone(),
                        m.manifest
                            .datasets
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(" "),
                        m.wasm_sha256[..16].to_string(),
                    ]),
                    Err(e) => rows.push(vec![
                        name,
                        "?".into(),
                        format!("unreadable: {e}"),
                        String::new(),
                        String::new(),
                        String::new(),
                    ]),
                }
            }
            output::print(
                format,
                &[
                    "model",
                    "version",
                    "title",
                    "unit",
                    "datasets",
                    "wasm_sha256",
                ],
                &rows,
            )?;
        }
        Command::Show { name } => {
            let m = catalog::load(&store.models_dir(), &name)?;
            let man = &m.manifest;
            println!("{} — {}", man.id(), man.title);
            if let Some(t) = &man.title_en {
                println!("  {t}");
            }
            println!("  unit: {}", man.unit);
            println!("  contract: {}", man.sdk);
            println!("  wasm sha256: {}", m.wasm_sha256);
            for b in &man.legal_basis {
                println!("  legal basis: {b}");
            }
            println!("  reads:");
            for (ds, decl) in &man.datasets {
                let personal: Vec<String> = jiandu::dataset::head(&store, ds)?
                    .map(|h| {
                        h.schema
                            .fields
                            .iter()
                            .filter(|f| f.personal.is_some())
                            .filter(|f| decl.fields.as_ref().is_none_or(|l| l.contains(&f.name)))
                            .map(|f| f.name.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                println!(
                    "    {ds}: {}{}",
                    decl.fields
                        .as_ref()
                        .map(|f| f.join(", "))
                        .unwrap_or_else(|| "all fields".into()),
                    if personal.is_empty() {
                        String::new()
                    } else {
                        format!("  [personal: {}]", personal.join(", "))
                    }
                );
            }
            println!("  parameters:");
            for (n, p) in &man.params {
                println!(
                    "    {n} ({:?}) = {}{}{}",
                    p.ty,
                    p.default
                        .as_ref()
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "(required)".into()),
                    p.unit.as_ref().map(|u| format!(" {u}")).unwrap_or_default(),
                    p.description
                        .as_ref()
                        .map(|d| format!(" — {d}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
