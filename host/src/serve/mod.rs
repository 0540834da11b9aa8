//! `jiandu serve`: a long-running host.
//!
//! - keeps the store open and the models compiled (through the
//!   [`crate::cache`], so a restart with many models is fast);
//! - watches the models folder and hot-reloads a changed model: compiled and
//!   checked off the serving path, then swapped in atomically; runs already
//!   in flight finish on the version they started with; a broken version is
//!   rejected and the last good one keeps serving; a removed model is
//!   unloaded ([`watch`]);
//! - runs models on a schedule or when a dataset they name gets a new
//!   version ([`trigger`]);
//! - answers the other `jiandu` commands over a Unix socket in the store,
//!   since sled admits one process per store ([`api`]);
//! - reads its policy again before every run, keeping the last good one
//!   when the file breaks ([`policy`]).
//!
//! The server never changes its working directory: the store, the policy
//! file and every path a client passes are absolute.

pub mod api;
pub mod policy;
pub mod trigger;
pub mod watch;

use crate::cache::{ModuleCache, Source};
use crate::catalog::{self, Installed};
use crate::ledger::{self, Draft, Kind, ModelRef, Outcome, RunRecord};
use crate::policy::Policy;
use crate::run::{self, Report, Request};
use crate::runtime::{Loaded, Runtime};
use crate::{Error, Result, Store};
use policy::{PolicyStatus, ServedPolicy};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// How many model events `status` remembers.
const RECENT_EVENTS: usize = 100;

/// The socket other commands use to reach a running server.
pub fn socket_path(store_root: &std::path::Path) -> PathBuf {
    store_root.join("serve.sock")
}

/// A model as it is served.
pub struct Live {
    pub installed: Installed,
    pub loaded: Loaded,
    pub loaded_at: String,
    pub source: Source,
    state: Mutex<LiveState>,
}

#[derive(Default, Clone, Serialize)]
struct LiveState {
    last_run: Option<String>,
    last_outcome: Option<String>,
    last_error: Option<String>,
}

/// What happened to a model in the models folder.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Loaded,
    Reloaded,
    Rejected,
    Unloaded,
}

/// One load, reload, rejection or unload.
#[derive(Debug, Clone, Serialize)]
pub struct ModelEvent {
    pub at: String,
    pub model: String,
    pub action: Action,
    pub version: Option<String>,
    pub old_digest: Option<String>,
    pub new_digest: Option<String>,
    /// Owner of the model's files when the change was seen (who changed it).
    pub changed_by: Option<String>,
    pub message: String,
}

/// A loaded model as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    pub name: String,
    pub version: String,
    pub wasm_sha256: String,
    pub loaded_at: String,
    pub from_cache: bool,
    pub last_run: Option<String>,
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
}

/// What `jiandu status` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub store: String,
    pub pid: u32,
    pub started_at: String,
    pub models: Vec<ModelStatus>,
    pub recent: Vec<ModelEvent>,
    pub runs_in_flight: usize,
    /// The policy in force and, while its file is missing or broken, why.
    pub policy: PolicyStatus,
}

/// The running server's state, shared by its threads.
pub struct Server {
    pub store: Store,
    pub runtime: Runtime,
    cache: ModuleCache,
    policy: ServedPolicy,
    models: RwLock<BTreeMap<String, Arc<Live>>>,
    /// The last rejected wasm digest of each model: the same broken file is
    /// reported once.
    rejected: Mutex<BTreeMap<String, String>>,
    events: Mutex<VecDeque<ModelEvent>>,
    in_flight: AtomicUsize,
    stopping: AtomicBool,
    started_at: String,
    pub operator: String,
}

impl Server {
    /// Opens the server state over `store` and loads every installed model.
    /// `config` is a policy file named on the command line (which must
    /// exist); without one, the store's `jiandu.toml`.
    pub fn start(store: Store, config: Option<PathBuf>, operator: String) -> Result<Arc<Server>> {
        let policy = match config {
            Some(path) => ServedPolicy::open(&path, true)?,
            None => ServedPolicy::open(&store.policy_path(), false)?,
        };
        let runtime = Runtime::new(policy.current().defaults.stack_kib)?;
        let cache = ModuleCache::open(&store, &runtime)?;
        let server = Arc::new(Server {
            store,
            runtime,
            cache,
            policy,
            models: RwLock::new(BTreeMap::new()),
            rejected: Mutex::new(BTreeMap::new()),
            events: Mutex::new(VecDeque::new()),
            in_flight: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            started_at: crate::time::now_text(),
            operator,
        });
        for name in catalog::list_names(&server.store.models_dir())? {
            server.reload(&name);
        }
        Ok(server)
    }

