//! `jiandu-bench`: runs the side-by-side benchmarks and prints a markdown
//! table. See `BENCHMARKS.md` for the figures and how they were taken.

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use jiandu_bench::{child, Options, Section};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

const EXAMPLES: &str = "\
Examples:
  # the figures of BENCHMARKS.md (1,000,000 employers and records; memory at 1M and 10M)
  cargo run --release -p jiandu-bench > bench.md

  # a small smoke run of every section (about a minute)
  cargo run --release -p jiandu-bench -- --quick

  # only the collision against SQLite, at 200,000 employers
  cargo run --release -p jiandu-bench -- --only collision --scale 200000

  # ingest of the four 残保金 tables (1M employers: about 6.5M rows) against `sqlite3`'s .import
  cargo build --release -p jiandu && cargo run --release -p jiandu-bench -- --only ingest4";

/// Jiandu measured side by side: the sandbox against the same model
/// compiled natively, the 残保金 collision against SQLite, ingest (one
/// file, and the four 残保金 tables against the `sqlite3` tool), memory,
/// parallel runs and cold start. Prints a markdown table on stdout and
/// progress on stderr.
#[derive(Parser)]
#[command(name = "jiandu-bench", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    child: Option<Child>,

    /// Employers of the collision, the sweep and the four-table ingest
    /// (ingest4); records of the scan and ingest.
    #[arg(long, default_value_t = 1_000_000)]
    scale: u64,

    /// Dataset sizes of the memory figure, comma-separated [default: the
    /// scale and ten times it].
    #[arg(long, value_delimiter = ',')]
    memory_scales: Option<Vec<u64>>,

    /// A smoke run: --scale 20000, memory at 20,000 and 200,000, one
    /// repetition.
    #[arg(long)]
    quick: bool,

    /// Only these sections, comma-separated [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Option<Vec<Section>>,

    /// Entries of the ledger figure [default: 1,000,000; 20,000 with --quick].
    #[arg(long)]
    ledger_entries: Option<u64>,

    /// Lead rates of the sweep, in employers per thousand in arrears,
    /// comma-separated [default: 10,50,250].
    #[arg(long, value_delimiter = ',')]
    rates: Option<Vec<u32>>,

    /// Each timing is the best of this many repetitions.
    #[arg(long, default_value_t = 3)]
    reps: usize,

    /// Seed of the generated data.
    #[arg(long, default_value_t = 2024)]
    seed: u64,

    /// Where data, stores and SQLite go [default: a fresh folder in the
    /// system temp folder, removed at the end].
    #[arg(long)]
    work_dir: Option<PathBuf>,

    /// Keep the work folder.
    #[arg(long)]
    keep: bool,
}

/// Measurements that need their own process (peak memory is per process).
#[derive(Subcommand)]
enum Child {
    #[command(hide = true)]
    Child {
        #[command(subcommand)]
        what: ChildWhat,
    },
}

#[derive(Subcommand)]
enum ChildWhat {
    /// Ingest one file and report rows, seconds and peak RSS.
    Ingest {
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        dataset: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// One full run of a model and report records, leads, seconds, RSS.
    Scan {
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        model_dir: PathBuf,
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
    /// Run an SQL script on a database file, as the `sqlite3` tool does
    /// (the sweep's baseline where that tool is not installed).
    SqliteScript {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        script: PathBuf,
    },
    /// Run a model over an existing store (e.g. a `--keep` work folder)
    /// and print each run's seconds: a target for profilers.
    Run {
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        model_dir: PathBuf,
        #[arg(long, value_enum)]
        engine: child::Engine,
        #[arg(long, default_value_t = 1)]
        times: usize,
    },
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not name=value"))
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Child::Child { what }) = cli.child {
        let line = match what {
            ChildWhat::Ingest {
                store,
                dataset,
                file,
            } => serde_json::to_string(&child::ingest(&store, &dataset, &file)?)?,
            ChildWhat::Scan {
                store,
                model_dir,
                params,
            } => serde_json::to_string(&child::scan(&store, &model_dir, &params)?)?,
            ChildWhat::Run {
                store,
                model_dir,
                engine,
                times,
            } => serde_json::to_string(&child::run_model(&store, &model_dir, engine, times)?)?,
            ChildWhat::SqliteScript { db, script } => {
                let conn = rusqlite::Connection::open(&db)?;
                conn.execute_batch(&std::fs::read_to_string(&script)?)?;
                return Ok(());
            }
        };
        println!("{line}");
        return Ok(());
    }
    let scale = if cli.quick { 20_000 } else { cli.scale };
    let reps = if cli.quick { 1 } else { cli.reps };
    let memory_scales = cli.memory_scales.unwrap_or_else(|| vec![scale, scale * 10]);
    let (work_dir, temporary) = match cli.work_dir {
        Some(d) => (d, false),
        None => (
            std::env::temp_dir().join(format!("jiandu-bench-{}", std::process::id())),
            !cli.keep,
        ),
    };
    let opts = Options {
        scale,
        memory_scales,
        sections: cli.only.unwrap_or_else(|| Section::ALL.to_vec()),
        work_dir: work_dir.clone(),
        ledger_entries: cli
            .ledger_entries
            .unwrap_or(if cli.quick { 20_000 } else { 1_000_000 }),
        reps,
        rates: cli
            .rates
            .unwrap_or_else(|| jiandu_bench::sweep::RATES.to_vec()),
        seed: cli.seed,
        exe: std::env::current_exe().context("cannot find this binary to re-run it")?,
        command: std::iter::once("jiandu-bench".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
        quick_native: false,
    };
    let started = Instant::now();
    let mut progress = |m: &str| {
        eprintln!("[{:>6.1} s] {m}", started.elapsed().as_secs_f64());
    };
    let result = jiandu_bench::run(&opts, &mut progress);
    if temporary {
        std::fs::remove_dir_all(&work_dir).ok();
    } else {
        eprintln!("work folder kept: {}", work_dir.display());
    }
    let outcome = result?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(outcome.report.markdown().as_bytes())?;
    Ok(())
}
