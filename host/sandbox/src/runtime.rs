//! The sandbox: wasmtime with fuel (a deterministic CPU budget), epoch
//! interruption (a wall-time budget), a memory and table cap, a stack
//! limit, no WASI, and the host side of the contract in `sdk/wit`.
//!
//! Every host function is bounded (a scan call returns at most one block)
//! and checks the run's deadline, so a model cannot hide in a host call.
//! Everything a model hands back is validated before it is kept.

use crate::catalog::Installed;
use crate::dataset::access::{Access, Refusal, ScanPlan};
use crate::dataset::KeyRange;
use crate::emitted::Emitted;
use crate::limits::Limits;
use jiandu_sdk::encoded_lead::{self, LeadView};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, Trap};

use crate::contract::current::jiandu::model::{host, types};
use crate::contract::current::ModelPre;

/// How often the epoch ticks: the resolution of wall-time limits.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Native stack a guest thread gets on top of the wasm stack limit, for the
/// host functions and wasmtime frames below and between wasm frames.
const HOST_STACK_MARGIN: usize = 8 << 20;

/// Fuel and wall time of the load-time `describe` call.
const DESCRIBE_FUEL: u64 = 100_000_000;
const DESCRIBE_SECONDS: u64 = 5;

/// Most bytes a model may hand the host in one call (strings and lists it
/// passes in): wasmtime checks this before it copies anything, so a model
/// cannot make the host allocate more than this per call. At least this,
/// and enough for the largest lead policy allows.
const MIN_HOSTCALL_BYTES: u64 = 1 << 20;

/// Largest component the host compiles: compiling takes host time and
/// memory before any run limit applies. Real models are far smaller.
const MAX_COMPONENT_BYTES: usize = 64 << 20;

/// Most elements a table may grow to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Limits on what a model may hand back, independent of policy.
const MAX_SUBJECT_BYTES: usize = 256;
const MAX_TITLE_BYTES: usize = 1024;
const MAX_EVIDENCE_FIELDS: usize = 64;
const MAX_LOG_LINE_BYTES: usize = 4096;
const MAX_OPEN_SCANS: usize = 64;
const MAX_LOOKUP_RECORDS: usize = 4096;

/// A breach of the sandbox's rules: ends the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Breach {
    #[error("read dataset `{0}`, which its model.toml does not declare")]
    UndeclaredDataset(String),
    #[error("asked for records by a field it does not declare: {0}")]
    UndeclaredField(String),
    #[error("emitted more than {limit} leads, the policy's `max_leads` (raise it under `[defaults]` in jiandu.toml, or `--config`, if a sweep should find more)")]
    LeadFlood { limit: u64 },
    #[error("emitted a lead of {bytes} bytes (limit {limit}: `max_lead_bytes` under `[defaults]` in jiandu.toml, or `--config`)")]
    LeadTooLarge { bytes: u64, limit: u64 },
    #[error("emitted {bytes} bytes of leads, more than the {limit} bytes a run may emit (`max_lead_mib` under `[defaults]` in jiandu.toml, or `--config`, if a sweep should find more)")]
    LeadVolume { bytes: u64, limit: u64 },
    #[error("emitted an invalid lead: {0}")]
    InvalidLead(String),
    #[error("grew memory to {desired} bytes (limit {limit}: `memory_mib` in the policy, or the model's `[limits]`)")]
    Memory { desired: u64, limit: u64 },
    #[error("grew a table to {desired} elements (limit {limit})")]
    Table { desired: u64, limit: u64 },
    #[error("opened more than {MAX_OPEN_SCANS} scans at once (a fixed limit; a plan opens one per read of a dataset that is not merged with another: read each dataset once and take its rows from that step)")]
    TooManyScans,
    #[error("ran past its wall-time limit of {seconds} s")]
    WallTime { seconds: u64 },
}

impl Breach {
    /// Short kind for the ledger.
    pub fn kind(&self) -> &'static str {
        match self {
            Breach::UndeclaredDataset(_) => "undeclared-dataset",
            Breach::UndeclaredField(_) => "undeclared-field",
            Breach::LeadFlood { .. } => "lead-flood",
            Breach::LeadTooLarge { .. } => "lead-too-large",
            Breach::LeadVolume { .. } => "lead-volume",
            Breach::InvalidLead(_) => "invalid-lead",
            Breach::Memory { .. } => "memory-limit",
            Breach::Table { .. } => "table-limit",
            Breach::TooManyScans => "too-many-scans",
            Breach::WallTime { .. } => "wall-time",
        }
    }
}

/// A model that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct LoadError {
    pub reason: String,
}

impl LoadError {
    /// The refusal as a person reads it: the model, its file and the
    /// reason, e.g. `m@1.0.0 (models/m/model.wasm): imports WASI …`.
    pub fn for_model(&self, model: &Installed) -> String {
        format!(
            "{} ({}): {}",
            model.manifest.id(),
            model.dir.join("model.wasm").display(),
            self.reason
        )
    }
}

fn load_err(reason: impl Into<String>) -> LoadError {
    LoadError {
        reason: reason.into(),
    }
}

/// The engine, shared by all runs, and its epoch ticker.
///
/// A `Runtime` is `Send + Sync`: runs on several threads at once share the
/// compiled code and the epoch, and nothing else. Each run gets its own
/// thread, store, instance, memory, fuel and host state.
pub struct Runtime {
    engine: Engine,
    linker: Linker<Session>,
    /// The wasm stack limit of every run, in bytes.
    wasm_stack: usize,
    _ticker: Arc<Ticker>,
}

struct Ticker {
    stop: std::sync::atomic::AtomicBool,
}

