//! The harness at a tiny scale: every section runs, and the three engines
//! (Jiandu's sandbox, the same model natively, SQLite) produce the same
//! leads. No timings are asserted: figures come from full-scale runs.

use jiandu_bench::{Options, Section};

#[test]
fn every_section_runs_at_tiny_scale_and_the_three_lead_sets_agree() {
    let work = tempfile::tempdir().unwrap();
    let opts = Options {
        scale: 3_000,
        memory_scales: vec![3_000, 6_000],
        sections: Section::ALL.to_vec(),
        work_dir: work.path().to_path_buf(),
        ledger_entries: 2_500,
        reps: 1,
        rates: jiandu_bench::sweep::RATES.to_vec(),
        seed: 7,
        exe: env!("CARGO_BIN_EXE_jiandu-bench").into(),
        command: "smoke".into(),
    };
    let outcome = jiandu_bench::run(&opts, &mut |m| eprintln!("{m}")).unwrap();

    // The harness fails unless the engines agree to the fen; here is what
    // it compared.
    let c = outcome.collision.expect("the collision ran");
    let a = &c.agreement;
    assert!(a.expected > 50, "{a:?}");
    assert_eq!(
        (a.wasm, a.native, a.sqlite),
        (a.expected, a.expected, a.expected)
    );

    let s = outcome.scan.expect("the scan ran");
    assert_eq!(s.records, 3_000);
    assert_eq!(s.leads, 30);

    let table = outcome.report.markdown();
    for section in [
        "Ledger",
        "Verify",
        "Scan",
        "Collision",
        "Ingest",
        "Memory",
        "Parallel",
        "Cold start",
        "Sweep",
    ] {
        assert!(
            table.contains(&format!("| {section} |")),
            "{section} missing from\n{table}"
        );
    }
    // Without the `sqlite3` tool the four-table ingest says why it is missing.
    let section = jiandu_bench::ingest4::SECTION;
    assert!(
        table.contains(&format!("| {section} |"))
            || table.contains(&format!("{section}: not measured")),
        "{section} missing from\n{table}"
    );
}