    fn record(&self, event: ModelEvent, model: ModelRef, replaces: Option<ModelRef>) {
        match event.action {
            Action::Rejected => tracing::warn!("model {}: {}", event.model, event.message),
            _ => tracing::info!("model {}: {}", event.model, event.message),
        }
        if let Err(e) = self.append_event(&event, model, replaces) {
            tracing::error!(
                "model {}: the ledger entry for this event was not written: {e}",
                event.model
            );
        }
        let mut events = self.events.lock().expect("events lock");
        if events.len() == RECENT_EVENTS {
            events.pop_front();
        }
        events.push_back(event);
    }

    /// Puts a model event on the record: who changed which model, the old
    /// and the new wasm digest.
    fn append_event(
        &self,
        event: &ModelEvent,
        model: ModelRef,
        replaces: Option<ModelRef>,
    ) -> Result<()> {
        let policy = self.policy();
        let (kind, outcome) = match event.action {
            Action::Loaded => (Kind::ModelLoaded, Outcome::Succeeded),
            Action::Reloaded => (Kind::ModelReloaded, Outcome::Succeeded),
            Action::Rejected => (Kind::ModelRejected, Outcome::Refused),
            Action::Unloaded => (Kind::ModelUnloaded, Outcome::Succeeded),
        };
        let run = RunRecord {
            run_id: format!("{}-{}", kind.as_str(), event.at),
            model,
            started_at: event.at.clone(),
            outcome,
            replaces,
            ..RunRecord::default()
        };
        let mut draft = Draft::run(
            crate::policy::unit_label(&self.store, &policy)?,
            event
                .changed_by
                .clone()
                .unwrap_or_else(|| self.operator.clone()),
            kind,
            run,
        );
        if event.action == Action::Rejected {
            // Why a version was rejected can quote the module (what its
            // `describe` said): kept beside the entry.
            draft = draft.failed(ledger::Stopped {
                kind: "rejected",
                message: &event.message,
                limit: None,
                used: None,
            });
        }
        ledger::append(&self.store, &draft)?;
        Ok(())
    }

    /// Recent model events, oldest first.
    pub fn events(&self) -> Vec<ModelEvent> {
        self.events
            .lock()
            .expect("events lock")
            .iter()
            .cloned()
            .collect()
    }

    /// The served version of `name`.
    pub fn live(&self, name: &str) -> Option<Arc<Live>> {
        self.models.read().expect("models lock").get(name).cloned()
    }

    /// Brings the served version of `name` in line with its folder: loads,
    /// reloads, rejects or unloads it. Compilation happens before the swap,
    /// outside the lock, so runs are never blocked by it.
    pub fn reload(&self, name: &str) -> Option<ModelEvent> {
        if catalog::check_name(name).is_err() {
            return None;
        }
        let dir = self.store.models_dir().join(name);
        let change = Change::new(self.live(name), name, &dir);
        if !dir.join("model.toml").is_file() && !dir.join("model.wasm").is_file() {
            return self.unload(&change);
        }
        let installed = match catalog::load_dir(&dir) {
            Ok(i) => i,
            Err(e) => return Some(self.reject_unreadable(&change, e)),
        };
        if change.serves(&installed) || self.rejected_before(name, &installed.code_digest()) {
            return None;
        }
        Some(self.swap_in(&change, installed))
    }

    /// The model's folder is gone: stop serving it.
    fn unload(&self, change: &Change) -> Option<ModelEvent> {
        change.current.as_ref()?;
        let removed = self
            .models
            .write()
            .expect("models lock")
            .remove(&change.name);
        let e = change.event(
            Action::Unloaded,
            None,
            None,
            "removed from the models folder; unloaded".into(),
        );
        if let Some(old) = removed.map(|l| run::model_ref(&l.installed)) {
            self.record(e.clone(), old.clone(), Some(old));
        }
        Some(e)
    }

