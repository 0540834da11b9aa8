//! The audit flow in process: signing, checkpoints, export, import, and
//! every way an export can be tampered with.

use super::export::{export_to, Since};
use super::import::{check, import, import_from, Refusal};
use super::*;
use crate::ledger::{self, DatasetRef, Draft, Kind, ModelRef, Outcome, RunRecord};
use crate::Store;
use std::collections::BTreeMap;

fn record(run_id: &str, model: &str, outcome: Outcome) -> RunRecord {
    RunRecord {
        run_id: run_id.into(),
        model: ModelRef {
            name: model.into(),
            version: "1.2.0".into(),
            wasm_sha256: "ab".repeat(32),
            publisher: (model == "drunk-driving").then(|| "aaaa:bbbb".to_string()),
            plan: None,
        },
        datasets: vec![DatasetRef {
            name: "disabled_employees".into(),
            version: 3,
            digest: "cd".repeat(32),
            clear_personal: false,
            personal: true,
            personal_fields: vec!["person_id".into()],
            seen: vec![],
        }],
        params: BTreeMap::from([("ratio".to_string(), "0.015".to_string())]),
        limits: None,
        started_at: "2025-03-01T09:00:00.000+08:00".into(),
        ended_at: None,
        fuel_used: None,
        peak_memory: None,
        records_read: Some(1200),
        leads_count: (outcome == Outcome::Succeeded).then_some(7),
        leads_digest: None,
        leads_snapshot: None,
        outcome,
        error: None,
        replaces: None,
        replay_of: None,
        reproduced: None,
        dry_run: false,
        partitions: Vec::new(),
    }
}

/// The failure of every failed run here: a model's text, with characters
/// that JSON escapes.
fn failure() -> crate::ledger::Stopped<'static> {
    crate::ledger::Stopped {
        kind: "trap",
        message: "模型 \"panicked\" at\nline 2 \\ end",
        limit: None,
        used: None,
    }
}

fn draft(store: &Store, kind: Kind, run: RunRecord) -> Draft {
    let unit = crate::unit::current(store)
        .unwrap()
        .map_or("no unit".to_string(), |u| {
            format!("{} ({})", u.name, u.code)
        });
    let outcome = run.outcome;
    let draft = Draft::run(unit, "张三".into(), kind, run);
    match outcome {
        Outcome::Failed => draft.failed(failure()),
        // A refusal's reason is the host's: it stays in the entry, and
        // brings characters that JSON escapes into exports.
        Outcome::Refused => draft.failed(crate::ledger::Stopped {
            kind: "refused",
            message: "数据集 \"fund_payments\" is not granted\n\\ by policy",
            limit: None,
            used: None,
        }),
        _ => draft,
    }
}

/// One run: a start entry and, unless it crashed, its end.
fn run(store: &Store, id: &str, model: &str, outcome: Outcome) {
    ledger::append(
        store,
        &draft(store, Kind::RunStarted, record(id, model, Outcome::Started)),
    )
    .unwrap();
    let kind = match outcome {
        Outcome::Started => return,
        Outcome::Refused => Kind::RunRefused,
        _ => Kind::RunFinished,
    };
    ledger::append(store, &draft(store, kind, record(id, model, outcome))).unwrap();
}

fn unit_store(name: &str, code: &str) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    crate::unit::init(&store, name, code).unwrap();
    (dir, store)
}

fn central_for(units: &[&Store]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let central = Store::open(dir.path()).unwrap();
    for u in units {
        let unit = crate::unit::current(u).unwrap().unwrap();
        let key = jiandu_registry::keys::PublicKey::parse(&unit.public_key).unwrap();
        units::add(&central, &key, &unit.name, &unit.code).unwrap();
    }
    (dir, central)
}

fn exported(store: &Store, since: Option<Since>) -> Vec<u8> {
    let mut out = Vec::new();
    export_to(store, since.as_ref(), &mut out).unwrap();
    out
}

fn refused(central: &Store, bytes: &[u8]) -> Refusal {
    match check(central, bytes).unwrap() {
        Err(r) => r,
        Ok(plan) => panic!("accepted: {} new entries", plan.added),
    }
}

fn accept(central: &Store, bytes: &[u8]) -> import::Imported {
    import(central, bytes, "test")
        .unwrap()
        .unwrap_or_else(|r| panic!("refused: {r}"))
}

fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.to_vec())
        .collect()
}

fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    out
}

/// A unit with a succeeded, a failed, a refused and a crashed run.
fn busy_unit(name: &str, code: &str) -> (tempfile::TempDir, Store) {
    let (d, s) = unit_store(name, code);
    run(&s, "r1", "disability-fund-arrears", Outcome::Succeeded);
    run(&s, "r2", "disability-fund-arrears", Outcome::Failed);
    ledger::append(
        &s,
        &draft(
            &s,
            Kind::RunRefused,
            record("r3", "drunk-driving", Outcome::Refused),
        ),
    )
    .unwrap();
    run(&s, "r4", "drunk-driving", Outcome::Started);
    (d, s)
}

#[test]
fn entries_are_signed_and_verify_against_the_unit_key() {
    let (_d, s) = busy_unit("温宿县人民检察院", "C1");
    let v = crate::audit::verify::local(&s).unwrap();
    assert!(v.problem.is_none(), "{:?}", v.problem);
    assert_eq!((v.entries, v.signed, v.unsigned), (6, 6, 0));
    let unit = crate::unit::current(&s).unwrap().unwrap();
    assert_eq!(v.fingerprint.as_deref(), Some(unit.fingerprint.as_str()));
    let entry = ledger::read_all(&s).unwrap().remove(0);
    assert_eq!(entry.unit_key.as_deref(), Some(unit.fingerprint.as_str()));
    let seal = ledger::seal(&s, 1).unwrap().unwrap().unwrap();
    let bytes = s.ledger.get(1u64.to_be_bytes()).unwrap().unwrap();
    assert_eq!(seal.hash, ledger::hash(&bytes));
    let key = jiandu_registry::keys::PublicKey::parse(&unit.public_key).unwrap();
    assert!(key
        .verify(
            &ledger::entry_message(&seal.hash),
            seal.sig.as_deref().unwrap()
        )
        .unwrap());
}