impl Runtime {
    /// A runtime whose runs may use up to `stack_kib` of wasm stack
    /// (clamped to what policy allows, see [`crate::limits::MAX_STACK_KIB`]).
    pub fn new(stack_kib: u64) -> crate::Result<Runtime> {
        let stack_kib = stack_kib.clamp(crate::limits::MIN_STACK_KIB, crate::limits::MAX_STACK_KIB);
        let wasm_stack = stack_kib as usize * 1024;
        let mut config = Config::new();
        config.consume_fuel(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(wasm_stack);
        // Not used (runs are synchronous), but wasmtime refuses a wasm
        // stack larger than it.
        config.async_stack_size(wasm_stack + HOST_STACK_MARGIN);
        config.wasm_component_model(true);
        // `JIANDU_PERF_MAP=1` names the compiled model code for `perf`
        // (in /tmp/perf-<pid>.map); see BENCHMARKS.md.
        if std::env::var_os("JIANDU_PERF_MAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine =
            Engine::new(&config).map_err(|e| crate::Error::Other(format!("wasmtime: {e}")))?;
        let mut linker = Linker::new(&engine);
        crate::contract::add_to_linker(&mut linker)
            .map_err(|e| crate::Error::Other(format!("wasmtime linker: {e}")))?;
        let ticker = Arc::new(Ticker {
            stop: std::sync::atomic::AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&ticker);
        let tick_engine = engine.clone();
        std::thread::Builder::new()
            .name("jiandu-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(t) if !t.stop.load(std::sync::atomic::Ordering::Relaxed) => {
                        tick_engine.increment_epoch()
                    }
                    _ => break,
                }
            })
            .map_err(|e| crate::Error::Other(format!("cannot start the epoch thread: {e}")))?;
        Ok(Runtime {
            engine,
            linker,
            wasm_stack,
            _ticker: ticker,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The wasm stack limit of every run, in KiB.
    pub fn stack_kib(&self) -> u64 {
        (self.wasm_stack / 1024) as u64
    }

    /// Compiles and checks a model: a component importing only the Jiandu
    /// contract, of a version this host loads, exporting `run` and `describe`, whose
    /// `describe` matches its `model.toml`.
    pub fn load(&self, model: &Installed) -> Result<Loaded, LoadError> {
        let component = self.compile(&model.wasm)?;
        self.prepare(model, component)
    }

    /// Compiles wasm bytes into a component, with a reason a person can act
    /// on when they are not one.
    pub fn compile(&self, wasm: &[u8]) -> Result<Component, LoadError> {
        check_header(wasm)?;
        Component::from_binary(&self.engine, wasm)
            .map_err(|e| load_err(format!("invalid component: {e:#}")))
    }

    /// Checks imports and exports and describes the model.
    pub fn prepare(&self, model: &Installed, component: Component) -> Result<Loaded, LoadError> {
        let contract = check_imports(&self.engine, &component)?
            .unwrap_or_else(|| jiandu_sdk::CONTRACT_VERSION.to_string());
        check_requirement(model, &contract)?;
        check_exports(&self.engine, &component)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| load_err(format!("its imports do not match the contract: {e:#}")))?;
        let pre = ModelPre::new(pre)
            .map_err(|e| load_err(format!("its exports do not match the contract: {e:#}")))?;
        let loaded = Loaded {
            pre,
            contract,
            manifest_id: model.manifest.id(),
            wasm_sha256: model.wasm_sha256.clone(),
        };
        let described = loaded.describe(self)?;
        // A scripted model's component is the plan interpreter, which
        // describes itself; the plan beside it is the model.
        let expected = match &model.manifest.plan {
            Some(_) => described
                .strip_prefix(PLAN_INTERPRETER)
                .filter(|v| v.starts_with('@'))
                .map(|_| described.clone())
                .unwrap_or_else(|| format!("{PLAN_INTERPRETER}@…")),
            None => loaded.manifest_id.clone(),
        };
        if described != expected {
            return Err(load_err(match &model.manifest.plan {
                Some(plan) => format!(
                    "model.toml names the plan {plan}, so its component must be the plan interpreter ({PLAN_INTERPRETER}), but the module says it is {described}; rebuild it"
                ),
                None => format!(
                    "the module says it is {described} but model.toml says {}; rebuild it",
                    loaded.manifest_id
                ),
            }));
        }
        Ok(loaded)
    }

    /// Runs a loaded model in a fresh instance with `session`'s data and
    /// limits, on a thread of its own whose native stack holds the wasm
    /// stack limit with room to spare. Never panics on anything the model
    /// does.
    pub fn run(&self, loaded: &Loaded, session: Session) -> Finished {
        self.run_from(loaded, session, Instant::now())
    }

    /// [`Runtime::run`] against a wall-time limit counted from `started`
    /// (a part of a partitioned run counts from the run's start, so the
    /// run as a whole keeps its limit however its parts are scheduled).
    fn run_from(&self, loaded: &Loaded, session: Session, started: Instant) -> Finished {
        let limits = session.limits;
        let model = session.model.clone();
        match self.on_guest_thread(move || self.run_here(loaded, session, started)) {
            Ok(finished) => finished,
            Err(message) => Finished::before_start(
                Session::new(model, limits, BTreeMap::new(), HashMap::new()),
                Failure::of("host-error", message),
            ),
        }
    }

    fn run_here(&self, loaded: &Loaded, mut session: Session, started: Instant) -> Finished {
        let limits = session.limits;
        session.deadline = deadline_after(started, limits.wall_seconds);
        // Long reads inside one host call stop at the deadline too.
        let deadline = session.deadline;
        for access in session.datasets.values_mut() {
            access.reader.set_deadline(deadline);
        }
        let mut store = Store::new(&self.engine, session);
        store.limiter(|s| &mut s.limiter);
        store.set_hostcall_fuel(hostcall_bytes(&limits));
        // Fails only when fuel is not enabled, and it always is.
        let _ = store.set_fuel(limits.fuel);
        store.set_epoch_deadline(ticks_until(deadline));
        store.epoch_deadline_trap();
        let result = loaded
            .pre
            .instantiate(&mut store)
            .and_then(|m| m.call_run(&mut store));
        let elapsed = started.elapsed();
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let session = store.into_data();
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(message)) => Some(Failure::of(
                "model-error",
                crate::text::shorten(&message, 4096),
            )),
            Err(e) => Some(classify(
                e,
                &Usage {
                    session: &session,
                    limits: &limits,
                    fuel_used,
                    elapsed,
                    wasm_stack: self.wasm_stack,
                },
            )),
        };
        Finished {
            fuel_used,
            peak_memory: session.limiter.peak_memory as u64,
            failure,
            session,
        }
    }

    /// Runs the parts of a partitioned run (see [`Session::partitioned`]),
    /// an instance each, on `workers` threads at once (at least one, at
    /// most one per part): each worker takes the next part not yet taken
    /// until none is left, so that a part that takes longer (more data in
    /// its range, a slower core) keeps one worker while the others share
    /// the rest. The run's wall-time limit counts from the start for every
    /// part. A finished part's leads go to a spill file while other parts
    /// still run (when the run spills at all), so that the leads held in
    /// memory stay those of the parts running. Once a part fails, the parts
    /// no worker has taken yet are not run.
    ///
    /// Merges what the parts did into one [`Finished`]: fuel and records
    /// added up, logs in part order (each line saying its part), leads
    /// merged (the parts' subjects must be disjoint), the first failure in
    /// part order with its part named; the peak memory is that of the
    /// `workers` largest parts together. The run's lead limits apply to
    /// the merged leads too.
    ///
    /// `in_order` sees each part's leads (`None`: the part failed) as soon as
    /// that part and every part before it have finished, in part order, on a
    /// thread of its own while later parts run: a caller can take the
    /// leads of the first parts on while the last ones still run.
    pub fn run_parts(
        &self,
        loaded: &Loaded,
        sessions: Vec<Session>,
        workers: usize,
        in_order: Option<InOrder<'_>>,
    ) -> (Finished, Vec<PartRun>) {
        let started = Instant::now();
        let ranges: Vec<Option<KeyRange>> = sessions.iter().map(|s| s.part.clone()).collect();
        let count = sessions.len();
        let workers = workers.clamp(1, count.max(1));
        // Once a part fails the run fails: the parts not started yet are
        // not run (they come after it in part order, so the failure
        // reported, the first in part order, is a part that ran).
        let failed = AtomicBool::new(false);
        let mut observe = in_order.map(|f| {
            move |_: usize, part: &Finished| {
                f(part.failure.is_none().then_some(&part.session.leads));
            }
        });
        let observe = observe.as_mut().map(|o| o as Observer<'_, Finished>);
        let run_one = |session: Session| {
            if failed.load(AtomicOrdering::Relaxed) {
                return Finished::before_start(
                    session,
                    Failure::of("not-run", "not run: an earlier part failed".into()),
                );
            }
            let mut f = self.run_from(loaded, session, started);
            f.session.release();
            if count > workers && f.failure.is_none() {
                if let Err(e) = f.session.leads.settle() {
                    f.failure = Some(Failure::of("host-error", e.to_string()));
                }
            }
            if f.failure.is_some() {
                failed.store(true, AtomicOrdering::Relaxed);
            }
            f
        };
        let finished = on_workers_in_order(sessions, workers, run_one, observe);
        let mut peaks: Vec<u64> = finished.iter().map(|f| f.peak_memory).collect();
        peaks.sort_unstable_by(|a, b| b.cmp(a));
        let peak_memory: u64 = peaks.iter().take(workers).sum();
        let parts: Vec<PartRun> = finished
            .iter()
            .zip(&ranges)
            .map(|(f, r)| PartRun {
                range: r.clone().unwrap_or_default(),
                records_read: f.session.records_read,
                fuel_used: f.fuel_used,
            })
            .collect();
        let n = finished.len();
        let mut merged: Option<Finished> = None;
        for (i, mut f) in finished.into_iter().enumerate() {
            // Each part's lines say which part wrote them.
            for line in &mut f.session.logs {
                line.message = format!("part {} of {n}: {}", i + 1, line.message);
                line.part = Some(i + 1);
            }
            if let Some(failure) = &mut f.failure {
                failure.message = format!(
                    "part {} of {n} ({}): {}",
                    i + 1,
                    describe_range(&parts[i].range),
                    failure.message
                );
            }
            merged = Some(match merged {
                None => f,
                Some(mut m) => {
                    m.fuel_used += f.fuel_used;
                    m.session.records_read += f.session.records_read;
                    m.session.logs.append(&mut f.session.logs);
                    m.session.logs_dropped += f.session.logs_dropped;
                    m.session.lead_bytes += f.session.lead_bytes;
                    if m.failure.is_none() {
                        m.failure = f.failure.take();
                    }
                    if m.failure.is_none() {
                        if let Err(e) = m.session.leads.absorb(f.session.leads) {
                            m.failure = Some(Failure::of("partition-overlap", e.to_string()));
                        }
                    }
                    m
                }
            });
        }
        let mut m = merged.expect("at least one part");
        m.peak_memory = peak_memory;
        if m.failure.is_none() {
            // The run's lead limits, on the parts' leads together:
            // (the breach, its limit, what was used).
            let limits = m.session.limits;
            let (leads, bytes) = (m.session.leads.len() as u64, m.session.lead_bytes);
            let cap = limits.max_lead_mib.saturating_mul(1 << 20);
            let over = if leads > limits.max_leads {
                let limit = limits.max_leads;
                Some((Breach::LeadFlood { limit }, limit, leads))
            } else if bytes > cap {
                Some((Breach::LeadVolume { bytes, limit: cap }, cap, bytes))
            } else {
                None
            };
            if let Some((b, limit, used)) = over {
                m.failure = Some(Failure {
                    kind: b.kind().into(),
                    message: format!("its {n} parts together {b}"),
                    limit: Some(limit),
                    used: Some(used),
                });
            }
        }
        (m, parts)
    }

    /// Runs `f` on a new thread with room for the wasm stack limit plus
    /// the host's own frames: a model that recurses to the limit traps
    /// cleanly instead of overflowing the caller's (possibly small) stack.
    fn on_guest_thread<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, String> {
        std::thread::scope(|scope| {
            let handle = std::thread::Builder::new()
                .name("jiandu-run".into())
                .stack_size(self.wasm_stack + HOST_STACK_MARGIN)
                .spawn_scoped(scope, f)
                .map_err(|e| format!("cannot start a thread for the run: {e}"))?;
            handle.join().map_err(|panic| {
                let text = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                format!("the host failed while running the model: {text}")
            })
        })
    }
}

/// What one part of a partitioned run did, for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRun {
    pub range: KeyRange,
    pub records_read: u64,
    pub fuel_used: u64,
}