    /// The folder does not hold a model that can be read: keep serving the
    /// current version, if any.
    fn reject_unreadable(&self, change: &Change, error: Error) -> ModelEvent {
        let e = change.event(
            Action::Rejected,
            None,
            None,
            format!("{error}; {}", keeps_serving(&change.current)),
        );
        let unreadable = ModelRef {
            name: change.name.clone(),
            version: String::new(),
            wasm_sha256: String::new(),
            publisher: None,
            plan: None,
        };
        self.record(e.clone(), unreadable, change.old_ref());
        e
    }

    /// This exact wasm was rejected before: not tried again until it changes.
    fn rejected_before(&self, name: &str, digest: &str) -> bool {
        self.rejected
            .lock()
            .expect("rejected lock")
            .get(name)
            .is_some_and(|d| d == digest)
    }

    /// Compiles (or takes from the cache) and checks the new version, then
    /// swaps it in; or rejects it and keeps serving the current one.
    fn swap_in(&self, change: &Change, installed: Installed) -> ModelEvent {
        let id = installed.manifest.id();
        let digest = installed.wasm_sha256.clone();
        let new_ref = run::model_ref(&installed);
        let reloading = change.current.is_some();
        // A plan edited in place is checked as `model build` checks it.
        let checked = match (&installed.manifest.plan, &installed.plan) {
            (Some(file), Some(plan)) => crate::plans::check(
                &self.store,
                &installed.manifest,
                &installed.dir.join(file),
                plan,
            )
            .map(|_| ())
            .map_err(|e| e.to_string()),
            _ => Ok(()),
        };
        if let Err(reason) = checked {
            self.rejected
                .lock()
                .expect("rejected lock")
                .insert(change.name.clone(), installed.code_digest());
            let e = change.event(
                Action::Rejected,
                Some(id.clone()),
                Some(digest),
                format!(
                    "{id} rejected: {reason}; {}",
                    keeps_serving(&change.current)
                ),
            );
            self.record(e.clone(), new_ref, change.old_ref());
            return e;
        }
        let installed_digest = installed.code_digest();
        match self.cache.load(&self.runtime, &installed) {
            Ok((loaded, source)) => {
                let message = format!(
                    "{id} {} ({}, wasm {})",
                    if reloading { "reloaded" } else { "loaded" },
                    match source {
                        Source::Cache => "from the module cache",
                        Source::Compiled => "compiled",
                    },
                    &digest[..12]
                );
                let live = Arc::new(Live {
                    installed,
                    loaded,
                    loaded_at: crate::time::now_text(),
                    source,
                    state: Mutex::new(LiveState::default()),
                });
                self.models
                    .write()
                    .expect("models lock")
                    .insert(change.name.clone(), live);
                let action = if reloading {
                    Action::Reloaded
                } else {
                    Action::Loaded
                };
                let e = change.event(action, Some(id), Some(digest), message);
                self.record(e.clone(), new_ref, change.old_ref());
                e
            }
            Err(err) => {
                self.rejected
                    .lock()
                    .expect("rejected lock")
                    .insert(change.name.clone(), installed_digest);
                let e = change.event(
                    Action::Rejected,
                    Some(id.clone()),
                    Some(digest),
                    format!(
                        "{id} rejected: {}; {}",
                        err.reason,
                        keeps_serving(&change.current)
                    ),
                );
                self.record(e.clone(), new_ref, change.old_ref());
                e
            }
        }
    }

