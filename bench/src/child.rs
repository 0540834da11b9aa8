//! Measurements that need a process of their own: peak resident memory is
//! per process, so each ingest and each scan whose memory is reported runs
//! in a fresh `jiandu-bench child …` and reports one JSON line.

use crate::{data, machine, runs};
use anyhow::{bail, Context as _, Result};
use jiandu::catalog;
use jiandu::policy::Policy;
use jiandu::runtime::Runtime;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// What a child ingest measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestMeasure {
    pub rows: u64,
    pub seconds: f64,
    /// Peak resident memory of the whole process, KiB.
    pub peak_rss_kib: u64,
}

/// What a child scan measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanMeasure {
    pub records: u64,
    pub leads: u64,
    /// The whole `jiandu run`, model already loaded.
    pub seconds: f64,
    /// Resident memory once the model was compiled, before the run, KiB.
    pub rss_before_kib: u64,
    /// Peak resident memory of the whole process, compile included, KiB.
    pub peak_rss_kib: u64,
    /// Peak resident memory during the run alone, KiB (`None` where the
    /// kernel cannot reset the peak).
    pub run_peak_rss_kib: Option<u64>,
    /// Peak linear memory of the model's instance, bytes.
    pub wasm_memory: u64,
}

/// In the child: ingests `file` into `dataset` of the store at `store_dir`.
pub fn ingest(store_dir: &Path, dataset: &str, file: &Path) -> Result<IngestMeasure> {
    let store = data::open_store(store_dir)?;
    let t = Instant::now();
    let report = data::ingest_file(&store, dataset, file)?;
    let seconds = t.elapsed().as_secs_f64();
    Ok(IngestMeasure {
        rows: report.version.records,
        seconds,
        peak_rss_kib: machine::peak_rss_kib().unwrap_or(0),
    })
}

/// In the child: one full run of the model in `model_dir` over the store.
pub fn scan(
    store_dir: &Path,
    model_dir: &Path,
    params: &[(String, String)],
) -> Result<ScanMeasure> {
    let store = data::open_store(store_dir)?;
    let policy = Policy::load(&store.policy_path())?;
    let model = catalog::load_dir(model_dir)?;
    let runtime = Runtime::new(policy.defaults.stack_kib)?;
    let loaded = runtime
        .load(&model)
        .map_err(|e| anyhow::anyhow!("{}: {e}", model.manifest.id()))?;
    let rss_before_kib = machine::rss_kib().unwrap_or(0);
    let load_peak = machine::peak_rss_kib().unwrap_or(0);
    let reset = machine::reset_peak_rss();
    let (elapsed, report) = runs::full_run(&runtime, &loaded, &store, &policy, &model, params)?;
    let run_peak = machine::peak_rss_kib().unwrap_or(0);
    Ok(ScanMeasure {
        records: report.records_read,
        leads: report.leads,
        seconds: elapsed.as_secs_f64(),
        rss_before_kib,
        peak_rss_kib: run_peak.max(load_peak),
        run_peak_rss_kib: reset.then_some(run_peak),
        wasm_memory: report.entry.run.peak_memory.unwrap_or(0),
    })
}

/// How `child run` runs a model. (The native baseline is a binary of its
/// own, `jiandu-bench-native`, built under `target/bench-native`: profile
/// that one.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// The model alone in the sandbox.
    Sandboxed,
    /// A whole `jiandu run`.
    Full,
}

/// In the child: runs a model `times` times over an existing store and
/// returns each run's seconds; for profilers (`perf record -g -- …`).
pub fn run_model(
    store_dir: &Path,
    model_dir: &Path,
    engine: Engine,
    times: usize,
) -> Result<Vec<f64>> {
    let store = data::open_store(store_dir)?;
    let policy = Policy::load(&store.policy_path())?;
    let model = catalog::load_dir(model_dir)?;
    let runtime = Runtime::new(policy.defaults.stack_kib)?;
    let loaded = runtime
        .load(&model)
        .map_err(|e| anyhow::anyhow!("{}: {e}", model.manifest.id()))?;
    let mut out = Vec::new();
    for _ in 0..times {
        let t = match engine {
            Engine::Full => runs::full_run(&runtime, &loaded, &store, &policy, &model, &[])?.0,
            Engine::Sandboxed => {
                runs::sandboxed(&runtime, &loaded, &store, &policy, &model, &[])?.0
            }
        };
        out.push(t.as_secs_f64());
    }
    Ok(out)
}

/// In the parent: runs `exe child <args>` and parses its JSON line.
pub fn spawn<T: for<'de> Deserialize<'de>>(exe: &Path, args: &[&std::ffi::OsStr]) -> Result<T> {
    let out = Command::new(exe)
        .arg("child")
        .args(args)
        .output()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "{} child {:?} failed: {}",
            exe.display(),
            args,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line).with_context(|| format!("child printed `{line}`"))
}
