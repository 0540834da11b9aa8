//! A hostile model for the sandbox tests. It first emits one lead per
//! person (so a test can check that none of them is kept), then attacks
//! the host in the way its `attack` parameter names.

use jiandu_sdk::{export_model, Context, Lead, Model, Result};
use serde::Deserialize;
use std::hint::black_box;

#[derive(Deserialize)]
struct Person {
    id_number: String,
    age: i64,
}

pub struct Hostile;

impl Model for Hostile {
    fn run(ctx: &mut Context) -> Result<()> {
        for person in ctx.read("people").into::<Person>()? {
            let p = person?;
            ctx.emit(Lead::new(&p.id_number).title(format!("aged {}", p.age)))?;
        }
        let attack: String = ctx.param("attack")?;
        match attack.as_str() {
            "none" => {}
            "infinite-loop" => {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![7u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "deep-recursion" => {
                let depth: u64 = black_box(u64::MAX);
                ctx.info(format!("reached {}", recurse(0, depth)));
            }
            "lead-flood" => {
                for i in 0u64.. {
                    ctx.emit(Lead::new(format!("FLOOD{i:012}")).title("flood"))?;
                }
            }
            "lead-volume" => {
                // Each lead within the size limit, but together more than
                // the host will hold for one run.
                for i in 0u64.. {
                    ctx.emit(
                        Lead::new(format!("VOLUME{i:012}"))
                            .title("volume")
                            .evidence("padding", "v".repeat(10_000)),
                    )?;
                }
            }
            "oversized-lead" => {
                ctx.emit(
                    Lead::new("OVERSIZED")
                        .title("oversized")
                        .evidence("padding", "x".repeat(100_000)),
                )?;
            }
            "invalid-lead" => {
                ctx.emit(Lead::new("BAD\nSUBJECT").title("control characters"))?;
            }
            "same-subject-twice" => {
                // Leads (which the test makes wait in spill files), then
                // the first subject again.
                for i in 0u64..50 {
                    ctx.emit(Lead::new(format!("DUP{i:012}")).title("one of many"))?;
                }
                ctx.emit(Lead::new("DUP000000000000").title("again"))?;
            }
            "undeclared-dataset" => {
                for secret in ctx.read("secrets").into::<Person>()? {
                    let s = secret?;
                    ctx.emit(Lead::new(&s.id_number).title("stolen"))?;
                }
            }
            "huge-dataset-name" => {
                let name = "d".repeat(10 << 20);
                for person in ctx.read(&name).into::<Person>()? {
                    black_box(person?);
                }
            }
            "panic" => {
                let people: Vec<u32> = black_box(Vec::new());
                if people.is_empty() {
                    panic!("hostile model gave up on purpose");
                }
            }
            "trap" => {
                // A trap with no panic message: what a bug in a model
                // written in any language looks like to the host.
                #[cfg(target_arch = "wasm32")]
                core::arch::wasm32::unreachable();
            }
            "model-error" => {
                return Err(jiandu_sdk::Error::msg("hostile model reports failure"));
            }
            "log-flood" => {
                for i in 0..100_000 {
                    ctx.info(format!("log line {i}"));
                }
            }
            "scan-and-leave" => {
                // Reads one record of a scan and drops it, far more often
                // than a run may hold scans open: each is closed on drop.
                for _ in 0..1000 {
                    let mut rows = ctx.read("people").rows()?;
                    black_box(rows.next_row()?.is_some());
                }
            }
            "scan-and-hoard" => {
                // Keeps every scan open.
                let mut open = Vec::new();
                for _ in 0..1000 {
                    let mut rows = ctx.read("people").rows()?;
                    black_box(rows.next_row()?.is_some());
                    open.push(rows);
                }
            }
            other => {
                return Err(jiandu_sdk::Error::msg(format!("unknown attack `{other}`")));
            }
        }
        Ok(())
    }
}

/// Recursion the compiler cannot turn into a loop: each frame uses the
/// result of the next one.
#[inline(never)]
fn recurse(n: u64, depth: u64) -> u64 {
    if n >= depth {
        return n;
    }
    recurse(n + 1, depth).wrapping_mul(3).wrapping_add(n)
}

export_model!(Hostile);
