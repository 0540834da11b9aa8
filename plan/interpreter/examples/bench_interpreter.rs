//! Runs the 残保金 plan through the interpreter as the sandbox runs it
//! (the SDK reading stored records, the executor, leads encoded for the
//! host), natively, over synthetic records held in memory: the cost of
//! the interpreter's whole path without the sandbox's.
//!
//! `cargo run --release -p jiandu-plan-interpreter --example bench_interpreter -- [employers] [one in N short]`
//! (defaults 1,000,000 employers, one in 100 paying short: about a 1 %
//! lead rate). Prints the CPU time of the run (best of `RUNS`, default
//! 3), the leads and a digest of their bytes, which must not change when
//! the interpreter does.
//!
//! `… -- sweep [employers] [per mille in arrears]` (defaults 1,000,000
//! and 10) makes records in the proportions of `jiandu-bench`'s sweep
//! (the demo generator's scenarios: about 3.3 disabled employees, 1.3
//! headcounts and 0.8 payments per employer, half the records read being
//! disabled employees), whose costs are those of the sandbox's run; the
//! default data has far fewer disabled employees. For a profiler, the executor's run is
//! `jiandu_plan::exec::Program::run` (callgrind:
//! `--toggle-collect='jiandu_plan::exec::Program::run'`, which leaves out
//! making the records).

use jiandu_plan::Catalog;
use jiandu_sdk::record::{encode_into, Value as Stored};
use jiandu_sdk::{encoded_lead, Backend, Batch, Decimal, Level, ScanOptions};
use std::cell::Cell;
use std::rc::Rc;

const PLAN: &str = include_str!("../../../plugins/disability-fund-arrears/plan/rule.plan.toml");
const MODEL: &str = include_str!("../../../plugins/disability-fund-arrears/model.toml");
const SCHEMAS: [&str; 4] = [
    include_str!("../../../datasets/employers.toml"),
    include_str!("../../../datasets/social_insurance.toml"),
    include_str!("../../../datasets/disabled_employees.toml"),
    include_str!("../../../datasets/fund_payments.toml"),
];
const DATASETS: [(&str, &[&str]); 4] = [
    ("employers", &["credit_code", "name", "entity_type"]),
    (
        "social_insurance",
        &["credit_code", "year", "staff", "wage_total"],
    ),
    (
        "disabled_employees",
        &[
            "employer_credit_code",
            "year",
            "grade",
            "insured",
            "monthly_wage",
        ],
    ),
    (
        "fund_payments",
        &["credit_code", "levy_year", "amount", "paid_on"],
    ),
];
/// Records per batch, as the host sends them.
const BATCH: usize = 4096;

/// The four datasets' batches, made before the run.
struct Host {
    batches: Vec<std::vec::IntoIter<Batch>>,
    params: Vec<(String, String)>,
    leads: Rc<Cell<(u64, u64, u64)>>,
}

