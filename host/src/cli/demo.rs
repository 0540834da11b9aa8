//! `jiandu demo`

use super::Ctx;
use anyhow::Result;
use jiandu_demo::demo::{self, Options, Sizes};
use std::path::PathBuf;
use std::process::ExitCode;

/// Generate sample department files, run the four sample models on them,
/// check every lead against the planted answers, simulate a rectification
/// and re-run, and verify the ledger.
///
/// Example: `jiandu demo --scale 0.5 --seed 42`
#[derive(clap::Args)]
pub struct Args {
    /// Size of the synthetic data: 1 = 10,000 employers, 2,000 drunk-driving
    /// cases, 1,000 land contracts and 3,000 persons.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Number of synthetic employers (overrides --scale for the 残保金 model).
    #[arg(long)]
    employers: Option<usize>,
    /// Seed of the synthetic data (the same seed gives the same files).
    #[arg(long, default_value_t = 20240101)]
    seed: u64,
    /// Folder with the sample model crates.
    #[arg(long)]
    plugins: Option<PathBuf>,
    /// Skip the rectification phase (payments for some employers, re-run).
    #[arg(long)]
    no_rectify: bool,
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn exec(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    if !(args.scale.is_finite() && args.scale > 0.0) {
        anyhow::bail!("--scale must be a positive number, not {}", args.scale);
    }
    let store = ctx.open()?;
    let mut sizes = Sizes::scaled(args.scale);
    if let Some(n) = args.employers {
        sizes.employers = n.max(20);
    }
    let opts = Options {
        sizes,
        seed: args.seed,
        plugins_dir: args.plugins.unwrap_or_else(Options::default_plugins_dir),
        operator: ctx.operator.clone(),
        rectify: !args.no_rectify,
    };
    let pb = super::spinner("starting");
    let report = demo::run(&store, &opts, &mut |m: &str| {
        pb.println(format!("• {m}"));
        pb.set_message(m.to_string());
    });
    pb.finish_and_clear();
    let report = report?;
    print_data(&report, args.seed);
    for m in &report.models {
        print_model(m);
    }
    print_summary(&report);
    Ok(if report.all_good() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The datasets the demo generated and ingested.
fn print_data(report: &demo::Report, seed: u64) {
    let s = report.sizes;
    outln!();
    outln!(
        "Jiandu demo: four sample models on synthetic department data (seed {}): {} employers, {} drunk-driving cases, {} land contracts, {} persons",
        seed, s.employers, s.cases, s.contracts, s.persons
    );
    for i in &report.ingested {
        outln!(
            "  dataset {:<20} version {}  {:>7} records  digest {}",
            i.dataset,
            i.version.version,
            i.version.records,
            &i.version.digest[..16]
        );
    }
}

/// One model's run, checked against what was planted.
fn print_model(m: &demo::ModelReport) {
    let run = &m.run;
    outln!();
    outln!("{} ({})", m.model, m.title);
    outln!(
        "  run {}: {} in {:.2?}, {} records read, {} leads (new {}, open {}, resolved {})",
        run.run_id,
        run.outcome.as_str(),
        run.elapsed,
        thousands(run.records_read),
        run.leads,
        run.new,
        run.open,
        run.resolved
    );
    if let Some(f) = &run.failure {
        outln!("  failure: {} — {}", f.kind, f.message);
    }
    if let Some(total) = m.expected_total {
        outln!(
            "  total amount: {:.2} yuan (independently computed: {:.2})",
            run.total_amount,
            total
        );
    }
    outln!(
        "  planted leads: {}; found {}, missed {}, not planted {}, wrong {}",
        m.planted,
        m.planted - m.missing.len(),
        m.missing.len(),
        m.unexpected.len(),
        m.wrong.len()
    );
    outln!(
        "  near misses that must not be leads: {}; reported as leads: {}",
        m.near_misses,
        m.near_miss_leads.len()
    );
    if !m.missing.is_empty() {
        outln!("  missed planted leads: {}", m.missing.join(", "));
    }
    if !m.unexpected.is_empty() {
        outln!("  leads that were not planted: {}", m.unexpected.join(", "));
    }
    for (subject, want, got) in &m.wrong {
        outln!("  {subject}: reported `{got}`, expected `{want}`");
    }
    if let Some(p) = &m.plan {
        outln!(
            "  as a rule plan ({}, plan sha256 {}…): run {} {} in {:.2?}, {} leads; {}",
            p.model,
            &p.plan_sha256[..16],
            p.run.run_id,
            p.run.outcome.as_str(),
            p.run.elapsed,
            p.run.leads,
            if p.differences.is_empty() {
                "the same leads as the model (subject, title, amount, evidence)".to_string()
            } else {
                format!("{} leads differ from the model's", p.differences.len())
            }
        );
        if let Some(f) = &p.run.failure {
            outln!("  plan failure: {} — {}", f.kind, f.message);
        }
        for d in p.differences.iter().take(10) {
            outln!("    {d}");
        }
    }
}

/// The table of every model, the rectification re-run and the ledger.
fn print_summary(report: &demo::Report) {
    outln!();
    outln!(
        "  {:<28} {:>12} {:>7} {:>18} {:>10}  check",
        "model",
        "records read",
        "leads",
        "amount (yuan)",
        "run time"
    );
    for m in &report.models {
        outln!(
            "  {:<28} {:>12} {:>7} {:>18} {:>10}  {}",
            m.model,
            thousands(m.run.records_read),
            m.run.leads,
            if m.expected_total.is_some() {
                format!("{:.2}", m.run.total_amount)
            } else {
                "-".to_string()
            },
            format!("{:.2?}", m.run.elapsed),
            if m.all_good() { "ok" } else { "MISMATCH" }
        );
    }
    if let Some(r) = &report.rectification {
        outln!();
        outln!(
            "Rectification (整改): {} employers paid their gap; re-run {} of {}: {} leads resolved (expected {}), {} still open{}",
            r.paid.len(),
            r.run.run_id,
            demo::MODEL,
            r.resolved.len(),
            r.paid.len(),
            r.still_open,
            if r.all_good() { "" } else { " — MISMATCH" }
        );
    }
    outln!();
    outln!(
        "Ledger: hash chain of {} entries: {}",
        report.verification.entries,
        match &report.verification.problem {
            None => "verified".to_string(),
            Some(p) => format!("FAILED at entry {}: {}", p.seq, p.message),
        }
    );
    outln!();
    outln!(
        "Next: `jiandu leads list --status resolved`, `jiandu leads export -o leads.xlsx`, `jiandu audit log`, `jiandu audit verify`."
    );
    outln!(
        "In the browser: `jiandu user add NAME --role reviewer` (also admin, auditor), then `jiandu serve --http` and open http://127.0.0.1:8470/."
    );
}
