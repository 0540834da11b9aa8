//! Builds and encodes leads shaped like the 残保金 sample model's, for
//! counting instructions:
//!
//! ```text
//! cargo build --release --example lead_bench -p jiandu-sdk
//! valgrind --tool=callgrind target/release/examples/lead_bench sdk 100000
//! valgrind --tool=callgrind target/release/examples/lead_bench format 100000
//! ```
//!
//! `sdk` writes money with [`Yuan`] and other decimals with [`Exact`];
//! `format` writes money with `format!("{:.2}", round_dp_with_strategy(..))`
//! and decimals through their own `Display`, as models did before. Every
//! run prints a hash of the bytes that reached the backend: both ways must
//! print the same one.

use jiandu_sdk::__private::run_model;
use jiandu_sdk::{
    Backend, Batch, Context, Decimal, Exact, Lead, Level, Model, Result, ScanOptions, Yuan,
};
use rust_decimal::RoundingStrategy;

/// One employer's figures, made up before the run so that the run is only
/// building and encoding leads.
struct Figures {
    code: String,
    name: String,
    staff: u32,
    counted: u32,
    wage: Decimal,
    relief: Decimal,
    due: Decimal,
    paid: Decimal,
    gap: Decimal,
    late_fee: Decimal,
}

/// A fixed sequence of pseudo-random numbers (xorshift).
struct Numbers(u64);

impl Numbers {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn figures(n: usize) -> Vec<Figures> {
    let mut r = Numbers(0x2545_f491_4f6c_dd1d);
    let ratio = Decimal::new(15, 3);
    let rate = Decimal::new(5, 4);
    (0..n)
        .map(|i| {
            let staff = 31 + r.next(5000) as u32;
            let counted = r.next(u64::from(staff) / 100 + 1) as u32;
            let wage = Decimal::new(3_000_000 + r.next(20_000_000) as i64, 2);
            let relief = [Decimal::ONE, Decimal::new(9, 1), Decimal::new(5, 1)][i % 3];
            let shortfall = Decimal::from(staff) * ratio - Decimal::from(counted);
            let due = (shortfall * wage * relief)
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
            let paid = Decimal::new(r.next(due.mantissa() as u64 / 2 + 1) as i64, 2);
            let gap = due - paid;
            Figures {
                code: format!("91350100M{i:08}X"),
                name: format!("福州某某科技有限公司{i}"),
                staff,
                counted,
                wage,
                relief,
                due,
                paid,
                gap,
                late_fee: gap * rate * Decimal::from(184),
            }
        })
        .collect()
}

fn yuan_by_format(x: Decimal) -> String {
    format!(
        "{:.2}",
        x.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
    )
}

/// Emits one lead per employer, the way the sample model did before
/// [`Yuan`] and [`Exact`].
#[inline(never)]
fn emit_by_format(ctx: &Context, all: &[Figures]) -> Result<()> {
    let levy_year = 2024i64;
    let ratio = Decimal::new(15, 3);
    for f in all {
        ctx.emit(
            Lead::new(&f.code)
                .title(format!("{} {levy_year}年度残保金未足额缴纳", f.name))
                .amount(f.gap)
                .evidence("employer", &f.name)
                .evidence("levy_year", levy_year)
                .evidence("staff_n", f.staff)
                .evidence("disabled_d", f.counted)
                .evidence("avg_wage_w", f.wage)
                .evidence("ratio", ratio)
                .evidence("relief", f.relief)
                .evidence("due", yuan_by_format(f.due))
                .evidence("paid", yuan_by_format(f.paid))
                .evidence("gap", yuan_by_format(f.gap))
                .evidence("days_late", 184i64)
                .evidence("late_fee", yuan_by_format(f.late_fee)),
        )?;
    }
    Ok(())
}

/// Emits the same leads with [`Yuan`] and [`Exact`], as the sample model
/// does.
#[inline(never)]
fn emit_by_sdk(ctx: &Context, all: &[Figures]) -> Result<()> {
    let levy_year = 2024i64;
    let ratio = Decimal::new(15, 3);
    for f in all {
        ctx.emit(
            Lead::new(&f.code)
                .title(format!("{} {levy_year}年度残保金未足额缴纳", f.name))
                .amount(f.gap)
                .evidence("employer", &f.name)
                .evidence("levy_year", levy_year)
                .evidence("staff_n", f.staff)
                .evidence("disabled_d", f.counted)
                .evidence("avg_wage_w", Exact(f.wage))
                .evidence("ratio", Exact(ratio))
                .evidence("relief", Exact(f.relief))
                .evidence("due", Yuan(f.due))
                .evidence("paid", Yuan(f.paid))
                .evidence("gap", Yuan(f.gap))
                .evidence("days_late", 184i64)
                .evidence("late_fee", Yuan(f.late_fee)),
        )?;
    }
    Ok(())
}

struct Bench;

impl Model for Bench {
    fn run(ctx: &mut Context) -> Result<()> {
        let mut args = std::env::args().skip(1);
        let how = args.next().unwrap_or_else(|| "format".into());
        let n = args.next().map_or(100_000, |n| n.parse().expect("a count"));
        let all = figures(n);
        match how.as_str() {
            "format" => emit_by_format(ctx, &all),
            "sdk" => emit_by_sdk(ctx, &all),
            other => panic!("unknown way {other}"),
        }
    }
}

/// Keeps a hash of the leads' bytes (FNV-1a) and nothing else.
struct Sink {
    hash: u64,
    bytes: usize,
}

impl Backend for Sink {
    fn fields(&mut self, _: &str) -> std::result::Result<Vec<String>, String> {
        Err("no datasets".into())
    }
    fn open_scan(&mut self, _: &str, _: ScanOptions) -> std::result::Result<u32, String> {
        Err("no datasets".into())
    }
    fn next_batch(&mut self, _: u32) -> std::result::Result<Option<Batch>, String> {
        Ok(None)
    }
    fn close_scan(&mut self, _: u32) {}
    fn get(&mut self, _: &str, _: &[String]) -> std::result::Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
    fn lookup(&mut self, _: &str, _: &str, _: &str) -> std::result::Result<Batch, String> {
        Err("no datasets".into())
    }
    fn param(&mut self, _: &str) -> Option<String> {
        None
    }
    fn emit_leads(&mut self, leads: &[u8]) -> std::result::Result<(), String> {
        for &b in leads {
            self.hash = (self.hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        self.bytes += leads.len();
        Ok(())
    }
    fn log(&mut self, _: Level, _: &str) {}
}

impl Drop for Sink {
    fn drop(&mut self) {
        println!("{} bytes of leads, hash {:016x}", self.bytes, self.hash);
    }
}

fn main() {
    let sink = Sink {
        hash: 0xcbf2_9ce4_8422_2325,
        bytes: 0,
    };
    run_model::<Bench>(Box::new(sink)).expect("the bench runs");
}
