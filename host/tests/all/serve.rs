//! `jiandu serve` as a real process: hot reload, rejection of broken
//! models, triggers, the local API (paths resolved in the client's folder,
//! the peer's uid checked, idle connections closed), a policy file that
//! breaks while serving, files at rest, and a kill -9 in the middle of a
//! run.

use crate::common;

use common::{jiandu, repo, stderr, stdout, store_with_model};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MODEL: &str = "disability-fund-arrears";

/// A running `jiandu serve`, killed when dropped.
struct Server {
    child: Child,
    log: PathBuf,
    /// Holds the log, outside the store: the store's files are the
    /// server's alone.
    _log_dir: tempfile::TempDir,
}

impl Server {
    fn start(store: &Path) -> Server {
        Server::start_with(store, |_| {})
    }

    /// Starts a server whose command `configure` may add to (arguments
    /// after `serve`, environment, working directory), and waits until it
    /// answers `status`.
    fn start_with(store: &Path, configure: impl FnOnce(&mut Command)) -> Server {
        let mut server = Server::spawn(store, configure);
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

    /// Starts a server without waiting for it.
    fn spawn(store: &Path, configure: impl FnOnce(&mut Command)) -> Server {
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("serve.log");
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("jiandu"));
        command
            .env("JIANDU_OPERATOR", "server")
            .env_remove("JIANDU_CONFIG")
            // Models built through the server are built in its environment,
            // not the client's: a target folder of their own, so that a
            // variant of the sample model never replaces the sample's build
            // output that other tests copy.
            .env(
                "CARGO_TARGET_DIR",
                repo().join("target").join("test-variants").join("served"),
            )
            .arg("--store")
            .arg(store)
            .args(["serve", "-v", "--debounce-ms", "100"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        configure(&mut command);
        let child = command.spawn().unwrap();
        Server {
            child,
            log,
            _log_dir: log_dir,
        }
    }

    /// What the server logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
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
    let g = jiandu_demo::generate::disability::generate(data.path(), employers, 21).unwrap();
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
fn a_crate_without_export_model_is_refused_saying_what_to_add() {
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("src/lib.rs"),
        SPIN.replace("export_model!(Spin);", "")
            .replace("use jiandu_sdk::{export_model, ", "use jiandu_sdk::{"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"spin\"\nversion = \"1.0.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n\n[dependencies]\njiandu-sdk = {{ path = \"{}\" }}\n\n[workspace]\n",
            repo().join("sdk").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("model.toml"),
        "name = \"spin\"\nversion = \"1.0.0\"\ntitle = \"spins\"\nunit = \"test\"\nsdk = \"^0.2\"\n",
    )
    .unwrap();
    let out = jiandu(store.path())
        .env(
            "CARGO_TARGET_DIR",
            repo()
                .join("target")
                .join("test-variants")
                .join("no-export"),
        )
        .args(["model", "build"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("exports no model") && err.contains("export_model!(YourModel);"),
        "{err}"
    );
}

#[test]
fn a_build_through_the_server_shows_its_compiler_errors_to_the_client_as_they_come() {
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(store.path());
    let src = repo().join("plugins").join(MODEL);
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&src.join("src"), &dir.path().join("src"));
    std::fs::copy(src.join("model.toml"), dir.path().join("model.toml")).unwrap();
    let sdk = repo().join("sdk");
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"{MODEL}\"\nversion = \"1.0.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n\n[dependencies]\njiandu-sdk = {{ path = \"{}\" }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\nrust_decimal = {{ version = \"1.36\", default-features = false, features = [\"std\", \"serde\"] }}\n\n[workspace]\n",
            sdk.display()
        ),
    )
    .unwrap();
    let lib = std::fs::read_to_string(src.join("src/lib.rs")).unwrap();
    std::fs::write(
        dir.path().join("src/lib.rs"),
        format!("{lib}\npub fn broken() -> u32 {{ \"not a number\" }}\n"),
    )
    .unwrap();
    // A build script that waits until the test has seen cargo's first
    // line of this crate: the client must show it while the build is
    // still going, not when it ends.
    std::fs::write(
        dir.path().join("build.rs"),
        r#"fn main() {
    let go = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("go");
    for _ in 0..600 {
        if go.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("never told to go");
}
"#,
    )
    .unwrap();
    let mut client = Command::new(assert_cmd::cargo::cargo_bin("jiandu"))
        .env_remove("JIANDU_STORE")
        .env_remove("JIANDU_CONFIG")
        .env("NO_COLOR", "1")
        .arg("--store")
        .arg(store.path())
        .args(["model", "build"])
        .arg(dir.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(client.stderr.take().unwrap());
    let mut err = String::new();
    let mut live = false;
    loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut lines, &mut line).unwrap() == 0 {
            break;
        }
        if line.contains(&format!("Compiling {MODEL}")) && !live {
            std::fs::write(dir.path().join("go"), "").unwrap();
            live = true;
        }
        err.push_str(&line);
    }
    let status = client.wait().unwrap();
    assert!(
        live && !err.contains("never told to go"),
        "cargo's lines arrived only when the build ended:\n{err}"
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("error[E0308]") && err.contains("cargo build failed (its messages are above)"),
        "{err}"
    );
    // The messages went to the client, in order, not to the server's log.
    assert!(
        err.find("error[E0308]") < err.find("cargo build failed"),
        "{err}"
    );
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(!log.contains("error[E0308]"), "{log}");
    assert!(server.stop().success());
}

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
        "title = \"spins\"\nunit = \"test\"\nsdk = \"^0.2\"\n",
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

