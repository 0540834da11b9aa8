//! # jiandu-bench: Jiandu measured side by side
//!
//! Every figure is a ratio against a baseline measured in the same run, on
//! the same data:
//!
//! - **Scan**: records/s of `scan-one-percent` (reads every record, emits
//!   1%) in the sandbox and compiled natively with the models' profile
//!   ([`native`]), both over the same stored dataset version.
//! - **Collision**: the 残保金 model over the four sample datasets as a
//!   whole `jiandu run`, against the same rule as SQL in SQLite with
//!   indexes; the leads of every engine must agree to the fen.
//! - **Ingest**: rows/s of `dataset ingest` for a ten-column CSV file,
//!   against SQLite loading the same file.
//! - **Memory**: peak resident memory of a scan at two sizes, each in its
//!   own process.
//! - **Parallel**: two runs at once on one `Runtime` against two in a row.
//! - **Cold start**: compiling a model against loading it from the
//!   host's compiled-module cache.
//! - **Sweep**: the collision as whole processes, `jiandu run` against the
//!   `sqlite3` tool writing its leads, at 1 %, 5 % and 25 % lead rates.
//! - **Ingest (4 tables)**: the four 残保金 tables, each `jiandu dataset
//!   ingest` as a process, against the `sqlite3` tool's `.import` of each.
//! - **Serve**: a restart with 50 models from the module cache against an
//!   empty cache, and the time from a model file change to the new version
//!   being served.
//!
//! The binary (`src/main.rs`) parses options, calls [`run`] and prints
//! [`report::Report::markdown`]. `BENCHMARKS.md` at the repository root
//! records the figures and how they were taken.

pub mod appends;
pub mod child;
pub mod cold_start;
pub mod collision;
pub mod data;
pub mod ingest4;
pub mod ledger;
pub mod machine;
pub mod memory;
pub mod models;
pub mod native;
pub mod parallel;
pub mod report;
pub mod runs;
pub mod scan;
pub mod serve;
pub mod sqlite;
pub mod sweep;
pub mod verify;

use anyhow::{Context as _, Result};
use jiandu::policy::Policy;
use jiandu::runtime::Runtime;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The parts of a benchmark run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    ColdStart,
    Scan,
    Ingest,
    Memory,
    Collision,
    Parallel,
    Serve,
    Ledger,
    Verify,
    Appends,
    Sweep,
    Ingest4,
}

impl Section {
    pub const ALL: [Section; 12] = [
        Section::ColdStart,
        Section::Scan,
        Section::Ingest,
        Section::Memory,
        Section::Collision,
        Section::Parallel,
        Section::Serve,
        Section::Ledger,
        Section::Verify,
        Section::Appends,
        Section::Sweep,
        Section::Ingest4,
    ];
}

/// What to measure, and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// Employers of the collision, the sweep and the four-table ingest;
    /// records of the scan and ingest.
    pub scale: u64,
    /// Dataset sizes of the memory figure.
    pub memory_scales: Vec<u64>,
    pub sections: Vec<Section>,
    /// Data, stores and the SQLite database go here.
    pub work_dir: PathBuf,
    /// Entries of the ledger figure.
    pub ledger_entries: u64,
    /// Each timing is the best of this many.
    pub reps: usize,
    /// Lead rates of the sweep, per thousand.
    pub rates: Vec<u32>,
    pub seed: u64,
    /// The `jiandu-bench` binary, re-run for per-process measurements.
    pub exe: PathBuf,
    /// The command line, for the report.
    pub command: String,
    /// Builds the native baseline quickly (no LTO, 16 codegen units,
    /// `opt-level` 1) instead of with the models' profile: for checking that
    /// the sections run and agree (the smoke test), never for figures.
    pub quick_native: bool,
}

/// What a run measured: the report, and the results tests look at.
pub struct Outcome {
    pub report: report::Report,
    pub scan: Option<scan::ScanResult>,
    pub collision: Option<collision::CollisionResult>,
}

