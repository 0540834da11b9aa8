//! One run of one model, from policy check to committed leads:
//!
//! 1. resolve parameters, policy grants and the dataset versions to read
//!    (a refusal is recorded as a `run-refused` entry and nothing runs);
//! 2. append `run-started` (if the ledger cannot be written, stop here);
//! 3. load the model and run it in a fresh sandbox instance;
//! 4. on success, commit its leads and `run-finished` in one transaction;
//!    on failure, append `run-finished` with the reason and keep no leads.
//!    A success whose leads the host cannot commit (a full disk, a failed
//!    write) ends as a failure of kind `host-error`, still on the record.

use crate::cache::{ModuleCache, Source};
use crate::catalog::{self, Installed};
use crate::dataset::access::Access;
use crate::dataset::SegmentId;
use crate::emitted::Emitted;
use crate::leads::Applied;
use crate::ledger::{
    self, DatasetRef, Draft, Entry, Kind, ModelRef, Outcome, RunRecord, SnapshotRef,
};
use crate::policy::{Limits, Policy};
use crate::runtime::{Failure, LoadError, Loaded, LogLine, Runtime, Session};
use crate::{Error, Result, Store};
use sled::transaction::ConflictableTransactionError;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use jiandu_store::names::default_operator;

/// A request to run a model.
#[derive(Debug, Clone)]
pub struct Request {
    pub model: String,
    pub params: Vec<(String, String)>,
    pub operator: String,
    /// Parts of a partitioned run (for a model that declares
    /// `[partition]`), run on every core; `None`: [`crate::partition::default_parts`].
    pub partitions: Option<usize>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    pub run_id: String,
    pub model: String,
    pub model_version: String,
    pub outcome: Outcome,
    pub failure: Option<Failure>,
    pub entry: Entry,
    pub leads: u64,
    pub new: u64,
    pub open: u64,
    pub resolved: u64,
    pub total_amount: rust_decimal::Decimal,
    pub records_read: u64,
    pub fuel_used: u64,
    /// Instances it ran as (more than one: a partitioned run).
    pub parts: usize,
    pub elapsed: Duration,
    pub logs: Vec<LogLine>,
    /// A dry run's leads, each with the status it would have; empty for a
    /// run that kept its leads.
    pub preview: Vec<crate::leads::Lead>,
}

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) fn new_run_id() -> String {
    let now = crate::time::now();
    format!(
        "{}-{}-{}",
        now.format("%Y%m%dT%H%M%S%.3f"),
        std::process::id(),
        RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs an installed model by name.
pub fn execute(store: &Store, runtime: &Runtime, policy: &Policy, req: &Request) -> Result<Report> {
    let installed = catalog::load(&store.models_dir(), &req.model)?;
    execute_installed(store, runtime, policy, &installed, None, req)
}

/// Runs an installed model by name, taking its compiled code from `cache`
/// (compiling it and writing the entry on a miss); without a cache, like
/// [`execute`].
pub fn execute_cached(
    store: &Store,
    runtime: &Runtime,
    policy: &Policy,
    cache: Option<&ModuleCache>,
    req: &Request,
) -> Result<Report> {
    let installed = catalog::load(&store.models_dir(), &req.model)?;
    run_installed(store, runtime, policy, &installed, None, cache, req, false)
}

/// Runs an installed model as [`execute_cached`] does, but keeps no lead
/// state: the leads it would keep are planned, shown in
/// [`Report::preview`] with the status each would have, and dropped; no
/// `only_new` cursor moves. The ledger records the run (`dry_run`), as it
/// read the data.
pub fn dry_run(
    store: &Store,
    runtime: &Runtime,
    policy: &Policy,
    cache: Option<&ModuleCache>,
    req: &Request,
) -> Result<Report> {
    let installed = catalog::load(&store.models_dir(), &req.model)?;
    run_installed(store, runtime, policy, &installed, None, cache, req, true)
}

/// Runs `installed`, reusing `loaded` when the caller already compiled it.
pub fn execute_installed(
    store: &Store,
    runtime: &Runtime,
    policy: &Policy,
    installed: &Installed,
    loaded: Option<&Loaded>,
    req: &Request,
) -> Result<Report> {
    run_installed(store, runtime, policy, installed, loaded, None, req, false)
}

/// Runs `installed` with `loaded`, else with code from `cache`, else with
/// code compiled now; a `dry` run keeps no lead state.
#[allow(clippy::too_many_arguments)]
fn run_installed(
    store: &Store,
    runtime: &Runtime,
    policy: &Policy,
    installed: &Installed,
    loaded: Option<&Loaded>,
    cache: Option<&ModuleCache>,
    req: &Request,
    dry: bool,
) -> Result<Report> {
    let started = Instant::now();
    let spill = spill_budget()?;
    let manifest = &installed.manifest;
    let run_id = new_run_id();
    let mut record = RunRecord {
        run_id: run_id.clone(),
        model: model_ref(installed),
        started_at: crate::time::now_text(),
        outcome: Outcome::Started,
        dry_run: dry,
        ..RunRecord::default()
    };
    let entries = Entries {
        unit: crate::policy::unit_label(store, policy)?,
        operator: req.operator.clone(),
    };

    // 1. Everything that can refuse the run before it starts: its
    // parameters first (a usage error), then the rest.
    if let Err(message) = manifest.resolve_params(&req.params) {
        return Err(
            match refuse(store, &entries, manifest, &mut record, message) {
                Error::RunRefused { model, message } => Error::BadParams { model, message },
                e => e,
            },
        );
    }
    let prepared = prepare(store, policy, installed, req, &mut record, spill);
    let (session, limits, cursors) = match prepared {
        Ok(p) => p,
        Err(message) => return Err(refuse(store, &entries, manifest, &mut record, message)),
    };
    record.limits = Some(limits_record(&limits));
    let split = match crate::partition::split(manifest, session.datasets(), req.partitions) {
        Ok(split) => split,
        Err(message) => return Err(refuse(store, &entries, manifest, &mut record, message)),
    };

    // 2. Fail closed: no start entry, no run.
    ledger::append(store, &entries.draft(Kind::RunStarted, &record))?;

    // 3. Load and run; a partitioned run's leads are planned as its parts
    // finish.
    let mut planned_early = None;
    let finished = match &split {
        None => load_and_run(runtime, cache, installed, loaded, session, limits),
        Some(split) => {
            let sessions = session.partitioned(&split.datasets, &split.ranges);
            let mut early = PlanAsPartsEnd::start(store, manifest, &run_id);
            let (finished, parts) = load_and_run_parts(
                runtime,
                cache,
                installed,
                loaded,
                sessions,
                limits,
                &mut |leads| early.part(leads),
            );
            planned_early = early.finish();
            record.partitions = parts
                .into_iter()
                .map(|p| ledger::PartitionRecord {
                    key: split.key.clone(),
                    from: p.range.lo,
                    to: p.range.hi,
                    datasets: split.datasets.clone(),
                    records_read: p.records_read,
                    fuel_used: p.fuel_used,
                })
                .collect();
            finished
        }
    };
    record.ended_at = Some(crate::time::now_text());
    record.fuel_used = Some(finished.fuel_used);
    record.peak_memory = Some(finished.peak_memory);
    record.records_read = Some(finished.session.records_read);

    // 4. Commit the leads, or record the failure.
    let ended = match &finished.failure {
        Some(failure) => {
            if let Some((_, (Ok(changes), _))) = planned_early {
                if let Err(e) = changes.discard(store) {
                    tracing::warn!("a failed run's planned leads file remains: {e}");
                }
            }
            record.outcome = Outcome::Failed;
            record.leads_count = Some(0);
            let d = entries
                .draft(Kind::RunFinished, &record)
                .failed(stopped(failure));
            Ended::failed(ledger::append(store, &d)?, failure.clone())
        }
        None if dry => preview_leads(
            store,
            &entries,
            manifest,
            &mut record,
            &finished.session.leads,
            planned_early,
        )?,
        None => commit_leads(
            store,
            &entries,
            manifest,
            &mut record,
            &finished.session.leads,
            &cursors,
            planned_early,
        )?,
    };
    let succeeded = ended.failure.is_none();
    Ok(Report {
        run_id,
        model: manifest.name.clone(),
        model_version: manifest.version.clone(),
        outcome: record.outcome,
        failure: ended.failure,
        entry: ended.entry,
        leads: if succeeded {
            finished.session.leads.len() as u64
        } else {
            0
        },
        new: ended.new,
        open: ended.open,
        resolved: ended.resolved,
        total_amount: ended.total_amount,
        records_read: finished.session.records_read,
        fuel_used: finished.fuel_used,
        parts: record.partitions.len().max(1),
        elapsed: started.elapsed(),
        logs: finished.session.logs,
        preview: ended.preview,
    })
}

/// Who a run's entries name: the unit and the operator.
struct Entries {
    unit: String,
    operator: String,
}

impl Entries {
    fn draft(&self, kind: Kind, record: &RunRecord) -> Draft {
        Draft::run(
            self.unit.clone(),
            self.operator.clone(),
            kind,
            record.clone(),
        )
    }
}

/// How a run that started ended: its `run-finished` entry, its leads'
/// changes and total, or its failure.
struct Ended {
    entry: ledger::Entry,
    new: u64,
    open: u64,
    resolved: u64,
    total_amount: rust_decimal::Decimal,
    failure: Option<Failure>,
    preview: Vec<crate::leads::Lead>,
}

impl Ended {
    fn failed(entry: ledger::Entry, failure: Failure) -> Ended {
        Ended {
            entry,
            new: 0,
            open: 0,
            resolved: 0,
            total_amount: rust_decimal::Decimal::ZERO,
            failure: Some(failure),
            preview: Vec::new(),
        }
    }
}

/// A dry run's leads: digested and planned like a run's, read back from
/// the plan with the status each would have, and dropped; its
/// `run-finished` entry records the digest and no snapshot.
fn preview_leads(
    store: &Store,
    entries: &Entries,
    manifest: &catalog::Manifest,
    record: &mut RunRecord,
    leads: &Emitted,
    planned_early: Option<Planned>,
) -> Result<Ended> {
    record.outcome = Outcome::Succeeded;
    record.leads_count = Some(leads.len() as u64);
    let ((digest, total_amount), (planned, _)) =
        planned_early.unwrap_or_else(|| digest_and_plan(store, manifest, &record.run_id, leads));
    let changes = planned?;
    let preview = changes.preview();
    let (new, open, resolved) = (changes.new, changes.open, changes.resolved);
    if let Err(e) = changes.discard(store) {
        tracing::warn!("a dry run's planned leads file remains: {e}");
    }
    record.leads_digest = Some(digest);
    let entry = ledger::append(store, &entries.draft(Kind::RunFinished, record))?;
    Ok(Ended {
        entry,
        new,
        open,
        resolved,
        total_amount,
        failure: None,
        preview: preview?,
    })
}

/// Puts a refused run on the record; the error to return.
fn refuse(
    store: &Store,
    entries: &Entries,
    manifest: &catalog::Manifest,
    record: &mut RunRecord,
    message: String,
) -> Error {
    record.outcome = Outcome::Refused;
    record.ended_at = Some(crate::time::now_text());
    let refusal = Failure {
        kind: "refused".into(),
        message: message.clone(),
        limit: None,
        used: None,
    };
    let d = entries
        .draft(Kind::RunRefused, record)
        .failed(stopped(&refusal));
    match ledger::append(store, &d) {
        Ok(_) => Error::RunRefused {
            model: manifest.id(),
            message,
        },
        Err(e) => e,
    }
}

/// A succeeded run's leads: digested, planned against the previous
/// snapshot and committed with the `run-finished` entry. If the host cannot
/// keep them (a full disk, a failed write), the run still ends on the
/// record, as a `host-error`, if anything can be written.
fn commit_leads(
    store: &Store,
    entries: &Entries,
    manifest: &catalog::Manifest,
    record: &mut RunRecord,
    leads: &Emitted,
    cursors: &Cursors,
    planned_early: Option<Planned>,
) -> Result<Ended> {
    let run_id = record.run_id.clone();
    record.outcome = Outcome::Succeeded;
    record.leads_count = Some(leads.len() as u64);
    if leads.spilled() {
        tracing::debug!(
            "run {run_id}: {} leads, {} of them spilled to {} files",
            leads.len(),
            leads.len() - leads.in_memory(),
            leads.spills()
        );
    }
    let ((digest, total), planned) =
        planned_early.unwrap_or_else(|| digest_and_plan(store, manifest, &run_id, leads));
    record.leads_digest = Some(digest);
    let d = entries.draft(Kind::RunFinished, record);
    let committed = commit(store, &d, leads, cursors, Some(planned)).map(|c| (c, total));
    match committed {
        Ok(((entry, changes), total_amount)) => Ok(Ended {
            entry,
            new: changes.new,
            open: changes.open,
            resolved: changes.resolved,
            total_amount,
            failure: None,
            preview: Vec::new(),
        }),
        // The entry is in; only its durability is in doubt.
        Err(CommitError::NotDurable(e)) => Err(e),
        Err(CommitError::Failed(e)) => {
            let host = Failure {
                kind: "host-error".into(),
                message: format!("the host could not commit the run's leads: {e}"),
                limit: None,
                used: None,
            };
            record.outcome = Outcome::Failed;
            record.leads_count = Some(0);
            record.leads_digest = None;
            let d = entries
                .draft(Kind::RunFinished, record)
                .failed(stopped(&host));
            let entry = ledger::append(store, &d).map_err(|e2| {
                Error::Ledger(format!(
                    "run {run_id} of {}: its leads could not be committed ({e}), nor its run-finished entry written ({e2})",
                    manifest.id()
                ))
            })?;
            Ok(Ended::failed(entry, host))
        }
    }
}

/// Compiles `installed`'s code, or takes it from `cache` when there is one.
fn load(
    runtime: &Runtime,
    cache: Option<&ModuleCache>,
    installed: &Installed,
) -> std::result::Result<Loaded, LoadError> {
    let Some(cache) = cache else {
        return runtime.load(installed);
    };
    let (loaded, source) = cache.load(runtime, installed)?;
    tracing::debug!(
        "{} {}",
        installed.manifest.id(),
        match source {
            Source::Cache => "loaded from the module cache",
            Source::Compiled => "compiled",
        }
    );
    Ok(loaded)
}

/// How many times a run plans its leads again because other runs of the
/// same model kept committing first.
const COMMIT_TRIES: usize = 8;

/// Why a successful run's commit did not complete.
enum CommitError {
    /// Nothing was committed: the run can still be recorded as failed.
    Failed(Error),
    /// The `run-finished` entry and the leads are written, but could not be
    /// made durable.
    NotDurable(Error),
}

/// Commits a successful run: its leads, its cursors and its `run-finished`
/// entry `finished`, in one transaction. The leads' snapshot is written
/// outside the transaction, which only points the model at it; when another
/// run of the model commits in between, the plan is stale and is made again.
fn commit(
    store: &Store,
    finished: &Draft,
    emitted: &Emitted,
    cursors: &Cursors,
    mut first: Option<(Result<crate::leads::Changes>, Duration)>,
) -> std::result::Result<(Entry, crate::leads::Changes), CommitError> {
    let model = &finished.run.model.name;
    let model_version = &finished.run.model.version;
    let run_id = &finished.run.run_id;
    // The entry names the snapshot its plan wrote.
    let mut draft = finished.clone();
    for _ in 0..COMMIT_TRIES {
        let (changes, planned) = match first.take() {
            Some(planned) => planned,
            None => {
                let planned = Instant::now();
                let changes = crate::leads::plan_from(
                    store,
                    model,
                    model_version,
                    run_id,
                    &mut emitted.iter(),
                    None,
                );
                (changes, planned.elapsed())
            }
        };
        let changes = changes.map_err(CommitError::Failed)?;
        let (file, sha256, leads) = changes.snapshot();
        draft.run.leads_snapshot = Some(SnapshotRef {
            file,
            sha256,
            leads,
        });
        let committed = Instant::now();
        let stale = Cell::new(false);
        let result = ledger::append_unflushed(store, &draft, |meta| {
            if crate::leads::apply_in(meta, &changes)? == Applied::Stale {
                stale.set(true);
                return Err(ConflictableTransactionError::Abort(Error::Leads(format!(
                    "another run of {model} committed its leads first"
                ))));
            }
            for (key, segments) in cursors {
                meta.insert(
                    key.as_bytes(),
                    serde_json::to_vec(segments).expect("cursor serializes"),
                )?;
            }
            Ok(())
        });
        match result {
            Ok(entry) => {
                store.flush().map_err(|e| {
                    CommitError::NotDurable(Error::Ledger(format!(
                        "run {run_id} of {model}: its leads and run-finished entry {} are written but could not be made durable: {e}",
                        entry.seq
                    )))
                })?;
                // The run stands; a snapshot left behind is removed by the
                // model's next run.
                if let Err(e) = changes.committed(store) {
                    tracing::warn!("run {run_id}: the previous leads of {model} remain: {e}");
                }
                tracing::debug!(
                    "run {run_id}: {} leads kept, {} changed (new {}, open {}, resolved {}); \
                     planned in {planned:.2?}, committed in {:.2?}",
                    changes.leads,
                    changes.changed,
                    changes.new,
                    changes.open,
                    changes.resolved,
                    committed.elapsed()
                );
                return Ok((entry, changes));
            }
            Err(_) if stale.get() => {
                tracing::debug!(
                    "run {run_id}: another run of {model} committed first; planning again"
                );
            }
            Err(e) => return Err(CommitError::Failed(e)),
        }
    }
    Err(CommitError::Failed(Error::Leads(format!(
        "run {run_id} of {model}: other runs of the model kept committing first; \
         {COMMIT_TRIES} tries, nothing committed"
    ))))
}

/// The ledger's reference to an installed model, with its publisher when
/// it was imported.
pub fn model_ref(installed: &Installed) -> ModelRef {
    ModelRef {
        name: installed.manifest.name.clone(),
        version: installed.manifest.version.clone(),
        wasm_sha256: installed.wasm_sha256.clone(),
        publisher: installed
            .provenance
            .as_ref()
            .map(catalog::Provenance::publisher),
        plan: crate::plans::plan_ref(installed),
    }
}

/// Loads the model (unless `loaded` already is) and runs `session` in it;
/// a model that does not load ends as a failure of kind `load`.
pub(crate) fn load_and_run(
    runtime: &Runtime,
    cache: Option<&ModuleCache>,
    installed: &Installed,
    loaded: Option<&Loaded>,
    session: Session,
    limits: Limits,
) -> crate::runtime::Finished {
    let mut owned = None;
    match loaded_or_load(runtime, cache, installed, loaded, &mut owned) {
        Ok(loaded) => runtime.run(loaded, session),
        Err(e) => not_loaded(installed, &e, limits),
    }
}

/// `loaded`, else the model's code from `cache` or compiled now (kept in
/// `owned`).
fn loaded_or_load<'a>(
    runtime: &Runtime,
    cache: Option<&ModuleCache>,
    installed: &Installed,
    loaded: Option<&'a Loaded>,
    owned: &'a mut Option<Loaded>,
) -> std::result::Result<&'a Loaded, LoadError> {
    match loaded {
        Some(l) => Ok(l),
        None => Ok(owned.insert(load(runtime, cache, installed)?)),
    }
}

