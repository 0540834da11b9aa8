//! Two runs of one model at once, in one process (as `jiandu serve` runs
//! them), both spilling their leads: both commit, the ledger stays whole,
//! and the model's leads are one snapshot that either run would have made.

mod common;

use common::{ingest_files, store_with_model};
use jiandu::run::{execute, Request};

const MODEL: &str = "disability-fund-arrears";

#[test]
fn two_runs_of_one_model_at_once_both_commit_and_leave_one_snapshot() {
    // The only test in this binary: the setting is the process's.
    std::env::set_var("JIANDU_LEADS_MEMORY", "2000");
    let store = store_with_model(MODEL);
    let data = tempfile::tempdir().unwrap();
    let g = jiandu_demo::generate::disability::generate(data.path(), 400, 5).unwrap();
    ingest_files(store.path(), &g.files);

    let s = jiandu::Store::open(store.path()).unwrap();
    let policy = jiandu::policy::Policy::load(&s.policy_path()).unwrap();
    let runtime = jiandu::runtime::Runtime::new(policy.defaults.stack_kib).unwrap();
    let request = Request {
        model: MODEL.into(),
        params: Vec::new(),
        operator: "tester".into(),
        partitions: None,
    };
    let start = std::sync::Barrier::new(2);
    let reports: Vec<_> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    execute(&s, &runtime, &policy, &request)
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let reports: Vec<_> = reports.into_iter().map(Result::unwrap).collect();
    for r in &reports {
        assert!(r.failure.is_none(), "{:?}", r.failure);
    }
    let leads = reports[0].leads;
    assert!(leads > 5, "the data makes leads: {leads}");
    assert_eq!(reports[1].leads, leads);
    assert_eq!(reports[0].total_amount, reports[1].total_amount);

    // The later commit saw the earlier one's leads: all of them open.
    let listed = jiandu::leads::list(
        &s,
        &jiandu::leads::Filter {
            model: Some(MODEL.into()),
            status: None,
        },
    )
    .unwrap();
    assert_eq!(listed.len() as u64, leads);
    let verified = jiandu::audit::verify::local(&s).unwrap();
    assert!(verified.problem.is_none(), "{:?}", verified.problem);
    let finished: Vec<_> = jiandu::ledger::read_all(&s)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == jiandu::ledger::Kind::RunFinished)
        .collect();
    assert_eq!(finished.len(), 2);
    let digests: Vec<_> = finished
        .iter()
        .map(|e| e.run.leads_digest.clone())
        .collect();
    assert_eq!(digests[0], digests[1], "the same leads, read back the same");

    // One snapshot file is left, the current one; no spill file remains.
    let snapshots: Vec<_> = std::fs::read_dir(store.path().join("leads").join(MODEL))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let tmp = store.path().join("tmp");
    assert_eq!(std::fs::read_dir(tmp).unwrap().count(), 0);
}
