//! A run whose emitted leads do not fit the memory set aside for them
//! spills them to files and commits exactly what it would have committed
//! from memory, through the real binary.

use crate::common;

use common::{ingest_files, jiandu, leads, ledger, stderr, stdout, store_with_model};
use std::path::Path;

const MODEL: &str = "disability-fund-arrears";

/// `jiandu -vv run MODEL` with `JIANDU_LEADS_MEMORY` set to `memory`
/// (unset when `None`); must succeed. Returns its stderr.
fn run(store: &Path, memory: Option<&str>) -> String {
    let mut cmd = jiandu(store);
    cmd.args(["-vv", "run", MODEL]);
    match memory {
        Some(m) => cmd.env("JIANDU_LEADS_MEMORY", m),
        None => cmd.env_remove("JIANDU_LEADS_MEMORY"),
    };
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    stderr(&out)
}

/// Leads digest and count of every finished run, oldest first.
fn finished_runs(store: &Path) -> Vec<(String, u64)> {
    ledger(store)
        .iter()
        .filter(|e| e["kind"] == "run-finished")
        .map(|e| {
            assert_eq!(e["run"]["outcome"], "succeeded", "{e}");
            (
                e["run"]["leads_digest"].as_str().unwrap().into(),
                e["run"]["leads_count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Subject, amount and evidence of every lead of the model.
fn lead_contents(store: &Path) -> Vec<String> {
    leads(store, MODEL, true)
        .iter()
        .map(|l| format!("{} {} {}", l["subject"], l["amount"], l["evidence"]))
        .collect()
}

#[test]
fn spilled_leads_commit_the_same_as_leads_held_in_memory() {
    let in_memory = store_with_model(MODEL);
    let spilling = store_with_model(MODEL);
    let data = tempfile::tempdir().unwrap();
    let g = jiandu_demo::generate::disability::generate(data.path(), 400, 11).unwrap();
    ingest_files(in_memory.path(), &g.files);
    ingest_files(spilling.path(), &g.files);

    let plain = run(in_memory.path(), None);
    assert!(!plain.contains("spilled"), "{plain}");
    // A few hundred bytes: a spill file every lead or two.
    let spilled = run(spilling.path(), Some("700"));
    assert!(spilled.contains("spilled to"), "{spilled}");

    let a = finished_runs(in_memory.path());
    let b = finished_runs(spilling.path());
    assert!(a[0].1 > 5, "the data makes leads: {a:?}");
    assert_eq!(a, b, "same leads digest and count");
    assert_eq!(
        lead_contents(in_memory.path()),
        lead_contents(spilling.path())
    );
    // Spill files are unlinked as soon as they are made.
    let tmp = spilling.path().join("tmp");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);

    // A second spilling run over the first one's leads: all produced again.
    run(spilling.path(), Some("700"));
    let b = finished_runs(spilling.path());
    assert_eq!(b[0], b[1]);
}

#[test]
fn a_bad_leads_memory_setting_is_named() {
    let store = store_with_model(MODEL);
    let out = jiandu(store.path())
        .args(["run", MODEL])
        .env("JIANDU_LEADS_MEMORY", "lots")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("JIANDU_LEADS_MEMORY=`lots`"), "{err}");
}

#[test]
fn a_spill_the_host_cannot_write_fails_the_run_as_the_hosts_and_keeps_nothing() {
    let store = store_with_model(MODEL);
    let data = tempfile::tempdir().unwrap();
    let g = jiandu_demo::generate::disability::generate(data.path(), 200, 3).unwrap();
    ingest_files(store.path(), &g.files);
    // A file where the spill folder would go.
    std::fs::write(store.path().join("tmp"), b"in the way").unwrap();
    let out = jiandu(store.path())
        .args(["run", MODEL])
        .env("JIANDU_LEADS_MEMORY", "100")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("failed (host-error)"), "{err}");
    assert!(err.contains("cannot create the spill file"), "{err}");
    assert!(!err.contains("wasm backtrace"), "{err}");
    let last = ledger(store.path()).pop().unwrap();
    assert_eq!(last["run"]["outcome"], "failed");
    assert_eq!(last["run"]["error"]["kind"], "host-error");
    assert!(leads(store.path(), MODEL, false).is_empty());
}