/// A range as a person reads it: `from X to Y`, `below Y`, `from X on`.
fn describe_range(r: &KeyRange) -> String {
    match (&r.lo, &r.hi) {
        (Some(lo), Some(hi)) => format!("keys from {lo} up to {hi}"),
        (None, Some(hi)) => format!("keys below {hi}"),
        (Some(lo), None) => format!("keys from {lo} on"),
        (None, None) => "every key".into(),
    }
}

/// The wall-clock deadline `seconds` after `start`.
fn deadline_after(start: Instant, seconds: u64) -> Instant {
    let seconds = seconds.min(crate::limits::MAX_WALL_SECONDS);
    start + Duration::from_secs(seconds)
}

/// Locks `m`, whatever a thread that panicked while holding it left
/// (the values behind these locks are whole at every point).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `f` of every item, on `workers` threads (at least one): each takes
/// the next item no thread has taken until none is left, so that an item
/// that takes long keeps one thread while the others share the rest. The
/// results come in the items' order.
#[cfg(test)]
fn on_workers<T: Send, R: Send>(
    items: Vec<T>,
    workers: usize,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    on_workers_in_order(items, workers, f, None)
}

/// Calls its function when dropped by a thread that is panicking.
struct OnPanic<F: Fn()>(F);

impl<F: Fn()> Drop for OnPanic<F> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            (self.0)();
        }
    }
}

/// What [`on_workers_in_order`] calls with each result and its place.
type Observer<'a, R> = &'a mut (dyn FnMut(usize, &R) + Send);

/// [`on_workers`], and `observe` called with each result, in the items'
/// order, on a thread of its own as soon as that result and every one
/// before it are done, while the workers go on with later items.
fn on_workers_in_order<T: Send, R: Send>(
    items: Vec<T>,
    workers: usize,
    f: impl Fn(T) -> R + Sync,
    observe: Option<Observer<'_, R>>,
) -> Vec<R> {
    let count = items.len();
    let queue: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let done: Vec<Mutex<Option<R>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    // Signalled, under its lock, each time a result is done, and when a
    // worker panicked (`stopped`: the observer stops waiting, and the
    // panic goes on to the caller as without an observer).
    let (finished, signal) = (Mutex::new(()), std::sync::Condvar::new());
    let stopped = AtomicBool::new(false);
    let announce = || {
        let _finished = lock(&finished);
        signal.notify_all();
    };
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, count.max(1)) {
            scope.spawn(|| {
                let _on_panic = OnPanic(|| {
                    stopped.store(true, AtomicOrdering::SeqCst);
                    announce();
                });
                loop {
                    let i = next.fetch_add(1, AtomicOrdering::Relaxed);
                    let Some(slot) = queue.get(i) else { break };
                    let item = lock(slot).take().expect("each item is taken once");
                    let result = f(item);
                    *lock(&done[i]) = Some(result);
                    announce();
                }
            });
        }
        if let Some(observe) = observe {
            let (done, finished, signal, stopped) = (&done, &finished, &signal, &stopped);
            scope.spawn(move || {
                for (i, slot) in done.iter().enumerate() {
                    let mut waiting = lock(finished);
                    // A result is stored before the signal's lock is taken
                    // to announce it, so none is missed between the check
                    // and the wait.
                    while lock(slot).is_none() {
                        if stopped.load(AtomicOrdering::SeqCst) {
                            return;
                        }
                        waiting = signal.wait(waiting).unwrap_or_else(|p| p.into_inner());
                    }
                    drop(waiting);
                    // Its worker is done with it; the results are only
                    // taken once every thread has ended.
                    let result = lock(slot);
                    observe(i, result.as_ref().expect("done"));
                }
            });
        }
    });
    done.into_iter()
        .map(|d| {
            d.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .expect("every item was done")
        })
        .collect()
}

/// Epoch ticks in `seconds`.
fn epoch_ticks(seconds: u64) -> u64 {
    (seconds.saturating_mul(1000) / EPOCH_TICK.as_millis() as u64).max(1)
}

/// Epoch ticks from now until `deadline` (at least one: a deadline
/// already past stops the model at the next tick, or at its first host
/// call).
fn ticks_until(deadline: Instant) -> u64 {
    let left = deadline.saturating_duration_since(Instant::now());
    let ticks = left.as_millis() / EPOCH_TICK.as_millis();
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

/// Most bytes a model may pass the host in one call under `limits`.
fn hostcall_bytes(limits: &Limits) -> usize {
    let lead = limits
        .max_lead_bytes
        .saturating_mul(2)
        .saturating_add(64 << 10);
    usize::try_from(lead.max(MIN_HOSTCALL_BYTES)).unwrap_or(usize::MAX)
}

/// A compiled, checked model, ready to instantiate (cheaply) per run.
#[derive(Clone)]
pub struct Loaded {
    pre: ModelPre<Session>,
    /// The contract version the model was built against.
    pub contract: String,
    pub manifest_id: String,
    pub wasm_sha256: String,
}

impl Loaded {
    /// Calls `describe` in a fresh instance with a small budget: a model
    /// that loops, recurses or allocates without end here fails to load.
    fn describe(&self, runtime: &Runtime) -> Result<String, LoadError> {
        let limits = Limits {
            fuel: DESCRIBE_FUEL,
            wall_seconds: DESCRIBE_SECONDS,
            ..Limits::default()
        };
        let session = Session::new(String::new(), limits, BTreeMap::new(), HashMap::new());
        let described = runtime
            .on_guest_thread(move || {
                let mut store = Store::new(&runtime.engine, session);
                store.limiter(|s| &mut s.limiter);
                store.set_hostcall_fuel(hostcall_bytes(&limits));
                let _ = store.set_fuel(limits.fuel);
                store.set_epoch_deadline(epoch_ticks(limits.wall_seconds));
                store.epoch_deadline_trap();
                let started = Instant::now();
                let result = self
                    .pre
                    .instantiate(&mut store)
                    .and_then(|m| m.call_describe(&mut store));
                let elapsed = started.elapsed();
                let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
                result.map_err(|e| {
                    let session = store.into_data();
                    let failure = classify(
                        e,
                        &Usage {
                            session: &session,
                            limits: &limits,
                            fuel_used,
                            elapsed,
                            wasm_stack: runtime.wasm_stack,
                        },
                    );
                    format!("`describe` failed ({}): {}", failure.kind, failure.message)
                })
            })
            .map_err(load_err)?
            .map_err(load_err)?;
        Ok(crate::text::shorten(&described, 200))
    }
}

/// Compile-time proof that runs can share a runtime and a loaded model
/// across threads.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Runtime>();
    shareable::<Loaded>();
};

