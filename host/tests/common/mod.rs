//! Shared helpers for the end-to-end tests: the real `jiandu` binary on
//! temporary stores.
#![allow(dead_code)]

pub mod console;
pub mod http;

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
    store_with_crate(&repo().join("plugins").join(name))
}

/// A store holding the model built from the crate at `crate_dir`.
pub fn store_with_crate(crate_dir: &Path) -> tempfile::TempDir {
    let store = tempfile::tempdir().unwrap();
    // Owner-only, as a store folder should be: opening one that others can
    // enter warns on stderr.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    add_model(store.path(), crate_dir);
    store
}

/// Installs the model built from the crate at `crate_dir` into `store`
/// (built once per test process, then copied).
pub fn add_model(store: &Path, crate_dir: &Path) {
    let template = built_model(crate_dir);
    let name = template.file_name().expect("model folder name");
    copy_dir(&template, &store.join("models").join(name));
}

/// The installed folder (`models/<name>`) of the model built from the
/// crate at `crate_dir` with `jiandu model build`, once per test process.
pub fn built_model(crate_dir: &Path) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<PathBuf, PathBuf>>> =
        OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut map = built.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(crate_dir.to_path_buf())
        .or_insert_with(|| {
            let dir = tempfile::tempdir().unwrap().keep();
            jiandu(&dir)
                .args(["model", "build"])
                .arg(crate_dir)
                .assert()
                .success();
            let mut models = std::fs::read_dir(dir.join("models"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.join("model.toml").is_file());
            let model = models.next().expect("the build installed a model");
            assert!(models.next().is_none(), "one build installs one model");
            model
        })
        .clone()
}

/// The test model crate `name` under `host/tests/models/`.
pub fn test_model(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("models")
        .join(name)
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

/// A finished command's output as JSON.
pub fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(out), stderr(out)))
}

/// Every ledger entry of `store`, from `jiandu audit log --format json`.
pub fn ledger(store: &Path) -> Vec<serde_json::Value> {
    let out = jiandu(store)
        .args(["audit", "log", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    json(&out).as_array().expect("a list of entries").clone()
}

/// The leads of `model` in `store` (masked unless `clear`), from
/// `jiandu leads list --format json`.
pub fn leads(store: &Path, model: &str, clear: bool) -> Vec<serde_json::Value> {
    let mut cmd = jiandu(store);
    cmd.args(["leads", "list", "--model", model, "--format", "json"]);
    if clear {
        cmd.arg("--clear");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    json(&out).as_array().expect("a list of leads").clone()
}

/// Ingests `csv` (text) as dataset `name` with schema `schema` (text).
pub fn ingest_text(store: &Path, name: &str, schema: &str, csv: &str) {
    let dir = tempfile::tempdir().unwrap();
    let schema_path = dir.path().join(format!("{name}.toml"));
    let csv_path = dir.path().join(format!("{name}.csv"));
    std::fs::write(&schema_path, schema).unwrap();
    std::fs::write(&csv_path, csv).unwrap();
    let out = jiandu(store)
        .args(["dataset", "ingest", name])
        .arg(&csv_path)
        .arg("--schema")
        .arg(&schema_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Ingests generated department files, each with its shipped schema
/// (`datasets/<name>.toml`), through the real binary.
pub fn ingest_files(store: &Path, files: &[jiandu_demo::generate::DataFile]) {
    for f in files {
        let out = jiandu(store)
            .args(["dataset", "ingest", &f.dataset])
            .arg(&f.path)
            .arg("--schema")
            .arg(repo().join("datasets").join(format!("{}.toml", f.dataset)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            f.path.display(),
            stderr(&out)
        );
    }
}

/// The schema of the `people` dataset the hostile, output and console
/// tests ingest: an ID number and a name (personal), a city, an age.
#[allow(dead_code)]
pub const PEOPLE_SCHEMA: &str = r#"
name = "people"
department = "公安局"
primary_key = ["id_number"]

[[fields]]
name = "id_number"
type = "string"
personal = "id"

[[fields]]
name = "name"
type = "string"
personal = "name"

[[fields]]
name = "city"
type = "string"

[[fields]]
name = "age"
type = "int"
"#;