/// Every folder under `root` with group or other access, and every file
/// (sockets included) with more than owner read and write.
fn not_owner_only(root: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut wrong = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        let expected = if meta.is_dir() { 0o700 } else { 0o600 };
        if mode != expected {
            wrong.push(format!("{} is {mode:03o}", path.display()));
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        }
    }
    wrong
}

#[test]
fn every_folder_and_file_of_a_new_store_is_its_owners_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("new-store");
    // Leads spill to files in tmp/ past one byte: every folder gets used.
    let server = Server::start_with(&store, |c| {
        c.env("JIANDU_LEADS_MEMORY", "1");
    });
    // Each command goes through the server: data, a model built into the
    // store (and then loaded), the unit's key, a run with its leads. The
    // model has a name of its own: the server builds it in its own target
    // folder, where no other build of that name is.
    let _data = ingest_sample(&store, 300);
    let toml =
        std::fs::read_to_string(repo().join("plugins").join(MODEL).join("model.toml")).unwrap();
    let body: String = toml
        .lines()
        .filter(|l| !l.starts_with("name =") && !l.starts_with("version ="))
        .map(|l| format!("{l}\n"))
        .collect();
    build_crate(&store, "owner-only", "1.0.0", None, &body);
    wait_for("the model to be served", || {
        status(&store)["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "owner-only")
    });
    for args in [
        vec![
            "unit",
            "init",
            "--name",
            "某某县人民检察院",
            "--code",
            "11652922MB1234567X",
        ],
        vec!["run", "owner-only"],
    ] {
        let out = jiandu(&store).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    for folder in ["db", "data", "leads", "models", "tmp", "cache", "unit"] {
        assert!(store.join(folder).is_dir(), "{folder} was not created");
    }
    assert!(store.join("serve.sock").exists());
    assert_eq!(not_owner_only(&store), Vec::<String>::new());
    assert!(server.stop().success());

    // A command without a server opens the store (and sled) again.
    jiandu(&store).args(["audit", "verify"]).assert().success();
    assert_eq!(not_owner_only(&store), Vec::<String>::new());
}

#[test]
fn a_store_folder_others_can_enter_is_warned_about_with_the_chmod_to_run() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // Only commands that put something in a store create one.
    std::fs::create_dir(&store).unwrap();
    jiandu(&store).args(["dataset", "list"]).assert().success();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = jiandu(&store).args(["dataset", "list"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("chmod 700 {}", store.display())),
        "{}",
        stderr(&out)
    );
}

/// A folder holding `schema.toml` and `data.csv` for a dataset `name` of
/// `rows` rows.
fn client_folder(name: &str, rows: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("schema.toml"),
        format!(
            "name = \"{name}\"\ndepartment = \"test\"\nprimary_key = [\"id\"]\n[[fields]]\nname = \"id\"\ntype = \"string\"\n"
        ),
    )
    .unwrap();
    let csv: String = std::iter::once("id\n".to_string())
        .chain((0..rows).map(|i| format!("{name}-{i}\n")))
        .collect();
    std::fs::write(dir.path().join("data.csv"), csv).unwrap();
    dir
}

