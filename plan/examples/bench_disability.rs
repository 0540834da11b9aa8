//! Times the 残保金 plan against the same rule hand-written in Rust, both
//! reading the same synthetic rows through [`Input`]: the ratio is the
//! plan interpreter's overhead over a native merge loop.
//!
//! `cargo run --release --example bench_disability -- [employers]`
//! (default 1,000,000). Prints both times (best of `RUNS`, default 3,
//! alternating), wall clock and CPU, their ratios and peak memory.
//! `PLAN_ONLY=1` or `NATIVE_ONLY=1` runs one side once and prints
//! nothing, for a profiler.

use jiandu_plan::exec::{Input, Lead, LeadSink, Scan};
use jiandu_plan::{check_plan, Catalog, Plan, Value};
use rust_decimal::{Decimal, RoundingStrategy};
use std::fmt::Write as _;
use std::time::Instant;

const PLAN: &str = include_str!("../../plugins/disability-fund-arrears/plan/rule.plan.toml");
const MODEL: &str = include_str!("../../plugins/disability-fund-arrears/model.toml");
const SCHEMAS: [&str; 4] = [
    include_str!("../../datasets/employers.toml"),
    include_str!("../../datasets/social_insurance.toml"),
    include_str!("../../datasets/disabled_employees.toml"),
    include_str!("../../datasets/fund_payments.toml"),
];

/// Rows made up on the fly, sorted by credit code, the same every run.
struct Synthetic {
    employers: u64,
}

struct Gen {
    dataset: &'static str,
    k: u64,
    sub: u64,
    n: u64,
    code: String,
}

impl Input for Synthetic {
    fn scan(
        &mut self,
        dataset: &str,
        _fields: &[&str],
    ) -> Result<Box<dyn Scan>, jiandu_plan::error::HostError> {
        let dataset = match dataset {
            "employers" => "employers",
            "social_insurance" => "social_insurance",
            "disabled_employees" => "disabled_employees",
            _ => "fund_payments",
        };
        Ok(Box::new(Gen {
            dataset,
            k: 0,
            sub: 0,
            n: self.employers,
            code: String::new(),
        }))
    }
}

impl Gen {
    /// Rows per employer for this dataset.
    fn rows(&self, k: u64) -> u64 {
        match self.dataset {
            "employers" => 1,
            "social_insurance" => 2,
            "disabled_employees" => [0, 1, 0, 3][(k % 4) as usize],
            _ => 1 + k % 2,
        }
    }
}

impl Scan for Gen {
    fn next_row(&mut self, row: &mut [Value]) -> Result<bool, jiandu_plan::error::HostError> {
        while self.k < self.n && self.sub >= self.rows(self.k) {
            self.k += 1;
            self.sub = 0;
        }
        if self.k >= self.n {
            return Ok(false);
        }
        let (k, j) = (self.k, self.sub);
        self.sub += 1;
        self.code.clear();
        let _ = write!(self.code, "91{k:016}");
        row[0].set_str(&self.code);
        match self.dataset {
            "employers" => {
                let _ = write!(self.code, "公司");
                row[1].set_str(&self.code);
                row[2].set_str(if k % 10 == 0 {
                    "事业单位"
                } else {
                    "企业"
                });
            }
            "social_insurance" => {
                let staff = 10 + (k % 400) as i64;
                row[1] = Value::Int(2022 + j as i64);
                row[2] = Value::Int(staff);
                row[3] = Value::Decimal(Decimal::new(staff * 8_000_000 + (k % 997) as i64, 2));
            }
            "disabled_employees" => {
                row[1] = Value::Int(2023);
                row[2] = Value::Int(1 + ((k + j) % 4) as i64);
                row[3] = Value::Bool((k + j) % 5 != 0);
                row[4] = Value::Decimal(Decimal::new(150_000 + 10_000 * j as i64, 2));
            }
            _ => {
                row[1] = Value::Int(2024);
                let _ = j;
                // Most employers pay enough; about one in twenty does not.
                let amount = if k % 20 == 0 {
                    1_000_000 + (k % 50_000) as i64 * 100
                } else {
                    10_000_000_000
                };
                row[2] = Value::Decimal(Decimal::new(amount, 2));
                row[3] = Value::Date(
                    jiandu_plan::date::Date::from_ymd(2024, 1 + (k % 12) as u32, 28)
                        .expect("valid"),
                );
            }
        }
        Ok(true)
    }
}

