//! `jiandu trust add|list|remove`

use super::output::{self, Format};
use super::Ctx;
use anyhow::Result;
use jiandu::{catalog, trust};
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Trust a unit's public key: models signed by it can be imported.
    ///
    /// The key is 64 hex characters (what `jiandu unit show` prints for the
    /// other unit), or a file holding them or the JSON of `jiandu unit show
    /// --format json`. Check the fingerprint with the other unit by a channel
    /// you trust (phone, paper) before adding it; --fingerprint refuses a
    /// key whose fingerprint is not the one you were read.
    ///
    /// Example: `jiandu trust add akesu.json --unit "阿克苏地区人民检察院" --fingerprint 3f2a:91c0:…`
    Add {
        /// Public key (hex) or a file holding it.
        key: String,
        /// The unit the key belongs to.
        #[arg(long)]
        unit: String,
        /// The fingerprint the other unit read out to you.
        #[arg(long)]
        fingerprint: Option<String>,
    },
    /// List trusted keys.
    ///
    /// Example: `jiandu trust list --format json`
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Stop trusting a key (by fingerprint, hex key or unit name). Models
    /// already installed from it stay installed; new imports are refused.
    ///
    /// Example: `jiandu trust remove 3f2a:91c0:5b7e:0d44:8a21:c3f9:1e60:77ab`
    Remove { key: String },
}

pub fn exec(ctx: &Ctx, cmd: Command) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        Command::Add {
            key,
            unit,
            fingerprint,
        } => {
            let public = trust::parse_key(&key)?;
            let (entry, new) = trust::add(
                &store,
                &public,
                &unit,
                fingerprint.as_deref(),
                &ctx.operator,
            )?;
            outln!(
                "{} key of {}",
                if new {
                    "trusted"
                } else {
                    "already trusted; renamed the"
                },
                entry.unit
            );
            outln!("public key  {}", entry.key);
            outln!("fingerprint {}", entry.fingerprint);
            if fingerprint.is_none() {
                outln!(
                    "check this fingerprint with {} before importing its models",
                    entry.unit
                );
            }
        }
        Command::List { format } => {
            let keys = trust::list(&store)?;
            if format == Format::Json {
                output::json(&keys)?;
            } else {
                let rows: Vec<Vec<String>> = keys
                    .into_iter()
                    .map(|k| vec![k.unit, k.fingerprint, k.key, k.added_at, k.added_by])
                    .collect();
                output::print(
                    format,
                    &["unit", "fingerprint", "key", "added_at", "added_by"],
                    &rows,
                )?;
            }
        }
        Command::Remove { key } => {
            let removed = trust::remove(&store, &key)?;
            outln!(
                "no longer trusted: {} ({}); its models cannot be imported",
                removed.fingerprint,
                removed.unit
            );
            let still: Vec<String> = catalog::list_names(&store.models_dir())?
                .into_iter()
                .filter_map(|n| catalog::load(&store.models_dir(), &n).ok())
                .filter(|m| m.provenance.as_ref().is_some_and(|p| p.key == removed.key))
                .map(|m| m.manifest.id())
                .collect();
            if !still.is_empty() {
                errln!(
                    "still installed from this key: {} (remove them from {} if you no longer trust them)",
                    still.join(", "),
                    store.models_dir().display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