/// Runs the selected sections, telling `progress` what it is doing.
pub fn run(opts: &Options, progress: &mut dyn FnMut(&str)) -> Result<Outcome> {
    let started = Instant::now();
    let machine = machine::Machine::describe();
    let want = |s: Section| opts.sections.contains(&s);
    std::fs::create_dir_all(&opts.work_dir)
        .with_context(|| format!("{}", opts.work_dir.display()))?;
    let mut figures = Vec::new();
    let mut notes = Vec::new();
    let mut out_scan = None;
    let mut native = None;
    let mut out_collision = None;

    progress("building the models for wasm32 (as `jiandu model build`)");
    let models = models::build(&opts.work_dir.join("models"), progress)?;
    let policy_path = opts.work_dir.join("jiandu.toml");
    std::fs::write(&policy_path, data::POLICY)?;
    let policy = Policy::load(&policy_path)?;
    let runtime = Runtime::new(policy.defaults.stack_kib)?;
    let load = |m: &jiandu::catalog::Installed| {
        runtime
            .load(m)
            .map_err(|e| anyhow::anyhow!("{}: {e}", m.manifest.id()))
    };

    if want(Section::ColdStart) {
        progress("cold start: compiling and loading both models");
        let store = data::open_store(&opts.work_dir.join("cold-start"))?;
        for m in [&models.scan, &models.collision] {
            figures.extend(cold_start::measure(&runtime, &store, m, opts.reps)?.figures());
        }
    }

    if want(Section::Serve) {
        progress("serve: restart with 50 cached models, reload on a file change");
        let r = serve::measure(&opts.work_dir.join("serve"), &models.collision, opts.reps)?;
        figures.extend(r.figures());
    }

    if want(Section::Ledger) {
        progress(&format!(
            "ledger: {} entries (fill, append, verify, export, import)",
            opts.ledger_entries
        ));
        let r = ledger::measure(&opts.work_dir.join("ledger"), opts.ledger_entries, progress)?;
        figures.extend(r.figures());
        std::fs::remove_dir_all(opts.work_dir.join("ledger")).ok();
    }

    if want(Section::Appends) {
        progress(&format!(
            "appends: {} records in 365 daily appends, scans and lookups",
            opts.scale
        ));
        let r = appends::measure(&opts.work_dir.join("appends"), opts.scale, progress)?;
        figures.extend(r.figures());
    }

    if want(Section::Sweep) {
        // Medians of paired runs: at least five pairs.
        let points = sweep::measure(
            &opts.work_dir.join("sweep"),
            &models,
            &opts.exe,
            opts.scale as usize,
            &opts.rates,
            opts.seed,
            opts.reps.max(5),
            progress,
        )?;
        figures.extend(points.iter().flat_map(sweep::Point::figures));
    }

    if want(Section::Ingest4) {
        match ingest4::measure(
            &opts.work_dir.join("ingest4"),
            &opts.exe,
            opts.scale as usize,
            opts.seed,
            opts.reps,
            progress,
        )? {
            Some(r) => {
                figures.extend(r.figures());
                notes.push(r.note());
            }
            None => notes.push(format!(
                "{}: not measured, the `sqlite3` tool (its baseline) is not installed.",
                ingest4::SECTION
            )),
        }
    }

    if want(Section::Scan)
        || want(Section::Ingest)
        || want(Section::Memory)
        || want(Section::Verify)
    {
        let scan_dir = model_dir(&opts.work_dir, models::SCAN_MODEL);
        let mut points = Vec::new();
        let mut sizes = vec![opts.scale];
        if want(Section::Memory) || want(Section::Verify) {
            sizes.extend(opts.memory_scales.iter().filter(|s| **s != opts.scale));
        }
        for (i, &records) in sizes.iter().enumerate() {
            let dir = opts.work_dir.join(format!("declarations-{records}"));
            std::fs::create_dir_all(&dir)?;
            progress(&format!("writing {records} tax declarations"));
            let file =
                data::write_declarations(&dir.join("tax_declarations.csv"), records, opts.seed)?;
            let store_dir = dir.join("store");
            progress(&format!("ingesting {records} declarations (own process)"));
            let ingest: child::IngestMeasure = child::spawn(
                &opts.exe,
                &[
                    OsStr::new("ingest"),
                    OsStr::new("--store"),
                    store_dir.as_os_str(),
                    OsStr::new("--dataset"),
                    OsStr::new(data::DECLARATIONS),
                    OsStr::new("--file"),
                    file.path.as_os_str(),
                ],
            )?;
            if i == 0 && want(Section::Ingest) {
                progress("loading the same file into SQLite");
                let mut conn = sqlite::open(&dir.join("sqlite.db"))?;
                let baseline = sqlite::load_declarations(&mut conn, &file.path)?;
                figures.push(memory::ingest_figure(file.bytes, &ingest, &baseline));
            }
            if want(Section::Verify) {
                progress(&format!(
                    "verify: `audit verify` of {records} records, and SQLite's integrity check"
                ));
                let mut conn = sqlite::open(&dir.join("sqlite.db"))?;
                if !(i == 0 && want(Section::Ingest)) {
                    sqlite::load_declarations(&mut conn, &file.path)?;
                }
                let store = data::open_store(&store_dir)?;
                figures.extend(verify::measure(&store, records, &conn)?.figures());
            }
            if i == 0 && want(Section::Scan) {
                progress(&format!("scan: {records} records, sandboxed and native"));
                let runner = native_runner(opts, &mut native, progress)?;
                let loaded = load(&models.scan)?;
                for reader in ["rows", "structs"] {
                    let r = scan::measure(
                        reader,
                        &runtime,
                        &loaded,
                        &store_dir,
                        &runner,
                        &policy,
                        &models.scan,
                        file.low,
                        opts.reps,
                    )?;
                    figures.extend(r.figures());
                    out_scan.get_or_insert(r);
                }
            }
            if want(Section::Memory) && opts.memory_scales.contains(&records) {
                progress(&format!(
                    "memory: scans of {records} records (own processes)"
                ));
                let scan_child = |params: &[&str]| -> Result<child::ScanMeasure> {
                    let mut args = vec![
                        OsStr::new("scan"),
                        OsStr::new("--store"),
                        store_dir.as_os_str(),
                        OsStr::new("--model-dir"),
                        scan_dir.as_os_str(),
                    ];
                    for p in params {
                        args.push(OsStr::new("--param"));
                        args.push(OsStr::new(p));
                    }
                    child::spawn(&opts.exe, &args)
                };
                points.push(memory::MemoryPoint {
                    records,
                    ingest,
                    with_leads: scan_child(&[])?,
                    without_leads: scan_child(&["min_rate=0"])?,
                });
            }
            if i > 0 {
                // Ten million records take gigabytes; keep only the first size.
                std::fs::remove_dir_all(&dir).ok();
            }
        }
        figures.extend(memory::memory_figures(&points));
    }

    if want(Section::Collision) || want(Section::Parallel) {
        let dir = opts.work_dir.join("collision");
        let employers = opts.scale as usize;
        progress(&format!(
            "generating the 残保金 sample data for {employers} employers"
        ));
        let generated = data::generate_collision(&dir.join("data"), employers, opts.seed)?;
        let store = data::open_store(&dir.join("store"))?;
        let mut conn = sqlite::open(&dir.join("sqlite.db"))?;
        let loaded_data = collision::load(&store, &mut conn, generated, progress)?;
        let loaded = load(&models.collision)?;
        // Each measure opens the store itself: the native baseline opens it
        // in a process of its own, and sled locks a store to one process.
        drop(store);
        if want(Section::Collision) {
            let runner = native_runner(opts, &mut native, progress)?;
            let r = collision::measure(
                &runtime,
                &loaded,
                &dir.join("store"),
                &runner,
                &policy,
                &models.collision,
                &conn,
                &loaded_data,
                opts.reps,
                progress,
            )?;
            figures.extend(r.figures());
            out_collision = Some(r);
            notes.push(format!(
                "SQLite {} (bundled by rusqlite), file database, 256 MiB page cache, temp store in memory.",
                rusqlite::version()
            ));
            notes.push(format!(
                "Collision SQL (integer fen, see bench/src/sqlite.rs), fastest form:\n\n```sql\n{}\n```",
                out_collision
                    .as_ref()
                    .map(|r: &collision::CollisionResult| r.best_sqlite().0.sql())
                    .unwrap_or_default()
                    .trim()
            ));
        }
        if want(Section::Parallel) {
            progress("parallel: two runs at once and in a row");
            let store = data::open_store(&dir.join("store"))?;
            let r = parallel::measure(
                &runtime,
                &loaded,
                &store,
                &policy,
                &models.collision,
                opts.reps,
            )?;
            figures.extend(r.figures());
        }
    }

    Ok(Outcome {
        report: report::Report {
            machine,
            command: opts.command.clone(),
            scale: opts.scale,
            figures,
            notes,
            load_at_end: machine::load_average(),
            elapsed: started.elapsed(),
        },
        scan: out_scan,
        collision: out_collision,
    })
}

/// The native baseline, built the first time a section needs it: under
/// `bench-native` in the target folder of `exe` (the harness's own binary),
/// beside the workspace's build.
fn native_runner(
    opts: &Options,
    built: &mut Option<native::Runner>,
    progress: &mut dyn FnMut(&str),
) -> Result<native::Runner> {
    if let Some(runner) = built {
        return Ok(runner.clone());
    }
    let folder = if opts.quick_native {
        "bench-native-quick"
    } else {
        "bench-native"
    };
    let target = opts
        .exe
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join(folder))
        .context("the harness's binary is in a target folder")?;
    let runner = native::Runner::build(&target, opts.quick_native, progress)?;
    *built = Some(runner.clone());
    Ok(runner)
}

/// Where `models::build` installed `model`.
fn model_dir(work_dir: &Path, model: &str) -> PathBuf {
    work_dir.join("models").join(model)
}