/// [`load_and_run`] for the parts of a partitioned run, on every core.
fn load_and_run_parts(
    runtime: &Runtime,
    cache: Option<&ModuleCache>,
    installed: &Installed,
    loaded: Option<&Loaded>,
    sessions: Vec<Session>,
    limits: Limits,
    in_order: crate::runtime::InOrder<'_>,
) -> (crate::runtime::Finished, Vec<crate::runtime::PartRun>) {
    let mut owned = None;
    match loaded_or_load(runtime, cache, installed, loaded, &mut owned) {
        Ok(loaded) => {
            runtime.run_parts(loaded, sessions, crate::partition::cores(), Some(in_order))
        }
        Err(e) => (not_loaded(installed, &e, limits), Vec::new()),
    }
}

/// A run whose model could not be loaded.
fn not_loaded(installed: &Installed, e: &LoadError, limits: Limits) -> crate::runtime::Finished {
    crate::runtime::Finished::before_start(
        Session::new(String::new(), limits, BTreeMap::new(), HashMap::new()),
        Failure::of("load", e.for_model(installed)),
    )
}

/// A run's leads planned: the ledger's digest of them and their total
/// amount, and the new snapshot's plan with the time it took. The digest
/// is meaningful only if the plan succeeded.
type Planned = (
    (String, rust_decimal::Decimal),
    (Result<crate::leads::Changes>, Duration),
);

