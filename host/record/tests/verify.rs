//! A ledger's entries edited, deleted or cut off after they were written
//! are found by `audit verify`, which names the entry.

use jiandu_record::audit;
use jiandu_record::ledger::{append, Draft, Kind, ModelRef, RunRecord};
use jiandu_store::Store;

fn draft(n: u64) -> Draft {
    Draft::run(
        "u".into(),
        "op".into(),
        Kind::RunStarted,
        RunRecord {
            run_id: format!("run-{n}"),
            model: ModelRef {
                name: "m".into(),
                version: "1.0.0".into(),
                wasm_sha256: "00".into(),
                publisher: None,
                plan: None,
            },
            started_at: "t".into(),
            ..RunRecord::default()
        },
    )
}

fn store_with(n: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for i in 0..n {
        append(&store, &draft(i)).unwrap();
    }
    (dir, store)
}

#[test]
fn intact_chain_verifies() {
    let (_d, store) = store_with(5);
    let v = audit::verify::local(&store).unwrap();
    assert_eq!(v.entries, 5);
    assert!(v.problem.is_none(), "{:?}", v.problem);
}

#[test]
fn editing_any_entry_names_it() {
    for target in 1..=4u64 {
        let (_d, store) = store_with(4);
        let key = target.to_be_bytes();
        let mut bytes = store.ledger.get(key).unwrap().unwrap().to_vec();
        let at = bytes.iter().position(|&b| b == b'o').unwrap();
        bytes[at] = b'0';
        store.ledger.insert(key, bytes).unwrap();
        let p = audit::verify::local(&store)
            .unwrap()
            .problem
            .expect("detected");
        assert_eq!(p.seq, target, "{p:?}");
    }
}

#[test]
fn deleting_an_entry_is_detected() {
    let (_d, store) = store_with(4);
    store.ledger.remove(2u64.to_be_bytes()).unwrap();
    let p = audit::verify::local(&store)
        .unwrap()
        .problem
        .expect("detected");
    assert_eq!(p.seq, 2);
    let (_d, store) = store_with(4);
    store.ledger.remove(4u64.to_be_bytes()).unwrap();
    assert_eq!(
        audit::verify::local(&store)
            .unwrap()
            .problem
            .expect("detected")
            .check,
        "head"
    );
}