fn check_header(wasm: &[u8]) -> Result<(), LoadError> {
    if wasm.len() > MAX_COMPONENT_BYTES {
        return Err(load_err(format!(
            "{} bytes, more than the {MAX_COMPONENT_BYTES} bytes a model may have",
            wasm.len()
        )));
    }
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(load_err(format!(
            "not a WebAssembly file ({} bytes; truncated or not wasm at all)",
            wasm.len()
        )));
    }
    if wasm[4..8] == [1, 0, 0, 0] {
        return Err(load_err(
            "a core WebAssembly module, not a component; build it with `jiandu model build`",
        ));
    }
    Ok(())
}

/// The contract version a model was built against, from its imports:
/// only the contract's `types` and `host` interfaces, of one version this
/// host loads.
fn check_imports(engine: &Engine, component: &Component) -> Result<Option<String>, LoadError> {
    let ty = component.component_type();
    let mut built_for: Option<String> = None;
    for (name, _) in ty.imports(engine) {
        if let Some(rest) = name.strip_prefix("jiandu:model/") {
            let (interface, version) = rest.split_once('@').unwrap_or((rest, "unversioned"));
            if !crate::contract::supported(version) {
                return Err(load_err(format!(
                    "built for contract version {version} (imports `{name}`); this host loads {}",
                    crate::contract::supported_text()
                )));
            }
            if !matches!(interface, "host" | "types") {
                return Err(load_err(format!(
                    "imports `{name}`, which is not part of the Jiandu contract"
                )));
            }
            match &built_for {
                Some(v) if v != version => {
                    return Err(load_err(format!(
                        "imports two contract versions ({v} and {version}); rebuild it with one SDK"
                    )))
                }
                _ => built_for = Some(version.to_string()),
            }
            continue;
        }
        if name.starts_with("wasi:") {
            return Err(load_err(format!(
                "imports WASI (`{name}`); models get no WASI: build for {}",
                crate::catalog::WASM_TARGET
            )));
        }
        return Err(load_err(format!(
            "imports `{name}`, which is not part of the Jiandu contract"
        )));
    }
    Ok(built_for)
}

/// `model.toml`'s `sdk` requirement must admit the contract version the
/// component was built against: a model.toml edited after the build, or a
/// model.wasm copied from another build, is refused.
fn check_requirement(model: &Installed, contract: &str) -> Result<(), LoadError> {
    let Ok(req) = semver::VersionReq::parse(&model.manifest.sdk) else {
        return Ok(()); // model.toml was checked when it was read
    };
    let version = semver::Version::parse(contract).expect("supported versions are semver");
    if req.matches(&version) {
        return Ok(());
    }
    Err(load_err(format!(
        "model.wasm was built against contract {contract} but model.toml requires sdk {}; rebuild it, or set `sdk = \"^{}\"` in model.toml",
        model.manifest.sdk,
        contract.rsplit_once('.').map_or(contract, |(major_minor, _)| major_minor)
    )))
}

/// A component that exports no model at all: its crate never called
/// `export_model!` (the contract's exports are then missing as a whole).
fn check_exports(engine: &Engine, component: &Component) -> Result<(), LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let model_exports = ["run", "describe"];
    if exports
        .iter()
        .any(|e| model_exports.contains(&e.as_str()) || e.starts_with("jiandu:model/"))
    {
        return Ok(());
    }
    Err(load_err(format!(
        "it exports no model ({}): the crate must call `jiandu_sdk::export_model!(YourModel);` in src/lib.rs, naming the type that implements `Model`",
        if exports.is_empty() {
            "it exports nothing".to_string()
        } else {
            format!("it exports {}", exports.join(", "))
        }
    )))
}

/// Why a run failed, for the ledger.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    /// `fuel-exhausted`, `wall-time`, `memory-limit`, `stack-overflow`,
    /// `panic`, `trap`, `model-error`, `lead-flood`, … or `load`.
    pub kind: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub used: Option<u64>,
}

impl Failure {
    /// A failure of `kind` that no limit measures.
    pub fn of(kind: &str, message: String) -> Failure {
        Failure {
            kind: kind.into(),
            message,
            limit: None,
            used: None,
        }
    }
}

/// What a run had used when it stopped.
struct Usage<'a> {
    session: &'a Session,
    limits: &'a Limits,
    fuel_used: u64,
    elapsed: Duration,
    wasm_stack: usize,
}

/// wasmtime's message when a model passes more than the host-call budget.
const HOSTCALL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