/// One pass over a succeeded run's leads (reading spill files back): the
/// new snapshot's plan with the time it took, and on the way the ledger's
/// digest of the leads with their total amount. The digest is meaningful
/// only if the plan succeeded (a failed plan stops the pass).
fn digest_and_plan(
    store: &Store,
    manifest: &catalog::Manifest,
    run_id: &str,
    leads: &Emitted,
) -> Planned {
    let planned = Instant::now();
    let mut totalling = Totalling {
        source: leads.iter(),
        total: rust_decimal::Decimal::ZERO,
    };
    let mut digest = crate::leads::LeadsDigest::default();
    let changes = crate::leads::plan_from(
        store,
        &manifest.name,
        &manifest.version,
        run_id,
        &mut totalling,
        Some(&mut digest),
    );
    let took = planned.elapsed();
    ((digest.finish(), totalling.total), (changes, took))
}

/// A partitioned run's leads planned as its parts finish, in part order,
/// while the later parts still run: what [`digest_and_plan`] does once the
/// run is over, begun before, so that the plan and its hashing use a core
/// the last parts leave idle. It holds while each part's leads come after
/// those of the parts before it in subject order, as they do when the
/// model's subjects follow the key the run is split on; a lead out of that
/// order, a part that failed or a failure to plan drops it (its file
/// deleted, or written over by the plan after the run, which has its name),
/// and the leads are planned once the run
/// is over, from all the parts' leads merged, as they always were. The
/// snapshot, digest and total are the same either way: the leads in
/// subject order.
struct PlanAsPartsEnd<'a> {
    store: &'a Store,
    plan: Option<crate::leads::Plan<'a>>,
    digest: crate::leads::LeadsDigest,
    total: rust_decimal::Decimal,
    /// The subject of the last lead taken.
    last: Option<Vec<u8>>,
    /// Time spent planning.
    took: Duration,
    run_id: &'a str,
}

