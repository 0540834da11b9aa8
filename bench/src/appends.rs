//! A dataset built from daily increments: 365 `--append` ingests (each a
//! new segment; past 16 segments ingest compacts them into one), then a
//! full scan of the current version and 100,000 lookups by key, against
//! the same records ingested as one file (one segment).
//!
//! Both stores are filled through the library call `jiandu dataset ingest`
//! makes (`ingest::ingest`, on the record). The scan is
//! `VersionReader::records` (every record with its key, segments merged by
//! key); the lookups are `VersionReader::get` of keys drawn at random.

use crate::report::Figure;
use anyhow::Result;
use jiandu::dataset::{ingest, Schema, VersionReader};
use jiandu::Store;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

const DAYS: u64 = 365;
const LOOKUPS: usize = 100_000;

const SCHEMA: &str = r#"
name = "sightings"
department = "公安"
primary_key = ["id"]
[[fields]]
name = "id"
type = "string"
[[fields]]
name = "place"
type = "string"
[[fields]]
name = "day"
type = "int"
[indexes]
by_place = "place"
"#;

/// What was measured.
pub struct AppendFigures {
    pub records: u64,
    pub segments: usize,
    pub compactions: u64,
    pub appends: Duration,
    pub scan_appended: Duration,
    pub scan_single: Duration,
    pub lookups_appended: Duration,
    pub lookups_single: Duration,
    /// The same appends with compaction left out: 365 segments.
    pub scan_uncompacted: Duration,
    pub lookups_uncompacted: Duration,
}

/// Day `d`'s file: `per_day` new keys, and every 10th key of the day
/// before seen again (a row that replaces an older one).
fn day_file(path: &Path, d: u64, per_day: u64) -> Result<()> {
    let mut text = String::from("id,place,day\n");
    for i in 0..per_day {
        writeln!(text, "s{:07},p{},{d}", d * per_day + i, (d * 7 + i) % 97)?;
    }
    if d > 0 {
        for i in (0..per_day).step_by(10) {
            writeln!(text, "s{:07},moved,{d}", (d - 1) * per_day + i)?;
        }
    }
    std::fs::write(path, text)?;
    Ok(())
}

fn ingest_file(store: &Store, path: &Path, append: bool) -> Result<ingest::Report> {
    let opts = ingest::Options {
        operator: "jiandu-bench".into(),
        append,
        schema: Some(Schema::parse("sightings.toml", SCHEMA)?),
        ..Default::default()
    };
    let unit = jiandu::policy::store_unit_label(store)?;
    Ok(jiandu::ingest::ingest(
        store,
        "sightings",
        path,
        &opts,
        unit,
    )?)
}

fn scan(store: &Store) -> Result<(Duration, u64)> {
    let r = VersionReader::current(store, "sightings")?;
    let t = Instant::now();
    let mut n = 0;
    for item in r.records() {
        item?;
        n += 1;
    }
    Ok((t.elapsed(), n))
}

fn lookups(store: &Store, keys: &[String]) -> Result<Duration> {
    let r = VersionReader::current(store, "sightings")?;
    let t = Instant::now();
    for k in keys {
        anyhow::ensure!(r.get(k)?.is_some(), "key {k} not found");
    }
    Ok(t.elapsed())
}

