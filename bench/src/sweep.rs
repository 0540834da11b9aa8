//! The 残保金 collision as a unit runs it, at three lead rates: `jiandu run`
//! as a process, typed as a user types it, against the `sqlite3`
//! command-line tool running the same rule as a script that writes its
//! leads into a table. Both sides start cold (a new process that opens its
//! store or database file) and end with their leads durable.
//!
//! The employers are the same count at every rate; 1 %, 5 % and 25 % of
//! them are in arrears. Runs are paired and interleaved (Jiandu first in
//! even rounds, SQLite first in odd ones) and the figures are medians. The
//! first Jiandu run writes every lead as new and is reported apart; later
//! runs find the same leads again (what a unit's scheduled rerun does).

use crate::machine::{children_cpu_time, secs};
use crate::report::Figure;
use crate::runs::{self, LeadSet};
use crate::sqlite::{self, Form, Params};
use crate::{data, models::Models};
use anyhow::{bail, ensure, Context as _, Result};
use jiandu::leads;
use jiandu_demo::generate::disability;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The lead rates, in employers per thousand.
pub const RATES: [u32; 3] = [10, 50, 250];

/// Jiandu must take at most half SQLite's time at a 25 % lead rate.
pub const TARGET_25: f64 = 2.0;
/// … and a third at 5 %.
pub const TARGET_5: f64 = 3.0;
/// A partitioned run (the default: 8 parts per core, taken in turn by one worker per core) against one instance.
pub const TARGET_PARTS: f64 = 1.8;
/// The plan version of the model may take at most twice the Rust model's time.
pub const TARGET_PLAN: f64 = 2.0;

/// One process run: wall time and the CPU time it used.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    pub wall: Duration,
    pub cpu: Duration,
}

/// One lead rate's figures.
#[derive(Debug, Clone)]
pub struct Point {
    /// What ran the SQL.
    pub sqlite: String,
    pub per_mille: u32,
    pub employers: usize,
    pub leads: usize,
    /// The first `jiandu run` on the fresh store (every lead new).
    pub first: Timed,
    /// Later `jiandu run`s (the same leads found again), paired with …
    pub jiandu: Vec<Timed>,
    /// … the `sqlite3` script runs, and …
    pub sqlite_runs: Vec<Timed>,
    /// … `jiandu run --partitions 1` (one instance), and …
    pub single: Vec<Timed>,
    /// … the model's plan version (`plugins/…/plan`), partitioned as the
    /// model is, and …
    pub plan: Vec<Timed>,
    /// … as one instance.
    pub plan_single: Vec<Timed>,
}