#[test]
fn a_store_without_a_unit_writes_unsigned_entries_and_cannot_export() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    run(&s, "r1", "m", Outcome::Succeeded);
    let v = crate::audit::verify::local(&s).unwrap();
    assert!(v.problem.is_none(), "{:?}", v.problem);
    assert_eq!((v.signed, v.unsigned, v.fingerprint), (0, 2, None));
    let err = export_to(&s, None, &mut Vec::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("unit init"), "{err}");
}

#[test]
fn entries_before_unit_init_stay_unsigned_but_none_may_follow_a_signed_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    run(&s, "r1", "m", Outcome::Succeeded);
    crate::unit::init(&s, "乌什县人民检察院", "C2").unwrap();
    run(&s, "r2", "m", Outcome::Succeeded);
    let v = crate::audit::verify::local(&s).unwrap();
    assert!(v.problem.is_none(), "{:?}", v.problem);
    assert_eq!((v.signed, v.unsigned), (2, 2));
    // The prefix exports and imports: the signed checkpoint covers it.
    let (_c, central) = central_for(&[&s]);
    assert_eq!(accept(&central, &exported(&s, None)).added, 4);

    // Hide the unit, write an entry, restore it: an unsigned entry after
    // signed ones.
    let unit = s.meta.remove("unit").unwrap().unwrap();
    run(&s, "r3", "m", Outcome::Started);
    s.meta.insert("unit", unit).unwrap();
    let p = crate::audit::verify::local(&s)
        .unwrap()
        .problem
        .expect("detected");
    assert_eq!((p.seq, p.check), (5, "signature"), "{p:?}");
    assert!(p.message.contains("unsigned"), "{}", p.message);
}

#[test]
fn an_unreadable_unit_key_stops_the_entry_and_so_the_run() {
    let (_d, s) = unit_store("温宿县人民检察院", "C1");
    run(&s, "r1", "m", Outcome::Succeeded);
    std::fs::remove_file(crate::unit::key_path(&s)).unwrap();
    let d = draft(&s, Kind::RunStarted, record("r2", "m", Outcome::Started));
    assert!(ledger::append(&s, &d).is_err());
    assert_eq!(
        ledger::read_all(&s).unwrap().len(),
        2,
        "nothing was written"
    );
}

#[test]
fn local_edits_are_named_with_the_check_they_fail() {
    // An edited entry: its bytes no longer match the hash sealed with it.
    let (_d, s) = busy_unit("温宿县人民检察院", "C1");
    let key = 3u64.to_be_bytes();
    let mut bytes = s.ledger.get(key).unwrap().unwrap().to_vec();
    let at = bytes
        .windows(6)
        .position(|w| w == "张三".as_bytes())
        .unwrap();
    bytes[at..at + 6].copy_from_slice("李四".as_bytes());
    s.ledger.insert(key, bytes).unwrap();
    let p = crate::audit::verify::local(&s)
        .unwrap()
        .problem
        .expect("detected");
    assert_eq!((p.seq, p.check), (3, "hash"), "{p:?}");

    // A seal rewritten to match the edit cannot carry the unit's signature.
    let bytes = s.ledger.get(key).unwrap().unwrap();
    let mut seal = ledger::seal(&s, 3).unwrap().unwrap().unwrap();
    seal.hash = ledger::hash(&bytes);
    s.ledger_sig
        .insert(key, serde_json::to_vec(&seal).unwrap())
        .unwrap();
    let p = crate::audit::verify::local(&s)
        .unwrap()
        .problem
        .expect("detected");
    assert_eq!((p.seq, p.check), (3, "signature"), "{p:?}");

    // Signed by another key.
    let other = jiandu_registry::keys::UnitKey::generate().unwrap();
    seal.sig = Some(other.sign(&ledger::entry_message(&seal.hash)));
    s.ledger_sig
        .insert(key, serde_json::to_vec(&seal).unwrap())
        .unwrap();
    let p = crate::audit::verify::local(&s)
        .unwrap()
        .problem
        .expect("detected");
    assert_eq!((p.seq, p.check), (3, "signature"), "{p:?}");
}

