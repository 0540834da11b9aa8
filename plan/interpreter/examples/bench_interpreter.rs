//! Runs the 残保金 plan through the interpreter as the sandbox runs it
//! (the SDK reading stored records, the executor, leads encoded for the
//! host), natively, over synthetic records held in memory: the cost of
//! the interpreter's whole path without the sandbox's.
//!
//! `cargo run --release -p jiandu-plan-interpreter --example bench_interpreter -- [employers] [one in N short]`
//! (defaults 1,000,000 employers, one in 100 paying short: about a 1 %
//! lead rate). Prints the CPU time of the run (best of `RUNS`, default
//! 3), the leads and a digest of their bytes, which must not change when
//! the interpreter does. For a profiler, the executor's run is
//! `jiandu_plan::exec::Program::run` (callgrind:
//! `--toggle-collect='jiandu_plan::exec::Program::run'`, which leaves out
//! making the records).

use jiandu_plan::Catalog;
use jiandu_sdk::record::{encode_into, Value as Stored};
use jiandu_sdk::{encoded_lead, Backend, Batch, Level, ScanOptions};
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
    let mut args = std::env::args().skip(1);
    let employers: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let short: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
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
    let data = generate(employers, short);
    let records: usize = data.iter().flatten().map(Batch::len).sum();
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
        "{employers} employers, {records} records, {} leads ({} bytes, digest {:016x}): CPU {best:.3} s",
        leads.0, leads.1, leads.2
    );
}
