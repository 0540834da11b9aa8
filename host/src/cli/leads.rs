//! `jiandu leads list`, `jiandu leads export`

use super::output::{self, Format};
use super::Ctx;
use anyhow::{Context, Result};
use jiandu::dataset::resolve::Reveal;
use jiandu::leads::{self, ExportFormat, Filter, Lead, Status};
use jiandu::ledger::Disclosure;
use jiandu::Store;
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
    /// Show one lead: its evidence, field by field, and its history (the
    /// runs that first produced it, last produced it, resolved it).
    ///
    /// SUBJECT is as `leads list` shows it (masked, for a person), or the
    /// clear value (a citizen ID is matched through its pseudonym, never
    /// revealed to match it). Personal data masked unless --clear.
    ///
    /// Example: `jiandu leads show 91650100MA7XXXXX1A --model disability-fund-arrears`
    Show {
        subject: String,
        #[arg(long)]
        model: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Show personal data in clear (on the record).
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
        /// Column headers: Chinese for case handlers, English for scripts
        /// (default: Chinese in Excel, English in CSV).
        #[arg(long, value_enum)]
        headers: Option<leads::Headers>,
    },
}

fn reveal(clear: bool) -> Reveal {
    if clear {
        Reveal::Clear
    } else {
        Reveal::Masked
    }
}

/// The leads `filter` selects as `command` shows them, with personal
/// values in clear only if `clear`; when any is, the ledger records it
/// first (who, the command and its filters, how many) or nothing is shown.
fn for_people(
    ctx: &Ctx,
    store: &Store,
    filter: Filter,
    clear: bool,
    command: &str,
    output: Option<&std::path::Path>,
) -> Result<(Vec<Lead>, Option<u64>)> {
    let list = leads::list(store, &filter)?;
    if let Some(model) = &filter.model {
        known_model(store, model, &list)?;
    }
    let (list, values) = leads::for_people(store, &list, reveal(clear))?;
    if values == 0 {
        return Ok((list, None));
    }
    let disclosure = Disclosure {
        command: command.to_string(),
        model: filter.model,
        status: filter.status.map(|s| s.as_str().to_string()),
        output: output.map(|p| p.display().to_string()),
        dataset: None,
        leads: list.len() as u64,
        values,
    };
    Ok((list, record(ctx, store, &disclosure)?))
}

/// Puts a showing of personal data in clear on the record before it is
/// shown; the ledger entry, if any value was revealed.
pub(super) fn record(ctx: &Ctx, store: &Store, disclosure: &Disclosure) -> Result<Option<u64>> {
    let unit = jiandu::policy::unit_label(store, &ctx.policy(store)?)?;
    let entry = leads::record_disclosure(store, &unit, &ctx.operator, disclosure).context(
        "personal data is shown in clear only on the record, and the ledger could not record it",
    )?;
    Ok(entry.map(|e| e.seq))
}

/// A `--model` that names no installed model and no model with leads is
/// a mistake (a typo), not an empty list.
fn known_model(store: &jiandu::Store, model: &str, found: &[Lead]) -> Result<()> {
    let installed = jiandu::catalog::list_names(&store.models_dir())?;
    if !found.is_empty() || installed.iter().any(|m| m == model) {
        return Ok(());
    }
    anyhow::bail!(
        "no model `{model}` is installed here and none left leads; installed: {}",
        if installed.is_empty() {
            "none".to_string()
        } else {
            installed.join(", ")
        }
    )
}