#[test]
fn an_observed_walk_sees_every_verified_entry_once_in_order_and_none_past_a_fault() {
    let (_d, s) = busy_unit("温宿县人民检察院", "C1");
    let kinds = |bytes: &[u8]| {
        let e: crate::audit::EntryView = serde_json::from_slice(bytes).unwrap();
        Some(e.kind)
    };
    let (v, seen) = crate::audit::verify::local_observed(&s, &|_, b| kinds(b)).unwrap();
    assert!(v.problem.is_none(), "{:?}", v.problem);
    let expected: Vec<(u64, String)> = ledger::entries(&s, 1)
        .map(|item| {
            let (seq, bytes) = item.unwrap();
            (seq, kinds(&bytes).unwrap())
        })
        .collect();
    assert_eq!(seen.len(), 6);
    assert_eq!(seen, expected);
    assert_eq!(v.entries, crate::audit::verify::local(&s).unwrap().entries);

    // An edited entry 3: the walk stops there, and observes only 1 and 2.
    let key = 3u64.to_be_bytes();
    let mut bytes = s.ledger.get(key).unwrap().unwrap().to_vec();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    s.ledger.insert(key, bytes).unwrap();
    let (v, seen) = crate::audit::verify::local_observed(&s, &|_, b| Some(b.len())).unwrap();
    assert_eq!(v.problem.map(|p| p.seq), Some(3));
    assert_eq!(seen.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn an_entry_written_around_the_ledger_head_is_named() {
    let (_d, s) = busy_unit("温宿县人民检察院", "C1");
    let bytes = s.ledger.get(6u64.to_be_bytes()).unwrap().unwrap();
    s.ledger.insert(7u64.to_be_bytes(), bytes).unwrap();
    let p = crate::audit::verify::local(&s)
        .unwrap()
        .problem
        .expect("detected");
    assert_eq!((p.seq, p.check), (7, "head"), "{p:?}");
}

#[test]
fn a_checkpoint_is_written_every_so_many_entries_and_catches_a_cut_ledger() {
    let (_d, s) = unit_store("温宿县人民检察院", "C1");
    for i in 0..checkpoint::EVERY / 2 {
        run(&s, &format!("r{i}"), "m", Outcome::Succeeded);
    }
    let cp = checkpoint::latest_local(&s)
        .unwrap()
        .expect("a periodic checkpoint");
    assert_eq!(cp.checkpoint.size, checkpoint::EVERY);
    let v = crate::audit::verify::local(&s).unwrap();
    assert!(v.problem.is_none(), "{:?}", v.problem);
    assert_eq!(v.checkpoints, 1);

    // Cut the last entries and rewrite the head to match: the chain alone
    // is consistent again, the signed checkpoint is not.
    let cut = checkpoint::EVERY - 2;
    for seq in cut + 1..=checkpoint::EVERY {
        s.ledger.remove(seq.to_be_bytes()).unwrap();
    }
    let hash = ledger::hash(&s.ledger.get(cut.to_be_bytes()).unwrap().unwrap());
    s.put_meta(
        "ledger/head",
        &serde_json::json!({"seq": cut, "hash": hash}),
    )
    .unwrap();
    let p = crate::audit::verify::local(&s)
        .unwrap()
        .problem
        .expect("detected");
    assert_eq!((p.seq, p.check), (checkpoint::EVERY, "checkpoint"), "{p:?}");
}

#[test]
fn three_units_export_and_the_central_office_imports_them_side_by_side() {
    let (_a, a) = busy_unit("温宿县人民检察院", "C1");
    let (_b, b) = busy_unit("乌什县人民检察院", "C2");
    let (_c, c) = unit_store("阿瓦提县人民检察院", "C3");
    run(&c, "x1", "disability-fund-arrears", Outcome::Succeeded);
    let (_z, central) = central_for(&[&a, &b, &c]);
    for s in [&a, &b, &c] {
        let done = accept(&central, &exported(s, None));
        assert_eq!(done.previous, 0);
    }
    for u in units::list(&central).unwrap() {
        let v = verify::central(&central, &u).unwrap();
        assert!(v.problem.is_none(), "{}: {:?}", u.name, v.problem);
    }
    // More runs, exported after the accepted checkpoint.
    run(&a, "r5", "disability-fund-arrears", Outcome::Succeeded);
    let since = Since::Size(6);
    let done = accept(&central, &exported(&a, Some(since)));
    assert_eq!((done.previous, done.added, done.size), (6, 2, 8));
    // Or after the checkpoint in the previous export file.
    run(&a, "r6", "disability-fund-arrears", Outcome::Failed);
    let previous = exported(&a, Some(Since::Size(8)));
    let last_line = lines(&previous).pop().unwrap();
    let cp: export::CheckpointLine = serde_json::from_slice(&last_line).unwrap();
    run(&a, "r7", "disability-fund-arrears", Outcome::Succeeded);
    accept(&central, &previous);
    let done = accept(
        &central,
        &exported(&a, Some(Since::Checkpoint(cp.signed()))),
    );
    assert_eq!((done.previous, done.added), (10, 2));

    let report = query::report(&central, &query::Filter::default()).unwrap();
    assert_eq!(report.len(), 3);
    let wensu = report
        .iter()
        .find(|u| u.unit == "温宿县人民检察院")
        .unwrap();
    assert_eq!(wensu.entries, 12);
    assert_eq!(
        (
            wensu.counts.runs,
            wensu.counts.succeeded,
            wensu.counts.failed,
            wensu.counts.refused,
            wensu.counts.unfinished
        ),
        (7, 3, 2, 1, 1)
    );
    assert_eq!(wensu.counts.failures, 4);
    assert_eq!(wensu.counts.leads, 21);
    let dd = wensu
        .models
        .iter()
        .find(|m| m.model == "drunk-driving")
        .unwrap();
    assert!(dd.publishers.contains("aaaa:bbbb"), "{:?}", dd.publishers);
    assert!(wensu.datasets[0].personal);

    let filter = query::Filter {
        unit: Some("C2".into()),
        outcome: Some(query::OutcomeFilter::Unfinished),
        ..Default::default()
    };
    let rows = query::log(&central, &filter).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].unit.as_str(), rows[0].entry.run.run_id.as_str()),
        ("乌什县人民检察院", "r4")
    );
}

#[test]
fn re_importing_is_a_replay_but_a_newer_checkpoint_of_the_same_ledger_is_taken() {
    let (_a, a) = busy_unit("温宿县人民检察院", "C1");
    let (_z, central) = central_for(&[&a]);
    let first = exported(&a, None);
    accept(&central, &first);
    let r = refused(&central, &first);
    assert_eq!(
        (r.check, r.line),
        (Check::Replay, lines(&first).len()),
        "{r}"
    );
    let fresh = exported(&a, None);
    let done = accept(&central, &fresh);
    assert_eq!(done.added, 0);
    // An export older than what was accepted is a replay too.
    run(&a, "r9", "m", Outcome::Succeeded);
    accept(&central, &exported(&a, None));
    let r = refused(&central, &fresh);
    assert_eq!(r.check, Check::Replay, "{r}");
}

