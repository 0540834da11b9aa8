//! `jiandu serve` as a real process: hot reload, rejection of broken
//! models, triggers, the local API, and a kill -9 in the middle of a run.

mod common;

use common::{jiandu, repo, stderr, stdout, store_with_model};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MODEL: &str = "disability-fund-arrears";

/// A running `jiandu serve`, killed when dropped.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(store: &Path) -> Server {
        let log = store.join("serve-test.log");
        let child = Command::new(assert_cmd::cargo::cargo_bin("jiandu"))
            .env("JIANDU_OPERATOR", "server")
            .arg("--store")
            .arg(store)
            .args(["serve", "-v", "--debounce-ms", "100"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut server = Server { child, log };
        wait_for("the server to answer", || {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "the server exited ({status}):\n{}",
                    std::fs::read_to_string(&server.log).unwrap_or_default()
                );
            }
            jiandu(store)
                .arg("status")
                .output()
                .unwrap()
                .status
                .success()
        });
        server
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        let _ = std::fs::remove_file(&self.log);
        std::mem::forget(self);
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `ready` holds, failing after five minutes (a loaded CI
/// machine compiles models slowly; this bounds a hang, it times nothing).
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status(store: &Path) -> serde_json::Value {
    let out = jiandu(store)
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn served_digest(store: &Path) -> String {
    status(store)["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == MODEL)
        .map(|m| m["wasm_sha256"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Ledger entries about runs (not the model events of `serve`).
fn run_entries(store: &Path) -> Vec<serde_json::Value> {
    audit_log(store)
        .into_iter()
        .filter(|e| e["kind"].as_str().unwrap_or("").starts_with("run-"))
        .collect()
}

fn audit_log(store: &Path) -> Vec<serde_json::Value> {
    let out = jiandu(store)
        .args(["audit", "log", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ingest_sample(store: &Path, employers: usize) -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let g = jiandu::generate::disability::generate(data.path(), employers, 21).unwrap();
    common::ingest_files(store, &g.files);
    data
}

/// Builds a model crate into `store` with `jiandu model build`: `name` at
/// `version`, with `lib_rs` as its code (`None`: the sample model's) and
/// `model_toml` as its manifest body (after name and version).
fn build_crate(
    store: &Path,
    name: &str,
    version: &str,
    lib_rs: Option<&str>,
    model_toml: &str,
) -> PathBuf {
    let src = repo().join("plugins").join(MODEL);
    let dir = tempfile::tempdir().unwrap().keep();
    common::copy_dir(&src.join("src"), &dir.join("src"));
    if let Some(code) = lib_rs {
        std::fs::write(dir.join("src/lib.rs"), code).unwrap();
    }
    let sdk = repo().join("sdk");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n\n[dependencies]\njiandu-sdk = {{ path = \"{}\" }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\nrust_decimal = {{ version = \"1.36\", default-features = false, features = [\"std\", \"serde\"] }}\n\n[workspace]\n",
            sdk.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("model.toml"),
        format!("name = \"{name}\"\nversion = \"{version}\"\n{model_toml}\n"),
    )
    .unwrap();
    // A target folder of their own: these crates reuse the sample model's
    // crate name, and must not replace its build output (or each other's).
    let out = jiandu(store)
        .env(
            "CARGO_TARGET_DIR",
            repo()
                .join("target")
                .join("test-variants")
                .join(format!("{name}-{version}")),
        )
        .args(["model", "build"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

/// The sample model at another version, with extra manifest lines.
fn build_variant(store: &Path, version: &str, extra: &str) -> PathBuf {
    let toml =
        std::fs::read_to_string(repo().join("plugins").join(MODEL).join("model.toml")).unwrap();
    let body: String = toml
        .lines()
        .filter(|l| !l.starts_with("name =") && !l.starts_with("version ="))
        .map(|l| format!("{l}\n"))
        .collect();
    build_crate(store, MODEL, version, None, &format!("{body}\n{extra}"))
}

const SPIN: &str = r#"
use jiandu_sdk::{export_model, Context, Model, Result};
pub struct Spin;
impl Model for Spin {
    fn run(_ctx: &mut Context) -> Result<()> {
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }
}
export_model!(Spin);
"#;

#[test]
fn commands_print_the_same_through_the_server() {
    let store = store_with_model(MODEL);
    let _data = ingest_sample(store.path(), 400);
    jiandu(store.path()).args(["run", MODEL]).assert().success();
    let direct = jiandu(store.path())
        .args(["leads", "list", "--format", "csv"])
        .output()
        .unwrap();
    let server = Server::start(store.path());
    let served = jiandu(store.path())
        .args(["leads", "list", "--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(stdout(&direct), stdout(&served));
    // A second server on the same store says one is running.
    let out = jiandu(store.path()).arg("serve").output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already running"), "{}", stderr(&out));
    // Runs go through the server and are on the record.
    let out = jiandu(store.path()).args(["run", MODEL]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("succeeded"), "{}", stdout(&out));
    assert!(server.stop().success());
    jiandu(store.path())
        .args(["audit", "verify"])
        .assert()
        .success();
}

#[test]
fn hot_reload_swaps_versions_and_rejects_a_broken_one() {
    let store = store_with_model(MODEL);
    let _data = ingest_sample(store.path(), 300);
    let _server = Server::start(store.path());
    let v1 = served_digest(store.path());
    assert!(!v1.is_empty());

    // A new version, built while the server runs, goes live.
    build_variant(store.path(), "1.0.1", "");
    wait_for("version 1.0.1 to be served", || {
        served_digest(store.path()) != v1
    });
    let v2 = served_digest(store.path());
    let out = jiandu(store.path()).args(["run", MODEL]).output().unwrap();
    assert!(
        stdout(&out).contains(&format!("{MODEL}@1.0.1 succeeded")),
        "{}",
        stdout(&out)
    );

    // A corrupt wasm is rejected and the last good version keeps serving.
    let wasm = store.path().join("models").join(MODEL).join("model.wasm");
    let bytes = std::fs::read(&wasm).unwrap();
    std::fs::write(&wasm, &bytes[..bytes.len() / 2]).unwrap();
    wait_for("the rejection", || {
        status(store.path())["recent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "rejected")
    });
    assert_eq!(served_digest(store.path()), v2);
    let out = jiandu(store.path()).args(["run", MODEL]).output().unwrap();
    assert!(
        stdout(&out).contains(&format!("{MODEL}@1.0.1 succeeded")),
        "{}",
        stdout(&out)
    );
    let rejection = status(store.path())["recent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "rejected")
        .cloned()
        .unwrap();
    assert!(
        rejection["message"]
            .as_str()
            .unwrap()
            .contains("keeps serving"),
        "{rejection}"
    );

    // A removed model is unloaded.
    std::fs::remove_dir_all(store.path().join("models").join(MODEL)).unwrap();
    wait_for("the unload", || served_digest(store.path()).is_empty());
    let out = jiandu(store.path()).args(["run", MODEL]).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not loaded"), "{}", stderr(&out));

    // Every load, reload, rejection and unload is on the record, with the
    // old and new digests, and the chain still verifies.
    let log = audit_log(store.path());
    let event = |kind: &str| {
        log.iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} entry in {log:?}"))
            .clone()
    };
    assert_eq!(
        event("model-loaded")["run"]["model"]["wasm_sha256"],
        v1.as_str()
    );
    let reloaded = event("model-reloaded");
    assert_eq!(reloaded["run"]["model"]["wasm_sha256"], v2.as_str());
    assert_eq!(reloaded["run"]["replaces"]["wasm_sha256"], v1.as_str());
    let rejected = event("model-rejected");
    assert_eq!(rejected["run"]["replaces"]["wasm_sha256"], v2.as_str());
    assert_eq!(rejected["run"]["error"]["kind"], "rejected");
    assert_eq!(
        event("model-unloaded")["run"]["model"]["wasm_sha256"],
        v2.as_str()
    );
    jiandu(store.path())
        .args(["audit", "verify"])
        .assert()
        .success();
}

#[test]
fn new_data_triggers_a_run() {
    let store = tempfile::tempdir().unwrap();
    let data = ingest_sample(store.path(), 300);
    build_variant(
        store.path(),
        "1.1.0",
        "[triggers]\non_new_data = [\"fund_payments\"]",
    );
    let _server = Server::start(store.path());
    assert_eq!(run_entries(store.path()).len(), 0);
    // A day's payments arrive as an increment.
    let increment = data.path().join("more_payments.jsonl");
    std::fs::write(
        &increment,
        "{\"credit_code\":\"91350100M000100Y43\",\"levy_year\":2024,\"payment_id\":\"X1\",\"amount\":\"10.00\",\"paid_on\":\"2024-03-01\"}\n",
    )
    .unwrap();
    let out = jiandu(store.path())
        .args(["dataset", "ingest", "fund_payments", "--append"])
        .arg(&increment)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for("the triggered run", || {
        audit_log(store.path()).iter().any(|e| {
            e["kind"] == "run-finished"
                && e["operator"]
                    .as_str()
                    .unwrap_or("")
                    .contains("new data in fund_payments")
        })
    });
}

#[test]
fn kill_9_mid_run_leaves_the_store_consistent() {
    let store = store_with_model(MODEL);
    let _data = ingest_sample(store.path(), 300);
    jiandu(store.path()).args(["run", MODEL]).assert().success();
    build_crate(
        store.path(),
        "spin",
        "1.0.0",
        Some(SPIN),
        "title = \"spins\"\nunit = \"test\"\nsdk = \"^0.1\"\n",
    );
    let leads_before = stdout(
        &jiandu(store.path())
            .args(["leads", "list", "--format", "csv"])
            .output()
            .unwrap(),
    );
    let entries_before = run_entries(store.path()).len();
    let mut server = Server::start(store.path());
    let mut client = Command::new(assert_cmd::cargo::cargo_bin("jiandu"))
        .arg("--store")
        .arg(store.path())
        .args(["run", "spin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the run to start", || {
        status(store.path())["runs_in_flight"] == 1
            && run_entries(store.path())
                .iter()
                .any(|e| e["kind"] == "run-started" && e["run"]["model"]["name"] == "spin")
    });
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let _ = client.wait();
    // Restart without a server: the ledger verifies, the interrupted run
    // is visible as started and never finished, and no lead changed.
    jiandu(store.path())
        .args(["audit", "verify"])
        .assert()
        .success();
    let log = run_entries(store.path());
    assert_eq!(log.len(), entries_before + 1);
    let last = log.last().unwrap();
    assert_eq!(last["kind"], "run-started", "{last}");
    assert_eq!(last["run"]["model"]["name"], "spin", "{last}");
    let leads_after = stdout(
        &jiandu(store.path())
            .args(["leads", "list", "--format", "csv"])
            .output()
            .unwrap(),
    );
    assert_eq!(leads_before, leads_after);
    // And a new server starts on it.
    let again = Server::start(store.path());
    assert!(again.stop().success());
}
