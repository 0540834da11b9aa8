//! Collision: the 残保金 model over the four joined sample datasets, as a
//! whole `jiandu run`, against the same rule as SQL in SQLite over the
//! same files. Every engine's leads are checked against each other and
//! against the generator's own answer, to the fen.

use crate::machine::{per_second, secs};
use crate::native::Runner;
use crate::report::Figure;
use crate::runs::{self, LeadSet};
use crate::sqlite::{self, Form};
use anyhow::Result;
use jiandu::catalog::Installed;
use jiandu::policy::Policy;
use jiandu::runtime::{Loaded, Runtime};
use jiandu::Store;
use jiandu_demo::generate::disability::Generated;
use rusqlite::Connection;
use std::path::Path;
use std::time::{Duration, Instant};

/// Jiandu must beat the fastest SQLite form: time ratio > 1.
pub const TARGET: f64 = 1.0;

/// How many leads each engine produced (they are checked to be the same
/// subjects and amounts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    pub expected: usize,
    pub wasm: usize,
    pub native: usize,
    pub sqlite: usize,
}

#[derive(Debug, Clone)]
pub struct CollisionResult {
    pub employers: usize,
    pub records_read: u64,
    pub agreement: Agreement,
    /// Rows of the four files and the time `dataset ingest` took for them.
    pub ingest_rows: u64,
    pub ingest: Duration,
    pub sqlite_load: sqlite::Load,
    /// A whole `jiandu run`: ledger entries, sandboxed model, leads commit.
    pub full_run: Duration,
    /// The model alone in the sandbox.
    pub sandboxed: Duration,
    pub native: Duration,
    pub sqlite: Vec<(Form, Duration)>,
}

/// Generated, ingested and loaded data for the collision.
pub struct CollisionData {
    pub generated: Generated,
    pub ingest_rows: u64,
    pub ingest: Duration,
    pub sqlite_load: sqlite::Load,
}

/// Ingests the generated files into `store` and loads them into `conn`.
pub fn load(
    store: &Store,
    conn: &mut Connection,
    generated: Generated,
    progress: &mut dyn FnMut(&str),
) -> Result<CollisionData> {
    let mut ingest = Duration::ZERO;
    let mut ingest_rows = 0;
    for file in &generated.files {
        progress(&format!(
            "ingesting {} ({} rows)",
            file.path.display(),
            file.rows
        ));
        let t = Instant::now();
        let report = crate::data::ingest_file(store, &file.dataset, &file.path)?;
        ingest += t.elapsed();
        ingest_rows += report.version.records;
    }
    progress("loading the same files into SQLite");
    let dir = generated.files[0]
        .path
        .parent()
        .expect("generated files are in a folder")
        .to_path_buf();
    let sqlite_load = sqlite::load(conn, &dir)?;
    Ok(CollisionData {
        generated,
        ingest_rows,
        ingest,
        sqlite_load,
    })
}