#[test]
fn deleting_reordering_truncating_and_splicing_are_refused_where_they_happen() {
    let (_a, a) = busy_unit("温宿县人民检察院", "C1");
    let (_b, b) = busy_unit("乌什县人民检察院", "C2");
    let (_z, central) = central_for(&[&a, &b]);
    let good = lines(&exported(&a, None));
    // Lines: 1 header, 2..=7 entries 1..=6, 8 checkpoint.

    let mut deleted = good.clone();
    deleted.remove(3);
    let r = refused(&central, &join(&deleted));
    assert_eq!(
        (r.line, r.seq, r.check),
        (4, Some(3), Check::Sequence),
        "{r}"
    );

    let mut last_deleted = good.clone();
    last_deleted.remove(6);
    let r = refused(&central, &join(&last_deleted));
    assert_eq!(
        (r.line, r.seq, r.check),
        (7, Some(6), Check::Sequence),
        "{r}"
    );

    let mut reordered = good.clone();
    reordered.swap(3, 4);
    let r = refused(&central, &join(&reordered));
    assert_eq!((r.line, r.check), (4, Check::Sequence), "{r}");

    let r = refused(&central, &join(&good[..5]));
    assert_eq!((r.line, r.seq, r.check), (6, Some(5), Check::Format), "{r}");
    assert!(r.message.contains("cut short"), "{r}");
    let whole = join(&good);
    let r = refused(&central, &whole[..whole.len() - 40]);
    assert_eq!((r.line, r.check), (8, Check::Format), "{r}");
    let r = refused(&central, &whole[..good[0].len() / 2]);
    assert_eq!((r.line, r.check), (1, Check::Format), "{r}");

    // An entry of unit B in unit A's export, in place of A's entry 3.
    let other = lines(&exported(&b, None));
    let mut spliced = good.clone();
    spliced[3] = other[3].clone();
    let r = refused(&central, &join(&spliced));
    assert_eq!(
        (r.line, r.seq, r.check),
        (4, Some(3), Check::Signature),
        "{r}"
    );
    assert!(r.message.contains("another unit"), "{r}");
    // B's entry inserted as an extra line.
    let mut inserted = good.clone();
    inserted.insert(3, other[3].clone());
    let r = refused(&central, &join(&inserted));
    assert_eq!((r.line, r.check), (4, Check::Signature), "{r}");
    // B's checkpoint on A's entries.
    let mut swapped = good.clone();
    *swapped.last_mut().unwrap() = other.last().unwrap().clone();
    let r = refused(&central, &join(&swapped));
    assert_eq!((r.line, r.check), (8, Check::Checkpoint), "{r}");
    // Two exports joined.
    let mut joined = good.clone();
    joined.extend(good.iter().cloned());
    let r = refused(&central, &join(&joined));
    assert_eq!((r.line, r.check), (9, Check::Format), "{r}");
}

#[test]
fn an_export_signed_with_the_wrong_key_is_refused() {
    let (_a, a) = busy_unit("温宿县人民检察院", "C1");
    let (_z, central) = central_for(&[&a]);
    // An impostor store with the same name and code but its own key.
    let (_i, impostor) = busy_unit("温宿县人民检察院", "C1");
    let r = refused(&central, &exported(&impostor, None));
    assert_eq!((r.line, r.check), (1, Check::Unit), "{r}");
    assert!(r.message.contains("wrong key"), "{r}");

    // The impostor's export relabelled as unit A's: the header and every
    // entry signature fail against A's registered key.
    let unit_a = crate::unit::current(&a).unwrap().unwrap();
    let unit_i = crate::unit::current(&impostor).unwrap().unwrap();
    let relabel = |bytes: &[u8]| -> Vec<u8> {
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .replace(&unit_i.fingerprint, &unit_a.fingerprint)
            .replace(&unit_i.public_key, &unit_a.public_key)
            .into_bytes()
    };
    let forged = lines(&relabel(&exported(&impostor, None)));
    let r = refused(&central, &join(&forged));
    assert_eq!((r.line, r.check), (1, Check::Signature), "{r}");
    // With A's genuine header, the first forged entry is named.
    let mut mixed = forged.clone();
    mixed[0] = lines(&exported(&a, None))[0].clone();
    let r = refused(&central, &join(&mixed));
    assert_eq!((r.line, r.seq, r.check), (2, Some(1), Check::Hash), "{r}");
}

#[test]
fn a_gap_a_fork_and_a_rewritten_past_are_refused_and_named() {
    let (_a, a) = busy_unit("温宿县人民检察院", "C1");
    let (_z, central) = central_for(&[&a]);
    accept(&central, &exported(&a, Some(Since::Size(0))));
    run(&a, "r5", "m", Outcome::Succeeded);
    run(&a, "r6", "m", Outcome::Succeeded);
    // Gap: starts after entry 8, the office holds 6.
    let r = refused(&central, &exported(&a, Some(Since::Size(8))));
    assert_eq!((r.line, r.check), (1, Check::Gap), "{r}");
    assert!(r.message.contains("--since 6"), "{r}");

    // The unit loses its store, restores the key from a backup and starts
    // over: a new ledger under the same key.
    let (_b, restored) = {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("unit")).unwrap();
        std::fs::copy(crate::unit::key_path(&a), crate::unit::key_path(&s)).unwrap();
        s.put_meta("unit", &crate::unit::current(&a).unwrap().unwrap())
            .unwrap();
        (dir, s)
    };
    for i in 0..4 {
        run(&restored, &format!("n{i}"), "m", Outcome::Succeeded);
    }
    // Its full export contradicts accepted entry 1.
    let r = refused(&central, &exported(&restored, None));
    assert_eq!(
        (r.line, r.seq, r.check),
        (2, Some(1), Check::Rewrite),
        "{r}"
    );
    // Its export after entry 6 extends a different ledger.
    let r = refused(&central, &exported(&restored, Some(Since::Size(6))));
    assert_eq!((r.line, r.check), (1, Check::Fork), "{r}");
}

#[test]
fn the_central_copy_is_verified_and_its_faults_located() {
    let (_a, a) = busy_unit("温宿县人民检察院", "C1");
    let (_z, central) = central_for(&[&a]);
    accept(&central, &exported(&a, None));
    let u = units::list(&central).unwrap().remove(0);
    let key = central::key(&u.fingerprint, 4);
    let mut line: export::EntryLine =
        serde_json::from_slice(&central.central.get(&key).unwrap().unwrap()).unwrap();
    line.entry = line.entry.replace("张三", "王五");
    central
        .central
        .insert(&key, serde_json::to_vec(&line).unwrap())
        .unwrap();
    let p = verify::central(&central, &u)
        .unwrap()
        .problem
        .expect("detected");
    assert_eq!((p.seq, p.check), (4, "hash"), "{p:?}");
    // A damaged copy is not built upon.
    run(&a, "r5", "m", Outcome::Succeeded);
    let err = check(&central, &exported(&a, Some(Since::Size(6)))).unwrap_err();
    assert!(err.to_string().contains("audit verify --unit"), "{err}");
}

