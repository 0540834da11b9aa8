//! Ingest of the four 残保金 tables as a unit runs it: `jiandu dataset
//! ingest` as a process per table, typed as a user types it, against the
//! `sqlite3` command-line tool's `.import`, also a process per table.
//!
//! The four files come from `jiandu_demo`'s generator at `--scale`
//! employers with 5 % of them in arrears (about 6.5 rows per employer, most
//! of them disabled employees):
//! `employers.csv` (UTF-8 with a BOM), `social_insurance.csv`,
//! `disabled_employees.csv` (GBK) and `fund_payments.jsonl`.
//!
//! - Jiandu: a fresh store each round (created, with the bench policy,
//!   before timing); per table `jiandu --store S --quiet dataset ingest
//!   NAME FILE --schema datasets/NAME.toml` (the first ingest of a dataset
//!   registers its schema, as a unit's first ingest does). Every value is
//!   typed and checked, personal fields pseudonymised, the version synced
//!   and put on the record.
//! - SQLite: a fresh database file each round; per table `sqlite3 -bail DB`
//!   reading a script: the cache settings of the other SQLite baselines, the
//!   table's `CREATE TABLE` from [`crate::sqlite::TABLES`] (primary key,
//!   `WITHOUT ROWID`), then `.import --csv --skip 1 FILE TABLE`. `.import`
//!   checks nothing and converts nothing: it fills columns by position,
//!   takes the GBK file's bytes as they are, and leaves amounts as yuan
//!   (REAL by the `_fen` columns' affinity). It has no JSON Lines reader, so
//!   `fund_payments.jsonl` is converted to CSV once, before timing.
//!
//! Rounds are paired and interleaved (Jiandu first in even rounds, SQLite
//! first in odd ones); the figures are medians. Every round checks that
//! both sides stored every row of every file.

use crate::machine::{per_second, secs};
use crate::report::Figure;
use crate::sweep::{self, median, Sqlite, Timed};
use crate::{data, sqlite};
use anyhow::{bail, ensure, Context as _, Result};
use jiandu_demo::generate::disability;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The rows per second Jiandu is to reach over the four tables together.
pub const TARGET_ROWS_PER_SEC: f64 = 2_000_000.0;

/// The section's name in the report.
pub const SECTION: &str = "Ingest (4 tables)";

/// Employers in arrears, per thousand: the generator's default rate.
pub const PER_MILLE: u32 = 50;

/// The keys of `fund_payments.jsonl`, in the order of the columns of the
/// SQLite table `fund_payments`.
pub const FUND_PAYMENT_KEYS: [&str; 6] = [
    "credit_code",
    "levy_year",
    "payment_id",
    "amount",
    "paid_on",
    "synthetic",
];

/// One table's paired timings.
#[derive(Debug, Clone)]
pub struct Table {
    pub dataset: String,
    /// The file as generated (what `jiandu dataset ingest` reads).
    pub file: PathBuf,
    pub bytes: u64,
    pub rows: u64,
    /// `jiandu dataset ingest` of this table, one per round, paired with …
    pub jiandu: Vec<Timed>,
    /// … `sqlite3`'s `.import` of it.
    pub sqlite: Vec<Timed>,
}

/// What the section measured.
#[derive(Debug, Clone)]
pub struct Ingest4 {
    /// The `sqlite3` tool's version.
    pub sqlite_version: String,
    pub employers: usize,
    /// In the order ingested: employers, social insurance, disabled
    /// employees, fund payments.
    pub tables: Vec<Table>,
}

fn wall(v: &[Timed]) -> f64 {
    median(v.iter().map(|t| t.wall.as_secs_f64()).collect())
}

fn cpu(v: &[Timed]) -> f64 {
    median(v.iter().map(|t| t.cpu.as_secs_f64()).collect())
}

/// The median of the paired ratios SQLite time ÷ Jiandu time.
fn ratio(jiandu: &[Timed], sqlite: &[Timed]) -> f64 {
    median(
        jiandu
            .iter()
            .zip(sqlite)
            .map(|(j, s)| s.wall.as_secs_f64() / j.wall.as_secs_f64().max(1e-9))
            .collect(),
    )
}

/// Jiandu's side of a figure: the rate of the median wall time.
fn jiandu_text(rows: u64, v: &[Timed]) -> String {
    format!(
        "`jiandu dataset ingest` {} ({}, CPU {})",
        rate(rows, wall(v)),
        secs(Duration::from_secs_f64(wall(v))),
        secs(Duration::from_secs_f64(cpu(v)))
    )
}

/// `rows` in `seconds` as a readable rate.
fn rate(rows: u64, seconds: f64) -> String {
    per_second(rows, Duration::from_secs_f64(seconds))
}