fn classify(e: wasmtime::Error, usage: &Usage<'_>) -> Failure {
    let Usage {
        session,
        limits,
        fuel_used,
        elapsed,
        wasm_stack,
    } = *usage;
    // A scripted model's backtrace is the interpreter's functions, which
    // say nothing to the plan's author: it is left out.
    let backtrace = e
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .filter(|_| session.plan.is_none())
        .map(|bt| crate::text::shorten(&bt.to_string(), 2000));
    let with_bt = |msg: String| match &backtrace {
        Some(bt) => format!("{msg}\n{bt}"),
        None => msg,
    };
    let elapsed_seconds = elapsed.as_secs() + u64::from(elapsed.subsec_nanos() > 0);
    let failure = |kind: &str, message: String, limit: Option<u64>, used: Option<u64>| Failure {
        kind: kind.into(),
        message,
        limit,
        used,
    };
    // A read inside a host call that ran into the run's deadline.
    if let Some(crate::Error::Deadline { .. }) = e.downcast_ref::<crate::Error>() {
        return failure(
            "wall-time",
            format!(
                "ran past its wall-time limit of {} s (inside a host call)",
                limits.wall_seconds
            ),
            Some(limits.wall_seconds),
            Some(elapsed_seconds),
        );
    }
    // The host's own failure on the model's behalf (say, a leads spill
    // file it could not write): not the model's doing, no backtrace.
    if let Some(host) = e.downcast_ref::<crate::Error>() {
        return failure(
            "host-error",
            format!("the host failed during the run: {host}"),
            None,
            None,
        );
    }
    if let Some(b) = e.downcast_ref::<Breach>() {
        let (limit, used) = match b {
            Breach::LeadFlood { limit } => (Some(*limit), Some(limit + 1)),
            Breach::LeadTooLarge { bytes, limit } | Breach::LeadVolume { bytes, limit } => {
                (Some(*limit), Some(*bytes))
            }
            Breach::Memory { desired, limit } => (Some(*limit), Some(*desired)),
            Breach::Table { desired, limit } => (Some(*limit), Some(*desired)),
            Breach::TooManyScans => (Some(MAX_OPEN_SCANS as u64), Some(MAX_OPEN_SCANS as u64 + 1)),
            Breach::WallTime { seconds } => (Some(*seconds), Some(elapsed_seconds)),
            Breach::UndeclaredDataset(_) | Breach::UndeclaredField(_) | Breach::InvalidLead(_) => {
                (None, None)
            }
        };
        // A volume the policy caps is not a fault in the model's code: the
        // message names the setting, without a wasm backtrace.
        let message = match b {
            Breach::LeadFlood { .. } | Breach::LeadVolume { .. } => b.to_string(),
            _ => with_bt(b.to_string()),
        };
        return failure(b.kind(), message, limit, used);
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return match trap {
            Trap::OutOfFuel => failure(
                "fuel-exhausted",
                with_bt(format!(
                    "used all its fuel ({} units) after {:.1?}{}",
                    limits.fuel,
                    elapsed,
                    if session.plan.is_some() {
                        "; in a plan, most often a join whose key has many rows on both sides (each pair is a row) or a group or window over more rows than meant: `jiandu model explain` shows the steps; if the work is real, raise `fuel` under [limits] in model.toml, within the policy's [maximum]"
                    } else {
                        ""
                    }
                )),
                Some(limits.fuel),
                Some(fuel_used),
            ),
            Trap::Interrupt => failure(
                "wall-time",
                with_bt(format!(
                    "ran past its wall-time limit of {} s ({fuel_used} fuel used; `wall_seconds` under [limits] in model.toml, within the policy's [maximum])",
                    limits.wall_seconds
                )),
                Some(limits.wall_seconds),
                Some(elapsed_seconds),
            ),
            Trap::StackOverflow => failure(
                "stack-overflow",
                with_bt(format!(
                    "exhausted its stack ({} KiB; `stack_kib` under `[defaults]` in jiandu.toml); deep or endless recursion",
                    wasm_stack / 1024
                )),
                Some(wasm_stack as u64),
                None,
            ),
            Trap::UnreachableCodeReached if session.panic_message.is_some() => failure(
                "panic",
                with_bt(format!(
                    "panicked: {}",
                    session.panic_message.as_deref().unwrap_or("")
                )),
                None,
                None,
            ),
            other => failure("trap", with_bt(format!("trapped: {other}")), None, None),
        };
    }
    let text = format!("{e:#}");
    if text.contains(HOSTCALL_EXHAUSTED) {
        let limit = hostcall_bytes(limits) as u64;
        return failure(
            "host-call-too-large",
            with_bt(format!(
                "passed more than {limit} bytes to the host in one call"
            )),
            Some(limit),
            None,
        );
    }
    // Whatever else stopped the model (the host's own failures are
    // `crate::Error` and classified above) is a trap of the model's code.
    failure(
        "trap",
        with_bt(format!("trapped: {}", crate::text::shorten(&text, 4096))),
        None,
        None,
    )
}

/// What sees a partitioned run's parts' leads in part order as they
/// finish ([`Runtime::run_parts`]): `None` for a part that failed.
pub type InOrder<'a> = &'a mut (dyn FnMut(Option<&Emitted>) + Send);

/// What a finished run produced.
pub struct Finished {
    pub session: Session,
    pub fuel_used: u64,
    pub peak_memory: u64,
    pub failure: Option<Failure>,
}

impl Finished {
    /// A run that failed before its model ran: nothing used.
    pub fn before_start(session: Session, failure: Failure) -> Finished {
        Finished {
            session,
            fuel_used: 0,
            peak_memory: 0,
            failure: Some(failure),
        }
    }
}

/// Memory and table caps, recording the peak. The memory cap is on all of
/// a model's linear memories together.
pub struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    /// Bytes of all linear memories now.
    total_memory: usize,
    /// The last growth allowed, to undo if the system could not do it.
    last_growth: usize,
    peak_memory: usize,
}

impl Limiter {
    fn new(limits: &Limits) -> Limiter {
        let mib = limits.memory_mib.min(crate::limits::MAX_MEMORY_MIB);
        Limiter {
            memory_bytes: (mib as usize) << 20,
            table_elements: MAX_TABLE_ELEMENTS,
            total_memory: 0,
            last_growth: 0,
            peak_memory: 0,
        }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        let total = self.total_memory.saturating_add(growth);
        if total > self.memory_bytes {
            return Err(wasmtime::Error::new(Breach::Memory {
                desired: total as u64,
                limit: self.memory_bytes as u64,
            }));
        }
        self.total_memory = total;
        self.last_growth = growth;
        self.peak_memory = self.peak_memory.max(total);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.total_memory = self.total_memory.saturating_sub(self.last_growth);
        self.last_growth = 0;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            return Err(wasmtime::Error::new(Breach::Table {
                desired: desired as u64,
                limit: self.table_elements as u64,
            }));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        4
    }

    fn tables(&self) -> usize {
        16
    }
}

enum ScanState {
    /// Batches in key order, as the model's view of the dataset.
    Batches(crate::dataset::Batches),
    Keys {
        access: String,
        keys: Arc<Vec<String>>,
        next: usize,
    },
}

/// A log line a model wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogLine {
    pub level: &'static str,
    pub message: String,
    /// The part of a partitioned run that wrote it, from 1 (its message
    /// then starts `part i of n: `); `None` for a run in one instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<usize>,
}

/// The package name of the plan interpreter (`plan/interpreter`): what
/// the component of every scripted model describes itself as.
pub const PLAN_INTERPRETER: &str = "jiandu-plan-interpreter";

/// The host state of one run: what the model may read and what it emitted.
pub struct Session {
    pub model: String,
    pub limits: Limits,
    limiter: Limiter,
    deadline: Instant,
    params: BTreeMap<String, String>,
    datasets: HashMap<String, Access>,
    scans: Vec<Option<ScanState>>,
    /// Keys of each (dataset, index) scanned by key so far (no index: the
    /// pseudonym order), shared by its scans.
    index_keys: HashMap<(String, Option<String>), Arc<Vec<String>>>,
    /// Segments of each dataset this model read in its last successful
    /// run: what `only-new` scans skip.
    pub cursors: HashMap<String, Vec<crate::dataset::SegmentId>>,
    /// Leads by subject; a second emit for a subject ends the run.
    pub leads: Emitted,
    /// Bytes of text in `leads`.
    lead_bytes: u64,
    /// In a partitioned run: the range of the split datasets this part reads.
    pub part: Option<KeyRange>,
    pub records_read: u64,
    pub logs: Vec<LogLine>,
    pub logs_dropped: u64,
    pub panic_message: Option<String>,
    /// For the interpreter of scripted models: the plan it runs, as the
    /// contract's `plan` call returns it.
    pub plan: Option<Arc<str>>,
}

impl Session {
    pub fn new(
        model: String,
        limits: Limits,
        params: BTreeMap<String, String>,
        datasets: HashMap<String, Access>,
    ) -> Session {
        Session {
            model,
            limiter: Limiter::new(&limits),
            deadline: deadline_after(Instant::now(), limits.wall_seconds),
            limits,
            params,
            datasets,
            scans: Vec::new(),
            index_keys: HashMap::new(),
            cursors: HashMap::new(),
            leads: Emitted::new(),
            lead_bytes: 0,
            part: None,
            records_read: 0,
            logs: Vec::new(),
            logs_dropped: 0,
            panic_message: None,
            plan: None,
        }
    }

    /// The datasets this run may read.
    pub fn datasets(&self) -> &HashMap<String, Access> {
        &self.datasets
    }

    /// Drops what a finished run read with: the datasets' readers, the
    /// scans left open and the keys read by key. A finished part of a
    /// partitioned run keeps only what the merge needs (its leads, logs
    /// and counts) while the other parts run.
    fn release(&mut self) {
        self.datasets = HashMap::new();
        self.scans = Vec::new();
        self.index_keys = HashMap::new();
    }