/// Runs every engine `reps` times (best time kept) and checks their leads.
/// The store at `store_dir` is opened for each round's sandboxed runs and
/// closed before the native one (built with the models' profile,
/// [`Runner`]), which opens it in its own process.
#[allow(clippy::too_many_arguments)]
pub fn measure(
    runtime: &Runtime,
    loaded: &Loaded,
    store_dir: &Path,
    native_runner: &Runner,
    policy: &Policy,
    model: &Installed,
    conn: &Connection,
    data: &CollisionData,
    reps: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<CollisionResult> {
    let expected: LeadSet = data
        .generated
        .expected
        .iter()
        .map(|e| (e.credit_code.clone(), Some(e.gap)))
        .collect();
    let params = sqlite::Params::from_model(
        &model
            .manifest
            .resolve_params(&[])
            .map_err(anyhow::Error::msg)?,
    )?;
    let mut full_run = Duration::MAX;
    let mut sandboxed = Duration::MAX;
    let mut native = Duration::MAX;
    let mut sql = [Duration::MAX; 2];
    let mut records_read = 0;
    let mut agreement = None;
    // Interleaved, so that a burst of load on a shared machine hits all.
    for rep in 0..reps.max(1) {
        progress(&format!("collision round {} of {reps}", rep + 1));
        let (committed, wasm) = {
            let store = crate::data::open_store(store_dir)?;
            let (t, report) = runs::full_run(runtime, loaded, &store, policy, model, &[])?;
            full_run = full_run.min(t);
            records_read = report.records_read;
            let committed = runs::committed_leads(&store, &model.manifest.name, &report.run_id)?;

            let (t, finished) = runs::sandboxed(runtime, loaded, &store, policy, model, &[])?;
            sandboxed = sandboxed.min(t);
            (committed, runs::emitted_set(&finished.session.leads)?)
        };

        let out = native_runner.run(store_dir, policy, model, &[], 1)?;
        native = native.min(out.times[0]);
        let nat = out.leads;

        let mut sqlite_sets = Vec::new();
        for (i, form) in Form::ALL.iter().enumerate() {
            let (t, rows) = sqlite::query(conn, *form, &params)?;
            sql[i] = sql[i].min(t);
            let set: LeadSet = rows.into_iter().map(|(k, v)| (k, Some(v))).collect();
            sqlite_sets.push((form.name(), set));
        }

        runs::check_agree("expected", &expected, "jiandu run", &committed)?;
        runs::check_agree("jiandu run", &committed, "sandboxed model", &wasm)?;
        runs::check_agree("sandboxed model", &wasm, "native model", &nat)?;
        for (name, set) in &sqlite_sets {
            runs::check_agree("native model", &nat, &format!("SQLite ({name})"), set)?;
        }
        agreement = Some(Agreement {
            expected: expected.len(),
            wasm: committed.len(),
            native: nat.len(),
            sqlite: sqlite_sets[0].1.len(),
        });
    }
    Ok(CollisionResult {
        employers: data.generated.employers,
        records_read,
        agreement: agreement.expect("at least one round"),
        ingest_rows: data.ingest_rows,
        ingest: data.ingest,
        sqlite_load: data.sqlite_load.clone(),
        full_run,
        sandboxed,
        native,
        sqlite: Form::ALL.iter().copied().zip(sql).collect(),
    })
}

impl CollisionResult {
    /// The fastest SQLite form.
    pub fn best_sqlite(&self) -> (Form, Duration) {
        *self
            .sqlite
            .iter()
            .min_by_key(|(_, t)| *t)
            .expect("both forms ran")
    }

    pub fn figures(&self) -> Vec<Figure> {
        let (form, best) = self.best_sqlite();
        let other: Vec<String> = self
            .sqlite
            .iter()
            .filter(|(f, _)| *f != form)
            .map(|(f, t)| format!("{}: {}", f.name(), secs(*t)))
            .collect();
        let ratio = best.as_secs_f64() / self.full_run.as_secs_f64().max(1e-9);
        let a = &self.agreement;
        vec![
            Figure {
                section: "Collision",
                what: format!(
                    "残保金 over {} employers, 4 datasets ({} records read); {} leads, identical in all engines and equal to the generator's",
                    self.employers, self.records_read, a.wasm
                ),
                jiandu: format!("`jiandu run` {} (model alone in the sandbox: {})", secs(self.full_run), secs(self.sandboxed)),
                baseline: format!(
                    "SQLite {} ({}; {})",
                    secs(best),
                    form.name(),
                    other.join(", ")
                ),
                ratio: Some(ratio),
                ratio_means: "SQLite time ÷ Jiandu time",
                target: format!("> {TARGET}× (Jiandu faster)"),
                met: Some(ratio > TARGET),
            },
            Figure {
                section: "Collision",
                what: "the same model natively, same store".into(),
                jiandu: format!("sandboxed {}", secs(self.sandboxed)),
                baseline: format!("native {}", secs(self.native)),
                ratio: Some(self.native.as_secs_f64() / self.sandboxed.as_secs_f64().max(1e-9)),
                ratio_means: "wasm ÷ native throughput",
                target: "report".into(),
                met: None,
            },
            Figure {
                section: "Collision",
                what: format!("loading the four files ({} rows)", self.ingest_rows),
                jiandu: format!(
                    "`dataset ingest` {} ({})",
                    secs(self.ingest),
                    per_second(self.ingest_rows, self.ingest)
                ),
                baseline: format!(
                    "SQLite inserts into key-clustered tables {} + ANALYZE {} ({} MiB file)",
                    secs(self.sqlite_load.insert),
                    secs(self.sqlite_load.index),
                    self.sqlite_load.db_bytes >> 20
                ),
                ratio: None,
                ratio_means: "",
                target: "report (not timed in the comparison)".into(),
                met: None,
            },
        ]
    }
}