#[test]
fn entries_an_import_stored_before_its_checkpoint_are_not_accepted() {
    let (_a, a) = busy_unit("温宿县人民检察院", "C1");
    let (_z, central) = central_for(&[&a]);
    let first = accept(&central, &exported(&a, None));
    let u = units::list(&central).unwrap().remove(0);
    // An import that stopped after its entries and before its checkpoint:
    // the next entries stored, no checkpoint accepting them.
    run(&a, "r5", "m", Outcome::Succeeded);
    let later = exported(&a, Some(Since::Size(first.size)));
    assert_eq!(check(&central, &later).unwrap().unwrap().added, 2);
    for line in lines(&later) {
        if let Ok(line) = serde_json::from_slice::<export::EntryLine>(&line) {
            if line.seq > first.size {
                central
                    .central
                    .insert(
                        central::key(&u.fingerprint, line.seq),
                        serde_json::to_vec(&line).unwrap(),
                    )
                    .unwrap();
            }
        }
    }
    // Not read, not verified against, not listed.
    let stored: Vec<u64> = central::entries(&central, &u.fingerprint)
        .map(|e| e.unwrap().0)
        .collect();
    assert_eq!(stored.last(), Some(&first.size));
    let v = verify::central(&central, &u).unwrap();
    assert!(v.problem.is_none(), "{:?}", v.problem);
    assert_eq!(v.entries, first.size);
    // The same export imports, and then they are accepted.
    let again = accept(&central, &later);
    assert_eq!(again.previous, first.size);
    assert!(again.size > first.size);
    assert!(verify::central(&central, &u).unwrap().problem.is_none());
}

/// The line (1-based) that holds byte `pos`; a newline belongs to the line
/// it ends.
fn line_of(bytes: &[u8], pos: usize) -> usize {
    1 + bytes[..pos].iter().filter(|&&b| b == b'\n').count()
}

/// Flips every byte of `bytes` with each mask in turn and checks each
/// result. Returns the flips that were accepted.
fn flip_every_byte(central: &Store, bytes: &[u8]) -> Vec<(usize, u8)> {
    let baseline = check(central, bytes)
        .unwrap()
        .expect("the untouched export is accepted");
    let mut harmless = Vec::new();
    let mut copy = bytes.to_vec();
    for pos in 0..bytes.len() {
        for mask in [0xffu8, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80] {
            copy[pos] ^= mask;
            match check(central, &copy).unwrap() {
                Err(r) => assert_eq!(
                    r.line,
                    line_of(bytes, pos),
                    "byte {pos} ({:?}) ^ {mask:#04x}: {r}",
                    bytes[pos] as char
                ),
                Ok(plan) => {
                    // Accepted: it must mean exactly what the original means.
                    assert_eq!(plan.checkpoint, baseline.checkpoint);
                    assert_eq!(plan.added_digest, baseline.added_digest);
                    assert_eq!(plan.header, baseline.header);
                    harmless.push((pos, mask));
                }
            }
            copy[pos] ^= mask;
        }
    }
    harmless
}

#[test]
fn every_byte_flip_of_an_export_is_refused_at_the_line_it_is_on() {
    let (_a, a) = unit_store("温宿县人民检察院", "C1");
    run(&a, "r1", "disability-fund-arrears", Outcome::Failed);
    ledger::append(
        &a,
        &draft(
            &a,
            Kind::RunRefused,
            record("r2", "drunk-driving", Outcome::Refused),
        ),
    )
    .unwrap();
    let (_z, central) = central_for(&[&a]);
    let whole = exported(&a, None);
    assert_eq!(
        flip_every_byte(&central, &whole),
        vec![],
        "no flip is harmless"
    );

    // An export that continues an accepted one, checked against it.
    accept(&central, &whole);
    run(&a, "r3", "disability-fund-arrears", Outcome::Succeeded);
    let more = exported(&a, Some(Since::Size(3)));
    assert_eq!(
        flip_every_byte(&central, &more),
        vec![],
        "no flip is harmless"
    );
}

#[test]
fn other_json_spellings_of_the_same_export_are_accepted() {
    // What the format ignores: a byte order mark, whitespace between
    // tokens, CRLF line ends, string escapes, a missing final newline. None changes a value that a
    // hash or signature covers.
    let (_a, a) = busy_unit("温宿县人民检察院", "C1");
    let (_z, central) = central_for(&[&a]);
    let original = exported(&a, None);
    let mut respelled = String::new();
    for l in lines(&original) {
        let v: serde_json::Value = serde_json::from_slice(&l).unwrap();
        let pretty = serde_json::to_string_pretty(&v).unwrap().replace('\n', " ");
        let escaped: String = pretty
            .chars()
            .map(|c| {
                if c.is_ascii() {
                    c.to_string()
                } else {
                    format!("\\u{:04x}", c as u32)
                }
            })
            .collect();
        respelled.push_str(&escaped);
        respelled.push_str("\r\n");
    }
    let respelled = [b"\xef\xbb\xbf".as_slice(), respelled.trim_end().as_bytes()].concat();
    let a_plan = check(&central, &original).unwrap().unwrap();
    let b_plan = check(&central, &respelled)
        .unwrap()
        .unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(a_plan.added_digest, b_plan.added_digest);
    assert_eq!(a_plan.checkpoint, b_plan.checkpoint);
    // But an unknown field is refused.
    let mut extra = lines(&original);
    let mut v: serde_json::Value = serde_json::from_slice(&extra[2]).unwrap();
    v["note"] = "hi".into();
    extra[2] = serde_json::to_vec(&v).unwrap();
    let r = refused(&central, &join(&extra));
    assert_eq!((r.line, r.check), (3, Check::Format), "{r}");
}

// ---------------------------------------------------------------------------
// Model text beside the chain

fn entry_json(store: &Store, seq: u64) -> serde_json::Value {
    serde_json::from_slice(&store.ledger.get(seq.to_be_bytes()).unwrap().unwrap()).unwrap()
}

