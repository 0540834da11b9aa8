//! The harness at a tiny scale: every section runs, and the three engines
//! (Jiandu's sandbox, the same model natively, SQLite) produce the same
//! leads. No timings are asserted: figures come from full-scale runs.

use jiandu_bench::{Options, Section};

/// The harness's options at a tiny scale for `sections`.
fn tiny(work: &std::path::Path, sections: &[Section]) -> Options {
    Options {
        scale: 3_000,
        memory_scales: vec![3_000, 6_000],
        sections: sections.to_vec(),
        work_dir: work.to_path_buf(),
        ledger_entries: 2_500,
        reps: 1,
        // One lead rate: the sweep's code is the same at each (five pairs
        // of runs each, as the harness always makes).
        rates: vec![jiandu_bench::sweep::RATES[1]],
        seed: 7,
        exe: env!("CARGO_BIN_EXE_jiandu-bench").into(),
        command: "smoke".into(),
        // The engines' leads are compared, not their times.
        quick_native: true,
    }
}

/// Asserts that `table` has a row of each of `sections`.
fn has_rows(table: &str, sections: &[&str]) {
    for section in sections {
        assert!(
            table.contains(&format!("| {section} |")),
            "{section} missing from\n{table}"
        );
    }
}

// The sections are split in two tests, which the test harness runs at
// once, one per core.
const IN_PROCESS: [Section; 7] = [
    Section::Scan,
    Section::Collision,
    Section::Ingest,
    Section::Memory,
    Section::Ledger,
    Section::Verify,
    Section::Ingest4,
];
const PROCESSES: [Section; 5] = [
    Section::ColdStart,
    Section::Parallel,
    Section::Serve,
    Section::Appends,
    Section::Sweep,
];

#[test]
fn the_two_smoke_tests_run_every_section() {
    for section in Section::ALL {
        assert!(
            IN_PROCESS.contains(&section) || PROCESSES.contains(&section),
            "{section:?} is in neither"
        );
    }
}

#[test]
fn every_section_runs_at_tiny_scale_and_the_three_lead_sets_agree() {
    let work = tempfile::tempdir().unwrap();
    let outcome =
        jiandu_bench::run(&tiny(work.path(), &IN_PROCESS), &mut |m| eprintln!("{m}")).unwrap();

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
    has_rows(
        &table,
        &["Ledger", "Verify", "Scan", "Collision", "Ingest", "Memory"],
    );
    // Without the `sqlite3` tool the four-table ingest says why it is missing.
    let section = jiandu_bench::ingest4::SECTION;
    assert!(
        table.contains(&format!("| {section} |"))
            || table.contains(&format!("{section}: not measured")),
        "{section} missing from\n{table}"
    );
}

#[test]
fn the_sections_of_whole_processes_run_at_tiny_scale() {
    let work = tempfile::tempdir().unwrap();
    let outcome =
        jiandu_bench::run(&tiny(work.path(), &PROCESSES), &mut |m| eprintln!("{m}")).unwrap();
    let table = outcome.report.markdown();
    has_rows(&table, &["Parallel", "Cold start", "Sweep"]);
}
