//! `jiandu audit log|verify`

use super::output::{self, Format};
use super::Ctx;
use anyhow::Result;
use jiandu::ledger;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// List ledger entries.
    ///
    /// Example: `jiandu audit log --model disability-fund-arrears --format json`
    Log {
        #[arg(long)]
        model: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Recompute the hash chain and name the first entry that does not match.
    ///
    /// Exits 1 when the ledger does not verify.
    ///
    /// Example: `jiandu audit verify`
    Verify,
}

pub fn exec(ctx: &Ctx, cmd: Command) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        Command::Log { model, format } => {
            let entries: Vec<ledger::Entry> = ledger::read_all(&store)?
                .into_iter()
                .filter(|e| model.as_ref().is_none_or(|m| &e.run.model.name == m))
                .collect();
            if format == Format::Json {
                output::json(&entries)?;
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    let r = &e.run;
                    vec![
                        e.seq.to_string(),
                        e.at.clone(),
                        format!("{:?}", e.kind)
                            .to_lowercase()
                            .replace("run", "run-"),
                        e.unit.clone(),
                        e.operator.clone(),
                        format!("{}@{}", r.model.name, r.model.version),
                        r.model.wasm_sha256.get(..12).unwrap_or("").to_string(),
                        r.run_id.clone(),
                        r.outcome.as_str().to_string(),
                        r.datasets
                            .iter()
                            .map(|d| format!("{}@{}", d.name, d.version))
                            .collect::<Vec<_>>()
                            .join(" "),
                        r.records_read.map(|n| n.to_string()).unwrap_or_default(),
                        r.leads_count.map(|n| n.to_string()).unwrap_or_default(),
                        r.error
                            .as_ref()
                            .map(|f| {
                                format!("{}: {}", f.kind, f.message.lines().next().unwrap_or(""))
                            })
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            output::print(
                format,
                &[
                    "seq", "at", "kind", "unit", "operator", "model", "wasm", "run", "outcome",
                    "datasets", "records", "leads", "error",
                ],
                &rows,
            )?;
        }
        Command::Verify => {
            let v = ledger::verify(&store)?;
            match &v.problem {
                None => {
                    println!(
                        "ledger verified: {} entries, head {}",
                        v.entries,
                        v.head_hash.as_deref().unwrap_or("(empty)")
                    );
                }
                Some(p) => {
                    eprintln!(
                        "ledger does NOT verify: entry {} failed the {} check: {}",
                        p.seq, p.check, p.message
                    );
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