impl<'a> PlanAsPartsEnd<'a> {
    fn start(store: &'a Store, manifest: &'a catalog::Manifest, run_id: &'a str) -> Self {
        let started = Instant::now();
        let plan = crate::leads::Plan::start(store, &manifest.name, &manifest.version, run_id);
        let plan = plan
            .map_err(|e| tracing::debug!("run {run_id}: leads planned after the run: {e}"))
            .ok();
        PlanAsPartsEnd {
            store,
            plan,
            digest: crate::leads::LeadsDigest::default(),
            total: rust_decimal::Decimal::ZERO,
            last: None,
            took: started.elapsed(),
            run_id,
        }
    }

    /// The next part's leads (`None`: the part failed).
    fn part(&mut self, leads: Option<&Emitted>) {
        let Some(plan) = self.plan.as_mut() else {
            return;
        };
        let started = Instant::now();
        let taken = match leads {
            None => Err("a part failed".to_string()),
            Some(leads) => take_part(
                plan,
                leads,
                &mut self.digest,
                &mut self.total,
                &mut self.last,
            ),
        };
        self.took += started.elapsed();
        if let Err(why) = taken {
            tracing::debug!("run {}: leads planned after the run: {why}", self.run_id);
            self.drop_plan();
        }
    }

    /// Gives the plan up, deleting what it wrote.
    fn drop_plan(&mut self) {
        if let Some(plan) = self.plan.take() {
            if let Err(e) = plan.discard(self.store) {
                tracing::warn!(
                    "run {}: a dropped plan's leads file remains: {e}",
                    self.run_id
                );
            }
        }
    }

