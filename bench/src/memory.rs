//! Ingest and memory figures, both measured in child processes: ingest
//! rows per second (and the ingest's own peak memory) for the ten-column
//! file, and the peak resident memory of a whole `jiandu run` of the scan
//! model over datasets of different sizes.

use crate::child::{IngestMeasure, ScanMeasure};
use crate::machine::{mib, per_second, secs};
use crate::report::Figure;
use crate::sqlite;
use std::time::Duration;

/// Minimum ingest rows per second for the ten-column file.
pub const INGEST_TARGET: f64 = 300_000.0;
/// Peak resident memory a scan must stay under, MiB.
pub const MEMORY_TARGET_MIB: u64 = 200;
/// "Flat": the largest scan's peak within this factor of the smallest's.
pub const FLAT_FACTOR: f64 = 1.25;

/// One dataset size: its ingest and two scans of it.
#[derive(Debug, Clone)]
pub struct MemoryPoint {
    pub records: u64,
    pub ingest: IngestMeasure,
    /// The scan model as it is: a lead for 1% of records.
    pub with_leads: ScanMeasure,
    /// The same scan with `min_rate=0`: no leads, only streaming.
    pub without_leads: ScanMeasure,
}

/// The ingest figure: `dataset ingest` of the ten-column file against
/// SQLite loading the same file.
pub fn ingest_figure(file_bytes: u64, ingest: &IngestMeasure, baseline: &sqlite::Load) -> Figure {
    let took = Duration::from_secs_f64(ingest.seconds);
    let rate = ingest.rows as f64 / ingest.seconds.max(1e-9);
    let sqlite_total = baseline.insert + baseline.index;
    Figure {
        section: "Ingest",
        what: format!(
            "CSV, 10 columns, {} rows ({} MiB): types, credit-code check digits, primary key, 1 index",
            ingest.rows,
            file_bytes >> 20
        ),
        jiandu: format!(
            "{} ({}; peak RSS {})",
            per_second(ingest.rows, took),
            secs(took),
            mib(ingest.peak_rss_kib)
        ),
        baseline: format!(
            "SQLite {} ({}: inserts {} + 2 indexes {}; no validation)",
            per_second(baseline.rows, sqlite_total),
            secs(sqlite_total),
            secs(baseline.insert),
            secs(baseline.index)
        ),
        ratio: Some(sqlite_total.as_secs_f64() / ingest.seconds.max(1e-9)),
        ratio_means: "SQLite time ÷ Jiandu time",
        target: "≥ 300,000 rows/s".into(),
        met: Some(rate >= INGEST_TARGET),
    }
}

fn run_peak(m: &ScanMeasure) -> u64 {
    m.run_peak_rss_kib.unwrap_or(m.peak_rss_kib)
}

/// One row per dataset size, the smallest as the baseline of flatness.
pub fn memory_figures(points: &[MemoryPoint]) -> Vec<Figure> {
    let Some(first) = points.first() else {
        return Vec::new();
    };
    let base = first.with_leads.peak_rss_kib.max(1);
    points
        .iter()
        .map(|p| {
            let w = &p.with_leads;
            let q = &p.without_leads;
            let ratio = w.peak_rss_kib as f64 / base as f64;
            let under = w.peak_rss_kib.max(q.peak_rss_kib) < MEMORY_TARGET_MIB * 1024;
            Figure {
                section: "Memory",
                what: format!(
                    "peak RSS of a `jiandu run` of scan-one-percent over {} records ({} leads), own process",
                    p.records, w.leads
                ),
                jiandu: format!(
                    "{} (after compiling the model: {}; during the run: {}; wasm memory {}; run {})",
                    mib(w.peak_rss_kib),
                    mib(w.rss_before_kib),
                    mib(run_peak(w)),
                    mib(w.wasm_memory / 1024),
                    secs(Duration::from_secs_f64(w.seconds))
                ),
                baseline: format!(
                    "no leads (min_rate=0): {} (during the run: {}); ingest of these rows peaked at {}",
                    mib(q.peak_rss_kib),
                    mib(run_peak(q)),
                    mib(p.ingest.peak_rss_kib)
                ),
                ratio: Some(ratio),
                ratio_means: "of the smallest size's peak",
                target: format!("flat (≤ {FLAT_FACTOR}×), < {MEMORY_TARGET_MIB} MiB"),
                met: Some(under && ratio <= FLAT_FACTOR),
            }
        })
        .collect()
}