fn log_row(store: &Store, seq: u64) -> query::LogRow {
    query::log(store, &query::Filter::default())
        .unwrap()
        .into_iter()
        .find(|r| r.local && r.entry.seq == seq)
        .unwrap()
}

#[test]
fn a_models_text_stays_out_of_the_chain_and_its_redaction_keeps_the_chain_whole() {
    let (_a, a) = unit_store("温宿县人民检察院", "C1");
    run(&a, "r1", "disability-fund-arrears", Outcome::Failed);
    let text = failure().message.to_string();
    // Entry 2 holds the text's salted hash and length, not the text.
    let e = entry_json(&a, 2);
    let error = &e["run"]["error"];
    assert_eq!(error["kind"], "trap");
    assert!(error.get("message").is_none(), "{error}");
    assert_eq!(error["message_len"], text.len() as u64);
    let bytes = a.ledger.get(2u64.to_be_bytes()).unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains("panicked"));
    let aside = ledger::aside::read(&a, 2).unwrap().unwrap().unwrap();
    assert_eq!(aside.text, text);
    assert_eq!(error["message_sha256"], aside.commitment());
    assert_eq!(
        log_row(&a, 2).text,
        Some(query::ModelText::Present { text: text.clone() })
    );
    // A refusal's reason is the host's own and stays in the entry.
    ledger::append(
        &a,
        &draft(&a, Kind::RunRefused, record("r2", "m", Outcome::Refused)),
    )
    .unwrap();
    assert!(entry_json(&a, 3)["run"]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not granted"));
    assert_eq!(log_row(&a, 3).text, None);

    let redaction = ledger::aside::redact(
        &a,
        2,
        "温宿县人民检察院 (C1)".into(),
        "李四".into(),
        "quotes an ID number",
    )
    .unwrap();
    assert_eq!((redaction.seq, redaction.kind), (4, Kind::TextRedacted));
    assert_eq!(
        redaction.redaction,
        Some(ledger::Redaction {
            seq: 2,
            reason: "quotes an ID number".into()
        })
    );
    assert!(
        ledger::aside::read(&a, 2).unwrap().is_none(),
        "the text is gone"
    );
    let v = crate::audit::verify::local(&a).unwrap();
    assert!(v.problem.is_none(), "{:?}", v.problem);
    assert_eq!(v.entries, 4);
    assert_eq!(
        v.redactions
            .iter()
            .map(|r| (r.seq, r.target, r.operator.as_str(), r.reason.as_str()))
            .collect::<Vec<_>>(),
        [(4, 2, "李四", "quotes an ID number")]
    );
    let row = log_row(&a, 2);
    assert!(
        matches!(&row.text, Some(query::ModelText::Redacted(r)) if r.by == 4),
        "{:?}",
        row.text
    );
    assert_eq!(
        query::error_message(&row.entry, row.text.as_ref()).as_deref(),
        Some("[redacted: quotes an ID number]")
    );

    // Once is enough, and only model text can go.
    let again = ledger::aside::redact(&a, 2, "u".into(), "op".into(), "again").unwrap_err();
    assert!(again.to_string().contains("by entry 4"), "{again}");
    let none = ledger::aside::redact(&a, 1, "u".into(), "op".into(), "why").unwrap_err();
    assert!(none.to_string().contains("nothing to redact"), "{none}");
    let unknown = ledger::aside::redact(&a, 99, "u".into(), "op".into(), "why").unwrap_err();
    assert!(unknown.to_string().contains("no entry 99"), "{unknown}");
    let no_reason = ledger::aside::redact(&a, 2, "u".into(), "op".into(), "  ").unwrap_err();
    assert!(no_reason.to_string().contains("reason"), "{no_reason}");
    assert_eq!(
        crate::audit::verify::local(&a).unwrap().entries,
        4,
        "refusals write nothing"
    );

    // The export carries the entries and the redaction, never the text;
    // the central office takes it and sees the redaction.
    run(&a, "r3", "disability-fund-arrears", Outcome::Failed);
    let bytes = exported(&a, None);
    let text_of_export = String::from_utf8_lossy(&bytes);
    assert!(!text_of_export.contains("panicked"), "{text_of_export}");
    assert!(text_of_export.contains("text-redacted"));
    let (_z, central) = central_for(&[&a]);
    accept(&central, &bytes);
    let u = units::list(&central).unwrap().remove(0);
    let v = verify::central(&central, &u).unwrap();
    assert!(v.problem.is_none(), "{:?}", v.problem);
    assert_eq!(v.redactions.len(), 1);
    let rows = query::log(&central, &query::Filter::default()).unwrap();
    let at = |seq: u64| rows.iter().find(|r| r.entry.seq == seq).unwrap();
    assert!(matches!(at(2).text, Some(query::ModelText::Redacted(_))));
    assert_eq!(at(6).text, Some(query::ModelText::Unit), "kept at the unit");
}

#[test]
fn model_text_edited_planted_or_removed_around_the_ledger_fails_the_text_check() {
    let (_a, a) = unit_store("温宿县人民检察院", "C1");
    run(&a, "r1", "m", Outcome::Failed);
    run(&a, "r2", "m", Outcome::Succeeded);
    let key = 2u64.to_be_bytes();
    let original = a.ledger_text.get(key).unwrap().unwrap();
    let fault = |s: &Store| {
        let p = crate::audit::verify::local(s)
            .unwrap()
            .problem
            .expect("detected");
        assert_eq!(p.check, "text", "{p:?}");
        (p.seq, p.message)
    };

    // Edited: the salted hash no longer matches.
    let mut aside = ledger::aside::read(&a, 2).unwrap().unwrap().unwrap();
    aside.text = aside.text.replace("panicked", "returned");
    a.ledger_text.insert(key, aside.to_bytes()).unwrap();
    let (seq, why) = fault(&a);
    assert_eq!(seq, 2);
    assert!(why.contains("does not match"), "{why}");

    // Removed without a redaction on the record.
    a.ledger_text.remove(key).unwrap();
    let (seq, why) = fault(&a);
    assert_eq!(seq, 2);
    assert!(why.contains("no redaction"), "{why}");

    // Put beside an entry that records none.
    a.ledger_text.insert(key, original.clone()).unwrap();
    a.ledger_text.insert(4u64.to_be_bytes(), original).unwrap();
    let (seq, why) = fault(&a);
    assert_eq!(seq, 4);
    assert!(why.contains("records none"), "{why}");
    a.ledger_text.remove(4u64.to_be_bytes()).unwrap();

    // Unreadable.
    a.ledger_text.insert(key, b"{not json".to_vec()).unwrap();
    assert_eq!(fault(&a).0, 2);
}

