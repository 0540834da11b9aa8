//! `jiandu leads list`

use super::output::{self, Format};
use super::Ctx;
use anyhow::Result;
use jiandu::leads::{self, Filter, Status};
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// List leads (personal data masked unless --clear).
    ///
    /// Example: `jiandu leads list --model disability-fund-arrears --status new --format csv`
    List {
        #[arg(long)]
        model: Option<String>,
        #[arg(long, value_enum)]
        status: Option<Status>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Show personal data in clear.
        #[arg(long)]
        clear: bool,
    },
}

pub fn exec(ctx: &Ctx, cmd: Command) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        Command::List {
            model,
            status,
            format,
            clear,
        } => {
            let list = leads::list(&store, &Filter { model, status })?;
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|l| if clear { l.clone() } else { l.masked() })
                .map(|l| {
                    vec![
                        l.model.clone(),
                        l.subject.clone(),
                        l.status.as_str().to_string(),
                        l.amount.clone().unwrap_or_default(),
                        l.title.clone(),
                        l.evidence
                            .iter()
                            .map(|e| format!("{}={}", e.name, e.value))
                            .collect::<Vec<_>>()
                            .join("; "),
                        l.first_run.clone(),
                        l.last_run.clone(),
                        l.resolved_by.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            output::print(
                format,
                &[
                    "model",
                    "subject",
                    "status",
                    "amount",
                    "title",
                    "evidence",
                    "first_run",
                    "last_run",
                    "resolved_by",
                ],
                &rows,
            )?;
            if format == Format::Table {
                eprintln!("{} leads", rows.len());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
