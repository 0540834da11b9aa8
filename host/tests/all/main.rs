//! The host's integration tests, one module per subject, built as one test
//! binary: each binary links the whole host (wasmtime included), so one
//! binary instead of sixteen saves CI most of a minute of linking, and the
//! models the tests build are built once for all of them
//! (`common::built_model`). `concurrent.rs` stays a binary of its own: it
//! sets an environment variable its process reads.
//!
//! A new test file in this folder must be declared below; the test at the
//! end fails naming any file that is not.

#[path = "../common/mod.rs"]
mod common;

mod audit;
mod browser;
mod cache;
mod console;
mod contract;
mod e2e;
mod hostile;
mod leads;
mod models;
mod output;
mod plans;
mod privacy;
mod registry;
mod serve;
mod spill;
mod users;

/// The modules declared above, as files of this folder.
const DECLARED: [&str; 16] = [
    "audit", "browser", "cache", "console", "contract", "e2e", "hostile", "leads", "models",
    "output", "plans", "privacy", "registry", "serve", "spill", "users",
];

#[test]
fn every_test_file_of_this_folder_is_declared() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/all");
    let mut undeclared = Vec::new();
    for entry in std::fs::read_dir(&folder).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(module) = name.strip_suffix(".rs") {
            if module != "main" && !DECLARED.contains(&module) {
                undeclared.push(name);
            }
        }
    }
    assert!(
        undeclared.is_empty(),
        "declare these in tests/all/main.rs (`mod NAME;` and in DECLARED), or they never run: {undeclared:?}"
    );
}