    /// This session as one session per range of a partitioned run: the
    /// datasets named in `split` cut to the range, every other one whole,
    /// the rest the same.
    pub fn partitioned(self, split: &[String], ranges: &[KeyRange]) -> Vec<Session> {
        ranges
            .iter()
            .map(|r| {
                let datasets = self
                    .datasets
                    .iter()
                    .map(|(name, a)| {
                        let a = if split.contains(name) {
                            a.clone().restricted(r.clone())
                        } else {
                            a.clone()
                        };
                        (name.clone(), a)
                    })
                    .collect();
                let mut s = Session::new(
                    self.model.clone(),
                    self.limits,
                    self.params.clone(),
                    datasets,
                );
                s.leads = self.leads.sibling();
                s.cursors = self.cursors.clone();
                s.part = Some(r.clone());
                s.plan = self.plan.clone();
                s
            })
            .collect()
    }

    fn check_deadline(&self) -> wasmtime::Result<()> {
        if Instant::now() > self.deadline {
            return Err(wasmtime::Error::new(Breach::WallTime {
                seconds: self.limits.wall_seconds,
            }));
        }
        Ok(())
    }

    fn access(&self, dataset: &str) -> wasmtime::Result<&Access> {
        self.datasets.get(dataset).ok_or_else(|| {
            wasmtime::Error::new(Breach::UndeclaredDataset(crate::text::shorten(
                dataset, 100,
            )))
        })
    }

    /// Checks a lead against the contract's rules and the policy's
    /// limit on one lead's bytes; its size as the policy counts it.
    fn check_lead(&self, lead: &LeadView<'_>) -> Result<u64, Breach> {
        let invalid = |m: String| Err(Breach::InvalidLead(m));
        let bytes = lead.text_size();
        if bytes > self.limits.max_lead_bytes {
            return Err(Breach::LeadTooLarge {
                bytes,
                limit: self.limits.max_lead_bytes,
            });
        }
        if lead.subject.trim().is_empty() {
            return invalid("empty subject".into());
        }
        if lead.subject.len() > MAX_SUBJECT_BYTES {
            return invalid(format!(
                "subject of {} bytes (at most {MAX_SUBJECT_BYTES})",
                lead.subject.len()
            ));
        }
        if lead.subject.chars().any(char::is_control) {
            return invalid("subject contains control characters".into());
        }
        if lead.title.len() > MAX_TITLE_BYTES {
            return invalid(format!(
                "title of {} bytes (at most {MAX_TITLE_BYTES})",
                lead.title.len()
            ));
        }
        if lead.evidence_count() > MAX_EVIDENCE_FIELDS {
            return invalid(format!(
                "{} evidence fields (at most {MAX_EVIDENCE_FIELDS})",
                lead.evidence_count()
            ));
        }
        if let Some(a) = lead.amount {
            if a.parse::<rust_decimal::Decimal>().is_err() {
                return invalid(format!(
                    "amount `{}` is not a decimal number",
                    crate::text::shorten(a, 40)
                ));
            }
        }
        Ok(bytes)
    }

    /// Checks one encoded lead (its length first) and keeps it: the
    /// contract's rules, then the policy's limits on the number of leads
    /// and their bytes.
    fn take_lead(&mut self, encoded: &[u8], lead: &LeadView<'_>) -> wasmtime::Result<()> {
        let size = self.check_lead(lead).map_err(wasmtime::Error::new)?;
        let key = self.leads.key_of(lead.subject);
        let replaced = self.leads.size_of_key(key);
        // A lead is its model's word on one subject: a second one in the
        // same run would silently take the first one's place (and its
        // amount out of the total), so it ends the run instead.
        if replaced.is_some()
            && self
                .leads
                .holds_subject(lead.subject.as_bytes())
                .map_err(wasmtime::Error::new)?
        {
            return Err(wasmtime::Error::new(Breach::InvalidLead(format!(
                "a second lead for subject `{}` in one run: a run gives at most one lead per subject (put what the leads have in common in one lead, or make the subject tell them apart, such as a case number)",
                crate::text::shorten(lead.subject, 64)
            ))));
        }
        if replaced.is_none() && self.leads.len() as u64 >= self.limits.max_leads {
            return Err(wasmtime::Error::new(Breach::LeadFlood {
                limit: self.limits.max_leads,
            }));
        }
        // The bytes of a run's leads have their own cap: past a few MiB
        // they wait in spill files, not in memory (see `crate::emitted`).
        let held = self.lead_bytes - replaced.unwrap_or(0) + size;
        let cap = self.limits.max_lead_mib.saturating_mul(1 << 20);
        if held > cap {
            return Err(wasmtime::Error::new(Breach::LeadVolume {
                bytes: held,
                limit: cap,
            }));
        }
        self.lead_bytes = held;
        self.leads
            .insert_keyed(key, encoded, size)
            .map_err(wasmtime::Error::new)
    }

    fn next_batch_inner(
        &mut self,
        scan: u32,
    ) -> wasmtime::Result<Result<Option<types::Batch>, String>> {
        let Some(Some(state)) = self.scans.get_mut(scan as usize) else {
            return Ok(Err(format!("no open scan {scan}")));
        };
        let (data, offsets) = match state {
            ScanState::Batches(batches) => {
                let Some(batch) = batches.next() else {
                    self.scans[scan as usize] = None;
                    return Ok(Ok(None));
                };
                batch.map_err(wasmtime::Error::new)?
            }
            ScanState::Keys { access, keys, next } => {
                if *next >= keys.len() {
                    self.scans[scan as usize] = None;
                    return Ok(Ok(None));
                }
                let end = (*next + MAX_LOOKUP_RECORDS).min(keys.len());
                let access = self
                    .datasets
                    .get(access.as_str())
                    .expect("scan of a granted dataset");
                let mut data = Vec::new();
                let mut offsets = vec![0u32];
                for key in &keys[*next..end] {
                    if let Some(rec) = access.reader.get(key).map_err(wasmtime::Error::new)? {
                        access.view.record(&rec, &mut data).map_err(host_error)?;
                        offsets.push(data.len() as u32);
                    }
                }
                *next = end;
                (data, offsets)
            }
        };
        self.records_read += offsets.len() as u64 - 1;
        Ok(Ok(Some(types::Batch { data, offsets })))
    }
}

/// A refused request by key: the end of the run when the model named a
/// field it did not declare, an error it can handle otherwise.
fn refused<T>(refusal: Refusal) -> wasmtime::Result<Result<T, String>> {
    match refusal {
        Refusal::Undeclared(what) => Err(wasmtime::Error::new(Breach::UndeclaredField(what))),
        Refusal::Failed(message) => Ok(Err(message)),
        Refusal::Deadline => Err(wasmtime::Error::new(crate::Error::Deadline {
            dataset: String::new(),
        })),
    }
}

/// The host's own failure while serving a call (a damaged block, say):
/// recorded as `host-error`, not as the model's.
fn host_error(message: impl std::fmt::Display) -> wasmtime::Error {
    wasmtime::Error::new(crate::Error::Other(message.to_string()))
}

impl types::Host for Session {}

impl host::Host for Session {
    fn fields(&mut self, dataset: String) -> wasmtime::Result<Result<Vec<String>, String>> {
        self.check_deadline()?;
        Ok(Ok(self.access(&dataset)?.view.names().to_vec()))
    }

