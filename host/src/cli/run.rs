//! `jiandu run`

use super::Ctx;
use anyhow::{anyhow, Result};
use jiandu::cache::ModuleCache;
use jiandu::dataset::resolve::Reveal;
use jiandu::run::{execute_cached, Request};
use jiandu::runtime::Runtime;
use jiandu::text::{printable, printable_lines};
use std::process::ExitCode;

/// Run an installed model in the sandbox over the datasets it declares.
///
/// Leads are kept only if the run succeeds; every run, successful or not,
/// is recorded in the ledger.
///
/// Example: `jiandu run disability-fund-arrears --param levy_year=2024 --param ratio=0.02`
#[derive(clap::Args)]
pub struct Args {
    /// Installed model name.
    model: String,
    /// A parameter declared in the model's model.toml, as name=value (repeatable).
    #[arg(long = "param", short = 'p', value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// `json` prints the run's report as one JSON object.
    #[arg(long, value_enum, default_value_t)]
    format: super::output::Format,
    /// Run on the real data and show the leads and what would change,
    /// keeping no lead state (the ledger records the dry run).
    #[arg(long)]
    dry_run: bool,
    /// Parts of a run of a model that declares `[partition]`: each part an
    /// instance over one range of its key, run one per core at once until
    /// all are done [default: one per core, up to 8 per core when each
    /// part gets 65,536 records of the largest split dataset]; 1 runs it
    /// as one instance. Models without `[partition]` always run as one.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    partitions: Option<u16>,
}

pub(super) fn parse_param(s: &str) -> Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("`{s}` is not name=value"))?;
    Ok((k.trim().to_string(), v.to_string()))
}

pub fn exec(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let pb = super::spinner(format!("running {}", args.model));
    let request = Request {
        model: args.model.clone(),
        params: args.params.clone(),
        operator: ctx.operator.clone(),
        partitions: args.partitions.map(usize::from),
    };
    // The served (already compiled, hot-reloaded) version runs in the
    // server; a dry run, or a run without a server, on the store.
    let store = match (&ctx.server, args.dry_run) {
        (Some(_), false) => None,
        _ => Some(ctx.open()?),
    };
    let report = match (&ctx.server, &store) {
        (Some(server), None) => server.run(&args.model, args.params, &ctx.operator),
        (_, store) => {
            let store = store.as_ref().expect("a store unless the server runs it");
            let policy = ctx.policy(store)?;
            let runtime = Runtime::new(policy.defaults.stack_kib)?;
            // Without a cache (say, a read-only store) the model compiles.
            let cache = ModuleCache::open(store, &runtime)
                .inspect_err(|e| tracing::debug!("no module cache, compiling: {e}"))
                .ok();
            let run = if args.dry_run {
                jiandu::run::dry_run
            } else {
                execute_cached
            };
            run(store, &runtime, &policy, cache.as_ref(), &request)
        }
    };
    pb.finish_and_clear();
    let report = report?;
    // What the model wrote is shown inert: a log line stays one line, and
    // the lines of a failure message (a panic message, a wasm backtrace
    // naming the model's functions) are indented under the host's own.
    // A partitioned run's parts each write their lines: without `-v`, the
    // info lines of the first part stand for the others'.
    let mut folded = 0;
    for line in &report.logs {
        match super::model_line(line.level, line.part) {
            super::ModelLine::Hidden => continue,
            super::ModelLine::Folded => {
                folded += 1;
                continue;
            }
            super::ModelLine::Shown => {}
        }
        errln!(
            "[{}] {}: {}",
            report.model,
            line.level,
            printable(&line.message)
        );
    }
    if folded > 0 {
        errln!(
            "[{}] info: and {folded} more info lines from the other parts (-v shows them)",
            report.model
        );
    }
    let preview = match (&store, args.dry_run) {
        (Some(store), true) => jiandu::leads::for_people(store, &report.preview, Reveal::Masked)?.0,
        _ => Vec::new(),
    };
    if args.format == super::output::Format::Json {
        super::output::json(&serde_json::json!({
            "dry_run": args.dry_run,
            "would_keep": preview.iter().map(|l| serde_json::json!({
                "subject": l.subject,
                "status": l.status.as_str(),
                "title": l.title,
                "amount": l.amount,
            })).collect::<Vec<_>>(),
            "run_id": report.run_id,
            "model": report.model,
            "model_version": report.model_version,
            "outcome": report.outcome.as_str(),
            "failure": report.failure.as_ref().map(|f| serde_json::json!({
                "kind": f.kind,
                "message": f.message,
                "limit": f.limit,
                "used": f.used,
            })),
            "records_read": report.records_read,
            // Every line the model wrote (warnings such as rows that
            // reached an emit without a subject among them), as text.
            "logs": report.logs,
            "leads": report.leads,
            "new": report.new,
            "open": report.open,
            "resolved": report.resolved,
            "total_amount": report.total_amount.to_string(),
            "fuel_used": report.fuel_used,
            "parts": report.parts,
            "elapsed_ms": report.elapsed.as_millis() as u64,
            "ledger_entry": report.entry.seq,
        }))?;
        return Ok(if report.failure.is_none() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    match &report.failure {
        None if args.dry_run => {
            let rows: Vec<Vec<String>> = preview
                .iter()
                .map(|l| {
                    vec![
                        l.status.as_str().to_string(),
                        l.subject.clone(),
                        l.title.clone(),
                        l.amount.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            super::output::print(
                args.format,
                &["would_be", "subject", "title", "amount"],
                &rows,
            )?;
            outln!("{}", summary(&report, true));
            Ok(ExitCode::SUCCESS)
        }
        None => {
            outln!("{}", summary(&report, false));
            Ok(ExitCode::SUCCESS)
        }
        Some(f) => {
            errln!(
                "error: run {} of {}@{} failed ({}): {}\nno leads were kept; ledger entry {}",
                report.run_id,
                report.model,
                report.model_version,
                printable(&f.kind),
                printable_lines(&f.message).replace('\n', "\n  "),
                report.entry.seq
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The line a successful run (or dry run) ends with.
fn summary(report: &jiandu::run::Report, dry_run: bool) -> String {
    let (what, ended, would, kept) = if dry_run {
        ("dry run", "", "would be ", "; no lead state changed")
    } else {
        ("run", " succeeded", "", "")
    };
    let parts = if report.parts > 1 {
        format!(" as {} parts", report.parts)
    } else {
        String::new()
    };
    format!(
        "{what} {} of {}@{}{ended} in {:.2?}{parts}: {} records read, {} leads ({would}new {}, open {}, resolved {}), total amount {:.2}{kept}; ledger entry {}",
        report.run_id,
        report.model,
        report.model_version,
        report.elapsed,
        report.records_read,
        report.leads,
        report.new,
        report.open,
        report.resolved,
        report.total_amount,
        report.entry.seq
    )
}