    /// Runs the served version of `model`. The run keeps that version even
    /// if a reload swaps in another meanwhile.
    pub fn run(
        &self,
        model: &str,
        params: Vec<(String, String)>,
        operator: &str,
    ) -> Result<Report> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Error::Other("the server is stopping; no new runs".into()));
        }
        let live = self.live(model).ok_or_else(|| {
            let names: Vec<String> = self
                .models
                .read()
                .expect("models lock")
                .keys()
                .cloned()
                .collect();
            Error::model(
                model,
                format!(
                    "is not loaded by the server; loaded: {}",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                ),
            )
        })?;
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _guard = InFlight(&self.in_flight);
        // The policy file is read for every run, so an edit applies at once.
        let policy = self.policy();
        let result = run::execute_installed(
            &self.store,
            &self.runtime,
            &policy,
            &live.installed,
            Some(&live.loaded),
            &Request {
                model: model.to_string(),
                params,
                operator: operator.to_string(),
                partitions: None,
            },
        );
        let mut state = live.state.lock().expect("live lock");
        match &result {
            Ok(r) => {
                state.last_run = Some(r.run_id.clone());
                state.last_outcome = Some(r.outcome.as_str().to_string());
                state.last_error = r
                    .failure
                    .as_ref()
                    .map(|f| format!("{}: {}", f.kind, f.message));
            }
            Err(e) => {
                state.last_outcome = Some("refused".into());
                state.last_error = Some(e.to_string());
            }
        }
        result
    }

    /// The policy in force: the file's, read again now, or the last good
    /// one while the file is missing or broken.
    pub fn policy(&self) -> Policy {
        self.policy.current()
    }

    /// Names of the served models.
    pub fn model_names(&self) -> Vec<String> {
        self.models
            .read()
            .expect("models lock")
            .keys()
            .cloned()
            .collect()
    }

    /// The server's state for `jiandu status`.
    pub fn status(&self) -> Status {
        let models = self
            .models
            .read()
            .expect("models lock")
            .values()
            .map(|l| {
                let s = l.state.lock().expect("live lock").clone();
                ModelStatus {
                    name: l.installed.manifest.name.clone(),
                    version: l.installed.manifest.version.clone(),
                    wasm_sha256: l.installed.wasm_sha256.clone(),
                    loaded_at: l.loaded_at.clone(),
                    from_cache: l.source == Source::Cache,
                    last_run: s.last_run,
                    last_outcome: s.last_outcome,
                    last_error: s.last_error,
                }
            })
            .collect();
        Status {
            store: self.store.root().display().to_string(),
            pid: std::process::id(),
            started_at: self.started_at.clone(),
            models,
            recent: self.events(),
            runs_in_flight: self.in_flight.load(Ordering::SeqCst),
            policy: self.policy.status(),
        }
    }

    /// Stops taking new runs and waits for the ones in flight (each is
    /// bounded by its wall-time limit), then flushes the store.
    pub fn stop(&self) -> Result<()> {
        self.stopping.store(true, Ordering::SeqCst);
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.store.flush()
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// The login name (or uid) owning `path`.
fn file_owner(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(path).ok()?.uid();
    Some(crate::names::user_name(uid).unwrap_or_else(|| format!("uid {uid}")))
}

/// A change seen in a model's folder, against the version being served.
struct Change {
    name: String,
    current: Option<Arc<Live>>,
    /// Who last wrote the model's files, if the system says.
    changed_by: Option<String>,
}

impl Change {
    fn new(current: Option<Arc<Live>>, name: &str, dir: &Path) -> Change {
        Change {
            name: name.to_string(),
            current,
            changed_by: file_owner(&dir.join("model.wasm")).or_else(|| file_owner(dir)),
        }
    }

    fn old_ref(&self) -> Option<ModelRef> {
        self.current.as_ref().map(|l| run::model_ref(&l.installed))
    }

    /// The folder holds the version already served.
    fn serves(&self, installed: &Installed) -> bool {
        self.current.as_ref().is_some_and(|c| {
            c.installed.code_digest() == installed.code_digest()
                && c.installed.manifest.version == installed.manifest.version
        })
    }

    fn event(
        &self,
        action: Action,
        version: Option<String>,
        new_digest: Option<String>,
        message: String,
    ) -> ModelEvent {
        ModelEvent {
            at: crate::time::now_text(),
            model: self.name.clone(),
            action,
            version,
            old_digest: self
                .current
                .as_ref()
                .map(|l| l.installed.wasm_sha256.clone()),
            new_digest,
            changed_by: self.changed_by.clone(),
            message,
        }
    }
}

fn keeps_serving(current: &Option<Arc<Live>>) -> String {
    match current {
        Some(c) => format!("{} keeps serving", c.installed.manifest.id()),
        None => "nothing was loaded".to_string(),
    }
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_named_from_the_user_database_or_by_uid() {
        use crate::names::user_name;
        assert_eq!(user_name(0).as_deref(), Some("root"));
        // A uid no system hands out (the largest is (uid_t)-1, "no user").
        assert_eq!(user_name(u32::MAX - 1), None);

        let dir = tempfile::tempdir().unwrap();
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        let expected = user_name(uid).unwrap_or_else(|| format!("uid {uid}"));
        assert_eq!(file_owner(dir.path()), Some(expected));
        assert_eq!(file_owner(&dir.path().join("missing")), None);
    }
}