    /// The plan, once every part is taken; `None` when it was dropped.
    fn finish(mut self) -> Option<Planned> {
        let started = Instant::now();
        let changes = self.plan.take()?.finish();
        let took = self.took + started.elapsed();
        match changes {
            Ok(changes) => Some(((self.digest.finish(), self.total), (Ok(changes), took))),
            Err(e) => {
                tracing::debug!("run {}: leads planned after the run: {e}", self.run_id);
                None
            }
        }
    }
}

/// [`PlanAsPartsEnd::part`]: each lead of one part taken into `plan`, if
/// it comes after `last`.
fn take_part(
    plan: &mut crate::leads::Plan<'_>,
    leads: &Emitted,
    digest: &mut crate::leads::LeadsDigest,
    total: &mut rust_decimal::Decimal,
    last: &mut Option<Vec<u8>>,
) -> std::result::Result<(), String> {
    let mut each = leads.iter();
    while let Some(lead) = each.next_bytes().map_err(|e| e.to_string())? {
        if last.as_deref().is_some_and(|l| lead.subject <= l) {
            return Err("a part's leads do not all come after those of the parts before it".into());
        }
        add_amount(total, &lead);
        plan.take(&lead, Some(digest)).map_err(|e| e.to_string())?;
        let last = last.get_or_insert_with(Vec::new);
        last.clear();
        last.extend_from_slice(lead.subject);
    }
    Ok(())
}