/// `leads show`: the one lead `subject` names.
fn show(
    ctx: &Ctx,
    store: &Store,
    subject: &str,
    model: Option<String>,
    format: Format,
    clear: bool,
) -> Result<()> {
    let all = leads::list(
        store,
        &Filter {
            model: model.clone(),
            status: None,
        },
    )?;
    if let Some(model) = &model {
        known_model(store, model, &all)?;
    }
    // Matched as stored, as shown masked, or through the pseudonym of a
    // clear citizen ID: nothing is revealed to find it.
    let (masked, _) = leads::for_people(store, &all, Reveal::Masked)?;
    let as_id = jiandu::pseudonym::Pseudonymizer::for_store(store)
        .ok()
        .map(|p| p.pseudonym(jiandu::mask::PersonalKind::Id, subject));
    let found: Vec<usize> = (0..all.len())
        .filter(|&i| {
            all[i].subject == subject
                || masked[i].subject == subject
                || as_id.as_deref() == Some(all[i].subject.as_str())
        })
        .collect();
    let i = match found.as_slice() {
        [i] => *i,
        [] => anyhow::bail!("no lead has the subject `{subject}`{}", match &model {
            Some(m) => format!(" in {m}"),
            None => String::new(),
        }),
        more => anyhow::bail!(
            "{} leads match `{subject}` (models {}); name the model with --model, or give the subject in clear",
            more.len(),
            more.iter().map(|&i| all[i].model.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    let lead = if clear {
        let (shown, values) = leads::for_people(store, &all[i..=i], Reveal::Clear)?;
        let disclosure = Disclosure {
            command: "leads show".into(),
            model: Some(all[i].model.clone()),
            status: None,
            output: None,
            dataset: None,
            leads: 1,
            values,
        };
        if let Some(seq) = record(ctx, store, &disclosure)? {
            errln!("personal data shown in clear; recorded in ledger entry {seq}");
        }
        shown.into_iter().next().expect("one lead in, one out")
    } else {
        masked.into_iter().nth(i).expect("as many masked as listed")
    };
    if format == Format::Json {
        return output::json(&leads::lead_json(&lead));
    }
    outln!(
        "{} — {} ({}@{})",
        lead.subject,
        lead.title,
        lead.model,
        lead.model_version
    );
    outln!("  status: {}", lead.status.as_str());
    if let Some(a) = &lead.amount {
        outln!("  amount: {a}");
    }
    outln!("  evidence:");
    for e in &lead.evidence {
        outln!("    {}: {}", e.name, e.value);
    }
    outln!("  history:");
    outln!("    first produced by run {}", lead.first_run);
    outln!("    last produced by run {}", lead.last_run);
    if let Some(r) = &lead.resolved_by {
        outln!("    resolved by run {r} (it no longer produced the lead)");
    }
    outln!("    last changed {}", lead.updated_at);
    Ok(())
}

pub fn exec(ctx: &Ctx, cmd: Command) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        Command::Show {
            subject,
            model,
            format,
            clear,
        } => show(ctx, &store, &subject, model, format, clear)?,
        Command::List {
            model,
            status,
            format,
            clear,
        } => {
            let (list, recorded) = for_people(
                ctx,
                &store,
                Filter { model, status },
                clear,
                "leads list",
                None,
            )?;
            if format == Format::Json {
                let typed: Vec<serde_json::Value> = list.iter().map(leads::lead_json).collect();
                output::json(&typed)?;
                if let Some(seq) = recorded {
                    errln!("personal data shown in clear; recorded in ledger entry {seq}");
                }
                return Ok(ExitCode::SUCCESS);
            }
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
            if let Some(seq) = recorded {
                errln!("personal data shown in clear; recorded in ledger entry {seq}");
            }
        }
        Command::Export {
            format,
            output,
            model,
            status,
            clear,
            headers,
        } => {
            let format =
                format.unwrap_or_else(|| match output.extension().and_then(|e| e.to_str()) {
                    Some(e) if e.eq_ignore_ascii_case("xlsx") => ExportFormat::Xlsx,
                    _ => ExportFormat::Csv,
                });
            let (list, recorded) = for_people(
                ctx,
                &store,
                Filter { model, status },
                clear,
                "leads export",
                Some(&output),
            )?;
            let headers = headers.unwrap_or(match format {
                ExportFormat::Xlsx => leads::Headers::Zh,
                ExportFormat::Csv => leads::Headers::En,
            });
            let n =
                leads::export(&list, format, headers, &output).with_context(|| match recorded {
                    Some(seq) => format!("ledger entry {seq} records this export in clear"),
                    None => "nothing was written".to_string(),
                })?;
            errln!(
                "{n} leads written to {}{}",
                output.display(),
                match recorded {
                    Some(seq) =>
                        format!(" (personal data in clear; recorded in ledger entry {seq})"),
                    None if clear => " (no personal data marked in them)".to_string(),
                    None => " (personal data masked)".to_string(),
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