struct Count(u64, Decimal);

impl LeadSink for Count {
    fn emit(&mut self, lead: &Lead) -> Result<(), jiandu_plan::error::HostError> {
        self.0 += 1;
        self.1 += lead
            .amount
            .as_deref()
            .unwrap_or("0")
            .parse::<Decimal>()
            .unwrap_or_default();
        Ok(())
    }
}

fn round(x: Decimal) -> Decimal {
    x.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// The rule of plugins/disability-fund-arrears, as a merge loop over the
/// same scans, emitting the same leads.
fn native(input: &mut Synthetic, sink: &mut dyn LeadSink) {
    let mut e = input.scan("employers", &[]).unwrap();
    let mut h = input.scan("social_insurance", &[]).unwrap();
    let mut d = input.scan("disabled_employees", &[]).unwrap();
    let mut p = input.scan("fund_payments", &[]).unwrap();
    let (mut er, mut hr, mut dr, mut pr) = (
        vec![Value::Null; 3],
        vec![Value::Null; 4],
        vec![Value::Null; 5],
        vec![Value::Null; 4],
    );
    let (mut h_ok, mut d_ok, mut p_ok) = (
        h.next_row(&mut hr).unwrap(),
        d.next_row(&mut dr).unwrap(),
        p.next_row(&mut pr).unwrap(),
    );
    fn text(v: &Value) -> &str {
        match v {
            Value::Str(s) => s,
            _ => "",
        }
    }
    let int = |v: &Value| match v {
        Value::Int(i) => *i,
        _ => 0,
    };
    let dec = |v: &Value| match v {
        Value::Decimal(x) => *x,
        _ => Decimal::ZERO,
    };
    let key = text;
    let (ratio, cap, low, rate) = (
        Decimal::new(15, 3),
        Decimal::from(200_000),
        Decimal::new(1, 2),
        Decimal::new(5, 3),
    );
    let as_of = jiandu_plan::date::Date::from_ymd(2024, 12, 31).unwrap();
    let mut lead = Lead::default();
    while e.next_row(&mut er).unwrap() {
        let code = key(&er[0]);
        let mut found = None;
        while h_ok && key(&hr[0]) <= code {
            if key(&hr[0]) == code && int(&hr[1]) == 2023 {
                found = Some((int(&hr[2]), dec(&hr[3])));
            }
            h_ok = h.next_row(&mut hr).unwrap();
        }
        let mut disabled = 0i64;
        while d_ok && key(&dr[0]) <= code {
            if key(&dr[0]) == code
                && int(&dr[1]) == 2023
                && matches!(dr[3], Value::Bool(true))
                && dec(&dr[4]) >= Decimal::from(2000)
            {
                disabled += if int(&dr[2]) <= 2 { 2 } else { 1 };
            }
            d_ok = d.next_row(&mut dr).unwrap();
        }
        let mut paid = Decimal::ZERO;
        while p_ok && key(&pr[0]) <= code {
            if key(&pr[0]) == code
                && int(&pr[1]) == 2024
                && matches!(pr[3], Value::Date(x) if x <= as_of)
            {
                paid += dec(&pr[2]);
            }
            p_ok = p.next_row(&mut pr).unwrap();
        }
        let Some((staff, wages)) = found else {
            continue;
        };
        if staff == 0 || (text(&er[2]) == "企业" && staff <= 30) {
            continue;
        }
        let (n, dd) = (Decimal::from(staff), Decimal::from(disabled));
        let shortfall = n * ratio - dd;
        if shortfall <= Decimal::ZERO {
            continue;
        }
        let w = round(wages / n).min(cap);
        let relief = if dd >= low * n {
            Decimal::new(5, 1)
        } else {
            Decimal::new(9, 1)
        };
        let due = round(shortfall * w * relief);
        let gap = due - paid;
        if gap <= Decimal::ZERO {
            continue;
        }
        // The same lead the plan emits, evidence and all.
        let days_late = 184i64;
        let fee = round(gap * rate * Decimal::from(days_late));
        lead.subject = code.to_owned();
        lead.amount = Some(format!("{:.2}", round(gap)));
        lead.title = format!("{} 2024年度残保金未足额缴纳", text(&er[1]));
        let ev = [
            ("employer", text(&er[1]).to_owned()),
            ("levy_year", "2024".to_owned()),
            ("staff_n", staff.to_string()),
            ("disabled_d", disabled.to_string()),
            ("avg_wage_w", w.to_string()),
            ("ratio", ratio.to_string()),
            ("relief", relief.to_string()),
            ("due", format!("{:.2}", due)),
            ("paid", format!("{:.2}", round(paid))),
            ("gap", format!("{:.2}", gap)),
            ("days_late", days_late.to_string()),
            ("late_fee", format!("{:.2}", fee)),
        ];
        lead.evidence = ev
            .into_iter()
            .map(|(n, v)| jiandu_plan::exec::Evidence {
                name: n.to_owned(),
                value: v,
                personal: false,
            })
            .collect();
        sink.emit(&lead).unwrap();
    }
}

fn peak_mib() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
        })
        .map_or("?".into(), |kb| {
            format!("{} MiB", kb.parse::<u64>().unwrap_or(0) / 1024)
        })
}