/// `jiandu` with `args`, started in `folder`.
fn spawn_in(store: &Path, folder: &Path, args: &[&str]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("jiandu"))
        .env_remove("JIANDU_CONFIG")
        .env("NO_COLOR", "1")
        .current_dir(folder)
        .arg("--store")
        .arg(store)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn relative_paths_from_two_folders_at_once_are_read_in_each_clients_folder() {
    let store = tempfile::tempdir().unwrap();
    let server_dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(store.path(), |c| {
        c.current_dir(server_dir.path());
    });
    let a = client_folder("things_a", 2);
    let b = client_folder("things_b", 3);
    // Both folders hold a data.csv: each command must read its own. One
    // more reads from b while a's ingest runs.
    let clients = [
        spawn_in(
            store.path(),
            a.path(),
            &[
                "dataset",
                "ingest",
                "things_a",
                "data.csv",
                "--schema",
                "schema.toml",
            ],
        ),
        spawn_in(
            store.path(),
            b.path(),
            &[
                "dataset",
                "ingest",
                "things_b",
                "data.csv",
                "--schema=schema.toml",
            ],
        ),
        spawn_in(
            store.path(),
            b.path(),
            &["leads", "export", "-o", "leads.csv"],
        ),
    ];
    for client in clients {
        let out = client.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = jiandu(store.path())
        .args(["dataset", "list", "--format", "json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let records = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|d| d["dataset"] == name)
            .unwrap_or_else(|| panic!("no {name} in {list}"))["records"]
            .clone()
    };
    assert_eq!(records("things_a"), "2");
    assert_eq!(records("things_b"), "3");
    assert!(b.path().join("leads.csv").is_file());
    assert!(!server_dir.path().join("leads.csv").exists());
    // The server never moved from the folder it started in.
    let cwd = std::fs::read_link(format!("/proc/{}/cwd", server.child.id())).unwrap();
    assert_eq!(cwd, server_dir.path().canonicalize().unwrap());
    assert!(server.stop().success());
}

#[test]
fn a_connection_that_sends_nothing_is_closed() {
    use std::io::Read;
    let store = tempfile::tempdir().unwrap();
    let server = Server::start_with(store.path(), |c| {
        c.args(["--client-timeout", "0.5"]);
    });
    let mut idle =
        std::os::unix::net::UnixStream::connect(store.path().join("serve.sock")).unwrap();
    // Bounds a hang if the server never closes it; times nothing.
    idle.set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    let mut reply = String::new();
    idle.read_to_string(&mut reply)
        .expect("the server closes the connection");
    assert!(reply.contains("no request arrived"), "{reply}");
    // The server goes on answering.
    jiandu(store.path()).arg("status").assert().success();
    assert!(server.stop().success());
}

#[test]
fn a_request_without_an_absolute_folder_is_refused() {
    use std::io::{Read, Write};
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(store.path());
    let mut stream =
        std::os::unix::net::UnixStream::connect(store.path().join("serve.sock")).unwrap();
    stream
        .write_all(b"{\"args\":[\"dataset\",\"list\"],\"cwd\":\"somewhere\",\"operator\":\"x\"}\n")
        .unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    // The reply's last frame ends the command.
    let last = reply.lines().last().unwrap();
    let reply = &serde_json::from_str::<serde_json::Value>(last).unwrap()["done"];
    assert_eq!(reply["code"], 2);
    assert!(
        reply["stderr"]
            .as_str()
            .unwrap()
            .contains("not an absolute path"),
        "{reply}"
    );
    assert!(server.stop().success());
}

#[test]
fn a_client_that_is_not_the_stores_owner_is_refused() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe");
    std::fs::write(&probe, "").unwrap();
    if std::fs::metadata(&probe).unwrap().uid() != 0 {
        // Giving the store to another user takes the superuser; as anyone
        // else the socket's mode already keeps other users out.
        eprintln!("skipped: needs to run as root");
        return;
    }
    let store = dir.path().join("store");
    // Only commands that put something in a store create one.
    std::fs::create_dir(&store).unwrap();
    jiandu(&store).args(["dataset", "list"]).assert().success();
    // The store belongs to `nobody`; the server and this client run as root.
    let chown = Command::new("chown")
        .arg("65534")
        .arg(&store)
        .status()
        .unwrap();
    assert!(chown.success());
    let mut server = Server::spawn(&store, |_| {});
    wait_for("the socket", || {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("the server exited ({status}):\n{}", server.log());
        }
        std::os::unix::net::UnixStream::connect(store.join("serve.sock")).is_ok()
    });
    let out = jiandu(&store).arg("status").output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("answers the owner of the store (uid 65534) only, not uid 0"),
        "{}",
        stderr(&out)
    );
    assert!(server.log().contains("refused a connection from uid 0"));
}

