//! The ledger at scale: appending to a ledger of a million entries costs
//! what appending to a ledger of a thousand does, and verifying, exporting
//! and importing it take time in proportion to its length.
//!
//! A unit store (`unit init`: entries are signed) is filled with
//! `run-finished` entries shaped as a real run's (a model, four dataset
//! versions with digests, parameters, limits, counts, a leads digest),
//! appended one by one through `ledger::append_unflushed` and flushed every
//! 10,000. Each append is timed as it happens: the in-transaction cost
//! (sign, hash, Merkle frontier, five trees, a checkpoint every 1,000) near
//! the first thousand and near the end. A durable append (`ledger::append`,
//! the same plus sled's flush to disk) is timed 101 times at each size too.
//! `audit verify` is timed as its library call (`stored::verify_with_ledger`,
//! what the command runs: every hash, signature, chain link, checkpoint and
//! the signed head, and the files the entries point at) and, when a
//! `jiandu` binary sits beside this one (`cargo build --release` builds
//! both), as the whole `jiandu audit verify` process (median of three),
//! store opening included,
//! export as `audit::export::export_file` of the whole ledger, import as
//! `audit::import::import_from` of that file into a central store that
//! registered the unit, with the memory the import added at its peak.

use crate::report::Figure;
use anyhow::{ensure, Result};
use jiandu::ledger::{self, DatasetRef, Draft, Kind, ModelRef, Outcome, RunRecord};
use jiandu::Store;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Appends timed at each size.
const SAMPLES: usize = 101;

/// What was measured.
#[derive(Debug, Clone)]
pub struct LedgerFigures {
    pub entries: u64,
    /// Median in-transaction append near 1,000 entries and near the end.
    pub append_small: Duration,
    pub append_large: Duration,
    /// Median durable append (flushed) at 1,000 entries and at the end.
    pub durable_small: Duration,
    pub durable_large: Duration,
    /// Filling the ledger (appends and the periodic flushes).
    pub fill: Duration,
    pub verify: Duration,
    /// `jiandu audit verify` as a process, median of three, if the binary
    /// was found.
    pub verify_process: Option<Duration>,
    pub export: Duration,
    pub export_bytes: u64,
    pub import: Duration,
    /// Memory the import added at its peak (peak RSS during it less RSS
    /// before it), where the kernel lets the peak be reset.
    pub import_peak_kib: Option<u64>,
}

