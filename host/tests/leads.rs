//! The lifecycle of leads across runs, through the library: what each run
//! commits, what `leads::list` reads back, and which runs write nothing.

use jiandu::leads::{self, Applied, Changes, Filter, Lead, Status};
use jiandu::Store;
use jiandu_sdk::{EvidenceData, LeadData};
use sled::Transactional;
use std::collections::BTreeMap;

const MODEL: &str = "disability-fund-arrears";

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// A run's leads: subject → amount.
fn emitted(leads: &[(&str, &str)]) -> BTreeMap<String, LeadData> {
    leads
        .iter()
        .map(|(subject, amount)| {
            (
                subject.to_string(),
                LeadData {
                    subject: subject.to_string(),
                    subject_personal: false,
                    title: format!("{subject} 残保金未足额缴纳"),
                    amount: Some(amount.to_string()),
                    evidence: vec![EvidenceData {
                        name: "gap".into(),
                        value: amount.to_string(),
                        personal: false,
                    }],
                },
            )
        })
        .collect()
}

/// Applies `changes` the way a run commits them, in one transaction.
fn apply(store: &Store, changes: &Changes) -> Applied {
    (&store.leads, &store.meta)
        .transaction(|(leads, meta)| leads::apply_in(leads, meta, changes))
        .unwrap()
}

/// Plans and commits a successful run of `model` at `version`.
fn run_as(
    store: &Store,
    model: &str,
    version: &str,
    run: &str,
    leads: &BTreeMap<String, LeadData>,
) -> Changes {
    let changes = leads::plan(store, model, version, run, leads).unwrap();
    assert_eq!(apply(store, &changes), Applied::Written);
    changes
}

fn run(store: &Store, run: &str, leads: &[(&str, &str)]) -> Changes {
    run_as(store, MODEL, "1.0.0", run, &emitted(leads))
}

fn all(store: &Store, model: Option<&str>) -> BTreeMap<String, Lead> {
    leads::list(
        store,
        &Filter {
            model: model.map(str::to_string),
            status: None,
        },
    )
    .unwrap()
    .into_iter()
    .map(|l| (format!("{}/{}", l.model, l.subject), l))
    .collect()
}

fn lead(store: &Store, subject: &str) -> Lead {
    all(store, Some(MODEL))
        .remove(&format!("{MODEL}/{subject}"))
        .unwrap_or_else(|| panic!("no lead for {subject}"))
}

fn state(l: &Lead) -> (Status, &str, &str, Option<&str>) {
    (
        l.status,
        l.first_run.as_str(),
        l.last_run.as_str(),
        l.resolved_by.as_deref(),
    )
}

fn counts(c: &Changes) -> (u64, u64, u64, usize) {
    (c.new, c.open, c.resolved, c.writes())
}

#[test]
fn a_lead_is_new_then_open_then_resolved_then_new_again() {
    let (_d, store) = store();
    let c = run(&store, "r1", &[("A", "10.00"), ("B", "20.00")]);
    assert_eq!(counts(&c), (2, 0, 0, 2));
    assert_eq!(state(&lead(&store, "A")), (Status::New, "r1", "r1", None));

    let c = run(&store, "r2", &[("A", "10.00"), ("B", "20.00")]);
    assert_eq!(counts(&c), (0, 2, 0, 0));
    assert_eq!(state(&lead(&store, "A")), (Status::Open, "r1", "r2", None));
    assert_eq!(state(&lead(&store, "B")), (Status::Open, "r1", "r2", None));

    // B paid: r3 no longer produces it.
    let c = run(&store, "r3", &[("A", "10.00")]);
    assert_eq!(counts(&c), (0, 1, 1, 1));
    assert_eq!(state(&lead(&store, "A")), (Status::Open, "r1", "r3", None));
    let b = lead(&store, "B");
    assert_eq!(state(&b), (Status::Resolved, "r1", "r2", Some("r3")));
    assert_eq!(b.amount.as_deref(), Some("20.00"), "keeps what it said");

    // Still resolved while runs go on without it.
    let c = run(&store, "r4", &[("A", "10.00")]);
    assert_eq!(counts(&c), (0, 1, 0, 0));
    assert_eq!(
        state(&lead(&store, "B")),
        (Status::Resolved, "r1", "r2", Some("r3"))
    );

    // B falls behind again: a new lead, first seen by r5.
    let c = run(&store, "r5", &[("A", "10.00"), ("B", "25.00")]);
    assert_eq!(counts(&c), (1, 1, 0, 1));
    let b = lead(&store, "B");
    assert_eq!(state(&b), (Status::New, "r5", "r5", None));
    assert_eq!(b.amount.as_deref(), Some("25.00"));
}