/// The median of `v` (NaN when it is empty).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Point {
    fn wall(v: &[Timed]) -> f64 {
        median(v.iter().map(|t| t.wall.as_secs_f64()).collect())
    }

    fn cpu(v: &[Timed]) -> f64 {
        median(v.iter().map(|t| t.cpu.as_secs_f64()).collect())
    }

    /// The median of the paired ratios SQLite time ÷ Jiandu time.
    pub fn ratio(&self) -> f64 {
        median(
            self.jiandu
                .iter()
                .zip(&self.sqlite_runs)
                .map(|(j, s)| s.wall.as_secs_f64() / j.wall.as_secs_f64().max(1e-9))
                .collect(),
        )
    }

    /// The median of the paired ratios one instance's time ÷ the
    /// partitioned run's.
    pub fn parts_ratio(&self) -> f64 {
        median(
            self.jiandu
                .iter()
                .zip(&self.single)
                .map(|(j, s)| s.wall.as_secs_f64() / j.wall.as_secs_f64().max(1e-9))
                .collect(),
        )
    }

    /// The median of the paired ratios plan time ÷ model time.
    fn plan_ratio(plan: &[Timed], model: &[Timed]) -> f64 {
        median(
            plan.iter()
                .zip(model)
                .map(|(p, m)| p.wall.as_secs_f64() / m.wall.as_secs_f64().max(1e-9))
                .collect(),
        )
    }

    fn plan_figure(&self, single: bool) -> Figure {
        let (plan, model, how) = if single {
            (
                &self.plan_single,
                &self.single,
                "one instance each (`--partitions 1`)",
            )
        } else {
            (
                &self.plan,
                &self.jiandu,
                "partitioned as declared, the default 8 parts per core",
            )
        };
        let ratio = Point::plan_ratio(plan, model);
        Figure {
            section: "Sweep",
            what: format!(
                "the 残保金 rule as a plan (`plugins/disability-fund-arrears/plan`, run by the plan interpreter) against the Rust model, {how} ({:.0} % in arrears, the same leads)",
                self.per_mille as f64 / 10.0
            ),
            jiandu: format!(
                "plan {:.3} s, CPU {:.3} s",
                Point::wall(plan),
                Point::cpu(plan)
            ),
            baseline: format!(
                "Rust model {:.3} s, CPU {:.3} s",
                Point::wall(model),
                Point::cpu(model)
            ),
            ratio: Some(ratio),
            ratio_means: "plan time ÷ model time (median of pairs)",
            target: format!("≤ {TARGET_PLAN}×"),
            met: Some(ratio <= TARGET_PLAN),
        }
    }

    pub fn figures(&self) -> Vec<Figure> {
        let ratio = self.parts_ratio();
        vec![
            self.figure(),
            self.plan_figure(false),
            self.plan_figure(true),
            Figure {
                section: "Sweep",
                what: format!(
                    "the same run as one instance (`--partitions 1`) against the default, 8 parts per core ({:.0} % in arrears)",
                    self.per_mille as f64 / 10.0
                ),
                jiandu: format!(
                    "partitioned {:.3} s, CPU {:.3} s",
                    Point::wall(&self.jiandu),
                    Point::cpu(&self.jiandu)
                ),
                baseline: format!(
                    "one instance {:.3} s, CPU {:.3} s",
                    Point::wall(&self.single),
                    Point::cpu(&self.single)
                ),
                ratio: Some(ratio),
                ratio_means: "one instance's time ÷ partitioned time (median of pairs)",
                target: format!("≥ {TARGET_PARTS}×"),
                met: Some(ratio >= TARGET_PARTS),
            },
        ]
    }

    pub fn figure(&self) -> Figure {
        let target = match self.per_mille {
            250 => Some(TARGET_25),
            50 => Some(TARGET_5),
            _ => None,
        };
        let ratio = self.ratio();
        Figure {
            section: "Sweep",
            what: format!(
                "残保金 over {} employers, {:.0} % in arrears ({} leads, equal in both and to the generator's): whole processes, median of {} paired runs",
                self.employers,
                self.per_mille as f64 / 10.0,
                self.leads,
                self.jiandu.len()
            ),
            jiandu: format!(
                "`jiandu run` {:.3} s, CPU {:.3} s (first run, every lead new: {})",
                Point::wall(&self.jiandu),
                Point::cpu(&self.jiandu),
                secs(self.first.wall)
            ),
            baseline: format!(
                "{}: the script writing its leads table {:.3} s, CPU {:.3} s",
                self.sqlite,
                Point::wall(&self.sqlite_runs),
                Point::cpu(&self.sqlite_runs)
            ),
            ratio: Some(ratio),
            ratio_means: "SQLite time ÷ Jiandu time (median of pairs)",
            target: match target {
                Some(t) => format!("≥ {t}×"),
                None => "report".into(),
            },
            met: target.map(|t| ratio >= t),
        }
    }
}

/// The `jiandu` binary beside this one (`target/release/jiandu`).
pub(crate) fn jiandu_binary(bench_exe: &Path) -> Result<PathBuf> {
    let bin = bench_exe
        .parent()
        .context("the benchmark binary has no folder")?
        .join("jiandu");
    ensure!(
        bin.is_file(),
        "{} is missing: build it first (`cargo build --release -p jiandu`)",
        bin.display()
    );
    Ok(bin)
}

/// How the baseline runs a script: the `sqlite3` command-line tool when it
/// is installed, else this binary running it through its bundled SQLite
/// (also a whole process that opens the file, runs the script, exits).
#[derive(Debug, Clone)]
pub enum Sqlite {
    Cli(String),
    Bundled(PathBuf),
}

impl Sqlite {
    pub(crate) fn find(bench_exe: &Path) -> Sqlite {
        match Command::new("sqlite3").arg("--version").output() {
            Ok(out) if out.status.success() => {
                let version = String::from_utf8_lossy(&out.stdout);
                Sqlite::Cli(version.split_whitespace().next().unwrap_or("?").to_string())
            }
            _ => Sqlite::Bundled(bench_exe.to_path_buf()),
        }
    }

    fn command(&self, db: &Path, script: &Path) -> Result<Command> {
        Ok(match self {
            Sqlite::Cli(_) => {
                let mut c = Command::new("sqlite3");
                c.arg(db).stdin(std::fs::File::open(script)?);
                c
            }
            Sqlite::Bundled(exe) => {
                let mut c = Command::new(exe);
                c.args(["child", "sqlite-script", "--db"])
                    .arg(db)
                    .arg("--script")
                    .arg(script);
                c
            }
        })
    }