/// A run's `run-finished` entry, as real runs write them.
fn draft(n: u64) -> Draft {
    let dataset = |name: &str, version: u64| DatasetRef {
        name: name.to_string(),
        version,
        digest: format!("{:064x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ version),
        clear_personal: false,
        personal: name == "disabled_employees",
        personal_fields: if name == "disabled_employees" {
            vec!["person_id".into()]
        } else {
            Vec::new()
        },
        seen: Vec::new(),
    };
    let run = RunRecord {
        run_id: format!("20250301T093000.{:03}-4242-{n}", n % 1000),
        model: ModelRef {
            name: "disability-fund-arrears".into(),
            version: "1.0.0".into(),
            wasm_sha256: format!("{:064x}", 0xfeed_u64),
            publisher: None,
            plan: None,
        },
        datasets: vec![
            dataset("employers", 3),
            dataset("social_insurance", 7),
            dataset("disabled_employees", 2),
            dataset("fund_payments", 12),
        ],
        params: BTreeMap::from([
            ("levy_year".to_string(), "2024".to_string()),
            ("ratio".to_string(), "0.015".to_string()),
        ]),
        started_at: "2025-03-01T09:30:00.123+08:00".into(),
        ended_at: Some("2025-03-01T09:30:01.456+08:00".into()),
        fuel_used: Some(1_234_567_890),
        peak_memory: Some(18 << 20),
        records_read: Some(1_250_000),
        leads_count: Some(n % 5000),
        leads_digest: Some(format!("{:064x}", n)),
        outcome: Outcome::Succeeded,
        ..RunRecord::default()
    };
    Draft::run(
        "温宿县人民检察院 (11652922MB1234567X)".into(),
        "张三".into(),
        Kind::RunFinished,
        run,
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Appends `count` entries unflushed, flushing every 10,000; returns the
/// time of each append.
fn fill(
    store: &Store,
    from: u64,
    count: u64,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(count as usize);
    for i in 0..count {
        let t = Instant::now();
        ledger::append_unflushed(store, &draft(from + i), |_| Ok(()))?;
        times.push(t.elapsed());
        if (i + 1) % 10_000 == 0 {
            store.flush()?;
            if (i + 1) % 100_000 == 0 {
                progress(&format!("ledger: {} entries", from + i + 1));
            }
        }
    }
    store.flush()?;
    Ok(times)
}

fn durable(store: &Store, from: u64) -> Result<Duration> {
    let mut times = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES as u64 {
        let t = Instant::now();
        ledger::append(store, &draft(from + i))?;
        times.push(t.elapsed());
    }
    Ok(median(times))
}

/// Builds a ledger of `entries` entries under `dir` and measures it:
/// appends at 1,000 and at the end, verify, export, import.
pub fn measure(dir: &Path, entries: u64, progress: &mut dyn FnMut(&str)) -> Result<LedgerFigures> {
    ensure!(
        entries >= 2_000,
        "the ledger figure needs at least 2,000 entries"
    );
    let _ = std::fs::remove_dir_all(dir);
    let store = Store::open(dir.join("unit"))?;
    jiandu::unit::init(&store, "温宿县人民检察院", "11652922MB1234567X")?;
    let samples = SAMPLES as u64;
    let mut fill_time = Duration::ZERO;
    let mut timed_fill = |store: &Store, from: u64, count: u64, progress: &mut dyn FnMut(&str)| {
        let t = Instant::now();
        let r = fill(store, from, count, progress);
        fill_time += t.elapsed();
        r
    };
    // The first thousand (the last 101 appends timed), then durable
    // appends at a thousand.
    timed_fill(&store, 0, 1_000 - samples, progress)?;
    let near_start = timed_fill(&store, 1_000 - samples, samples, progress)?;
    let durable_small = durable(&store, 10_000_000)?;
    let mut next = 1_000 + samples;

    // On to the end; the last 101 appends timed, then durable ones.
    if entries > next + samples {
        timed_fill(&store, next, entries - samples - next, progress)?;
        next = entries - samples;
    }
    let near_end = timed_fill(&store, next, samples, progress)?;
    let durable_large = durable(&store, 20_000_000)?;
    let total = next + samples * 2;

    progress(&format!("ledger: verifying {total} entries"));
    let t = Instant::now();
    let (v, files) = jiandu::stored::verify_with_ledger(&store, false)?;
    let verify = t.elapsed();
    ensure!(
        files.faults.is_empty(),
        "files do not verify: {:?}",
        files.faults
    );
    ensure!(
        v.problem.is_none(),
        "the ledger does not verify: {:?}",
        v.problem
    );
    ensure!(
        v.entries == total,
        "{} entries verified, not {total}",
        v.entries
    );

    drop(store);
    let verify_process = verify_as_a_process(&dir.join("unit"))?;
    let store = Store::open(dir.join("unit"))?;

    // Export the whole ledger, and import it at a central office that
    // registered the unit; both stream, so memory stays flat.
    progress(&format!("ledger: export and import of {total} entries"));
    let unit = jiandu::unit::current(&store)?.expect("the store has a unit");
    let file = dir.join("export.jsonl");
    let t = Instant::now();
    let e = jiandu::audit::export::export_file(&store, None, &file)?;
    let export = t.elapsed();
    ensure!(
        e.entries == total,
        "{} entries exported, not {total}",
        e.entries
    );
    let export_bytes = std::fs::metadata(&file)?.len();
    drop(store);
    std::fs::remove_dir_all(dir.join("unit")).ok();
    let central = Store::open(dir.join("central"))?;
    let key = jiandu::unit::parse_public_key(&unit.public_key)?;
    jiandu::audit::units::add(&central, &key, &unit.name, &unit.code)?;
    let before = crate::machine::rss_kib().unwrap_or(0);
    let reset = crate::machine::reset_peak_rss();
    let t = Instant::now();
    let input = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&file)?);
    let imported = jiandu::audit::import::import_from(&central, input, "export.jsonl")?;
    let import = t.elapsed();
    let import_peak_kib = reset
        .then(crate::machine::peak_rss_kib)
        .flatten()
        .map(|peak| peak.saturating_sub(before));
    match imported {
        Ok(i) => ensure!(
            i.added == total,
            "{} entries imported, not {total}",
            i.added
        ),
        Err(refusal) => anyhow::bail!("the central office refused the export: {refusal:?}"),
    }
    drop(central);
    std::fs::remove_dir_all(dir).ok();
    Ok(LedgerFigures {
        entries: total,
        append_small: median(near_start),
        append_large: median(near_end),
        durable_small,
        durable_large,
        fill: fill_time,
        verify,
        verify_process,
        export,
        export_bytes,
        import,
        import_peak_kib,
    })
}

/// `jiandu --store STORE audit verify`, median of three, if `jiandu` is
/// beside this binary.
fn verify_as_a_process(store: &Path) -> Result<Option<Duration>> {
    let exe = std::env::current_exe()?.with_file_name("jiandu");
    if !exe.exists() {
        return Ok(None);
    }
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let out = std::process::Command::new(&exe)
            .arg("--store")
            .arg(store)
            .args(["audit", "verify"])
            .output()?;
        times.push(t.elapsed());
        ensure!(
            out.status.success(),
            "jiandu audit verify failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(Some(median(times)))
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

impl LedgerFigures {
    pub fn figures(&self) -> Vec<Figure> {
        let n = self.entries;
        let per_s = |d: Duration| n as f64 / d.as_secs_f64();
        let flat = |small: Duration, large: Duration| large.as_secs_f64() / small.as_secs_f64();
        vec![
            Figure {
                section: "Ledger",
                what: format!("append one entry, in its transaction (signed, Merkle frontier), at {n} entries vs at 1,000; median of {SAMPLES}"),
                jiandu: us(self.append_large),
                baseline: us(self.append_small),
                ratio: Some(flat(self.append_small, self.append_large)),
                ratio_means: "large ÷ small",
                target: "flat (≤ 1.5×)".into(),
                met: Some(flat(self.append_small, self.append_large) <= 1.5),
            },
            Figure {
                section: "Ledger",
                what: format!("append one entry durably (flushed to disk), at {n} vs at 1,000; median of {SAMPLES}"),
                jiandu: us(self.durable_large),
                baseline: us(self.durable_small),
                ratio: Some(flat(self.durable_small, self.durable_large)),
                ratio_means: "large ÷ small",
                target: "flat (≤ 1.5×)".into(),
                met: Some(flat(self.durable_small, self.durable_large) <= 1.5),
            },
            Figure {
                section: "Ledger",
                what: format!("`audit verify` in process (`stored::verify_with_ledger`): {n} signed entries (hashes, signatures, links, checkpoints, signed head, files pointed at)"),
                jiandu: format!("{:.1} s, {:.0} entries/s", self.verify.as_secs_f64(), per_s(self.verify)),
                baseline: "–".into(),
                ratio: None,
                ratio_means: "",
                target: "≥ 50,000 entries/s".into(),
                met: Some(per_s(self.verify) >= 50_000.0),
            },
            Figure {
                section: "Ledger",
                what: format!("`jiandu audit verify` as a process (store opened, chain and the files it points at), {n} signed entries; median of 3"),
                jiandu: self.verify_process.map_or("not measured (no `jiandu` binary beside the bench)".into(), |d| {
                    format!("{:.1} s, {:.0} entries/s", d.as_secs_f64(), per_s(d))
                }),
                baseline: "–".into(),
                ratio: None,
                ratio_means: "",
                target: "≥ 50,000 entries/s".into(),
                met: self.verify_process.map(|d| per_s(d) >= 50_000.0),
            },
            Figure {
                section: "Ledger",
                what: format!("filling the ledger: {n} appends, flushed every 10,000"),
                jiandu: format!("{:.1} s, {:.0} entries/s", self.fill.as_secs_f64(), per_s(self.fill)),
                baseline: "–".into(),
                ratio: None,
                ratio_means: "",
                target: "–".into(),
                met: None,
            },
            Figure {
                section: "Ledger",
                what: format!("`audit export` of the {n} entries ({:.0} MiB file)", self.export_bytes as f64 / (1 << 20) as f64),
                jiandu: format!("{:.1} s, {:.0} entries/s", self.export.as_secs_f64(), per_s(self.export)),
                baseline: "–".into(),
                ratio: None,
                ratio_means: "",
                target: "–".into(),
                met: None,
            },
            Figure {
                section: "Ledger",
                what: format!(
                    "`audit import` of that file at the central office (every entry checked and stored); memory it added at its peak: {}",
                    self.import_peak_kib.map_or("not measured".into(), crate::machine::mib)
                ),
                jiandu: format!("{:.1} s, {:.0} entries/s", self.import.as_secs_f64(), per_s(self.import)),
                baseline: "–".into(),
                ratio: None,
                ratio_means: "",
                target: "–".into(),
                met: None,
            },
        ]
    }
}