#[test]
fn a_rerun_that_finds_the_same_leads_writes_none_and_changes_no_updated_at() {
    let (_d, store) = store();
    let leads: Vec<(String, String)> = (0..500)
        .map(|i| (format!("91{i:016}"), format!("{i}.00")))
        .collect();
    let leads: Vec<(&str, &str)> = leads
        .iter()
        .map(|(s, a)| (s.as_str(), a.as_str()))
        .collect();
    run(&store, "r1", &leads);
    let before = all(&store, Some(MODEL));
    let c = run(&store, "r2", &leads);
    assert_eq!(counts(&c), (0, 500, 0, 0));
    let after = all(&store, Some(MODEL));
    assert_eq!(after.len(), 500);
    for (k, l) in &after {
        let b = &before[k];
        assert_eq!(l.updated_at, b.updated_at, "{k}");
        assert_eq!((b.status, l.status), (Status::New, Status::Open), "{k}");
        assert_eq!(l.last_run, "r2", "{k}");
        assert_eq!(
            (&l.title, &l.amount, &l.evidence),
            (&b.title, &b.amount, &b.evidence)
        );
    }
}

#[test]
fn a_changed_lead_is_rewritten_and_keeps_its_first_run() {
    let (_d, store) = store();
    run(&store, "r1", &[("A", "10.00"), ("B", "20.00")]);
    let c = run(&store, "r2", &[("A", "10.00"), ("B", "21.50")]);
    assert_eq!(counts(&c), (0, 2, 0, 1), "only B is written");
    let b = lead(&store, "B");
    assert_eq!(state(&b), (Status::Open, "r1", "r2", None));
    assert_eq!(b.amount.as_deref(), Some("21.50"));
    assert_eq!(b.evidence[0].value, "21.50");

    // A new model version changes every lead it produces.
    let c = run_as(
        &store,
        MODEL,
        "1.1.0",
        "r3",
        &emitted(&[("A", "10.00"), ("B", "21.50")]),
    );
    assert_eq!(counts(&c), (0, 2, 0, 2));
    let a = lead(&store, "A");
    assert_eq!(a.model_version, "1.1.0");
    assert_eq!(state(&a), (Status::Open, "r1", "r3", None));
}

#[test]
fn status_filters_and_other_models_see_their_own_latest_run() {
    let (_d, store) = store();
    let other = format!("{MODEL}-v2");
    run(&store, "r1", &[("A", "1.00"), ("B", "2.00")]);
    run_as(&store, &other, "1.0.0", "o1", &emitted(&[("A", "3.00")]));
    run(&store, "r2", &[("B", "2.00"), ("C", "4.00")]);
    // The other model's lead on A stays as it was.
    let every = all(&store, None);
    assert_eq!(every.len(), 4);
    let o = &every[&format!("{other}/A")];
    assert_eq!(state(o), (Status::New, "o1", "o1", None));
    let by_status = |status| {
        leads::list(
            &store,
            &Filter {
                model: Some(MODEL.to_string()),
                status: Some(status),
            },
        )
        .unwrap()
        .into_iter()
        .map(|l| l.subject)
        .collect::<Vec<_>>()
    };
    assert_eq!(by_status(Status::New), ["C"]);
    assert_eq!(by_status(Status::Open), ["B"]);
    assert_eq!(by_status(Status::Resolved), ["A"]);
    // A run that finds nothing resolves every open lead of its model only.
    let c = run(&store, "r3", &[]);
    assert_eq!(counts(&c), (0, 0, 2, 2));
    assert_eq!(by_status(Status::Resolved), ["A", "B", "C"]);
    assert_eq!(all(&store, Some(&other)).len(), 1);
    assert_eq!(
        state(&all(&store, None)[&format!("{other}/A")]),
        (Status::New, "o1", "o1", None)
    );
}

