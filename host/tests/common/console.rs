//! A store with leads and people for the console tests, and `jiandu serve
//! --http` on it as a real process.
//!
//! The store holds two test models: `good` over a `people` dataset (60
//! leads, personal subjects, a city each) and `printer`, whose one lead
//! carries whatever text its parameters say.

use super::{add_model, ingest_text, jiandu, stderr, stdout, test_model, PEOPLE_SCHEMA};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Everyone's password.
pub const PASSWORD: &str = "长城 correct horse 2026";

/// A reviewer, another reviewer, an admin and an auditor.
pub const REVIEWER: &str = "li";
pub const REVIEWER2: &str = "zhao";
pub const ADMIN: &str = "wang";
pub const AUDITOR: &str = "sun";

/// Leads of `good`, and the cities they are spread over (a third each).
pub const GOOD_LEADS: usize = 60;
pub const CITIES: [&str; 3] = ["北京", "上海", "深圳"];

/// The ID number of person `i` of `people`.
pub fn id_number(i: usize) -> String {
    format!("1101051950{i:06}X")
}

/// 63 people aged 57 to 119: `good` (60 and over) finds the last 60.
fn people_csv() -> String {
    let mut csv = String::from("id_number,name,city,age\n");
    for i in 0..GOOD_LEADS + 3 {
        csv.push_str(&format!(
            "{},人{i},{},{}\n",
            id_number(i),
            CITIES[i % 3],
            57 + i
        ));
    }
    csv
}

/// Fails the test unless `out` succeeded.
pub fn ok(out: std::process::Output) -> std::process::Output {
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    out
}

/// `jiandu run <model>` with `params` (name=value), through the server
/// when one is running.
pub fn run_model(store: &Path, model: &str, params: &[&str]) {
    let mut cmd = jiandu(store);
    cmd.args(["run", model]);
    for p in params {
        cmd.args(["--param", p]);
    }
    ok(cmd.output().unwrap());
}

/// A store where `good` has run over `people` and `printer` has run with
/// `printer` as its parameters, with a person of each role.
pub fn store_with_leads(printer: &[&str]) -> tempfile::TempDir {
    let store = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    add_model(store.path(), &test_model("good"));
    add_model(store.path(), &test_model("printer"));
    ingest_text(store.path(), "people", PEOPLE_SCHEMA, &people_csv());
    run_model(store.path(), "good", &[]);
    run_model(store.path(), "printer", printer);
    for (name, role) in [
        (REVIEWER, "reviewer"),
        (REVIEWER2, "reviewer"),
        (ADMIN, "admin"),
        (AUDITOR, "auditor"),
    ] {
        ok(jiandu(store.path())
            .args(["user", "add", name, "--role", role])
            .write_stdin(format!("{PASSWORD}\n"))
            .output()
            .unwrap());
    }
    store
}

/// A running `jiandu serve --http 127.0.0.1:0`, killed when dropped.
pub struct Served {
    child: Child,
    /// Where the console listens, as the server printed it.
    pub addr: SocketAddr,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Served {
    /// Starts the server with the console on a free loopback port and
    /// waits until it serves both the console and the other commands.
    pub fn start(store: &Path) -> Served {
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("serve.log");
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("jiandu"))
            .env("JIANDU_OPERATOR", "server")
            .env("NO_COLOR", "1")
            .env_remove("JIANDU_CONFIG")
            .env_remove("JIANDU_STORE")
            .arg("--store")
            .arg(store)
            .args(["serve", "--http", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        // The console's line comes first, then the server's: once both are
        // out, the console listens and the socket answers.
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut addr = None;
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.trim().strip_prefix("console on http://") {
                    addr = rest.trim_end_matches('/').parse::<SocketAddr>().ok();
                }
                if line.starts_with("jiandu serving") {
                    let _ = tx.send(addr.take());
                }
            }
        });
        let mut served = Served {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            _log_dir: log_dir,
        };
        match rx.recv_timeout(Duration::from_secs(300)) {
            Ok(Some(addr)) => served.addr = addr,
            Ok(None) => panic!("the server printed no console address:\n{}", served.log()),
            Err(_) => {
                let status = served.child.try_wait().ok().flatten();
                panic!("the server did not start ({status:?}):\n{}", served.log())
            }
        }
        served
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A new client of the console, with no cookies.
    pub fn client(&self) -> super::http::Client {
        super::http::Client::new(self.addr)
    }

    /// A client logged in as `name`.
    pub fn login(&self, name: &str) -> super::http::Client {
        let mut c = self.client();
        c.login(name, PASSWORD);
        c
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