pub fn measure(dir: &Path, records: u64, progress: &mut dyn FnMut(&str)) -> Result<AppendFigures> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let per_day = (records / DAYS).max(1);
    let appended = Store::open(dir.join("appended"))?;
    let file = dir.join("day.csv");
    let mut compactions = 0;
    let t = Instant::now();
    for d in 0..DAYS {
        if d % 73 == 0 {
            progress(&format!("appends: day {d} of {DAYS}"));
        }
        day_file(&file, d, per_day)?;
        let report = ingest_file(&appended, &file, d > 0)?;
        compactions += u64::from(report.compacted.is_some());
    }
    let appends = t.elapsed();
    // The same appends, never compacted (stored without the ingest's
    // compaction: the store's own staging, made current directly).
    progress("appends: the same appends, never compacted");
    let uncompacted = Store::open(dir.join("uncompacted"))?;
    for d in 0..DAYS {
        day_file(&file, d, per_day)?;
        let opts = ingest::Options {
            append: d > 0,
            schema: Some(Schema::parse("sightings.toml", SCHEMA)?),
            ..Default::default()
        };
        let (staged, _) = ingest::stage(&uncompacted, "sightings", &file, &opts)?;
        staged.commit(&uncompacted)?;
    }
    // The same records in one file.
    progress("appends: the same records as one file");
    let all = dir.join("all.csv");
    {
        let current = VersionReader::current(&appended, "sightings")?;
        let mut text = String::from("id,place,day\n");
        for item in current.records() {
            let (key, record) = item?;
            let rec = jiandu_sdk::record::RecordRef::new(&record)?;
            let place = rec.field(1)?.map(|v| v.to_string()).unwrap_or_default();
            let day = rec.field(2)?.map(|v| v.to_string()).unwrap_or_default();
            writeln!(text, "{},{place},{day}", String::from_utf8_lossy(&key))?;
        }
        std::fs::write(&all, text)?;
    }
    let single = Store::open(dir.join("single"))?;
    ingest_file(&single, &all, false)?;
    let segments = VersionReader::current(&appended, "sightings")?
        .info()
        .segments
        .len();
    // Keys drawn with a fixed xorshift, the same for both.
    let total = per_day * DAYS;
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let keys: Vec<String> = (0..LOOKUPS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("s{:07}", x % total)
        })
        .collect();
    progress("appends: scans and lookups");
    let best = |f: &dyn Fn() -> Result<Duration>| -> Result<Duration> {
        let mut b = Duration::MAX;
        for _ in 0..3 {
            b = b.min(f()?);
        }
        Ok(b)
    };
    let scan_appended = best(&|| Ok(scan(&appended)?.0))?;
    let scan_single = best(&|| Ok(scan(&single)?.0))?;
    let lookups_appended = best(&|| lookups(&appended, &keys))?;
    let lookups_single = best(&|| lookups(&single, &keys))?;
    let scan_uncompacted = best(&|| Ok(scan(&uncompacted)?.0))?;
    let lookups_uncompacted = best(&|| lookups(&uncompacted, &keys))?;
    let (_, n) = scan(&single)?;
    drop((appended, single, uncompacted));
    std::fs::remove_dir_all(dir).ok();
    Ok(AppendFigures {
        records: n,
        segments,
        compactions,
        appends,
        scan_appended,
        scan_single,
        lookups_appended,
        lookups_single,
        scan_uncompacted,
        lookups_uncompacted,
    })
}

impl AppendFigures {
    pub fn figures(&self) -> Vec<Figure> {
        let ratio = |a: Duration, s: Duration| a.as_secs_f64() / s.as_secs_f64();
        let secs = |d: Duration| format!("{:.3} s", d.as_secs_f64());
        vec![
            Figure {
                section: "Appends",
                what: format!(
                    "scan of {} records built by {DAYS} daily appends ({} segments now; {} compactions on the way; the appends took {:.1} s) vs the same records in one segment",
                    self.records,
                    self.segments,
                    self.compactions,
                    self.appends.as_secs_f64()
                ),
                jiandu: secs(self.scan_appended),
                baseline: secs(self.scan_single),
                ratio: Some(ratio(self.scan_appended, self.scan_single)),
                ratio_means: "appended ÷ one segment",
                target: "close to one segment".into(),
                met: None,
            },
            Figure {
                section: "Appends",
                what: format!(
                    "{LOOKUPS} lookups by key, the same two versions (never compacted, {DAYS} segments: scan {}, lookups {})",
                    secs(self.scan_uncompacted),
                    secs(self.lookups_uncompacted)
                ),
                jiandu: secs(self.lookups_appended),
                baseline: secs(self.lookups_single),
                ratio: Some(ratio(self.lookups_appended, self.lookups_single)),
                ratio_means: "appended ÷ one segment",
                target: "close to one segment".into(),
                met: None,
            },
        ]
    }
}