    pub fn name(&self) -> String {
        match self {
            Sqlite::Cli(v) => format!("the `sqlite3` tool {v}"),
            Sqlite::Bundled(_) => {
                format!(
                    "SQLite {} in a process of its own (`sqlite3` is not installed)",
                    rusqlite::version()
                )
            }
        }
    }
}

/// The script a unit would run: the rule with its parameters written in,
/// its leads into a table, in one transaction. The same cache and temporary
/// store settings as the in-process baseline.
pub fn script(params: &Params) -> String {
    let mut sql = Form::Grouped.sql();
    // Longest names first, so that no name is replaced inside another.
    let mut values = [
        ("min_wage_fen", params.min_wage_fen.to_string()),
        ("small_staff", params.small_staff.to_string()),
        ("levy_year", params.levy_year.to_string()),
        ("data_year", params.data_year.to_string()),
        ("ratio_u", params.ratio_u.to_string()),
        ("cap_fen", params.cap_fen.to_string()),
        ("relief", i64::from(params.relief).to_string()),
        ("low_u", params.low_u.to_string()),
        ("as_of", format!("'{}'", params.as_of)),
    ];
    values.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    for (name, value) in values {
        sql = sql.replace(&format!(":{name}"), &value);
    }
    format!(
        "PRAGMA cache_size = -262144;\nPRAGMA temp_store = MEMORY;\nBEGIN;\nDROP TABLE IF EXISTS leads;\nCREATE TABLE leads AS\n{};\nCOMMIT;\n",
        sql.trim_end()
    )
}

/// Runs `command` to its end, timing it.
fn timed(command: &mut Command) -> Result<Timed> {
    timed_output(command).map(|(t, _)| t)
}

/// [`timed`], keeping what the process wrote to stdout; fails naming the
/// command and its stderr when it exits with an error.
pub(crate) fn timed_output(command: &mut Command) -> Result<(Timed, std::process::Output)> {
    let cpu = children_cpu_time().unwrap_or_default();
    let started = Instant::now();
    let out = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    let wall = started.elapsed();
    if !out.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let cpu = children_cpu_time().unwrap_or_default().saturating_sub(cpu);
    Ok((Timed { wall, cpu }, out))
}

