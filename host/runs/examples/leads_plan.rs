//! What a run's leads cost the host once the model has emitted them: the
//! plan of the new snapshot with the ledger's digest on the way (and the
//! digest alone),
//! for a first run (every lead new) and a rerun that finds them again.
//!
//! ```text
//! cargo run --release -p jiandu-runs --example leads_plan -- 250000
//! ```
//!
//! The leads are shaped like the 残保金 model's (an 18-character credit
//! code, a Chinese title, an amount and twelve evidence fields), emitted in
//! a shuffled order and spilled past the default budget as in a run.

use jiandu_runs::leads::LeadsDigest;
use jiandu_sandbox::emitted::{Emitted, SPILL_BUDGET};
use jiandu_sdk::{EvidenceData, LeadData};
use jiandu_store::Store;
use std::time::{Duration, Instant};

fn lead(i: u64) -> LeadData {
    let subject = format!("91{:016X}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 4);
    let name = format!("阿克苏宏远医院（{:06}）", i % 1_000_000);
    let money = |k: u64| format!("{}.{:02}", (i * k) % 900_000 + 1000, (i * k) % 100);
    let evidence = [
        ("employer", name.clone()),
        ("levy_year", "2024".to_string()),
        ("staff_n", format!("{}", 20 + i % 900)),
        ("disabled_d", format!("{}", i % 4)),
        ("avg_wage_w", money(7)),
        ("ratio", "0.015".to_string()),
        ("relief", "0.9".to_string()),
        ("due", money(11)),
        ("paid", "0.00".to_string()),
        ("gap", money(11)),
        ("days_late", "184".to_string()),
        ("late_fee", money(13)),
    ];
    LeadData {
        subject,
        subject_personal: false,
        title: format!("{name} 2024年度残保金未足额缴纳"),
        amount: Some(money(11)),
        evidence: evidence
            .into_iter()
            .map(|(n, v)| EvidenceData {
                name: n.to_string(),
                value: v,
                personal: false,
            })
            .collect(),
    }
}

fn emitted(store: &Store, n: u64) -> Emitted {
    let mut e = Emitted::new();
    e.spill_to(store.root().join("tmp"), SPILL_BUDGET);
    for i in 0..n {
        let l = lead(i);
        let size = jiandu_sandbox::emitted::text_size(&l);
        e.insert(&l, size).expect("insert");
    }
    e
}

fn digest_only(e: &Emitted) -> Duration {
    let t = Instant::now();
    let mut d = LeadsDigest::default();
    let mut each = e.iter();
    while let Some(l) = each.next_bytes().expect("lead") {
        d.add_bytes(&l);
    }
    std::hint::black_box(d.finish());
    t.elapsed()
}

/// Plans `run` (with the digest, as a run does) and commits it.
fn plan(store: &Store, e: &Emitted, run: &str) -> Duration {
    let t = Instant::now();
    let mut digest = LeadsDigest::default();
    let changes = jiandu_runs::leads::plan_from(
        store,
        "bench",
        "1.0.0",
        run,
        &mut e.iter(),
        Some(&mut digest),
    )
    .expect("plan");
    std::hint::black_box(digest.finish());
    let took = t.elapsed();
    store
        .meta
        .transaction(|meta| {
            jiandu_runs::leads::apply_in(meta, &changes)?;
            Ok::<_, sled::transaction::ConflictableTransactionError<jiandu_store::Error>>(())
        })
        .expect("apply");
    changes.committed(store).expect("committed");
    took
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("a number of leads"))
        .unwrap_or(250_000);
    let dir = tempfile::tempdir_in(std::env::var_os("TMPDIR").unwrap_or("/var/tmp".into()))
        .expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    let t = Instant::now();
    let e = emitted(&store, n);
    eprintln!(
        "{n} leads emitted in {:.0?} ({} spill files)",
        t.elapsed(),
        e.spills()
    );
    let runs = ["20261206T000000.000-1-0", "20261206T000001.000-1-0"];
    for (i, run) in runs.iter().enumerate() {
        let d = digest_only(&e);
        let p = plan(&store, &e, run);
        println!(
            "{}: digest alone {:.0?}; plan with the digest {:.0?} ({:.2} µs a lead)",
            if i == 0 { "first run" } else { "rerun" },
            d,
            p,
            p.as_secs_f64() * 1e6 / n as f64
        );
    }
    for i in 0..3 {
        let run = format!("20261206T00001{i}.000-1-0");
        let p = plan(&store, &e, &run);
        println!(
            "rerun: plan with the digest {:.0?} ({:.2} µs a lead)",
            p,
            p.as_secs_f64() * 1e6 / n as f64
        );
    }
}