/// Entries in the shape every earlier version wrote: a failure's message,
/// the model's text included, inline in the entry.
const INLINE_TEXT_FIXTURE: &str = include_str!("fixtures/ledger-with-inline-text.jsonl");

/// A store whose ledger holds the fixture's entries, sealed and headed as
/// the earlier versions did (unsigned: written before `unit init`).
fn store_with_fixture() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let mut last = (0, String::new());
    for line in INLINE_TEXT_FIXTURE.lines() {
        let seq = serde_json::from_str::<serde_json::Value>(line).unwrap()["seq"]
            .as_u64()
            .unwrap();
        let hash = ledger::hash(line.as_bytes());
        s.ledger.insert(seq.to_be_bytes(), line.as_bytes()).unwrap();
        s.ledger_sig
            .insert(
                seq.to_be_bytes(),
                serde_json::to_vec(&serde_json::json!({"hash": hash, "sig": null})).unwrap(),
            )
            .unwrap();
        last = (seq, hash);
    }
    s.put_meta(
        "ledger/head",
        &serde_json::json!({"seq": last.0, "hash": last.1}),
    )
    .unwrap();
    (dir, s)
}

#[test]
fn entries_written_with_the_message_inline_still_parse_verify_and_export() {
    let (_d, s) = store_with_fixture();
    let v = crate::audit::verify::local(&s).unwrap();
    assert!(v.problem.is_none(), "{:?}", v.problem);
    assert_eq!((v.entries, v.unsigned), (6, 6));
    let entries = ledger::read_all(&s).unwrap();
    assert_eq!(entries.len(), 6);
    let error = entries[1].run.error.as_ref().unwrap();
    assert_eq!(error.kind, "panic");
    assert!(error
        .message
        .as_deref()
        .unwrap()
        .contains("110105194912310021"));
    assert_eq!(error.message_sha256, None);
    assert_eq!(entries[5].kind, Kind::ModelRejected);
    assert_eq!(
        entries[5].run.replaces.as_ref().unwrap().name,
        "disability-fund-arrears"
    );
    // audit reads them as before: the message is the entry's own.
    let row = log_row(&s, 2);
    assert_eq!(row.text, None);
    assert!(query::error_message(&row.entry, None)
        .unwrap()
        .starts_with("panicked: bad ID"));
    // Text inside the chain cannot be redacted.
    let err = ledger::aside::redact(&s, 2, "u".into(), "op".into(), "why").unwrap_err();
    assert!(err.to_string().contains("nothing to redact"), "{err}");

    // New entries follow them, signed once the store has a unit, and the
    // whole ledger exports to a central office that verifies it.
    // Their head, as earlier versions wrote it, gains its frontier and
    // signature with the next entry.
    assert_eq!(ledger::head::read(&s).unwrap().unwrap().frontier, None);
    crate::unit::init(&s, "温宿县人民检察院", "11652922MB1234567X").unwrap();
    run(&s, "r7", "disability-fund-arrears", Outcome::Failed);
    let v = crate::audit::verify::local(&s).unwrap();
    assert!(v.problem.is_none(), "{:?}", v.problem);
    assert_eq!((v.entries, v.unsigned, v.signed), (8, 6, 2));
    let head = ledger::head::read(&s).unwrap().unwrap();
    assert_eq!((head.seq, head.root.clone()), (8, v.root.clone()));
    assert!(head.sig.is_some());
    let (_z, central) = central_for(&[&s]);
    assert_eq!(accept(&central, &exported(&s, None)).added, 8);
    let u = units::list(&central).unwrap().remove(0);
    let v = verify::central(&central, &u).unwrap();
    assert!(v.problem.is_none(), "{:?}", v.problem);
}

// ---------------------------------------------------------------------------
// The head, the frontier and checkpoints at scale

#[test]
fn appending_reads_no_entry_back_and_checkpoints_come_from_the_frontier() {
    let (_a, a) = unit_store("温宿县人民检察院", "C1");
    run(&a, "r0", "m", Outcome::Started);
    // Entry 1 edited: a full verification fails from here on.
    let key = 1u64.to_be_bytes();
    let original = a.ledger.get(key).unwrap().unwrap();
    let edited = String::from_utf8(original.to_vec())
        .unwrap()
        .replace("张三", "李四");
    a.ledger.insert(key, edited.as_bytes()).unwrap();
    // Appends go on, and the checkpoint due with entry 64 is written
    // without verifying what came before: over the hashes sealed when the
    // entries were written.
    for i in 1..checkpoint::EVERY {
        run(&a, &format!("r{i}"), "m", Outcome::Started);
    }
    let cp = checkpoint::latest_local(&a).unwrap().expect("a checkpoint");
    assert_eq!(cp.checkpoint.size, checkpoint::EVERY);
    let sealed: Vec<[u8; 32]> = (1..=checkpoint::EVERY)
        .map(|seq| {
            merkle::parse_hash(&ledger::seal(&a, seq).unwrap().unwrap().unwrap().hash).unwrap()
        })
        .collect();
    assert_eq!(cp.checkpoint.root, merkle::root_of(sealed));
    let p = crate::audit::verify::local(&a)
        .unwrap()
        .problem
        .expect("detected");
    assert_eq!((p.seq, p.check), (1, "hash"), "{p:?}");
    a.ledger.insert(key, original).unwrap();
    let v = crate::audit::verify::local(&a).unwrap();
    assert!(v.problem.is_none(), "{:?}", v.problem);
    assert_eq!(v.checkpoints, 1);
    // The head carries the root and the unit's signature.
    let head = ledger::head::read(&a).unwrap().unwrap();
    assert_eq!(head.root, v.root);
    assert_eq!(
        head.frontier.as_ref().unwrap().len(),
        1,
        "64 is one subtree"
    );
    let key = jiandu_registry::keys::PublicKey::parse(
        &crate::unit::current(&a).unwrap().unwrap().public_key,
    )
    .unwrap();
    assert!(key
        .verify(&head.message(), head.sig.as_deref().unwrap())
        .unwrap());
}

