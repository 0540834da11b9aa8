//! The lifecycle of leads across runs, through the library: what each run
//! commits, what `leads::list` reads back, which leads change, and the
//! snapshot files behind them.

use jiandu::leads::{self, Applied, Changes, Filter, Lead, Status};
use jiandu::Store;
use jiandu_sdk::{EvidenceData, LeadData};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// Applies `changes` the way a run commits them, in one transaction, and
/// once committed deletes the snapshot they replace.
fn apply(store: &Store, changes: &Changes) -> Applied {
    let applied = store
        .meta
        .transaction(|meta| leads::apply_in(meta, changes))
        .unwrap();
    if applied == Applied::Written {
        changes.committed(store).unwrap();
    }
    applied
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

/// The folder of a model's leads files.
fn folder(store: &Store, model: &str) -> PathBuf {
    store.root().join("leads").join(model)
}

/// The names of the files in a model's folder.
fn files(store: &Store, model: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder(store, model))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn list_error(store: &Store) -> String {
    match leads::list(store, &Filter::default()) {
        Ok(l) => panic!("listed {} leads", l.len()),
        Err(e) => e.to_string(),
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} in {text}");
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
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

fn counts(c: &Changes) -> (u64, u64, u64, u64) {
    (c.new, c.open, c.resolved, c.changed)
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
fn a_rerun_that_finds_the_same_leads_changes_none_and_keeps_updated_at() {
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

/// The model's leads as `leads::list` reads them, by subject: (status,
/// first run, last run, resolved by, updated at, amount).
fn lives(store: &Store) -> Vec<(String, Status, String, String, Option<String>, String)> {
    all(store, Some(MODEL))
        .into_values()
        .map(|l| {
            (
                l.subject,
                l.status,
                l.first_run,
                l.last_run,
                l.resolved_by,
                l.amount.unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn a_rerun_that_changes_nothing_keeps_the_snapshot_and_reads_as_if_rewritten() {
    let (_d, store) = store();
    run(
        &store,
        "r1",
        &[("A", "10.00"), ("B", "5.00"), ("C", "1.00")],
    );
    run(&store, "r2", &[("A", "10.00"), ("B", "5.00")]);
    // Produced again exactly: the file r2 wrote is kept, nothing written.
    let c = run(&store, "r3", &[("A", "10.00"), ("B", "5.00")]);
    assert_eq!(counts(&c), (0, 2, 0, 0));
    assert_eq!(files(&store, MODEL), ["r2.leads"]);
    let p = pointer(&store, MODEL);
    assert_eq!(
        (&p["file"], &p["run"], &p["written_by"], &p["leads"]),
        (
            &"r2.leads".into(),
            &"r3".into(),
            &"r2".into(),
            &serde_json::json!(3)
        )
    );
    assert_eq!(c.snapshot().0, "r2.leads");
    let s = |v: &str| v.to_string();
    let resolved_c = (
        s("C"),
        Status::Resolved,
        s("r1"),
        s("r1"),
        Some(s("r2")),
        s("1.00"),
    );
    assert_eq!(
        lives(&store),
        [
            (s("A"), Status::Open, s("r1"), s("r3"), None, s("10.00")),
            (s("B"), Status::Open, s("r1"), s("r3"), None, s("5.00")),
            resolved_c.clone(),
        ]
    );
    // Kept again, and again the file of r2.
    run(&store, "r4", &[("A", "10.00"), ("B", "5.00")]);
    assert_eq!(files(&store, MODEL), ["r2.leads"]);
    assert_eq!(pointer(&store, MODEL)["written_by"], "r2");
    assert_eq!(lead(&store, "B").last_run, "r4");
    // A dry run that would keep it drops nothing.
    let dry = leads::plan(
        &store,
        MODEL,
        "1.0.0",
        "r5",
        &emitted(&[("A", "10.00"), ("B", "5.00")]),
    )
    .unwrap();
    let preview = dry.preview().unwrap();
    assert_eq!(preview.len(), 3);
    assert!(preview[..2]
        .iter()
        .all(|l| l.status == Status::Open && l.last_run == "r5"));
    dry.discard(&store).unwrap();
    assert_eq!(files(&store, MODEL), ["r2.leads"]);
    // A change writes the file again, the runs that kept it in its lines:
    // B last produced by r4, resolved by r6.
    run(&store, "r6", &[("A", "10.00")]);
    assert_eq!(files(&store, MODEL), ["r6.leads"]);
    assert!(pointer(&store, MODEL).get("written_by").is_none());
    assert_eq!(
        lives(&store),
        [
            (s("A"), Status::Open, s("r1"), s("r6"), None, s("10.00")),
            (
                s("B"),
                Status::Resolved,
                s("r1"),
                s("r4"),
                Some(s("r6")),
                s("5.00")
            ),
            resolved_c,
        ]
    );
    let verified = jiandu::audit::verify::local(&store).unwrap();
    assert!(verified.problem.is_none(), "{:?}", verified.problem);
}

#[test]
fn a_change_after_many_unchanged_leads_writes_them_from_a_checked_second_reading() {
    let (_d, store) = store();
    // More leads than the plan keeps ready in memory (4 MiB of lines): a
    // change among the first of them is written from memory, a later one
    // from a second reading of the snapshot.
    let leads: Vec<(String, String)> = (0..16_000)
        .map(|i| (format!("91{i:016}"), format!("{i}.00")))
        .collect();
    let refs = |leads: &[(String, String)]| -> Vec<(String, String)> { leads.to_vec() };
    let as_pairs = |leads: &[(String, String)]| -> BTreeMap<String, LeadData> {
        let pairs: Vec<(&str, &str)> = leads
            .iter()
            .map(|(s, a)| (s.as_str(), a.as_str()))
            .collect();
        emitted(&pairs)
    };
    run_as(&store, MODEL, "1.0.0", "r1", &as_pairs(&leads));
    // The 100th lead changes, then the 15,900th: the leads before each
    // change are written as open, last produced by the run.
    let mut changed = refs(&leads);
    for (run, at) in [("r2", 99), ("r3", 15_899)] {
        let before = all(&store, Some(MODEL));
        changed[at].1 = format!("7.{at}");
        let c = run_as(&store, MODEL, "1.0.0", run, &as_pairs(&changed));
        assert_eq!(counts(&c), (0, 16_000, 0, 1));
        assert_eq!(files(&store, MODEL), [format!("{run}.leads")]);
        let after = all(&store, Some(MODEL));
        assert_eq!(after.len(), 16_000);
        for (i, (k, l)) in after.iter().enumerate() {
            let b = &before[k];
            assert_eq!((l.status, l.last_run.as_str()), (Status::Open, run), "{k}");
            assert_eq!(l.first_run, "r1", "{k}");
            assert_eq!(l.updated_at == b.updated_at, i != at, "{k}");
            assert_eq!(l.amount, changed[i].1.clone().into(), "{k}");
        }
    }

    // The snapshot edited between the first reading and the second: the
    // plan fails on its sha256 rather than writing what was edited.
    let path = folder(&store, MODEL).join("r3.leads");
    let mut plan = leads::Plan::start(&store, MODEL, "1.0.0", "r4").unwrap();
    let mut buf = Vec::new();
    let mut take = |plan: &mut leads::Plan, lead: &LeadData| {
        buf.clear();
        jiandu_sdk::encoded_lead::put_data(&mut buf, lead);
        let (view, _) = jiandu_sdk::encoded_lead::decode_bytes(&buf).unwrap();
        plan.take(&view, None)
    };
    let again = as_pairs(&changed);
    let mut emitted_again = again.values();
    for lead in emitted_again.by_ref().take(10) {
        take(&mut plan, lead).unwrap();
    }
    edit(&path, "\"1.00\"", "\"9.00\"");
    let fresh = emitted(&[("91zzzzzzzzzzzzzzzz", "1.00")]);
    let mut failed = Ok(());
    for lead in emitted_again.chain(fresh.values()) {
        failed = take(&mut plan, lead);
        if failed.is_err() {
            break;
        }
    }
    let err = match failed {
        Err(e) => e.to_string(),
        Ok(()) => plan.finish().err().expect("refused").to_string(),
    };
    assert!(err.contains("r3.leads") && err.contains("sha256"), "{err}");
}

#[test]
fn a_changed_lead_is_rewritten_and_keeps_its_first_run() {
    let (_d, store) = store();
    run(&store, "r1", &[("A", "10.00"), ("B", "20.00")]);
    let c = run(&store, "r2", &[("A", "10.00"), ("B", "21.50")]);
    assert_eq!(counts(&c), (0, 2, 0, 1), "only B changed");
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
    // Neither plan took the other's file for an orphan.
    assert_eq!(files(&store, MODEL), ["r1.leads", "r2.leads", "r3.leads"]);
    assert_eq!(apply(&store, &first), Applied::Written);
    let after_first = all(&store, Some(MODEL));
    assert_eq!(apply(&store, &second), Applied::Stale);
    assert_eq!(all(&store, Some(MODEL)), after_first);
    // Planned again on what r2 left, r3 commits as if it ran after it.
    drop(second);
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

/// The leads of a snapshot file, read line by line as plain JSON.
fn file_leads(store: &Store, model: &str, file: &str) -> Vec<Lead> {
    let text = std::fs::read_to_string(folder(store, model).join(file)).unwrap();
    let text_of = |v: &serde_json::Value| v.as_str().map(str::to_string);
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let c = &v["content"];
            Lead {
                model: model.to_string(),
                model_version: text_of(&c["model_version"]).unwrap(),
                subject: text_of(&v["subject"]).unwrap(),
                subject_personal: c["subject_personal"].as_bool().unwrap(),
                title: text_of(&c["title"]).unwrap(),
                amount: text_of(&c["amount"]),
                evidence: c["evidence"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| leads::Evidence {
                        name: text_of(&e[0]).unwrap(),
                        value: text_of(&e[1]).unwrap(),
                        personal: e[2].as_bool().unwrap(),
                    })
                    .collect(),
                status: serde_json::from_value(v["status"].clone()).unwrap(),
                first_run: text_of(&v["first_run"]).unwrap(),
                last_run: text_of(&v["last_run"]).unwrap(),
                resolved_by: text_of(&v["resolved_by"]),
                updated_at: text_of(&v["updated_at"]).unwrap(),
            }
        })
        .collect()
}

fn pointer(store: &Store, model: &str) -> serde_json::Value {
    store
        .get_meta(&format!("leads/{model}/current"))
        .unwrap()
        .expect("a pointer")
}

#[test]
fn three_runs_leave_one_sorted_file_named_by_the_latest_run() {
    let (_d, store) = store();
    let c = run(
        &store,
        "r1",
        &[("C", "30.00"), ("A", "10.00"), ("B", "20.00")],
    );
    assert_eq!((counts(&c), c.leads), ((3, 0, 0, 3), 3));
    assert_eq!(files(&store, MODEL), ["r1.leads"]);
    let r1 = file_leads(&store, MODEL, "r1.leads");
    let subjects: Vec<&str> = r1.iter().map(|l| l.subject.as_str()).collect();
    assert_eq!(subjects, ["A", "B", "C"], "one lead a line, by subject");
    assert!(r1
        .iter()
        .all(|l| state(l) == (Status::New, "r1", "r1", None)));

    // B paid, C's gap grew.
    let c = run(&store, "r2", &[("A", "10.00"), ("C", "31.00")]);
    assert_eq!((counts(&c), c.leads), ((0, 2, 1, 2), 3));
    assert_eq!(files(&store, MODEL), ["r2.leads"], "r1's file is gone");
    let r2 = file_leads(&store, MODEL, "r2.leads");
    assert_eq!(state(&r2[0]), (Status::Open, "r1", "r2", None));
    assert_eq!(r2[0].updated_at, r1[0].updated_at, "A unchanged");
    assert_eq!(state(&r2[1]), (Status::Resolved, "r1", "r1", Some("r2")));
    assert_eq!(r2[1].amount.as_deref(), Some("20.00"));
    assert_eq!(state(&r2[2]), (Status::Open, "r1", "r2", None));
    assert_eq!(r2[2].amount.as_deref(), Some("31.00"));

    // A and C paid, B fell behind again, D is new.
    let c = run(&store, "r3", &[("B", "22.00"), ("D", "40.00")]);
    assert_eq!((counts(&c), c.leads), ((2, 0, 2, 4), 4));
    assert_eq!(files(&store, MODEL), ["r3.leads"]);
    let r3 = file_leads(&store, MODEL, "r3.leads");
    let states: Vec<_> = r3.iter().map(|l| (l.subject.as_str(), state(l))).collect();
    assert_eq!(
        states,
        [
            ("A", (Status::Resolved, "r1", "r2", Some("r3"))),
            ("B", (Status::New, "r3", "r3", None)),
            ("C", (Status::Resolved, "r1", "r2", Some("r3"))),
            ("D", (Status::New, "r3", "r3", None)),
        ]
    );
    assert_eq!(
        all(&store, Some(MODEL)).into_values().collect::<Vec<_>>(),
        r3
    );

    // The pointer names the file, its sha256 and its count.
    let bytes = std::fs::read(folder(&store, MODEL).join("r3.leads")).unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    assert_eq!(
        pointer(&store, MODEL),
        serde_json::json!({"file": "r3.leads", "sha256": sha, "leads": 4, "run": "r3"})
    );
}

#[test]
fn a_damaged_leads_file_is_named_and_refused() {
    let (_d, store) = store();
    run(&store, "r1", &[("A", "10.00"), ("B", "20.00")]);
    let path = folder(&store, MODEL).join("r1.leads");
    let good = std::fs::read(&path).unwrap();

    // An edited amount still parses: only the sha256 catches it.
    edit(&path, "20.00", "2.00");
    let err = list_error(&store);
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(
        err.contains("sha256") && err.contains("damaged or edited"),
        "{err}"
    );
    // A run of the model refuses to build on it, and keeps it.
    let plan = leads::plan(&store, MODEL, "1.0.0", "r2", &emitted(&[("A", "10.00")]));
    let err = plan.err().expect("refused").to_string();
    assert!(err.contains("r1.leads") && err.contains("sha256"), "{err}");
    assert!(path.exists());

    // A line cut short or garbled is the same error, not a parse error.
    std::fs::write(&path, &good[..good.len() - 10]).unwrap();
    let err = list_error(&store);
    assert!(err.contains("r1.leads") && err.contains("sha256"), "{err}");
    let mut garbled = good.clone();
    garbled[3] = b'#';
    std::fs::write(&path, &garbled).unwrap();
    let err = list_error(&store);
    assert!(err.contains("r1.leads") && err.contains("sha256"), "{err}");

    // A missing file is named too.
    std::fs::remove_file(&path).unwrap();
    let err = list_error(&store);
    assert!(err.contains("r1.leads") && err.contains("missing"), "{err}");

    // Restored from a backup, it reads again.
    std::fs::write(&path, &good).unwrap();
    assert_eq!(all(&store, None).len(), 2);
}

#[test]
fn an_orphan_from_a_failed_or_crashed_commit_is_ignored_then_removed() {
    let (_d, store) = store();
    run(&store, "r1", &[("A", "10.00")]);
    let before = all(&store, Some(MODEL));
    // A run whose commit failed: planned, never applied.
    let failed = leads::plan(&store, MODEL, "1.0.0", "r2", &emitted(&[("B", "1.00")])).unwrap();
    drop(failed);
    // A run that crashed while writing its file.
    std::fs::write(folder(&store, MODEL).join("r9.leads"), "{\"model\":").unwrap();
    // Not a leads file: never touched.
    std::fs::write(folder(&store, MODEL).join("notes.txt"), "处理意见").unwrap();
    assert_eq!(
        files(&store, MODEL),
        ["notes.txt", "r1.leads", "r2.leads", "r9.leads"]
    );
    assert_eq!(all(&store, Some(MODEL)), before, "orphans are not read");
    assert_eq!(all(&store, None), before);

    // The next run of the model removes them before writing its own file.
    let next = leads::plan(&store, MODEL, "1.0.0", "r3", &emitted(&[("A", "11.00")])).unwrap();
    assert_eq!(files(&store, MODEL), ["notes.txt", "r1.leads", "r3.leads"]);
    assert_eq!(apply(&store, &next), Applied::Written);
    assert_eq!(files(&store, MODEL), ["notes.txt", "r3.leads"]);
    assert_eq!(state(&lead(&store, "A")), (Status::Open, "r1", "r3", None));
}

#[test]
fn a_pointer_moved_since_the_plan_makes_apply_in_return_stale() {
    let (_d, store) = store();
    // Two first runs: the plan of the second was made against no pointer.
    let x1 = leads::plan(&store, MODEL, "1.0.0", "x1", &emitted(&[("A", "1.00")])).unwrap();
    let x2 = leads::plan(&store, MODEL, "1.0.0", "x2", &emitted(&[("B", "2.00")])).unwrap();
    assert_eq!(apply(&store, &x1), Applied::Written);
    assert_eq!(apply(&store, &x2), Applied::Stale);
    assert_eq!(pointer(&store, MODEL)["file"], "x1.leads");

    // A plan made against x1, overtaken by r2.
    let late = leads::plan(&store, MODEL, "1.0.0", "r3", &emitted(&[("C", "3.00")])).unwrap();
    run(&store, "r2", &[("A", "1.00"), ("B", "2.00")]);
    let before = store.meta.get(format!("leads/{MODEL}/current")).unwrap();
    assert_eq!(apply(&store, &late), Applied::Stale);
    assert_eq!(
        store.meta.get(format!("leads/{MODEL}/current")).unwrap(),
        before,
        "nothing written"
    );
    let now = all(&store, Some(MODEL));
    assert_eq!(now.len(), 2);
    assert!(now.values().all(|l| l.last_run == "r2"));
    // The stale plans' files go with the next plan.
    drop((x1, x2, late));
    run(&store, "r4", &[("A", "1.00")]);
    assert_eq!(files(&store, MODEL), ["r4.leads"]);
}

#[test]
fn a_run_is_planned_once_at_a_time_and_committed_once() {
    let (_d, store) = store();
    let leads = emitted(&[("A", "1.00")]);
    let first = leads::plan(&store, MODEL, "1.0.0", "r1", &leads).unwrap();
    let again = leads::plan(&store, MODEL, "1.0.0", "r1", &leads);
    assert!(again.err().unwrap().to_string().contains("already planned"));
    assert_eq!(apply(&store, &first), Applied::Written);
    drop(first);
    let again = leads::plan(&store, MODEL, "1.0.0", "r1", &leads);
    assert!(again
        .err()
        .unwrap()
        .to_string()
        .contains("committed its leads already"));
    assert_eq!(files(&store, MODEL), ["r1.leads"]);
    assert_eq!(all(&store, None).len(), 1);
}

#[test]
fn find_and_each_read_what_list_reads_and_refuse_an_edited_snapshot() {
    let (_dir, store) = store();
    run(&store, "r1", &[("A", "1.00"), ("B", "2.00"), ("C", "3.00")]);
    run(&store, "r2", &[("B", "2.00"), ("C", "4.00")]);
    for subject in ["A", "B", "C"] {
        assert_eq!(
            leads::find(&store, MODEL, subject).unwrap(),
            Some(lead(&store, subject)),
            "{subject}"
        );
    }
    assert_eq!(leads::find(&store, MODEL, "D").unwrap(), None);
    assert_eq!(leads::find(&store, "no-such-model", "A").unwrap(), None);
    let mut seen = Vec::new();
    leads::each(&store, MODEL, |l| seen.push(l)).unwrap();
    let listed: Vec<Lead> = all(&store, Some(MODEL)).into_values().collect();
    assert_eq!(seen, listed);

    let file = folder(&store, MODEL).join(&files(&store, MODEL)[0]);
    edit(&file, "\"4.00\"", "\"5.00\"");
    assert!(
        leads::find(&store, MODEL, "A").is_err(),
        "an edited snapshot"
    );
    assert!(leads::each(&store, MODEL, |_| {}).is_err());
}
