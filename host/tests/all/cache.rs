//! `jiandu run` and the module cache, through the real binary: a model is
//! compiled once and its verified code loaded after; a changed model, a
//! tampered entry or a cache that cannot be written means compiling again,
//! never a failed run.

use crate::common;

use common::{ingest_files, jiandu, ledger, stderr, stdout, store_with_model};
use std::path::Path;

const MODEL: &str = "disability-fund-arrears";

/// A store with the sample model and generated data for it.
fn store_with_data() -> (tempfile::TempDir, tempfile::TempDir) {
    let store = store_with_model(MODEL);
    let data = tempfile::tempdir().unwrap();
    let g = jiandu_demo::generate::disability::generate(data.path(), 300, 7).unwrap();
    ingest_files(store.path(), &g.files);
    (store, data)
}

/// `jiandu -vv run MODEL`, which must succeed; returns its stderr.
fn run(store: &Path) -> String {
    let out = jiandu(store).args(["-vv", "run", MODEL]).output().unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    stderr(&out)
}

/// The names of the compiled entries in `<store>/cache/`, sorted.
fn cache_entries(store: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cwasm"))
        .collect();
    names.sort();
    names
}

/// The wasm digest and leads digest of every finished run, oldest first.
fn finished_runs(store: &Path) -> Vec<(String, String)> {
    ledger(store)
        .iter()
        .filter(|e| e["kind"] == "run-finished")
        .map(|e| {
            assert_eq!(e["run"]["outcome"], "succeeded", "{e}");
            (
                e["run"]["model"]["wasm_sha256"].as_str().unwrap().into(),
                e["run"]["leads_digest"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn second_run_loads_the_cached_code_and_a_changed_model_compiles_again() {
    let (store, _data) = store_with_data();

    let first = run(store.path());
    assert!(
        first.contains(&format!("{MODEL}@1.0.0 compiled")),
        "{first}"
    );
    let entries = cache_entries(store.path());
    assert_eq!(entries.len(), 1, "{entries:?}");

    let second = run(store.path());
    assert!(second.contains("loaded from the module cache"), "{second}");
    assert_eq!(cache_entries(store.path()), entries);
    let runs = finished_runs(store.path());
    assert_eq!(runs.len(), 2);
    assert_eq!(
        runs[0], runs[1],
        "both runs read the same model and found the same leads"
    );
    assert!(entries[0].starts_with(&runs[0].0), "{entries:?} {runs:?}");

    // An entry that does not verify is compiled again, never loaded.
    let entry = store.path().join("cache").join(&entries[0]);
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&entry, bytes).unwrap();
    let tampered = run(store.path());
    assert!(
        tampered.contains("does not verify; recompiling"),
        "{tampered}"
    );
    assert!(tampered.contains("compiled"), "{tampered}");
    assert!(run(store.path()).contains("loaded from the module cache"));

    // A changed model.wasm (here: a custom section appended) is compiled
    // into a second entry.
    let wasm = store.path().join("models").join(MODEL).join("model.wasm");
    let mut bytes = std::fs::read(&wasm).unwrap();
    let name = b"jiandu-test";
    bytes.extend([0, (1 + name.len() + 1) as u8, name.len() as u8]);
    bytes.extend(name);
    bytes.push(b'2');
    std::fs::write(&wasm, bytes).unwrap();
    let changed = run(store.path());
    assert!(changed.contains("compiled"), "{changed}");
    assert!(
        !changed.contains("loaded from the module cache"),
        "{changed}"
    );
    assert_eq!(cache_entries(store.path()).len(), 2);
    let runs = finished_runs(store.path());
    let last = runs.last().unwrap();
    assert_ne!(last.0, runs[0].0, "the ledger names the changed wasm");
    assert_eq!(last.1, runs[0].1, "the same leads");
}

#[test]
fn a_cache_that_cannot_be_written_only_means_compiling() {
    let (store, _data) = store_with_data();
    // A file where the cache folder would be: nothing can be written there.
    std::fs::write(store.path().join("cache"), b"not a folder").unwrap();
    for _ in 0..2 {
        let err = run(store.path());
        assert!(err.contains("no module cache, compiling"), "{err}");
    }
    // Said only with -v: a plain run prints nothing about it.
    let out = jiandu(store.path()).args(["run", MODEL]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("cache"), "{}", stderr(&out));
    let runs = finished_runs(store.path());
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r == &runs[0]), "{runs:?}");
}

#[test]
fn installing_new_code_forgets_the_cached_code_it_replaces() {
    use jiandu::cache::{forget_replaced, ModuleCache, Source};
    let store = store_with_model(MODEL);
    let s = jiandu::Store::open(store.path()).unwrap();
    let runtime = jiandu::runtime::Runtime::new(256).unwrap();
    let cache = ModuleCache::open(&s, &runtime).unwrap();
    let model = jiandu::catalog::load_dir(&store.path().join("models").join(MODEL)).unwrap();
    assert_eq!(cache.load(&runtime, &model).unwrap().1, Source::Compiled);
    assert_eq!(cache_entries(store.path()).len(), 1);

    // The same code installed again: its entry stays.
    forget_replaced(&s, Some(&model), &model);
    assert_eq!(cache.load(&runtime, &model).unwrap().1, Source::Cache);

    // New code in its place: the old code's entry goes, file and key.
    let mut rebuilt = model.clone();
    rebuilt.wasm_sha256 = "0".repeat(64);
    forget_replaced(&s, Some(&model), &rebuilt);
    assert!(cache_entries(store.path()).is_empty());
    assert_eq!(cache.load(&runtime, &model).unwrap().1, Source::Compiled);

    // Nothing to forget in a store without a cache folder.
    let empty = store_with_model(MODEL);
    let e = jiandu::Store::open(empty.path()).unwrap();
    assert_eq!(jiandu::cache::forget(&e, &model.wasm_sha256).unwrap(), 0);
}

#[test]
fn an_entry_recorded_by_the_older_keyed_hash_is_compiled_again_not_loaded() {
    use jiandu::cache::{ModuleCache, Source};
    use sha2::{Digest, Sha256};
    let store = store_with_model(MODEL);
    let s = jiandu::Store::open(store.path()).unwrap();
    let runtime = jiandu::runtime::Runtime::new(256).unwrap();
    let cache = ModuleCache::open(&s, &runtime).unwrap();
    let model = jiandu::catalog::load_dir(&store.path().join("models").join(MODEL)).unwrap();
    assert_eq!(cache.load(&runtime, &model).unwrap().1, Source::Compiled);

    // Record the entry as hosts did before: hex sha256(secret || bytes).
    let entries = cache_entries(store.path());
    let id = entries[0].strip_suffix(".cwasm").unwrap();
    let bytes = std::fs::read(store.path().join("cache").join(&entries[0])).unwrap();
    let secret = s.meta.get("cache/secret").unwrap().unwrap();
    let mut h = Sha256::new();
    h.update(&secret);
    h.update(&bytes);
    let key = format!("cache/{id}");
    s.meta
        .insert(&key, hex::encode(h.finalize()).as_bytes())
        .unwrap();

    assert_eq!(cache.load(&runtime, &model).unwrap().1, Source::Compiled);
    let recorded = s.meta.get(&key).unwrap().unwrap();
    assert!(recorded.starts_with(b"hmac-sha256:"), "{recorded:?}");
    assert_eq!(cache.load(&runtime, &model).unwrap().1, Source::Cache);
    assert_eq!(cache_entries(store.path()), entries);
}