/// Encodes `records` into batches of [`BATCH`].
fn batches(records: impl Iterator<Item = Vec<Option<Stored<'static>>>>) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut b = Batch {
        data: Vec::new(),
        offsets: vec![0],
    };
    for r in records {
        encode_into(&mut b.data, &r).expect("encodable");
        b.offsets.push(b.data.len() as u32);
        if b.len() == BATCH {
            out.push(std::mem::replace(
                &mut b,
                Batch {
                    data: Vec::new(),
                    offsets: vec![0],
                },
            ));
        }
    }
    if !b.is_empty() {
        out.push(b);
    }
    out
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The four datasets' records for `employers` employers, in batches, sorted
/// by credit code as the store keeps them; one employer in `short` pays
/// less than due.
fn generate(employers: u64, short: u64) -> Vec<Vec<Batch>> {
    // Texts are leaked once and shared by every run.
    let codes: &'static [&'static str] = Box::leak(
        (0..employers)
            .map(|k| leak(format!("91{k:016}")))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    let names: Vec<&'static str> = (0..employers)
        .map(|k| leak(format!("阿克苏{k}公司")))
        .collect();
    let names = &names;
    let dec = |x: i64| leak(format!("{}.{:02}", x / 100, x % 100));
    let employers_rows = batches((0..employers).map(|k| {
        vec![
            Some(Stored::Str(codes[k as usize])),
            Some(Stored::Str(names[k as usize])),
            Some(Stored::Str(if k % 10 == 0 {
                "事业单位"
            } else {
                "企业"
            })),
        ]
    }));
    let headcounts = batches((0..employers).flat_map(|k| {
        let staff = 10 + (k % 400) as i64;
        let wages = dec(staff * 8_000_000 + (k % 997) as i64);
        (0..2).map(move |j| {
            vec![
                Some(Stored::Str(codes[k as usize])),
                Some(Stored::Int(2022 + j)),
                Some(Stored::Int(staff)),
                Some(Stored::Decimal(wages)),
            ]
        })
    }));
    let wages = [dec(150_000), dec(160_000), dec(170_000)];
    let disabled = batches((0..employers).flat_map(|k| {
        let n = [0, 1, 0, 3][(k % 4) as usize];
        (0..n).map(move |j| {
            vec![
                Some(Stored::Str(codes[k as usize])),
                Some(Stored::Int(2023)),
                Some(Stored::Int(1 + ((k + j) % 4) as i64)),
                Some(Stored::Bool((k + j) % 5 != 0)),
                Some(Stored::Decimal(wages[j as usize])),
            ]
        })
    }));
    let payments = batches((0..employers).flat_map(|k| {
        let amount = if k % short == 0 {
            dec(1_000_000 + (k % 50_000) as i64 * 100)
        } else {
            "100000000.00"
        };
        let on = leak(format!("2024-{:02}-28", 1 + k % 12));
        // Every other employer also has a payment of the year before.
        (1 - k % 2..2).map(move |j| {
            vec![
                Some(Stored::Str(codes[k as usize])),
                Some(Stored::Int(2023 + j as i64)),
                Some(Stored::Decimal(amount)),
                Some(Stored::Date(on)),
            ]
        })
    }));
    vec![employers_rows, headcounts, disabled, payments]
}

/// A pseudo-random sequence (splitmix64): the same records on every run
/// without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// An employer of the sweep's data, as the demo generator plants them.
struct Planted {
    code: String,
    name: String,
    enterprise: bool,
    staff: i64,
    wage_total: Decimal,
    no_headcount: bool,
    earlier_headcount: bool,
    /// (grade, insured, monthly wage)
    disabled: Vec<(i64, bool, Decimal)>,
    /// (levy year, amount, paid on)
    payments: Vec<(i64, Decimal, String)>,
}

/// The demo generator's scenarios (`jiandu_demo::generate::disability`).
#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    SmallEnterprise,
    Employs,
    PaidInFull,
    PaidNothing,
    PaidPart,
    CountsDoNotCount,
    SmallInstitution,
    PaidTooLate,
    ExactlyThirty,
    ExactlyAtRatio,
    PaidExactly,
    NoHeadcount,
}