/// A run's leads lent to the plan, their amounts added up on the way.
struct Totalling<'a> {
    source: crate::emitted::Merge<'a>,
    total: rust_decimal::Decimal,
}

impl crate::leads::LeadSource for Totalling<'_> {
    fn each(
        &mut self,
        f: &mut dyn FnMut(&jiandu_sdk::encoded_lead::LeadBytes<'_>) -> Result<()>,
    ) -> Result<()> {
        let total = &mut self.total;
        self.source.each(&mut |lead| {
            add_amount(total, lead);
            f(lead)
        })
    }
}

/// Adds `lead`'s amount, if it has one, to the run's total.
fn add_amount(total: &mut rust_decimal::Decimal, lead: &jiandu_sdk::encoded_lead::LeadBytes<'_>) {
    if let Some(a) = lead.amount.and_then(|a| std::str::from_utf8(a).ok()) {
        *total += a.parse::<rust_decimal::Decimal>().unwrap_or_default();
    }
}

/// Resolves parameters, grants and datasets into a session, or says why
/// the run is refused.
fn prepare(
    store: &Store,
    policy: &Policy,
    installed: &Installed,
    req: &Request,
    record: &mut RunRecord,
    spill_budget: u64,
) -> std::result::Result<(Session, crate::policy::Limits, Cursors), String> {
    let manifest = &installed.manifest;
    record.model.publisher = crate::trust::admit_run(store, policy, installed)?;
    let params = manifest.resolve_params(&req.params)?;
    record.params = params.clone();
    let decision = policy.decide(manifest, installed.provenance.as_ref())?;
    let mut datasets = HashMap::new();
    let mut read_cursors = HashMap::new();
    let mut new_cursors = Vec::new();
    for (name, decl) in &manifest.datasets {
        let access = Access::current(store, name, decl.fields.as_deref(), decision.clear_personal)
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{} {e}", manifest.id()))?;
        let reader = &access.reader;
        let view = &access.view;
        let key = cursor_key(&manifest.name, name);
        if let Some(seen) = store
            .get_meta::<Vec<SegmentId>>(&key)
            .map_err(|e| e.to_string())?
        {
            read_cursors.insert(name.clone(), seen);
        }
        new_cursors.push((key, reader.segment_ids()));
        record.datasets.push(DatasetRef {
            name: name.clone(),
            version: reader.info.version,
            digest: reader.info.digest.clone(),
            clear_personal: decision.clear_personal,
            personal: reader.info.schema.has_personal(),
            personal_fields: reader
                .info
                .schema
                .fields
                .iter()
                .filter(|f| f.personal.is_some() && view.names().contains(&f.name))
                .map(|f| f.name.clone())
                .collect(),
            seen: read_cursors.get(name).cloned().unwrap_or_default(),
        });
        datasets.insert(name.clone(), access);
    }
    let mut session = Session::new(manifest.name.clone(), decision.limits, params, datasets);
    session
        .leads
        .spill_to(store.root().join("tmp"), spill_budget);
    session.cursors = read_cursors;
    session.plan = crate::plans::source(store, installed)
        .map_err(|e| e.to_string())?
        .map(Into::into);
    Ok((session, decision.limits, new_cursors))
}

