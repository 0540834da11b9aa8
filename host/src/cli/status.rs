//! `jiandu status`

use super::output::{self, Format};
use super::Ctx;
use anyhow::Result;
use std::process::ExitCode;

/// Show what a running server has loaded: models (name, version, digest,
/// loaded at, last run, last error) and recent reloads.
///
/// Example: `jiandu status --format json`
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn exec(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let Some(server) = &ctx.server else {
        // Without a server: do not open (and so lock) the store, a server
        // may be starting on it.
        let names = jiandu::catalog::list_names(&ctx.store_path.join("models"))?;
        errln!(
            "no jiandu server is running on {}; {} models installed ({}); start one with `jiandu serve`",
            ctx.store_path.display(),
            names.len(),
            names.join(", ")
        );
        return Ok(ExitCode::FAILURE);
    };
    let status = server.status();
    if args.format == Format::Json {
        output::json(&status)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "server pid {} on {}, up since {}, {} runs in flight",
        status.pid,
        status.store,
        status.started_at,
        status.runs_in_flight
    );
    let policy = &status.policy;
    match (&policy.problem, &policy.read_at) {
        (Some(problem), _) => errln!("warning: {problem}"),
        (None, Some(at)) => outln!("policy {}, read at {at}", policy.path),
        (None, None) => outln!(
            "policy: the built-in defaults ({} does not exist)",
            policy.path
        ),
    }
    let rows: Vec<Vec<String>> = status
        .models
        .iter()
        .map(|m| {
            vec![
                m.name.clone(),
                m.version.clone(),
                m.wasm_sha256[..16].to_string(),
                m.loaded_at.clone(),
                if m.from_cache { "cache" } else { "compiled" }.into(),
                m.last_run.clone().unwrap_or_default(),
                m.last_outcome.clone().unwrap_or_default(),
                m.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::print(
        args.format,
        &[
            "model",
            "version",
            "wasm_sha256",
            "loaded_at",
            "code",
            "last_run",
            "outcome",
            "last_error",
        ],
        &rows,
    )?;
    if args.format == Format::Table && !status.recent.is_empty() {
        outln!();
        outln!("recent model events:");
        for e in status.recent.iter().rev().take(20) {
            outln!("  {} {:?} {}", e.at, e.action, e.message);
        }
    }
    Ok(ExitCode::SUCCESS)
}
