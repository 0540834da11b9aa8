//! Shared helpers for the end-to-end tests: the real `jiandu` binary on
//! temporary stores.
#![allow(dead_code)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The `jiandu` binary with `--store <store>`.
pub fn jiandu(store: &Path) -> Command {
    let mut cmd = Command::cargo_bin("jiandu").expect("jiandu binary");
    cmd.env_remove("JIANDU_STORE")
        .env_remove("JIANDU_CONFIG")
        .env("JIANDU_OPERATOR", "tester")
        .env("NO_COLOR", "1")
        .arg("--store")
        .arg(store);
    cmd
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A store holding the built sample model `name`, built once per test
/// process with `jiandu model build` and copied into each new store.
pub fn store_with_model(name: &str) -> tempfile::TempDir {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let template = {
        let mut map = built.lock().unwrap();
        map.entry(name.to_string())
            .or_insert_with(|| {
                let dir = tempfile::tempdir().unwrap().keep();
                jiandu(&dir)
                    .args(["model", "build"])
                    .arg(repo().join("plugins").join(name))
                    .assert()
                    .success();
                dir.join("models").join(name)
            })
            .clone()
    };
    let store = tempfile::tempdir().unwrap();
    copy_dir(&template, &store.path().join("models").join(name));
    store
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// Stdout of a finished command as text.
pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr of a finished command as text.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