#[test]
fn a_cut_tail_under_a_rewritten_head_fails_the_head_check() {
    let (_a, a) = busy_unit("温宿县人民检察院", "C1");
    let head = ledger::head::read(&a).unwrap().unwrap();
    assert_eq!(head.seq, 6);
    // Entry 6 removed and the head rewritten to name entry 5, with the
    // right frontier and root for five entries: only the signature tells.
    a.ledger.remove(6u64.to_be_bytes()).unwrap();
    let mut frontier = merkle::Frontier::new();
    for seq in 1..=5u64 {
        let seal = ledger::seal(&a, seq).unwrap().unwrap().unwrap();
        frontier.push(merkle::parse_hash(&seal.hash).unwrap());
    }
    let mut cut = ledger::head::Head {
        seq: 5,
        hash: ledger::seal(&a, 5).unwrap().unwrap().unwrap().hash,
        root: Some(frontier.root()),
        frontier: Some(frontier.to_hex()),
        sig: head.sig.clone(),
    };
    a.put_meta("ledger/head", &cut).unwrap();
    let p = crate::audit::verify::local(&a)
        .unwrap()
        .problem
        .expect("detected");
    assert_eq!((p.seq, p.check), (5, "head"), "{p:?}");
    assert!(p.message.contains("not signed by unit"), "{}", p.message);
    cut.sig = None;
    a.put_meta("ledger/head", &cut).unwrap();
    let p = crate::audit::verify::local(&a)
        .unwrap()
        .problem
        .expect("detected");
    assert_eq!((p.seq, p.check), (5, "head"), "{p:?}");
    assert!(
        p.message.contains("not signed, though entry 5 is"),
        "{}",
        p.message
    );
    // A frontier that does not give the entries' root.
    cut.frontier = Some(vec![hex::encode([7u8; 32]), hex::encode([8u8; 32])]);
    a.put_meta("ledger/head", &cut).unwrap();
    let p = crate::audit::verify::local(&a)
        .unwrap()
        .problem
        .expect("detected");
    assert_eq!((p.seq, p.check), (5, "head"), "{p:?}");
    assert!(p.message.contains("Merkle frontier"), "{}", p.message);
}

#[test]
fn a_refused_import_leaves_none_of_its_entries_behind() {
    let (_a, a) = busy_unit("温宿县人民检察院", "C1");
    let (_z, central) = central_for(&[&a]);
    let first = accept(&central, &exported(&a, None));
    let u = units::list(&central).unwrap().remove(0);
    for i in 0..5 {
        run(&a, &format!("late{i}"), "m", Outcome::Succeeded);
    }
    // Every entry checks out; the checkpoint at the end does not.
    let mut later = lines(&exported(&a, Some(Since::Size(first.size))));
    let last = later.len() - 1;
    let mut cp: export::CheckpointLine = serde_json::from_slice(&later[last]).unwrap();
    cp.checkpoint.root = "0".repeat(64);
    later[last] = serde_json::to_vec(&cp).unwrap();
    let r = import_from(&central, join(&later).as_slice(), "test")
        .unwrap()
        .unwrap_err();
    assert_eq!(r.check, Check::Checkpoint, "{r}");
    let raw: Vec<_> = central
        .central
        .scan_prefix(central::prefix(&u.fingerprint))
        .collect();
    assert_eq!(
        raw.len() as u64,
        first.size,
        "only the accepted entries are stored"
    );
    assert!(verify::central(&central, &u).unwrap().problem.is_none());
}

#[test]
fn an_overlong_line_is_refused_before_it_is_held_whole() {
    use std::io::Read;
    let (_z, central) = central_for(&[]);
    let endless = std::io::BufReader::new(std::io::repeat(b' ').take(import::MAX_LINE * 4));
    let r = import_from(&central, endless, "endless")
        .unwrap()
        .unwrap_err();
    assert_eq!((r.line, r.check), (1, Check::Format), "{r}");
    assert!(r.message.contains("longer than"), "{r}");
}

#[test]
fn checkpoints_and_export_headers_signed_before_rfc_8785_still_verify() {
    let (_a, a) = busy_unit("温宿县人民检察院", "C1");
    let (_z, central) = central_for(&[&a]);
    let signer = crate::ledger::Signer::for_store(&a).unwrap().unwrap();
    let mut file = lines(&exported(&a, None));
    let last = file.len() - 1;
    let mut header: export::HeaderLine = serde_json::from_slice(&file[0]).unwrap();
    let mut cp: export::CheckpointLine = serde_json::from_slice(&file[last]).unwrap();
    // What this version signs: RFC 8785, keys sorted.
    let message = cp.checkpoint.message();
    let body = &message[crate::ledger::checkpoint::CHECKPOINT_SIGNATURE_PREFIX.len()..];
    assert!(
        body.starts_with(br#"{"code":"C1","fingerprint":"#),
        "{body:?}"
    );
    // Signed the earlier way (JSON in field order, v1 prefixes).
    header.sig = signer.sign(&header.header.message_v1());
    cp.sig = signer.sign(&cp.checkpoint.message_v1());
    file[0] = serde_json::to_vec(&header).unwrap();
    file[last] = serde_json::to_vec(&cp).unwrap();
    let imported = accept(&central, &join(&file));
    assert_eq!(imported.size, cp.checkpoint.size);
    // A signature of anything else is still refused.
    header.sig = signer.sign(&cp.checkpoint.message_v1());
    file[0] = serde_json::to_vec(&header).unwrap();
    let (_y, other) = central_for(&[&a]);
    assert_eq!(refused(&other, &join(&file)).check, Check::Signature);
}