impl Ingest4 {
    /// Rows of the four tables together.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    /// Each round's four processes of one side, summed.
    fn totals(&self, side: impl Fn(&Table) -> &[Timed]) -> Vec<Timed> {
        let rounds = self.tables.first().map_or(0, |t| side(t).len());
        (0..rounds)
            .map(|round| Timed {
                wall: self.tables.iter().map(|t| side(t)[round].wall).sum(),
                cpu: self.tables.iter().map(|t| side(t)[round].cpu).sum(),
            })
            .collect()
    }

    /// One figure per table, then the four together against the target.
    pub fn figures(&self) -> Vec<Figure> {
        let mut out: Vec<Figure> = self
            .tables
            .iter()
            .map(|t| Figure {
                section: SECTION,
                what: format!(
                    "`{}` ({}, {} rows, {:.1} MiB): one process each side, median of {} paired rounds",
                    t.dataset,
                    t.file.file_name().unwrap_or_default().to_string_lossy(),
                    t.rows,
                    t.bytes as f64 / (1024.0 * 1024.0),
                    t.jiandu.len()
                ),
                jiandu: jiandu_text(t.rows, &t.jiandu),
                baseline: self.sqlite_text(t.rows, &t.sqlite),
                ratio: Some(ratio(&t.jiandu, &t.sqlite)),
                ratio_means: "SQLite time ÷ Jiandu time (median of pairs)",
                target: "report".into(),
                met: None,
            })
            .collect();
        let jiandu = self.totals(|t| &t.jiandu);
        let sqlite = self.totals(|t| &t.sqlite);
        let rows = self.rows();
        let rows_per_sec = rows as f64 / wall(&jiandu).max(1e-9);
        out.push(Figure {
            section: SECTION,
            what: format!(
                "the four 残保金 tables at {} employers, {:.0} % in arrears: {} rows, four processes each side (the sum of a round's four), median of {} paired rounds; fund_payments.jsonl converted to CSV for sqlite3 before timing",
                self.employers,
                PER_MILLE as f64 / 10.0,
                rows,
                jiandu.len()
            ),
            jiandu: jiandu_text(rows, &jiandu),
            baseline: self.sqlite_text(rows, &sqlite),
            ratio: Some(ratio(&jiandu, &sqlite)),
            ratio_means: "SQLite time ÷ Jiandu time (median of pairs)",
            target: "≥ 2M rows/s".into(),
            met: Some(rows_per_sec >= TARGET_ROWS_PER_SEC),
        });
        out
    }

    /// SQLite's side of a figure: the rate of the median wall time.
    fn sqlite_text(&self, rows: u64, v: &[Timed]) -> String {
        format!(
            "`sqlite3` {} `.import` {} ({}, CPU {})",
            self.sqlite_version,
            rate(rows, wall(v)),
            secs(Duration::from_secs_f64(wall(v))),
            secs(Duration::from_secs_f64(cpu(v)))
        )
    }

    /// How the figures were taken, for the report's notes.
    pub fn note(&self) -> String {
        "Ingest (4 tables): Jiandu ingests each table with `jiandu --store S --quiet dataset ingest NAME FILE --schema datasets/NAME.toml` into a fresh store per round (created with the bench policy before timing): values typed and checked, personal fields pseudonymised, the version synced and put on the record. SQLite: per table `sqlite3 -bail DB` on a fresh database file per round, reading `PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY;`, the table's `CREATE TABLE` of bench/src/sqlite.rs (primary key, WITHOUT ROWID) and `.import --csv --skip 1 FILE TABLE`; `.import` checks and converts nothing (columns by position; disabled_employees.csv's GBK bytes stored as they are; amounts stay yuan, REAL by the `_fen` columns' affinity; employers.csv's BOM goes with the skipped header). Both sides' row counts (`jiandu`'s ingest report, `SELECT count(*)`) equal the generator's in every round. Wall and CPU time of whole processes (CPU from the children's times in /proc/self/stat); no peak memory (the harness measures it only inside its own processes).".into()
    }
}