/// Generates, ingests and loads one lead rate's data, then times the two
/// processes `reps` times each, paired.
#[allow(clippy::too_many_arguments)]
pub fn measure_rate(
    work: &Path,
    models: &Models,
    bench_exe: &Path,
    employers: usize,
    per_mille: u32,
    seed: u64,
    reps: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<Point> {
    let jiandu = jiandu_binary(bench_exe)?;
    let sqlite = Sqlite::find(bench_exe);
    let dir = work.join(format!("rate-{per_mille}"));
    let _ = std::fs::remove_dir_all(&dir);
    progress(&format!(
        "sweep: {employers} employers, {per_mille}‰ in arrears: generating"
    ));
    let generated = disability::generate_at_rate(&dir.join("data"), employers, seed, per_mille)
        .with_context(|| format!("generating into {}", dir.display()))?;
    let store_dir = dir.join("store");
    {
        let store = data::open_store(&store_dir)?;
        for file in &generated.files {
            progress(&format!("sweep: ingesting {}", file.path.display()));
            data::ingest_file(&store, &file.dataset, &file.path)?;
        }
    }
    let model = &models.collision;
    let installed = store_dir.join("models").join(&model.manifest.name);
    std::fs::create_dir_all(&installed)?;
    for f in ["model.toml", "model.wasm"] {
        std::fs::copy(model.dir.join(f), installed.join(f))?;
    }
    progress("sweep: building the model's plan version");
    let plan_dir = crate::models::crate_dir(crate::models::COLLISION_MODEL).join("plan");
    let plan_name = format!("{}-plan", model.manifest.name);
    timed(
        Command::new(&jiandu)
            .arg("--store")
            .arg(&store_dir)
            .args(["--quiet", "model", "build"])
            .arg(&plan_dir),
    )
    .with_context(|| format!("building {}", plan_dir.display()))?;
    progress("sweep: loading the same files into SQLite");
    let db = dir.join("sqlite.db");
    {
        let mut conn = sqlite::open(&db)?;
        sqlite::load(&mut conn, &dir.join("data"))?;
    }
    let params = Params::from_model(
        &model
            .manifest
            .resolve_params(&[])
            .map_err(anyhow::Error::msg)?,
    )?;
    let script_path = dir.join("leads.sql");
    std::fs::write(&script_path, script(&params))?;

    let run_named = |name: &str, extra: &[&str]| {
        timed(
            Command::new(&jiandu)
                .env_remove("JIANDU_CONFIG")
                .env("JIANDU_OPERATOR", "bench")
                .arg("--store")
                .arg(&store_dir)
                .args(["--quiet", "run", name])
                .args(extra),
        )
    };
    let run_jiandu = || run_named(&model.manifest.name, &[]);
    let run_single = || run_named(&model.manifest.name, &["--partitions", "1"]);
    let run_plan = || run_named(&plan_name, &[]);
    let run_plan_single = || run_named(&plan_name, &["--partitions", "1"]);
    let run_sqlite = || timed(&mut sqlite.command(&db, &script_path)?);
    progress("sweep: the first run (every lead new)");
    let first = run_jiandu()?;
    // The plan's first run compiles the interpreter into the module cache.
    run_plan()?;
    let mut jiandu_times = Vec::new();
    let mut sqlite_times = Vec::new();
    let mut single_times = Vec::new();
    let mut plan_times = Vec::new();
    let mut plan_single_times = Vec::new();
    for round in 0..reps.max(1) {
        progress(&format!("sweep: round {} of {reps}", round + 1));
        if round % 2 == 0 {
            jiandu_times.push(run_jiandu()?);
            plan_times.push(run_plan()?);
            sqlite_times.push(run_sqlite()?);
            single_times.push(run_single()?);
            plan_single_times.push(run_plan_single()?);
        } else {
            plan_single_times.push(run_plan_single()?);
            single_times.push(run_single()?);
            sqlite_times.push(run_sqlite()?);
            plan_times.push(run_plan()?);
            jiandu_times.push(run_jiandu()?);
        }
    }

    // Both found the generator's leads, to the fen.
    let expected: LeadSet = generated
        .expected
        .iter()
        .map(|e| (e.credit_code.clone(), Some(e.gap)))
        .collect();
    let store = jiandu::Store::open(&store_dir)?;
    let ours = live_leads(&store, &model.manifest.name)?;
    let conn = sqlite::open(&db)?;
    let theirs: LeadSet = conn
        .prepare("SELECT credit_code, gap_fen FROM leads")?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Some(rust_decimal::Decimal::new(r.get::<_, i64>(1)?, 2)),
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let plan_leads = live_leads(&store, &plan_name)?;
    runs::check_agree("expected", &expected, "jiandu run", &ours)?;
    runs::check_agree("jiandu run", &ours, "sqlite3", &theirs)?;
    runs::check_agree("jiandu run", &ours, "the plan version", &plan_leads)?;
    Ok(Point {
        sqlite: sqlite.name(),
        per_mille,
        employers,
        leads: ours.len(),
        first,
        jiandu: jiandu_times,
        sqlite_runs: sqlite_times,
        single: single_times,
        plan: plan_times,
        plan_single: plan_single_times,
    })
}

/// The leads `model` holds now (resolved ones left out), by subject.
fn live_leads(store: &jiandu::Store, model: &str) -> Result<LeadSet> {
    leads::list(
        store,
        &leads::Filter {
            model: Some(model.to_string()),
            status: None,
        },
    )?
    .into_iter()
    .filter(|l| l.status != leads::Status::Resolved)
    .map(|l| {
        let amount = l
            .amount
            .as_deref()
            .map(str::parse)
            .transpose()
            .context("lead amount")?;
        Ok((l.subject, amount))
    })
    .collect()
}

/// Every rate of `rates` (per thousand; [`RATES`] by default).
#[allow(clippy::too_many_arguments)]
pub fn measure(
    work: &Path,
    models: &Models,
    bench_exe: &Path,
    employers: usize,
    rates: &[u32],
    seed: u64,
    reps: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Point>> {
    rates
        .iter()
        .map(|&rate| {
            measure_rate(
                work, models, bench_exe, employers, rate, seed, reps, progress,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_has_every_parameter_written_in() {
        let params = Params {
            levy_year: 2024,
            data_year: 2023,
            ratio_u: 15000,
            low_u: 10000,
            cap_fen: 20_000_000,
            min_wage_fen: 200_000,
            small_staff: 30,
            relief: true,
            as_of: "2024-12-31".into(),
        };
        let s = script(&params);
        assert!(!s.contains(':'), "{s}");
        assert!(s.contains("paid_on <= '2024-12-31'") && s.contains("CREATE TABLE leads AS"));
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
