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
    /// --format json`, which also states the unit's name and code. Check
    /// the fingerprint with the other unit by a channel you trust (phone,
    /// paper) before adding it; --fingerprint refuses a key whose
    /// fingerprint is not the one you were read. The name and code given
    /// here are what this store records as the publisher of the unit's
    /// models; a bundle claiming another identity for the key is refused.
    /// The addition is written to the ledger.
    ///
    /// Example: `jiandu trust add akesu.json --fingerprint 3f2a:91c0:…`
    Add {
        /// Public key (hex) or a file holding it.
        key: String,
        /// The unit the key belongs to (else the name in the key file).
        #[arg(long)]
        unit: Option<String>,
        /// The unit's organisation code (else the code in the key file).
        #[arg(long)]
        code: Option<String>,
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
    /// Stop trusting a key (by fingerprint, hex key, unit name or code).
    /// Models already installed from it stay installed, but new imports
    /// are refused and so are their runs, unless the policy sets
    /// allow_untrusted_publishers = true. The removal is written to the
    /// ledger.
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
            code,
            fingerprint,
        } => {
            let input = trust::parse_key(&key)?;
            let policy = ctx.policy(&store)?;
            let (entry, changed) = trust::add(
                &store,
                &policy,
                &trust::Addition {
                    input: &input,
                    unit: unit.as_deref(),
                    code: code.as_deref(),
                    expected_fingerprint: fingerprint.as_deref(),
                    operator: &ctx.operator,
                },
            )?;
            outln!(
                "{} key of {}",
                if changed {
                    "trusted the"
                } else {
                    "already trusted: the"
                },
                entry.label()
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
                    .map(|k| vec![k.unit, k.code, k.fingerprint, k.key, k.added_at, k.added_by])
                    .collect();
                output::print(
                    format,
                    &["unit", "code", "fingerprint", "key", "added_at", "added_by"],
                    &rows,
                )?;
            }
        }
        Command::Remove { key } => {
            let policy = ctx.policy(&store)?;
            let removed = trust::remove(&store, &policy, &key, &ctx.operator)?;
            outln!(
                "no longer trusted: {} ({}); its models can no longer be imported{}",
                removed.fingerprint,
                removed.label(),
                if policy.allow_untrusted_publishers {
                    " (installed ones still run: the policy allows untrusted publishers)"
                } else {
                    " or run"
                }
            );
            let still: Vec<String> = catalog::list_names(&store.models_dir())?
                .into_iter()
                .filter_map(|n| catalog::load(&store.models_dir(), &n).ok())
                .filter(|m| m.provenance.as_ref().is_some_and(|p| p.key == removed.key))
                .map(|m| m.manifest.id())
                .collect();
            if !still.is_empty() {
                errln!(
                    "still installed from this key: {} (their runs are refused; remove them from {} if you no longer trust them)",
                    still.join(", "),
                    store.models_dir().display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