/// Writes JSON Lines `from` as CSV `to` for `sqlite3`'s `.import`: a header
/// of `keys`, then for each non-blank line the values of `keys` in that
/// order (strings as they are, numbers and booleans as JSON writes them,
/// null or absent as an empty field), quoted where CSV needs it. Returns
/// the rows written.
pub fn jsonl_to_csv(from: &Path, to: &Path, keys: &[&str]) -> Result<u64> {
    let input = std::fs::File::open(from).with_context(|| format!("{}", from.display()))?;
    let output = std::fs::File::create(to).with_context(|| format!("{}", to.display()))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 20, output));
    w.write_record(keys)?;
    let mut rows = 0;
    let mut cells: Vec<String> = Vec::with_capacity(keys.len());
    for (i, line) in std::io::BufReader::with_capacity(1 << 20, input)
        .lines()
        .enumerate()
    {
        let line = line.with_context(|| format!("{}:{}", from.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&line).with_context(|| format!("{}:{}", from.display(), i + 1))?;
        cells.clear();
        cells.extend(keys.iter().map(|k| match value.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            None | Some(serde_json::Value::Null) => String::new(),
            Some(other) => other.to_string(),
        }));
        w.write_record(&cells)?;
        rows += 1;
    }
    w.into_inner()
        .map_err(|e| anyhow::anyhow!("{}: {e}", to.display()))?
        .flush()?;
    Ok(rows)
}

/// The script one `sqlite3` process reads: create `dataset`'s table and
/// import `csv` into it.
fn import_script(dataset: &str, csv: &Path) -> Result<String> {
    let create = sqlite::create_table(dataset)
        .with_context(|| format!("bench/src/sqlite.rs has no table for `{dataset}`"))?;
    let path = csv.to_str().context("the CSV path is not UTF-8")?;
    // Single quotes take a dot-command's argument literally.
    ensure!(
        !path.contains('\''),
        "`{path}` contains a single quote, which `.import` cannot be given"
    );
    Ok(format!(
        "PRAGMA cache_size = -262144;\nPRAGMA temp_store = MEMORY;\n{create}\n.import --csv --skip 1 '{path}' {dataset}\n"
    ))
}

