//! People of the console: `jiandu user …` through the real binary, and
//! logging in through the library the console's server will call.

use crate::common;

use common::{jiandu, json, stderr, stdout};
use jiandu::users::{self, LoginOutcome, Refusal};
use std::path::Path;

const PASSWORD: &str = "长城 correct horse 2026";

/// An empty store folder, owner-only as a store should be.
fn new_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// `jiandu user <args>` with `stdin` as its standard input.
fn user(store: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    jiandu(store)
        .arg("user")
        .args(args)
        .write_stdin(stdin)
        .output()
        .unwrap()
}

fn add(store: &Path, name: &str, role: &str, password: &str) {
    let out = user(
        store,
        &["add", name, "--role", role],
        &format!("{password}\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("added {name} as {role}\n"));
}

/// A login through the library, with the store opened for it alone (the
/// binary and the library take turns on the store's lock).
fn login(store: &Path, name: &str, password: &str) -> LoginOutcome {
    let s = jiandu::Store::open(store).unwrap();
    users::verify_login(&s, name, password, jiandu::time::now()).unwrap()
}

fn listed(store: &Path) -> Vec<serde_json::Value> {
    let out = user(store, &["list", "--format", "json"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    json(&out).as_array().unwrap().clone()
}

/// Every file under `dir`, as bytes.
fn every_file(dir: &Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            every_file(&path, out);
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
}

#[test]
fn a_person_added_with_a_password_on_stdin_is_listed_without_it_and_can_log_in() {
    let store = new_store();
    add(store.path(), "李明", "reviewer", PASSWORD);
    add(store.path(), "wang", "auditor", PASSWORD);

    let people = listed(store.path());
    assert_eq!(people.len(), 2);
    let li = people.iter().find(|p| p["name"] == "李明").unwrap();
    assert_eq!(li["role"], "reviewer");
    assert_eq!(li["disabled"], false);
    assert_eq!(li["failed_logins"], 0);
    for format in ["json", "csv", "table"] {
        let out = user(store.path(), &["list", "--format", format], "");
        let text = stdout(&out);
        assert!(text.contains("李明"), "{format}: {text}");
        for secret in ["argon2", "hash", "password", PASSWORD] {
            assert!(!text.contains(secret), "{format} shows `{secret}`: {text}");
        }
    }
    // Not in clear anywhere in the store.
    let mut files = Vec::new();
    every_file(store.path(), &mut files);
    for (path, bytes) in &files {
        let found = bytes
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes());
        assert!(!found, "{} holds the password in clear", path.display());
    }

    match login(store.path(), "李明", PASSWORD) {
        LoginOutcome::Accepted { user, session } => {
            assert_eq!(user.role, users::Role::Reviewer);
            assert!(user.may(users::Action::ReviewLeads));
            assert!(!user.may(users::Action::SeeAudit));
            let s = jiandu::Store::open(store.path()).unwrap();
            let live = users::session(&s, &session.id, jiandu::time::now())
                .unwrap()
                .expect("the new session is live");
            assert!(users::csrf_matches(&live.csrf, &session.csrf));
        }
        other => panic!("refused: {other:?}"),
    }
    let last = listed(store.path());
    let li = last.iter().find(|p| p["name"] == "李明").unwrap();
    assert!(li["last_login_at"].is_string(), "{li}");
}

#[test]
fn five_wrong_passwords_lock_and_reset_unlocks() {
    let store = new_store();
    add(store.path(), "li", "admin", PASSWORD);
    for n in 1..=5u32 {
        let out = login(store.path(), "li", "not the password at all");
        assert_eq!(out.locked_now(), n == 5, "attempt {n}");
        assert!(
            matches!(out, LoginOutcome::Refused { refusal: Refusal::WrongPassword { failures, .. }, .. } if failures == n),
            "attempt {n}"
        );
    }
    assert!(matches!(
        login(store.path(), "li", PASSWORD),
        LoginOutcome::Refused {
            refusal: Refusal::Locked { .. },
            ..
        }
    ));
    let out = user(store.path(), &["list"], "");
    assert!(stdout(&out).contains("locked until"), "{}", stdout(&out));

    let new = "another long passphrase";
    let out = user(store.path(), &["reset", "li"], &format!("{new}\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("lockout cleared"), "{}", stdout(&out));
    let li = &listed(store.path())[0];
    assert_eq!(li["failed_logins"], 0);
    assert!(li["locked_until"].is_null(), "{li}");
    assert!(matches!(
        login(store.path(), "li", PASSWORD),
        LoginOutcome::Refused {
            refusal: Refusal::WrongPassword { failures: 1, .. },
            ..
        }
    ));
    assert!(matches!(
        login(store.path(), "li", new),
        LoginOutcome::Accepted { .. }
    ));
}

#[test]
fn a_disabled_person_is_refused_until_enabled() {
    let store = new_store();
    add(store.path(), "li", "reviewer", PASSWORD);
    let session = match login(store.path(), "li", PASSWORD) {
        LoginOutcome::Accepted { session, .. } => session,
        other => panic!("refused: {other:?}"),
    };

    let out = user(store.path(), &["disable", "li"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(listed(store.path())[0]["disabled"], true);
    assert!(matches!(
        login(store.path(), "li", PASSWORD),
        LoginOutcome::Refused {
            refusal: Refusal::Disabled,
            ..
        }
    ));
    let s = jiandu::Store::open(store.path()).unwrap();
    assert!(users::session(&s, &session.id, jiandu::time::now())
        .unwrap()
        .is_none());
    drop(s);

    let out = user(store.path(), &["enable", "li"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(matches!(
        login(store.path(), "li", PASSWORD),
        LoginOutcome::Accepted { .. }
    ));
}

#[test]
fn a_short_password_a_taken_name_and_an_unknown_person_are_refused_and_named() {
    let store = new_store();
    let out = user(
        store.path(),
        &["add", "li", "--role", "reviewer"],
        "short\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("at least 12"), "{}", stderr(&out));
    assert!(listed(store.path()).is_empty());

    add(store.path(), "li", "reviewer", PASSWORD);
    let out = user(
        store.path(),
        &["add", "li", "--role", "admin"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("user `li` already exists"),
        "{}",
        stderr(&out)
    );
    assert_eq!(listed(store.path())[0]["role"], "reviewer");

    for args in [["disable", "nobody"], ["reset", "nobody"]] {
        let out = user(store.path(), &args, &format!("{PASSWORD}\n"));
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("no user `nobody`"),
            "{args:?}: {}",
            stderr(&out)
        );
    }

    let out = user(store.path(), &["add", "x", "--role", "root"], "");
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown role is a usage error"
    );
}

#[test]
fn every_user_subcommand_has_an_example_in_its_help() {
    let store = new_store();
    for sub in ["add", "list", "disable", "enable", "reset", "reveal"] {
        let out = user(store.path(), &[sub, "--help"], "");
        assert!(out.status.success(), "{sub}");
        let help = stdout(&out);
        let example = help
            .lines()
            .find(|l| l.starts_with("Example: `"))
            .unwrap_or_else(|| panic!("{sub}: no example in {help}"));
        assert!(
            example.contains(&format!("jiandu user {sub}")),
            "{sub}: {example}"
        );
    }
}