#[test]
fn a_plan_overtaken_by_another_run_of_the_model_writes_nothing() {
    let (_d, store) = store();
    run(&store, "r1", &[("A", "1.00"), ("B", "2.00")]);
    let first = leads::plan(&store, MODEL, "1.0.0", "r2", &emitted(&[("A", "1.00")])).unwrap();
    let second = leads::plan(&store, MODEL, "1.0.0", "r3", &emitted(&[("B", "2.00")])).unwrap();
    assert_eq!(apply(&store, &first), Applied::Written);
    let after_first = all(&store, Some(MODEL));
    assert_eq!(apply(&store, &second), Applied::Stale);
    assert_eq!(all(&store, Some(MODEL)), after_first);
    // Planned again on what r2 left, r3 commits as if it ran after it.
    let second = leads::plan(&store, MODEL, "1.0.0", "r3", &emitted(&[("B", "2.00")])).unwrap();
    assert_eq!(counts(&second), (1, 0, 1, 2));
    assert_eq!(apply(&store, &second), Applied::Written);
    assert_eq!(
        state(&lead(&store, "A")),
        (Status::Resolved, "r1", "r2", Some("r3"))
    );
    assert_eq!(state(&lead(&store, "B")), (Status::New, "r3", "r3", None));
    // Another model's run does not make a plan stale.
    let third = leads::plan(&store, MODEL, "1.0.0", "r4", &emitted(&[("B", "2.00")])).unwrap();
    run_as(&store, "other", "1.0.0", "o1", &emitted(&[("B", "2.00")]));
    assert_eq!(apply(&store, &third), Applied::Written);
}

#[test]
fn leads_stored_whole_by_earlier_versions_are_read_and_carried_on() {
    let (_d, store) = store();
    // Before the current layout every run rewrote each lead whole, with
    // its status and last run.
    let legacy = |subject: &str, status, first_run: &str, last_run: &str, resolved_by| {
        let data = &emitted(&[(subject, "5.00")])[subject];
        let lead = Lead {
            model: MODEL.into(),
            model_version: "1.0.0".into(),
            subject: subject.into(),
            subject_personal: false,
            title: data.title.clone(),
            amount: data.amount.clone(),
            evidence: data
                .evidence
                .iter()
                .map(|e| leads::Evidence {
                    name: e.name.clone(),
                    value: e.value.clone(),
                    personal: e.personal,
                })
                .collect(),
            status,
            first_run: first_run.into(),
            last_run: last_run.into(),
            resolved_by,
            updated_at: format!("at {last_run}"),
        };
        let key = format!("{MODEL}\0{subject}");
        store
            .leads
            .insert(key, serde_json::to_vec(&lead).unwrap())
            .unwrap();
        lead
    };
    let old = [
        legacy("A", Status::Open, "o1", "o3", None),
        legacy("B", Status::New, "o3", "o3", None),
        legacy("C", Status::Resolved, "o1", "o2", Some("o3".into())),
    ];
    assert_eq!(
        all(&store, Some(MODEL)).into_values().collect::<Vec<_>>(),
        old,
        "read as stored"
    );
    // The first run after the upgrade: A unchanged, B gone, C back.
    let c = run_as(
        &store,
        MODEL,
        "1.0.0",
        "r4",
        &emitted(&[("A", "5.00"), ("C", "5.00")]),
    );
    assert_eq!(counts(&c), (1, 1, 1, 3));
    let a = lead(&store, "A");
    assert_eq!(state(&a), (Status::Open, "o1", "r4", None));
    assert_eq!(a.updated_at, "at o3", "unchanged content, unchanged time");
    assert_eq!(
        state(&lead(&store, "B")),
        (Status::Resolved, "o3", "o3", Some("r4"))
    );
    assert_eq!(state(&lead(&store, "C")), (Status::New, "r4", "r4", None));
    // From then on, unchanged leads cost no write.
    let c = run_as(
        &store,
        MODEL,
        "1.0.0",
        "r5",
        &emitted(&[("A", "5.00"), ("C", "5.00")]),
    );
    assert_eq!(counts(&c), (0, 2, 0, 0));
}