/// CPU time of this thread so far, in seconds (`/proc/thread-self/schedstat`,
/// Linux): on a shared machine it varies less than the wall clock, which
/// counts the time other processes held the core.
fn cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// Wall and CPU seconds `f` took.
fn timed(f: impl FnOnce()) -> (f64, f64) {
    let (t, c) = (Instant::now(), cpu_secs());
    f();
    let wall = t.elapsed().as_secs_f64();
    (wall, cpu_secs().zip(c).map_or(wall, |(b, a)| b - a))
}

fn main() {
    let employers: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let catalog = Catalog::from_toml(MODEL, &SCHEMAS).unwrap();
    let plan = Plan::parse("disability-fund-arrears.plan.toml", PLAN).unwrap();
    let program = check_plan(&plan, &catalog).unwrap().bind(&[]).unwrap();
    // Best wall and best CPU time of each, over `runs` alternating runs.
    let (mut plan_t, mut native_t) = ((f64::MAX, f64::MAX), (f64::MAX, f64::MAX));
    let best = |b: &mut (f64, f64), t: (f64, f64)| *b = (b.0.min(t.0), b.1.min(t.1));
    let (mut pl, mut nl) = (Count(0, Decimal::ZERO), Count(0, Decimal::ZERO));
    for _ in 0..runs {
        if std::env::var_os("NATIVE_ONLY").is_some() {
            native(&mut Synthetic { employers }, &mut nl);
            return;
        }
        pl = Count(0, Decimal::ZERO);
        let t = timed(|| {
            program.run(&mut Synthetic { employers }, &mut pl).unwrap();
        });
        best(&mut plan_t, t);
        if std::env::var_os("PLAN_ONLY").is_some() {
            return;
        }
        nl = Count(0, Decimal::ZERO);
        let t = timed(|| native(&mut Synthetic { employers }, &mut nl));
        best(&mut native_t, t);
    }
    assert_eq!((pl.0, pl.1), (nl.0, nl.1), "plan and native disagree");
    println!(
        "{employers} employers, {} leads (total {}): plan {:.3} s, native {:.3} s, ratio {:.2}; CPU plan {:.3} s, native {:.3} s, ratio {:.2}; peak {}",
        pl.0,
        pl.1,
        plan_t.0,
        native_t.0,
        plan_t.0 / native_t.0,
        plan_t.1,
        native_t.1,
        plan_t.1 / native_t.1,
        peak_mib()
    );
}