/// How much memory a run's emitted leads may take before they spill to
/// files: `$JIANDU_LEADS_MEMORY` bytes, or [`crate::emitted::SPILL_BUDGET`].
pub(crate) fn spill_budget() -> Result<u64> {
    match std::env::var("JIANDU_LEADS_MEMORY") {
        Err(_) => Ok(crate::emitted::SPILL_BUDGET),
        Ok(v) => v.trim().parse::<u64>().map_err(|_| {
            Error::Other(format!(
                "JIANDU_LEADS_MEMORY=`{v}`: expected a number of bytes"
            ))
        }),
    }
}

/// Where a model's incremental cursor over a dataset is kept in `meta`:
/// the segments it read in its last successful run.
pub fn cursor_key(model: &str, dataset: &str) -> String {
    format!("cursor/{model}/{dataset}")
}

/// Cursor updates committed with a successful run.
type Cursors = Vec<(String, Vec<SegmentId>)>;

/// `failure` as the record takes it ([`ledger::Stopped`]).
pub fn stopped(failure: &Failure) -> ledger::Stopped<'_> {
    ledger::Stopped {
        kind: &failure.kind,
        message: &failure.message,
        limit: failure.limit,
        used: failure.used,
    }
}

/// `limits` as the record keeps them.
pub fn limits_record(limits: &Limits) -> ledger::LimitsRecord {
    let Limits {
        memory_mib,
        fuel,
        wall_seconds,
        stack_kib,
        max_leads,
        max_lead_bytes,
        max_lead_mib,
        max_log_lines,
    } = *limits;
    ledger::LimitsRecord {
        memory_mib,
        fuel,
        wall_seconds,
        stack_kib,
        max_leads,
        max_lead_bytes,
        max_lead_mib,
        max_log_lines,
    }
}

/// The limits a recorded run ran under, to run it again.
pub fn limits_from_record(r: &ledger::LimitsRecord) -> Limits {
    Limits {
        memory_mib: r.memory_mib,
        fuel: r.fuel,
        wall_seconds: r.wall_seconds,
        stack_kib: r.stack_kib,
        max_leads: r.max_leads,
        max_lead_bytes: r.max_lead_bytes,
        // Entries from before the setting: lead bytes counted against
        // the memory limit.
        max_lead_mib: match r.max_lead_mib {
            0 => r.memory_mib,
            mib => mib,
        },
        max_log_lines: r.max_log_lines,
    }
}
