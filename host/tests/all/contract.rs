//! Contract versions side by side: a model built against contract 0.1.0
//! (committed as a binary, `tests/fixtures/contract-0.1/`) keeps loading
//! and running, unchanged, next to models built against the current
//! contract, and finds the same leads.
//!
//! The fixture is the 残保金 sample model as it was when 0.1.0 was the
//! current contract, renamed `arrears-contract-0-1` so that it can be
//! installed beside today's build of the same model.

use crate::common;

use common::{add_model, jiandu, json, repo, stderr, stdout};
use jiandu_demo::generate::disability;
use std::path::Path;

const FIXTURE: &str = "arrears-contract-0-1";
const CURRENT: &str = "disability-fund-arrears";

fn install_fixture(store: &Path) {
    let from = repo().join("host/tests/fixtures/contract-0.1");
    let to = store.join("models").join(FIXTURE);
    std::fs::create_dir_all(&to).unwrap();
    for file in ["model.toml", "model.wasm"] {
        std::fs::copy(from.join(file), to.join(file)).unwrap();
    }
}

/// The leads of `model` as `(subject, amount, title, evidence)` text, in
/// subject order: what a case handler receives.
fn leads(store: &Path, model: &str) -> Vec<String> {
    let out = jiandu(store)
        .args(["leads", "list", "--model", model, "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut leads: Vec<String> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{} {} {} {}",
                l["subject"], l["amount"], l["title"], l["evidence"]
            )
        })
        .collect();
    leads.sort();
    leads
}

#[test]
fn a_model_built_against_contract_0_1_loads_and_runs_unchanged_beside_current_ones() {
    let store = tempfile::tempdir().unwrap();
    add_model(store.path(), &repo().join("plugins").join(CURRENT));
    install_fixture(store.path());
    let data = tempfile::tempdir().unwrap();
    let g = disability::generate(data.path(), 600, 5).unwrap();
    common::ingest_files(store.path(), &g.files);

    // Both load: `model list` shows them, each with the contract it was
    // built against.
    let out = jiandu(store.path())
        .args(["model", "show", FIXTURE, "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["contract"], "0.1.0", "{}", stdout(&out));
    let out = jiandu(store.path())
        .args(["model", "show", CURRENT, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        json(&out)["contract"],
        jiandu_sdk::CONTRACT_VERSION,
        "{}",
        stdout(&out)
    );

    for model in [FIXTURE, CURRENT] {
        let out = jiandu(store.path()).args(["run", model]).output().unwrap();
        assert!(out.status.success(), "{model}: {}", stderr(&out));
    }
    let old = leads(store.path(), FIXTURE);
    let new = leads(store.path(), CURRENT);
    assert_eq!(old.len(), g.expected.len());
    assert_eq!(old, new, "the 0.1 build and today's build disagree");

    let out = jiandu(store.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_model_toml_that_requires_another_contract_than_its_wasm_is_refused_naming_both() {
    let store = tempfile::tempdir().unwrap();
    install_fixture(store.path());
    let data = tempfile::tempdir().unwrap();
    let g = disability::generate(data.path(), 50, 7).unwrap();
    common::ingest_files(store.path(), &g.files);
    let toml = store.path().join("models").join(FIXTURE).join("model.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, text.replace("sdk = \"^0.1\"", "sdk = \"^0.2\"")).unwrap();
    let out = jiandu(store.path())
        .args(["run", FIXTURE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("built against contract 0.1.0 but model.toml requires sdk ^0.2"),
        "{err}"
    );
}