    fn open_scan(
        &mut self,
        dataset: String,
        options: types::ScanOptions,
    ) -> wasmtime::Result<Result<u32, String>> {
        self.check_deadline()?;
        let open = self.scans.iter().filter(|s| s.is_some()).count();
        if open >= MAX_OPEN_SCANS {
            return Err(wasmtime::Error::new(Breach::TooManyScans));
        }
        let access = self.access(&dataset)?;
        if options.only_new && options.index.is_some() {
            return Ok(Err(
                "a scan of only new records runs in key order; drop the index".into(),
            ));
        }
        // Only new records: the segments this model has not read in a
        // successful run yet (all of them the first time).
        let seen = options
            .only_new
            .then(|| self.cursors.get(&dataset).map(Vec::as_slice).unwrap_or(&[]));
        // Scans of one index share one copy of its keys: host memory
        // follows the datasets, not how often a model opens a scan.
        let cached = (dataset.clone(), options.index.clone());
        let state = match self.index_keys.get(&cached).filter(|_| seen.is_none()) {
            Some(keys) => ScanState::Keys {
                access: dataset.clone(),
                keys: keys.clone(),
                next: 0,
            },
            None => match access.scan(options.index.as_deref(), seen) {
                Ok(ScanPlan::Batches) => {
                    ScanState::Batches(access.reader.batches(&access.view, seen))
                }
                Ok(ScanPlan::Ordered(batches)) => ScanState::Batches(batches),
                Ok(ScanPlan::Keys(keys)) => {
                    let keys = Arc::new(keys);
                    if seen.is_none() {
                        self.index_keys.insert(cached, keys.clone());
                    }
                    ScanState::Keys {
                        access: dataset.clone(),
                        keys,
                        next: 0,
                    }
                }
                Err(refusal) => return refused(refusal),
            },
        };
        let handle = match self.scans.iter().position(Option::is_none) {
            Some(free) => {
                self.scans[free] = Some(state);
                free
            }
            None => {
                self.scans.push(Some(state));
                self.scans.len() - 1
            }
        };
        Ok(Ok(handle as u32))
    }

    fn next_batch(&mut self, scan: u32) -> wasmtime::Result<Result<Option<types::Batch>, String>> {
        self.check_deadline()?;
        self.next_batch_inner(scan)
    }

    fn close_scan(&mut self, scan: u32) -> wasmtime::Result<()> {
        if let Some(state) = self.scans.get_mut(scan as usize) {
            *state = None;
        }
        Ok(())
    }