/// The record count of `jiandu dataset ingest`'s report line
/// "ingested N records into …".
fn ingested_records(stdout: &str) -> Option<u64> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("ingested "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// One table, ready to time: its file for each side and its script.
struct Prepared {
    dataset: String,
    file: PathBuf,
    script: PathBuf,
    rows: u64,
}

/// Generates the four tables for `employers` employers and times both
/// sides' ingest of them in `reps` paired rounds. `None` when the `sqlite3`
/// tool is not installed (the baseline is its `.import`).
pub fn measure(
    work: &Path,
    bench_exe: &Path,
    employers: usize,
    seed: u64,
    reps: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<Option<Ingest4>> {
    let Sqlite::Cli(sqlite_version) = Sqlite::find(bench_exe) else {
        return Ok(None);
    };
    let jiandu = sweep::jiandu_binary(bench_exe)?;
    let _ = std::fs::remove_dir_all(work);
    let data_dir = work.join("data");
    progress(&format!(
        "ingest4: generating the four tables for {employers} employers"
    ));
    let generated = disability::generate_at_rate(&data_dir, employers, seed, PER_MILLE)
        .with_context(|| format!("generating into {}", data_dir.display()))?;
    let schemas = crate::models::repo_root().join("datasets");
    let mut prepared = Vec::new();
    for file in &generated.files {
        let csv = if file.path.extension().is_some_and(|e| e == "jsonl") {
            progress(&format!(
                "ingest4: converting {} to CSV for sqlite3",
                file.path.display()
            ));
            let csv = work.join(format!("{}.csv", file.dataset));
            let rows = jsonl_to_csv(&file.path, &csv, &FUND_PAYMENT_KEYS)?;
            ensure!(
                rows == file.rows as u64,
                "{}: {rows} rows converted, {} generated",
                file.path.display(),
                file.rows
            );
            csv
        } else {
            file.path.clone()
        };
        let script = work.join(format!("import-{}.sql", file.dataset));
        std::fs::write(&script, import_script(&file.dataset, &csv)?)?;
        prepared.push(Prepared {
            dataset: file.dataset.clone(),
            file: file.path.clone(),
            script,
            rows: file.rows as u64,
        });
    }

    let store_dir = work.join("store");
    let db = work.join("sqlite.db");
    // One round of Jiandu: a fresh store, one process per table.
    let run_jiandu = || -> Result<Vec<Timed>> {
        let _ = std::fs::remove_dir_all(&store_dir);
        data::open_store(&store_dir)?;
        prepared
            .iter()
            .map(|t| {
                let (took, out) = sweep::timed_output(
                    Command::new(&jiandu)
                        .env_remove("JIANDU_CONFIG")
                        .env("JIANDU_OPERATOR", "bench")
                        .arg("--store")
                        .arg(&store_dir)
                        .args(["--quiet", "dataset", "ingest", &t.dataset])
                        .arg(&t.file)
                        .arg("--schema")
                        .arg(schemas.join(format!("{}.toml", t.dataset))),
                )?;
                let stdout = String::from_utf8_lossy(&out.stdout);
                let records = ingested_records(&stdout).with_context(|| {
                    format!(
                        "`jiandu dataset ingest {}` printed no record count: {stdout}",
                        t.dataset
                    )
                })?;
                ensure!(
                    records == t.rows,
                    "`jiandu dataset ingest {}` stored {records} records of {} rows: {}",
                    t.dataset,
                    t.rows,
                    String::from_utf8_lossy(&out.stderr)
                );
                Ok(took)
            })
            .collect()
    };
    // One round of SQLite: a fresh database file, one process per table.
    let run_sqlite = || -> Result<Vec<Timed>> {
        if db.exists() {
            std::fs::remove_file(&db).with_context(|| format!("{}", db.display()))?;
        }
        let times = prepared
            .iter()
            .map(|t| {
                let script = std::fs::File::open(&t.script)
                    .with_context(|| format!("{}", t.script.display()))?;
                let mut command = Command::new("sqlite3");
                command.arg("-bail").arg(&db).stdin(script);
                let (took, out) = sweep::timed_output(&mut command)?;
                // `.import` reports a bad row on stderr and goes on.
                if !out.stderr.is_empty() {
                    bail!(
                        "sqlite3 {} < {}: {}",
                        db.display(),
                        t.script.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
                Ok(took)
            })
            .collect::<Result<Vec<_>>>()?;
        let conn = rusqlite::Connection::open(&db)?;
        for t in &prepared {
            let count: i64 =
                conn.query_row(&format!("SELECT count(*) FROM {}", t.dataset), [], |r| {
                    r.get(0)
                })?;
            ensure!(
                count as u64 == t.rows,
                "sqlite3 imported {count} rows into `{}` of {} rows",
                t.dataset,
                t.rows
            );
        }
        Ok(times)
    };

    let mut jiandu_rounds = Vec::new();
    let mut sqlite_rounds = Vec::new();
    for round in 0..reps.max(1) {
        progress(&format!("ingest4: round {} of {}", round + 1, reps.max(1)));
        if round % 2 == 0 {
            jiandu_rounds.push(run_jiandu()?);
            sqlite_rounds.push(run_sqlite()?);
        } else {
            sqlite_rounds.push(run_sqlite()?);
            jiandu_rounds.push(run_jiandu()?);
        }
    }
    let tables = prepared
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            Ok(Table {
                bytes: std::fs::metadata(&t.file)
                    .with_context(|| format!("{}", t.file.display()))?
                    .len(),
                jiandu: jiandu_rounds.iter().map(|r| r[i]).collect(),
                sqlite: sqlite_rounds.iter().map(|r| r[i]).collect(),
                dataset: t.dataset,
                file: t.file,
                rows: t.rows,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Some(Ingest4 {
        sqlite_version,
        employers,
        tables,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_become_csv_quoted_where_needed() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("p.jsonl");
        let to = dir.path().join("p.csv");
        std::fs::write(
            &from,
            concat!(
                r#"{"credit_code":"91A","levy_year":2024,"payment_id":"a,\"b\"","amount":"1.50","paid_on":null,"synthetic":true}"#,
                "\n\n",
                r#"{"levy_year":2023,"credit_code":"91B","payment_id":"两\n行","amount":"20000.00","paid_on":"2024-03-01"}"#,
                "\n"
            ),
        )
        .unwrap();
        assert_eq!(jsonl_to_csv(&from, &to, &FUND_PAYMENT_KEYS).unwrap(), 2);
        assert_eq!(
            std::fs::read_to_string(&to).unwrap(),
            concat!(
                "credit_code,levy_year,payment_id,amount,paid_on,synthetic\n",
                "91A,2024,\"a,\"\"b\"\"\",1.50,,true\n",
                "91B,2023,\"两\n行\",20000.00,2024-03-01,\n"
            )
        );
    }

    #[test]
    fn the_import_script_creates_the_table_then_imports() {
        let s = import_script("fund_payments", Path::new("/w/fund_payments.csv")).unwrap();
        assert!(s.contains("CREATE TABLE fund_payments"), "{s}");
        assert!(
            s.ends_with(".import --csv --skip 1 '/w/fund_payments.csv' fund_payments\n"),
            "{s}"
        );
        assert!(import_script("nope", Path::new("/w/x.csv")).is_err());
        assert!(import_script("employers", Path::new("/w/it's.csv")).is_err());
    }

    #[test]
    fn the_record_count_is_read_from_the_ingest_report() {
        let out =
            "ingested 2700 records into `employers` version 1 (digest ab12)\n  2701 lines: …\n";
        assert_eq!(ingested_records(out), Some(2700));
        assert_eq!(ingested_records("nothing"), None);
    }
}