#[test]
fn a_policy_file_that_disappears_or_breaks_while_serving_keeps_refusing() {
    let store = store_with_model(MODEL);
    let _data = ingest_sample(store.path(), 300);
    let config_dir = tempfile::tempdir().unwrap();
    let policy = config_dir.path().join("policy.toml");
    // Grants one of the four datasets the model declares: its runs are
    // refused. The defaults would grant all four.
    std::fs::write(
        &policy,
        format!("[models.{MODEL}]\ndatasets = [\"employers\"]\n"),
    )
    .unwrap();
    let server = Server::start_with(store.path(), |c| {
        c.current_dir(config_dir.path())
            .args(["--config", "policy.toml"]);
    });
    let refused = |why: &str| {
        let out = jiandu(store.path()).args(["run", MODEL]).output().unwrap();
        assert!(!out.status.success(), "{why}: the run was not refused");
        assert!(
            stderr(&out).contains("not granted"),
            "{why}: {}",
            stderr(&out)
        );
    };
    let policy_status = || status(store.path())["policy"].clone();
    refused("the policy as written");
    let shown = policy_status();
    assert_eq!(
        shown["path"],
        policy.canonicalize().unwrap().display().to_string(),
        "resolved once, to an absolute path"
    );
    assert!(shown["problem"].is_null(), "{shown}");

    std::fs::remove_file(&policy).unwrap();
    refused("the policy file removed");
    let problem = policy_status()["problem"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        problem.contains("policy.toml") && problem.contains("stays in force"),
        "{problem}"
    );

    std::fs::write(&policy, "grant_declared = [broken").unwrap();
    refused("the policy file broken");
    let out = jiandu(store.path()).arg("status").output().unwrap();
    assert!(
        stderr(&out).contains("warning: policy") && stderr(&out).contains("stays in force"),
        "{}",
        stderr(&out)
    );
    assert!(server.log().contains("stays in force"), "{}", server.log());

    // Fixed: it applies again.
    std::fs::write(&policy, "grant_declared = true\n").unwrap();
    let out = jiandu(store.path()).args(["run", MODEL]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(policy_status()["problem"].is_null());
    assert!(server.stop().success());
}

#[test]
fn an_edited_plan_is_checked_and_reloaded_or_rejected_like_any_model() {
    const PLAN_MODEL: &str = "disability-fund-arrears-plan";
    let store = store_with_model(MODEL);
    let _data = ingest_sample(store.path(), 300);
    let out = jiandu(store.path())
        .args(["model", "build"])
        .arg(repo().join("plugins").join(MODEL).join("plan"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let server = Server::start(store.path());
    let events = |action: &str| -> Vec<serde_json::Value> {
        status(store.path())["recent"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["model"] == PLAN_MODEL && e["action"] == action)
            .cloned()
            .collect()
    };
    wait_for("the plan model to be served", || {
        !events("loaded").is_empty()
    });
    let plan_sha = |store: &Path| -> String {
        run_entries(store)
            .iter()
            .rev()
            .find(|e| e["kind"] == "run-finished" && e["run"]["model"]["name"] == PLAN_MODEL)
            .map(|e| {
                e["run"]["model"]["plan"]["sha256"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .unwrap()
    };
    let out = jiandu(store.path())
        .args(["run", PLAN_MODEL])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let first = plan_sha(store.path());

    // The plan edited in place: a threshold no employer reaches.
    let file = store
        .path()
        .join("models")
        .join(PLAN_MODEL)
        .join("rule.plan.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("where = \"gap > 0\"", "where = \"gap > 1000000000\""),
    )
    .unwrap();
    wait_for("the edited plan to be reloaded", || {
        !events("reloaded").is_empty()
    });
    let out = jiandu(store.path())
        .args(["run", PLAN_MODEL])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(" 0 leads"), "{}", stdout(&out));
    assert_ne!(plan_sha(store.path()), first);

    // A plan that no longer checks is rejected, naming its line; the last
    // good one keeps serving.
    std::fs::write(
        &file,
        text.replace("where = \"gap > 0\"", "where = \"gapp > 0\""),
    )
    .unwrap();
    wait_for("the broken plan to be rejected", || {
        !events("rejected").is_empty()
    });
    let rejected = events("rejected")[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(rejected.contains("rule.plan.toml:"), "{rejected}");
    assert!(rejected.contains("gapp"), "{rejected}");
    assert!(rejected.contains("keeps serving"), "{rejected}");
    let out = jiandu(store.path())
        .args(["run", PLAN_MODEL])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(" 0 leads"), "{}", stdout(&out));
    drop(server);
}
