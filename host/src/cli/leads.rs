//! `jiandu leads list`, `jiandu leads export`

use super::output::{self, Format};
use super::Ctx;
use anyhow::Result;
use jiandu::leads::{self, ExportFormat, Filter, Status};
use jiandu::pseudonym::Reveal;
use std::path::PathBuf;
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
    /// Write leads to a CSV or Excel file for case handlers, one column per
    /// evidence field (personal data masked unless --clear).
    ///
    /// Example: `jiandu leads export --format xlsx -o 线索.xlsx --model drunk-driving-withdrawal --status new`
    Export {
        /// File format (default: from the file name's extension, else csv).
        #[arg(long, value_enum)]
        format: Option<ExportFormat>,
        /// The file to write.
        #[arg(short, long)]
        output: PathBuf,
        /// Only this model's leads.
        #[arg(long)]
        model: Option<String>,
        /// Only leads in this state.
        #[arg(long, value_enum)]
        status: Option<Status>,
        /// Write personal data in clear.
        #[arg(long)]
        clear: bool,
    },
}

fn reveal(clear: bool) -> Reveal {
    if clear {
        Reveal::Clear
    } else {
        Reveal::Masked
    }
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
            let (list, _revealed) = leads::for_people(&store, &list, reveal(clear))?;
            let rows: Vec<Vec<String>> = list
                .into_iter()
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
                errln!("{} leads", rows.len());
            }
        }
        Command::Export {
            format,
            output,
            model,
            status,
            clear,
        } => {
            let format =
                format.unwrap_or_else(|| match output.extension().and_then(|e| e.to_str()) {
                    Some(e) if e.eq_ignore_ascii_case("xlsx") => ExportFormat::Xlsx,
                    _ => ExportFormat::Csv,
                });
            let list = leads::list(&store, &Filter { model, status })?;
            let (list, _revealed) = leads::for_people(&store, &list, reveal(clear))?;
            let n = leads::export(&list, format, &output)?;
            errln!(
                "{n} leads written to {}{}",
                output.display(),
                if clear {
                    " (personal data in clear)"
                } else {
                    " (personal data masked)"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