    fn get(
        &mut self,
        dataset: String,
        key: Vec<String>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        self.check_deadline()?;
        let access = self.access(&dataset)?;
        let key = match access.get_key(&key) {
            Ok(Some(key)) => key,
            Ok(None) => return Ok(Ok(None)),
            Err(refusal) => return refused(refusal),
        };
        match access.reader.get(&key) {
            Ok(None) => Ok(Ok(None)),
            Ok(Some(rec)) => {
                let mut out = Vec::with_capacity(rec.len());
                access.view.record(&rec, &mut out).map_err(host_error)?;
                self.records_read += 1;
                Ok(Ok(Some(out)))
            }
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    fn lookup(
        &mut self,
        dataset: String,
        index: String,
        value: String,
    ) -> wasmtime::Result<Result<types::Batch, String>> {
        self.check_deadline()?;
        let access = self.access(&dataset)?;
        let keys = match access.lookup_keys(&index, &value) {
            Ok(k) => k,
            Err(refusal) => return refused(refusal),
        };
        if keys.len() > MAX_LOOKUP_RECORDS {
            return Ok(Err(format!(
                "{} records match; a lookup returns at most {MAX_LOOKUP_RECORDS} (scan by the index instead)",
                keys.len()
            )));
        }
        let mut data = Vec::new();
        let mut offsets = vec![0u32];
        for key in &keys {
            if let Some(rec) = access.reader.get(key).map_err(wasmtime::Error::new)? {
                access.view.record(&rec, &mut data).map_err(host_error)?;
                offsets.push(data.len() as u32);
            }
        }
        self.records_read += offsets.len() as u64 - 1;
        Ok(Ok(types::Batch { data, offsets }))
    }

    fn param(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.params.get(&name).cloned())
    }

    fn emit(&mut self, lead: types::Lead) -> wasmtime::Result<Result<(), String>> {
        self.check_deadline()?;
        // One lead at a time (contracts 0.1 and 0.2.0): encoded as a batch
        // of one, and checked and kept as every lead is.
        let mut evidence = Vec::new();
        for e in &lead.evidence {
            encoded_lead::put_evidence_text(&mut evidence, &e.name, &e.value, e.personal);
        }
        let count = u32::try_from(lead.evidence.len()).unwrap_or(u32::MAX);
        let mut encoded = Vec::new();
        encoded_lead::put_lead(
            &mut encoded,
            &lead.subject,
            lead.subject_personal,
            &lead.title,
            lead.amount.as_deref(),
            count,
            &evidence,
        );
        self.emit_leads(encoded)
    }

    fn emit_leads(&mut self, leads: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        self.check_deadline()?;
        let mut at = 0;
        let mut n = 0usize;
        while at < leads.len() {
            let (lead, used) = encoded_lead::decode(&leads[at..]).map_err(|e| {
                wasmtime::Error::new(Breach::InvalidLead(format!(
                    "lead {} of a batch of {} bytes: {e}",
                    n + 1,
                    leads.len()
                )))
            })?;
            self.take_lead(&leads[at..at + used], &lead)?;
            at += used;
            n += 1;
        }
        Ok(Ok(()))
    }

    fn log(&mut self, level: types::Level, message: String) -> wasmtime::Result<()> {
        if self.logs.len() as u64 >= self.limits.max_log_lines {
            self.logs_dropped += 1;
            return Ok(());
        }
        let level = match level {
            types::Level::Debug => "debug",
            types::Level::Info => "info",
            types::Level::Warn => "warn",
            types::Level::Error => "error",
        };
        self.logs.push(LogLine {
            level,
            message: crate::text::shorten(&message, MAX_LOG_LINE_BYTES),
            part: None,
        });
        Ok(())
    }

    fn panicked(&mut self, message: String) -> wasmtime::Result<()> {
        self.panic_message = Some(crate::text::shorten(&message, MAX_LOG_LINE_BYTES));
        Ok(())
    }

    fn plan(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self.plan.as_deref().map(str::to_string))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn plans_are_checked_against_the_limits_the_host_enforces() {
        // A plan over a limit is refused at build, not by the host at run.
        assert_eq!(super::MAX_OPEN_SCANS, jiandu_plan::check::MAX_OPEN_SCANS);
        assert_eq!(
            super::MAX_EVIDENCE_FIELDS,
            jiandu_plan::check::MAX_EVIDENCE_FIELDS
        );
    }

    use super::*;
    use wasmtime::ResourceLimiter;

    fn limiter(memory_mib: u64) -> Limiter {
        Limiter::new(&Limits {
            memory_mib,
            ..Limits::default()
        })
    }

    fn classified(e: wasmtime::Error) -> Failure {
        let limits = Limits::default();
        let session = Session::new("m".into(), limits, BTreeMap::new(), HashMap::new());
        classify(
            e,
            &Usage {
                session: &session,
                limits: &limits,
                fuel_used: 0,
                elapsed: Duration::from_millis(5),
                wasm_stack: 1 << 20,
            },
        )
    }

    #[test]
    fn every_error_that_stops_a_model_is_one_of_the_documented_kinds() {
        // An error wasmtime raises that is not a trap (say, a failed
        // instantiation step) is the model's trap, with its text.
        let f = classified(wasmtime::Error::msg("\u{1b}[31mnot a trap"));
        assert_eq!(f.kind, "trap");
        assert!(f.message.starts_with("trapped: "), "{}", f.message);
        // The host's own failures are not the model's.
        let f = classified(wasmtime::Error::new(crate::Error::Ledger(
            "disk full".into(),
        )));
        assert_eq!(f.kind, "host-error");
        // Breaches carry their kind.
        let f = classified(wasmtime::Error::new(Breach::UndeclaredField(
            "by `x`".into(),
        )));
        assert_eq!(f.kind, "undeclared-field");
        let f = classified(wasmtime::Error::new(Trap::OutOfFuel));
        assert_eq!(f.kind, "fuel-exhausted");
        // A long read that ran into the deadline is the run's wall time.
        let f = classified(wasmtime::Error::new(crate::Error::Deadline {
            dataset: "d".into(),
        }));
        assert_eq!(f.kind, "wall-time");
        let f = classified(wasmtime::Error::new(Trap::MemoryOutOfBounds));
        assert_eq!(f.kind, "trap");
        let documented = [
            "fuel-exhausted",
            "wall-time",
            "memory-limit",
            "lead-volume",
            "stack-overflow",
            "table-limit",
            "lead-flood",
            "lead-too-large",
            "host-call-too-large",
            "too-many-scans",
            "undeclared-dataset",
            "undeclared-field",
            "invalid-lead",
            "partition-overlap",
            "panic",
            "trap",
            "host-error",
        ];
        for b in [
            Breach::UndeclaredDataset("d".into()),
            Breach::TooManyScans,
            Breach::LeadFlood { limit: 1 },
            Breach::WallTime { seconds: 1 },
        ] {
            assert!(documented.contains(&classified(wasmtime::Error::new(b)).kind.as_str()));
        }
    }

    #[test]
    fn the_memory_cap_is_on_all_memories_together() {
        let mut l = limiter(1);
        assert!(l.memory_growing(0, 600 << 10, None).unwrap());
        let err = l.memory_growing(0, 600 << 10, None).unwrap_err();
        assert_eq!(
            err.downcast_ref::<Breach>(),
            Some(&Breach::Memory {
                desired: 1200 << 10,
                limit: 1 << 20
            })
        );
        assert_eq!(l.peak_memory, 600 << 10);
    }

    #[test]
    fn a_growth_the_system_refused_is_not_counted() {
        let mut l = limiter(1);
        assert!(l.memory_growing(0, 512 << 10, None).unwrap());
        assert!(l.memory_growing(512 << 10, 1 << 20, None).unwrap());
        l.memory_grow_failed(wasmtime::Error::msg("no memory"))
            .unwrap();
        assert!(l.memory_growing(0, 512 << 10, None).unwrap());
    }

    #[test]
    fn the_host_call_budget_holds_the_largest_lead_policy_allows() {
        let small = Limits::default();
        assert_eq!(hostcall_bytes(&small), MIN_HOSTCALL_BYTES as usize);
        let big = Limits {
            max_lead_bytes: crate::limits::MAX_LEAD_BYTES,
            ..Limits::default()
        };
        assert!(hostcall_bytes(&big) > 2 * crate::limits::MAX_LEAD_BYTES as usize);
    }

    #[test]
    fn an_oversized_module_is_refused_before_it_is_compiled() {
        let runtime = Runtime::new(1024).unwrap();
        let mut wasm = b"\0asm\x0d\x00\x01\x00".to_vec();
        wasm.resize(MAX_COMPONENT_BYTES + 1, 0);
        let Err(err) = runtime.compile(&wasm) else {
            panic!("an oversized module compiled");
        };
        assert!(
            err.reason.contains("bytes a model may have"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn wall_time_arithmetic_does_not_overflow() {
        let now = Instant::now();
        assert!(deadline_after(now, u64::MAX) > now);
        assert_eq!(epoch_ticks(0), 1);
        assert_eq!(epoch_ticks(1), 100);
        assert!(epoch_ticks(u64::MAX) > 0);
        // Ticks until a deadline: what is left of it, at least one.
        assert_eq!(ticks_until(now), 1);
        assert_eq!(ticks_until(now - Duration::from_secs(5)), 1);
        let left = ticks_until(Instant::now() + Duration::from_secs(2));
        assert!((190..=200).contains(&left), "{left}");
        assert!(ticks_until(deadline_after(Instant::now(), u64::MAX)) > 100);
    }

    /// Results are seen in the items' order, each as soon as it and those
    /// before it are done: a slow first item holds back what is seen, not
    /// what the workers do meanwhile.
    #[test]
    fn results_are_seen_in_order_while_later_items_still_run() {
        for (items, workers) in [(0, 2), (1, 1), (6, 2), (9, 3)] {
            let seen = Mutex::new(Vec::new());
            let done_when_seen = Mutex::new(Vec::new());
            let done = AtomicUsize::new(0);
            let mut observe = |i: usize, r: &usize| {
                lock(&seen).push((i, *r));
                lock(&done_when_seen).push(done.load(AtomicOrdering::SeqCst));
            };
            let out = on_workers_in_order(
                (0..items).collect(),
                workers,
                |i: usize| {
                    // Item 0 ends last, item 1 after every other.
                    let ms = match i {
                        0 => 200,
                        1 => 100,
                        _ => 1,
                    };
                    std::thread::sleep(Duration::from_millis(ms));
                    done.fetch_add(1, AtomicOrdering::SeqCst);
                    i * 10
                },
                Some(&mut observe),
            );
            assert_eq!(out, (0..items).map(|i| i * 10).collect::<Vec<_>>());
            let seen = seen.into_inner().unwrap();
            assert_eq!(seen, (0..items).map(|i| (i, i * 10)).collect::<Vec<_>>());
            // Each result was seen once it and all before it were done.
            for (i, d) in done_when_seen.into_inner().unwrap().into_iter().enumerate() {
                assert!(d > i, "{items} on {workers}: result {i} seen with {d} done");
            }
        }
        // With two workers, item 1 is seen before the slow item 2 is done.
        let slow_done = AtomicBool::new(false);
        let seen_before = Mutex::new(Vec::new());
        let mut observe = |i: usize, _: &()| {
            lock(&seen_before).push((i, slow_done.load(AtomicOrdering::SeqCst)));
        };
        on_workers_in_order(
            (0..3).collect(),
            2,
            |i: usize| {
                if i == 2 {
                    std::thread::sleep(Duration::from_millis(300));
                    slow_done.store(true, AtomicOrdering::SeqCst);
                }
            },
            Some(&mut observe),
        );
        let seen_before = seen_before.into_inner().unwrap();
        assert_eq!(seen_before, vec![(0, false), (1, false), (2, true)]);
    }

    /// A worker that panics stops the observer's wait, and the panic
    /// reaches the caller, as it does without an observer.
    #[test]
    fn a_panicking_worker_does_not_leave_the_observer_waiting() {
        let seen = Mutex::new(Vec::new());
        let mut observe = |i: usize, _: &usize| lock(&seen).push(i);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            on_workers_in_order(
                (0..4).collect(),
                2,
                |i: usize| {
                    if i == 1 {
                        panic!("a host bug in item 1");
                    }
                    i
                },
                Some(&mut observe),
            )
        }));
        assert!(caught.is_err());
        // Item 0, if it was done before the panic was seen; never item 1.
        let seen = seen.into_inner().unwrap_or_else(|p| p.into_inner());
        assert!(seen.is_empty() || seen == [0], "{seen:?}");
    }

    #[test]
    fn workers_take_items_in_turn_and_results_keep_the_items_order() {
        use std::sync::atomic::AtomicUsize;
        for (items, workers) in [(0, 2), (1, 4), (7, 1), (9, 2), (5, 5), (3, 8)] {
            let running = AtomicUsize::new(0);
            let most = AtomicUsize::new(0);
            let out = on_workers((0..items).collect(), workers, |i: usize| {
                let now = running.fetch_add(1, AtomicOrdering::SeqCst) + 1;
                most.fetch_max(now, AtomicOrdering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
                running.fetch_sub(1, AtomicOrdering::SeqCst);
                i * 10
            });
            assert_eq!(out, (0..items).map(|i| i * 10).collect::<Vec<_>>());
            let bound = workers.min(items).max(1);
            assert!(
                most.load(AtomicOrdering::SeqCst) <= bound,
                "{items} on {workers}"
            );
        }
        // A long item keeps one worker; the other does every short one.
        let threads = Mutex::new(Vec::new());
        let long = Duration::from_millis(300);
        on_workers((0..6).collect(), 2, |i: usize| {
            if i == 0 {
                std::thread::sleep(long);
            }
            lock(&threads).push((i, std::thread::current().id()));
        });
        let threads = threads.into_inner().unwrap();
        let first = threads.iter().find(|(i, _)| *i == 0).unwrap().1;
        assert_eq!(threads.last().unwrap().0, 0, "{threads:?}");
        assert!(threads
            .iter()
            .filter(|(i, _)| *i != 0)
            .all(|(_, t)| *t != first));
    }
}
