//! `jiandu demo`

use super::Ctx;
use anyhow::Result;
use jiandu::demo::{self, Options};
use std::path::PathBuf;
use std::process::ExitCode;

/// Generate sample data, run the 残保金 model on it, and verify the ledger.
///
/// Example: `jiandu demo --employers 10000 --seed 42`
#[derive(clap::Args)]
pub struct Args {
    /// Number of synthetic employers.
    #[arg(long, default_value_t = 10_000)]
    employers: usize,
    /// Seed of the synthetic data (the same seed gives the same files).
    #[arg(long, default_value_t = 20240101)]
    seed: u64,
    /// Folder with the sample model crates.
    #[arg(long)]
    plugins: Option<PathBuf>,
}

pub fn exec(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let store = ctx.open()?;
    let opts = Options {
        employers: args.employers,
        seed: args.seed,
        plugins_dir: args.plugins.unwrap_or_else(Options::default_plugins_dir),
        operator: ctx.operator.clone(),
    };
    let pb = super::spinner("starting");
    let report = demo::run(&store, &opts, &mut |m: &str| {
        pb.println(format!("• {m}"));
        pb.set_message(m.to_string());
    });
    pb.finish_and_clear();
    let report = report?;
    let run = &report.run;
    println!();
    println!(
        "Jiandu demo: {} on {} synthetic employers",
        demo::MODEL,
        report.generated.employers
    );
    for i in &report.ingested {
        println!(
            "  dataset {:<20} version {}  {:>7} records  digest {}",
            i.dataset,
            i.version.version,
            i.version.records,
            &i.version.digest[..16]
        );
    }
    println!(
        "  run {}: {} in {:.2?}, {} records read, {} fuel",
        run.run_id,
        run.outcome.as_str(),
        run.elapsed,
        run.records_read,
        run.fuel_used
    );
    if let Some(f) = &run.failure {
        println!("  failure: {} — {}", f.kind, f.message);
    }
    println!(
        "  leads: {} (new {}, open {}, resolved {}); planted violations: {}",
        run.leads,
        run.new,
        run.open,
        run.resolved,
        report.generated.expected.len()
    );
    println!(
        "  total arrears: {:.2} yuan (independently computed: {:.2})",
        run.total_amount, report.expected_total
    );
    println!(
        "  near misses that must not be leads: {}; reported as leads: {}",
        report.generated.near_misses.len(),
        report
            .generated
            .near_misses
            .iter()
            .filter(|(c, _)| report.unexpected.contains(c))
            .count()
    );
    println!(
        "  ledger entry {} ({}), hash chain of {} entries: {}",
        run.entry.seq,
        run.entry.run.outcome.as_str(),
        report.verification.entries,
        match &report.verification.problem {
            None => "verified".to_string(),
            Some(p) => format!("FAILED at entry {}: {}", p.seq, p.message),
        }
    );
    if !report.missing.is_empty() {
        println!("  missed planted violations: {}", report.missing.join(", "));
    }
    if !report.unexpected.is_empty() {
        println!(
            "  leads that were not planted: {}",
            report.unexpected.join(", ")
        );
    }
    for (code, want, got) in &report.wrong_amounts {
        println!("  {code}: amount {got}, expected {want}");
    }
    println!();
    println!(
        "Next: `jiandu leads list --model {}`, `jiandu audit log`, `jiandu audit verify`.",
        demo::MODEL
    );
    Ok(if report.all_good() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
