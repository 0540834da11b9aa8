//! The policy a server runs under. Its file is read again before every run
//! (and for `status`), so an edit applies at once; a file that disappears
//! or stops parsing while the server runs leaves the last good policy in
//! force, logged and shown by `status`, never the built-in defaults, which
//! grant every declared dataset.

use crate::policy::Policy;
use crate::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The policy file of a server and what was last read from it.
pub struct ServedPolicy {
    /// Absolute, fixed at start.
    path: PathBuf,
    /// Named with `--config`: it must exist from the start.
    required: bool,
    state: Mutex<State>,
}

struct State {
    policy: Policy,
    /// When `policy` was read from the file; `None` while no file has
    /// existed (the built-in defaults apply).
    read_at: Option<String>,
    /// Why the file is not what applies, while it is missing or broken.
    problem: Option<String>,
}

/// The policy as `jiandu status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyStatus {
    pub path: String,
    /// `file` (read from `path`) or `defaults` (no file yet).
    pub source: &'static str,
    /// When the policy in force was read.
    pub read_at: Option<String>,
    /// Why the file is not what applies, while it is missing or broken;
    /// the policy in force is then the last one read from it.
    pub problem: Option<String>,
}

impl ServedPolicy {
    /// Reads the policy at `path`, made absolute against the current folder
    /// once: a file named with `--config` (`required`) must exist; the
    /// store's own may not (the defaults apply until it does). A policy
    /// that does not parse stops the server from starting.
    pub fn open(path: &Path, required: bool) -> Result<ServedPolicy> {
        let path = std::path::absolute(path).map_err(|e| Error::Policy {
            path: path.to_path_buf(),
            message: format!("cannot resolve the path: {e}"),
        })?;
        let (policy, read_at) = if required || path.exists() {
            (Policy::load_required(&path)?, Some(crate::time::now_text()))
        } else {
            (Policy::default(), None)
        };
        Ok(ServedPolicy {
            path,
            required,
            state: Mutex::new(State {
                policy,
                read_at,
                problem: None,
            }),
        })
    }

    /// Where the policy is read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The policy in force now, after reading the file again.
    pub fn current(&self) -> Policy {
        let mut state = self.refreshed();
        state.policy.path = Some(self.path.clone());
        state.policy.clone()
    }

    /// What `status` shows, after reading the file again.
    pub fn status(&self) -> PolicyStatus {
        let state = self.refreshed();
        PolicyStatus {
            path: self.path.display().to_string(),
            source: if state.read_at.is_some() {
                "file"
            } else {
                "defaults"
            },
            read_at: state.read_at.clone(),
            problem: state.problem.clone(),
        }
    }

    fn refreshed(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let never_read = state.read_at.is_none() && !self.required;
        if never_read && !self.path.exists() {
            // No policy file has existed yet: the defaults stand.
            return state;
        }
        match Policy::load_required(&self.path) {
            Ok(policy) => {
                if state.problem.take().is_some() {
                    tracing::info!(
                        "policy {} can be read again and applies from now on",
                        self.path.display()
                    );
                }
                state.policy = policy;
                state.read_at = Some(crate::time::now_text());
            }
            Err(e) => {
                let kept = match &state.read_at {
                    Some(at) => format!("the policy read from it at {at} stays in force"),
                    None => "the built-in defaults stay in force".to_string(),
                };
                let problem = format!("{e}; {kept}, not the defaults, until it is fixed");
                if state.problem.as_ref() != Some(&problem) {
                    tracing::error!("{problem}");
                }
                state.problem = Some(problem);
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRANTS_A: &str = "grant_declared = false\n[models.m]\ndatasets = [\"a\"]\n";

    #[test]
    fn a_policy_file_that_disappears_or_breaks_keeps_the_last_good_policy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jiandu.toml");
        std::fs::write(&path, GRANTS_A).unwrap();
        let served = ServedPolicy::open(&path, false).unwrap();
        assert!(!served.current().grant_declared);

        std::fs::remove_file(&path).unwrap();
        let p = served.current();
        assert!(!p.grant_declared, "not the defaults");
        assert_eq!(
            p.models["m"].datasets.as_deref(),
            Some(&["a".to_string()][..])
        );
        let status = served.status();
        assert_eq!(status.source, "file");
        let problem = status.problem.expect("the missing file is reported");
        assert!(
            problem.contains("jiandu.toml") && problem.contains("stays in force"),
            "{problem}"
        );

        std::fs::write(&path, "grant_declared = [not toml").unwrap();
        assert!(!served.current().grant_declared);
        let problem = served
            .status()
            .problem
            .expect("the broken file is reported");
        assert!(problem.contains("jiandu.toml"), "{problem}");

        std::fs::write(&path, "grant_declared = true\n").unwrap();
        assert!(served.current().grant_declared);
        assert_eq!(served.status().problem, None);
    }

    #[test]
    fn the_stores_policy_file_may_appear_later_and_is_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jiandu.toml");
        let served = ServedPolicy::open(&path, false).unwrap();
        assert_eq!(served.status().source, "defaults");
        assert!(served.current().grant_declared);
        assert_eq!(served.status().problem, None, "no file is no problem");

        std::fs::write(&path, GRANTS_A).unwrap();
        assert!(!served.current().grant_declared);
        std::fs::remove_file(&path).unwrap();
        assert!(!served.current().grant_declared, "once read, it is kept");
        assert!(served.status().problem.is_some());
    }

    #[test]
    fn a_relative_path_is_made_absolute_once() {
        let served = ServedPolicy::open(Path::new("no-such-policy.toml"), false).unwrap();
        assert!(served.path().is_absolute());
        assert!(
            ServedPolicy::open(Path::new("no-such-policy.toml"), true).is_err(),
            "a file named with --config must exist"
        );
    }

    #[test]
    fn a_broken_policy_at_start_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jiandu.toml");
        std::fs::write(&path, "[defaults]\nmemory = 1\n").unwrap();
        let err = ServedPolicy::open(&path, false).err().unwrap().to_string();
        assert!(err.contains("jiandu.toml"), "{err}");
    }
}