fn round2(x: Decimal) -> Decimal {
    x.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

/// What a disabled employee counts for.
fn counts(grade: i64, insured: bool, wage: Decimal) -> i64 {
    if !insured || wage < Decimal::from(2000) {
        0
    } else if grade <= 2 {
        2
    } else {
        1
    }
}

/// What `e` owes, by the demo generator's reading of the rule.
fn due(e: &Planted) -> Decimal {
    let n = Decimal::from(e.staff);
    let d = Decimal::from(
        e.disabled
            .iter()
            .map(|&(g, i, w)| counts(g, i, w))
            .sum::<i64>(),
    );
    let wage = round2(e.wage_total / n).min(Decimal::from(200_000));
    if e.enterprise && e.staff <= 30 {
        return Decimal::ZERO;
    }
    let short = n * Decimal::new(15, 3) - d;
    if short <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    let relief = if d / n >= Decimal::new(1, 2) {
        Decimal::new(5, 1)
    } else {
        Decimal::new(9, 1)
    };
    round2(short * wage * relief)
}

/// One employer of scenario `s`, number `i`.
fn plant(rng: &mut Rng, i: u64, s: Scenario) -> Planted {
    use Scenario::*;
    const REGIONS: [&str; 8] = [
        "652901", "652922", "652923", "650102", "650103", "350100", "110108", "440305",
    ];
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WORDS: [&str; 6] = ["华信", "天山", "丝路", "红旗", "金穗", "新源"];
    let enterprise = match s {
        SmallInstitution => false,
        SmallEnterprise | ExactlyThirty => true,
        _ => rng.chance(0.85),
    };
    let mut code = String::from(if enterprise { "91" } else { "12" });
    code.push_str(REGIONS[rng.range(0, 7) as usize]);
    for _ in 0..3 {
        code.push(ALPHABET[rng.range(0, 30) as usize] as char);
    }
    let mut serial = i;
    let mut tail = [b'0'; 6];
    for t in tail.iter_mut().rev() {
        *t = ALPHABET[(serial % 31) as usize];
        serial /= 31;
    }
    code.push_str(std::str::from_utf8(&tail).expect("ascii"));
    code.push(ALPHABET[rng.range(0, 30) as usize] as char);
    let word = WORDS[rng.range(0, 5) as usize];
    let name = if enterprise {
        format!("阿克苏{word}有限公司（{i}）")
    } else {
        format!("阿克苏{word}服务中心（{i}）")
    };
    let staff = match s {
        SmallEnterprise => rng.range(1, 30),
        SmallInstitution => rng.range(5, 30),
        ExactlyThirty => 30,
        ExactlyAtRatio => 200,
        _ if rng.chance(0.7) => rng.range(31, 300),
        _ => rng.range(301, 3000),
    };
    let avg = if rng.chance(0.1) {
        rng.range(200_000, 400_000)
    } else {
        rng.range(45_000, 180_000)
    };
    let wage_total = Decimal::new(avg * staff * 100 + rng.range(0, 9_999), 2);
    let ok_wage = Decimal::from(2000 + (avg / 12).min(20_000));
    let required = (staff * 15 + 999) / 1000;
    let mut disabled = Vec::new();
    match s {
        Employs => {
            let mut counted = 0;
            while counted < required {
                let grade = rng.range(1, 4);
                disabled.push((grade, true, ok_wage));
                counted += counts(grade, true, ok_wage);
            }
        }
        ExactlyAtRatio => {
            disabled.push((1, true, ok_wage));
            disabled.push((3, true, ok_wage));
        }
        CountsDoNotCount => {
            for _ in 0..required.max(1) {
                if rng.chance(0.5) {
                    disabled.push((3, false, ok_wage));
                } else {
                    disabled.push((4, true, Decimal::new(199_999, 2)));
                }
            }
        }
        PaidInFull | PaidNothing | PaidPart | PaidTooLate | PaidExactly => {
            for _ in 0..rng.range(0, required.max(1) - 1) {
                disabled.push((rng.range(3, 4), true, ok_wage));
            }
        }
        _ => {}
    }
    let mut e = Planted {
        code,
        name,
        enterprise,
        staff,
        wage_total,
        no_headcount: s == NoHeadcount,
        earlier_headcount: s == NoHeadcount || rng.chance(0.3),
        disabled,
        payments: Vec::new(),
    };
    let due = due(&e);
    let in_year = |rng: &mut Rng| format!("2024-{:02}-{:02}", rng.range(1, 6), rng.range(1, 28));
    match s {
        PaidInFull if due > Decimal::ZERO => {
            let first = round2(due / Decimal::from(2));
            e.payments.push((2024, first, in_year(rng)));
            let rest = due - first + Decimal::new(rng.range(0, 499), 2);
            e.payments.push((2024, rest, in_year(rng)));
        }
        PaidExactly => e.payments.push((2024, due, in_year(rng))),
        PaidPart => {
            let share = Decimal::new(rng.range(10, 89), 2);
            e.payments.push((2024, round2(due * share), in_year(rng)));
        }
        PaidTooLate => e.payments.push((2024, due, "2025-01-10".into())),
        _ => {}
    }
    if staff > 30 && rng.chance(0.2) {
        e.payments
            .push((2023, Decimal::from(50_000), "2023-05-20".into()));
    }
    e
}

/// The four datasets' records for `employers` employers in the sweep's
/// proportions, `per_mille` of them in arrears, in batches sorted as the
/// store keeps them.
fn generate_sweep(employers: u64, per_mille: u64) -> Vec<Vec<Batch>> {
    use Scenario::*;
    let mut rng = Rng(2024);
    let mut planted: Vec<Planted> = (0..employers)
        .map(|i| {
            let s = if rng.range(0, 999) < per_mille as i64 {
                match rng.range(0, 49) {
                    0..=14 => PaidNothing,
                    15..=29 => PaidPart,
                    30..=39 => CountsDoNotCount,
                    40..=44 => SmallInstitution,
                    _ => PaidTooLate,
                }
            } else {
                match rng.range(0, 949) {
                    0..=349 => SmallEnterprise,
                    350..=599 => Employs,
                    600..=929 => PaidInFull,
                    930..=934 => ExactlyThirty,
                    935..=939 => ExactlyAtRatio,
                    940..=944 => PaidExactly,
                    _ => NoHeadcount,
                }
            };
            plant(&mut rng, i, s)
        })
        .collect();
    planted.sort_by(|a, b| a.code.cmp(&b.code));
    let planted: &'static [Planted] = Box::leak(planted.into_boxed_slice());
    let text = |d: Decimal| leak(d.to_string());
    let employers_rows = batches(planted.iter().map(|e| {
        vec![
            Some(Stored::Str(&e.code)),
            Some(Stored::Str(&e.name)),
            Some(Stored::Str(if e.enterprise {
                "企业"
            } else {
                "事业单位"
            })),
        ]
    }));
    let headcounts = batches(planted.iter().flat_map(|e| {
        let earlier = e.earlier_headcount.then(|| {
            vec![
                Some(Stored::Str(&e.code)),
                Some(Stored::Int(2022)),
                Some(Stored::Int(e.staff + 7)),
                Some(Stored::Decimal(text(round2(
                    e.wage_total * Decimal::new(95, 2),
                )))),
            ]
        });
        let data_year = (!e.no_headcount).then(|| {
            vec![
                Some(Stored::Str(&e.code)),
                Some(Stored::Int(2023)),
                Some(Stored::Int(e.staff)),
                Some(Stored::Decimal(text(e.wage_total))),
            ]
        });
        earlier.into_iter().chain(data_year)
    }));
    let disabled = batches(planted.iter().flat_map(|e| {
        e.disabled.iter().map(|&(grade, insured, wage)| {
            vec![
                Some(Stored::Str(&e.code)),
                Some(Stored::Int(2023)),
                Some(Stored::Int(grade)),
                Some(Stored::Bool(insured)),
                Some(Stored::Decimal(text(wage))),
            ]
        })
    }));
    let payments = batches(planted.iter().flat_map(|e| {
        let mut p: Vec<_> = e.payments.iter().collect();
        p.sort_by_key(|(year, _, _)| *year);
        p.into_iter().map(|(year, amount, on)| {
            vec![
                Some(Stored::Str(&e.code)),
                Some(Stored::Int(*year)),
                Some(Stored::Decimal(text(*amount))),
                Some(Stored::Date(on)),
            ]
        })
    }));
    vec![employers_rows, headcounts, disabled, payments]
}

impl Backend for Host {
    fn fields(&mut self, dataset: &str) -> Result<Vec<String>, String> {
        DATASETS
            .iter()
            .find(|(d, _)| *d == dataset)
            .map(|(_, f)| f.iter().map(|f| f.to_string()).collect())
            .ok_or_else(|| format!("no dataset `{dataset}`"))
    }
    fn open_scan(&mut self, dataset: &str, _: ScanOptions) -> Result<u32, String> {
        DATASETS
            .iter()
            .position(|(d, _)| *d == dataset)
            .map(|i| i as u32)
            .ok_or_else(|| format!("no dataset `{dataset}`"))
    }
    fn next_batch(&mut self, scan: u32) -> Result<Option<Batch>, String> {
        Ok(self.batches[scan as usize].next())
    }
    fn close_scan(&mut self, _: u32) {}
    fn get(&mut self, _: &str, _: &[String]) -> Result<Option<Vec<u8>>, String> {
        Err("no get here".into())
    }
    fn lookup(&mut self, _: &str, _: &str, _: &str) -> Result<Batch, String> {
        Err("no lookup here".into())
    }
    fn param(&mut self, name: &str) -> Option<String> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
    fn emit_leads(&mut self, leads: &[u8]) -> Result<(), String> {
        let (mut n, mut bytes, mut hash) = self.leads.get();
        let mut rest = leads;
        while !rest.is_empty() {
            let (_, used) = encoded_lead::decode(rest).map_err(|e| e.0.to_string())?;
            n += 1;
            rest = &rest[used..];
        }
        bytes += leads.len() as u64;
        // FNV-1a over the leads' bytes, in emit order.
        for &b in leads {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.leads.set((n, bytes, hash));
        Ok(())
    }
    fn log(&mut self, _: Level, _: &str) {}
    fn plan(&mut self) -> Option<String> {
        Some(
            serde_json::json!({
                "file": "rule.plan.toml",
                "plan": PLAN,
                "model-toml": MODEL,
                "schemas": SCHEMAS,
            })
            .to_string(),
        )
    }
}

/// CPU time of this thread so far, in seconds.
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns: u64 = s
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    ns as f64 / 1e9
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let sweep = args.next_if(|a| a == "sweep").is_some();
    let employers: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rate: Option<u64> = args.next().and_then(|a| a.parse().ok());
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let catalog = Catalog::from_toml(MODEL, &SCHEMAS).expect("the model's catalog");
    let params: Vec<(String, String)> = catalog
        .params
        .iter()
        .map(|p| (p.name.clone(), p.default.to_string()))
        .collect();
    let data = if sweep {
        generate_sweep(employers, rate.unwrap_or(10))
    } else {
        generate(employers, rate.unwrap_or(100))
    };
    let records: usize = data.iter().flatten().map(Batch::len).sum();
    let per_dataset: Vec<usize> = data
        .iter()
        .map(|d| d.iter().map(Batch::len).sum())
        .collect();
    let mut best = f64::MAX;
    let mut leads = (0, 0, 0);
    for _ in 0..runs {
        let seen = Rc::new(Cell::new((0, 0, 0xcbf2_9ce4_8422_2325)));
        let host = Host {
            batches: data.iter().map(|b| b.clone().into_iter()).collect(),
            params: params.clone(),
            leads: seen.clone(),
        };
        let t = cpu_secs();
        jiandu_sdk::__private::run_model::<jiandu_plan_interpreter::Interpreter>(Box::new(host))
            .expect("the plan runs");
        best = best.min(cpu_secs() - t);
        leads = seen.get();
    }
    println!(
        "{employers} employers, {records} records {per_dataset:?}, {} leads ({} bytes, digest {:016x}): CPU {best:.3} s",
        leads.0, leads.1, leads.2
    );
}
