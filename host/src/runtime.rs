//! The sandbox: wasmtime with fuel (a deterministic CPU budget), epoch
//! interruption (a wall-time budget), a memory and table cap, a stack
//! limit, no WASI, and the host side of the contract in `sdk/wit`.
//!
//! Every host function is bounded (a scan call returns at most one block)
//! and checks the run's deadline, so a model cannot hide in a host call.
//! Everything a model hands back is validated before it is kept.

use crate::catalog::Installed;
use crate::dataset::block::Block;
use crate::dataset::view::View;
use crate::dataset::VersionReader;
use crate::policy::Limits;
use jiandu_sdk::{EvidenceData, LeadData};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, Trap};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../sdk/wit",
        world: "model",
        imports: { default: trappable },
    });
}

use bindings::jiandu::model::{host, types};
use bindings::{Model as ModelWorld, ModelPre};

/// The contract interface a model must import, with its version.
pub const HOST_INTERFACE: &str = "jiandu:model/host@0.1.0";

/// How often the epoch ticks: the resolution of wall-time limits.
const EPOCH_TICK: Duration = Duration::from_millis(10);

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
    #[error("emitted more than {limit} leads")]
    LeadFlood { limit: u64 },
    #[error("emitted a lead of {bytes} bytes (limit {limit})")]
    LeadTooLarge { bytes: u64, limit: u64 },
    #[error("emitted an invalid lead: {0}")]
    InvalidLead(String),
    #[error("grew memory to {desired} bytes (limit {limit})")]
    Memory { desired: u64, limit: u64 },
    #[error("grew a table to {desired} elements (limit {limit})")]
    Table { desired: u64, limit: u64 },
    #[error("opened more than {MAX_OPEN_SCANS} scans")]
    TooManyScans,
    #[error("ran past its wall-time limit of {seconds} s")]
    WallTime { seconds: u64 },
}

impl Breach {
    /// Short kind for the ledger.
    pub fn kind(&self) -> &'static str {
        match self {
            Breach::UndeclaredDataset(_) => "undeclared-dataset",
            Breach::LeadFlood { .. } => "lead-flood",
            Breach::LeadTooLarge { .. } => "lead-too-large",
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

fn load_err(reason: impl Into<String>) -> LoadError {
    LoadError {
        reason: reason.into(),
    }
}

/// The engine, shared by all runs, and its epoch ticker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<Session>,
    _ticker: Arc<Ticker>,
}

struct Ticker {
    stop: std::sync::atomic::AtomicBool,
}

impl Runtime {
    /// A runtime whose runs may use up to `stack_kib` of wasm stack.
    pub fn new(stack_kib: u64) -> crate::Result<Runtime> {
        let mut config = Config::new();
        config.consume_fuel(true);
        config.epoch_interruption(true);
        config.max_wasm_stack((stack_kib as usize).max(64) * 1024);
        config.wasm_component_model(true);
        let engine =
            Engine::new(&config).map_err(|e| crate::Error::Other(format!("wasmtime: {e}")))?;
        let mut linker = Linker::new(&engine);
        ModelWorld::add_to_linker::<Session, HasSelf<Session>>(&mut linker, |s| s)
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
            _ticker: ticker,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles and checks a model: a component importing only the Jiandu
    /// contract of this version, exporting `run` and `describe`, whose
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
        check_imports(&self.engine, &component)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| load_err(format!("its imports do not match the contract: {e:#}")))?;
        let pre = ModelPre::new(pre)
            .map_err(|e| load_err(format!("its exports do not match the contract: {e:#}")))?;
        let loaded = Loaded {
            pre,
            manifest_id: model.manifest.id(),
            wasm_sha256: model.wasm_sha256.clone(),
        };
        let described = loaded.describe(self)?;
        if described != loaded.manifest_id {
            return Err(load_err(format!(
                "the module says it is {described} but model.toml says {}; rebuild it",
                loaded.manifest_id
            )));
        }
        Ok(loaded)
    }

    /// Runs a loaded model in a fresh instance with `session`'s data and
    /// limits. Never panics on anything the model does.
    pub fn run(&self, loaded: &Loaded, session: Session) -> Finished {
        let limits = session.limits;
        let mut store = Store::new(&self.engine, session);
        store.limiter(|s| &mut s.limiter);
        let _ = store.set_fuel(limits.fuel);
        let ticks = (limits.wall_seconds * 1000 / EPOCH_TICK.as_millis() as u64).max(1);
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let result = loaded
            .pre
            .instantiate(&mut store)
            .and_then(|m| m.call_run(&mut store));
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let session = store.into_data();
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(message)) => Some(Failure {
                kind: "model-error".into(),
                message: crate::leads::shorten(&message, 4096),
                limit: None,
                used: None,
            }),
            Err(e) => Some(classify(e, &session, &limits, fuel_used)),
        };
        Finished {
            fuel_used,
            peak_memory: session.limiter.peak_memory as u64,
            failure,
            session,
        }
    }
}

/// A compiled, checked model, ready to instantiate (cheaply) per run.
#[derive(Clone)]
pub struct Loaded {
    pre: ModelPre<Session>,
    pub manifest_id: String,
    pub wasm_sha256: String,
}

impl Loaded {
    fn describe(&self, runtime: &Runtime) -> Result<String, LoadError> {
        let session = Session::new(
            String::new(),
            Limits::default(),
            BTreeMap::new(),
            HashMap::new(),
        );
        let mut store = Store::new(&runtime.engine, session);
        store.limiter(|s| &mut s.limiter);
        let _ = store.set_fuel(100_000_000);
        store.set_epoch_deadline(500);
        store.epoch_deadline_trap();
        let described = self
            .pre
            .instantiate(&mut store)
            .and_then(|m| m.call_describe(&mut store))
            .map_err(|e| load_err(format!("`describe` failed: {e:#}")))?;
        Ok(crate::leads::shorten(&described, 200))
    }
}

fn check_header(wasm: &[u8]) -> Result<(), LoadError> {
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

fn check_imports(engine: &Engine, component: &Component) -> Result<(), LoadError> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        if name == HOST_INTERFACE || name == "jiandu:model/types@0.1.0" {
            continue;
        }
        if let Some(rest) = name.strip_prefix("jiandu:model/") {
            let version = rest
                .split_once('@')
                .map(|(_, v)| v)
                .unwrap_or("unversioned");
            return Err(load_err(format!(
                "built for contract version {version} (imports `{name}`); this host implements {}",
                jiandu_sdk::CONTRACT_VERSION
            )));
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
    Ok(())
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

fn classify(e: wasmtime::Error, session: &Session, limits: &Limits, fuel_used: u64) -> Failure {
    let backtrace = e
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|bt| crate::leads::shorten(&bt.to_string(), 2000));
    let with_bt = |msg: String| match &backtrace {
        Some(bt) => format!("{msg}\n{bt}"),
        None => msg,
    };
    if let Some(b) = e.downcast_ref::<Breach>() {
        let (limit, used) = match b {
            Breach::LeadFlood { limit } => (Some(*limit), Some(limit + 1)),
            Breach::LeadTooLarge { bytes, limit } => (Some(*limit), Some(*bytes)),
            Breach::Memory { desired, limit } => (Some(*limit), Some(*desired)),
            Breach::Table { desired, limit } => (Some(*limit), Some(*desired)),
            _ => (None, None),
        };
        return Failure {
            kind: b.kind().into(),
            message: b.to_string(),
            limit,
            used,
        };
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return match trap {
            Trap::OutOfFuel => Failure {
                kind: "fuel-exhausted".into(),
                message: format!("used all its fuel ({} units)", limits.fuel),
                limit: Some(limits.fuel),
                used: Some(fuel_used),
            },
            Trap::Interrupt => Failure {
                kind: "wall-time".into(),
                message: format!("ran past its wall-time limit of {} s", limits.wall_seconds),
                limit: Some(limits.wall_seconds),
                used: None,
            },
            Trap::StackOverflow => Failure {
                kind: "stack-overflow".into(),
                message: with_bt(format!("exhausted its stack ({} KiB)", limits.stack_kib)),
                limit: Some(limits.stack_kib * 1024),
                used: None,
            },
            Trap::UnreachableCodeReached if session.panic_message.is_some() => Failure {
                kind: "panic".into(),
                message: with_bt(format!(
                    "panicked: {}",
                    session.panic_message.as_deref().unwrap_or("")
                )),
                limit: None,
                used: None,
            },
            other => Failure {
                kind: "trap".into(),
                message: with_bt(format!("trapped: {other}")),
                limit: None,
                used: None,
            },
        };
    }
    Failure {
        kind: "error".into(),
        message: with_bt(format!("{e:#}")),
        limit: None,
        used: None,
    }
}

/// What a finished run produced.
pub struct Finished {
    pub session: Session,
    pub fuel_used: u64,
    pub peak_memory: u64,
    pub failure: Option<Failure>,
}

/// Memory and table caps, recording the peak.
pub struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    peak_memory: usize,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(wasmtime::Error::new(Breach::Memory {
                desired: desired as u64,
                limit: self.memory_bytes as u64,
            }));
        }
        self.peak_memory = self.peak_memory.max(desired);
        Ok(true)
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

/// One dataset as a model may read it.
pub struct Access {
    pub reader: VersionReader,
    pub view: View,
}

enum ScanState {
    Blocks {
        iter: Box<dyn Iterator<Item = crate::Result<sled::IVec>> + Send>,
        view: View,
    },
    Keys {
        access: String,
        keys: Vec<String>,
        next: usize,
    },
}

/// A log line a model wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogLine {
    pub level: &'static str,
    pub message: String,
}

/// The host state of one run: what the model may read and what it emitted.
pub struct Session {
    pub model: String,
    pub limits: Limits,
    limiter: Limiter,
    deadline: Instant,
    params: BTreeMap<String, String>,
    datasets: HashMap<String, Access>,
    scans: Vec<Option<ScanState>>,
    /// Leads by subject; a later emit for the same subject replaces it.
    pub leads: BTreeMap<String, LeadData>,
    pub records_read: u64,
    pub logs: Vec<LogLine>,
    pub logs_dropped: u64,
    pub panic_message: Option<String>,
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
            limiter: Limiter {
                memory_bytes: (limits.memory_mib as usize) << 20,
                table_elements: 100_000,
                peak_memory: 0,
            },
            deadline: Instant::now() + Duration::from_secs(limits.wall_seconds),
            limits,
            params,
            datasets,
            scans: Vec::new(),
            leads: BTreeMap::new(),
            records_read: 0,
            logs: Vec::new(),
            logs_dropped: 0,
            panic_message: None,
        }
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
            wasmtime::Error::new(Breach::UndeclaredDataset(crate::leads::shorten(
                dataset, 100,
            )))
        })
    }

    fn validate_lead(&self, lead: &types::Lead) -> Result<LeadData, Breach> {
        let invalid = |m: String| Err(Breach::InvalidLead(m));
        let bytes = lead.subject.len()
            + lead.title.len()
            + lead.amount.as_ref().map_or(0, String::len)
            + lead
                .evidence
                .iter()
                .map(|e| e.name.len() + e.value.len())
                .sum::<usize>();
        if bytes as u64 > self.limits.max_lead_bytes {
            return Err(Breach::LeadTooLarge {
                bytes: bytes as u64,
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
        if lead.evidence.len() > MAX_EVIDENCE_FIELDS {
            return invalid(format!(
                "{} evidence fields (at most {MAX_EVIDENCE_FIELDS})",
                lead.evidence.len()
            ));
        }
        if let Some(a) = &lead.amount {
            if a.parse::<rust_decimal::Decimal>().is_err() {
                return invalid(format!(
                    "amount `{}` is not a decimal number",
                    crate::leads::shorten(a, 40)
                ));
            }
        }
        Ok(LeadData {
            subject: lead.subject.clone(),
            subject_personal: lead.subject_personal,
            title: lead.title.clone(),
            amount: lead.amount.clone(),
            evidence: lead
                .evidence
                .iter()
                .map(|e| EvidenceData {
                    name: e.name.clone(),
                    value: e.value.clone(),
                    personal: e.personal,
                })
                .collect(),
        })
    }

    fn next_batch_inner(
        &mut self,
        scan: u32,
    ) -> wasmtime::Result<Result<Option<types::Batch>, String>> {
        let Some(Some(state)) = self.scans.get_mut(scan as usize) else {
            return Ok(Err(format!("no open scan {scan}")));
        };
        let (data, offsets) = match state {
            ScanState::Blocks { iter, view } => {
                let Some(block) = iter.next() else {
                    self.scans[scan as usize] = None;
                    return Ok(Ok(None));
                };
                let bytes = block.map_err(|e| wasmtime::Error::msg(e.to_string()))?;
                let block =
                    Block::parse(&bytes).map_err(|e| wasmtime::Error::msg(e.to_string()))?;
                view.batch(&block).map_err(wasmtime::Error::msg)?
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
                    if let Some(rec) = access
                        .reader
                        .get(key)
                        .map_err(|e| wasmtime::Error::msg(e.to_string()))?
                    {
                        access
                            .view
                            .record(&rec, &mut data)
                            .map_err(wasmtime::Error::msg)?;
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
        let access = self.access(&dataset)?;
        if options.only_new {
            return Ok(Err(
                "scans of only new records are not supported by this host".into(),
            ));
        }
        let state = match &options.index {
            None => ScanState::Blocks {
                iter: Box::new(access.reader.blocks()),
                view: access.view.clone(),
            },
            Some(index) => match access.reader.index_entries(index) {
                Ok(keys) => ScanState::Keys {
                    access: dataset.clone(),
                    keys,
                    next: 0,
                },
                Err(e) => return Ok(Err(e.to_string())),
            },
        };
        let open = self.scans.iter().filter(|s| s.is_some()).count();
        if open >= MAX_OPEN_SCANS {
            return Err(wasmtime::Error::new(Breach::TooManyScans));
        }
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

    fn get(
        &mut self,
        dataset: String,
        key: Vec<String>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        self.check_deadline()?;
        let access = self.access(&dataset)?;
        let key = crate::dataset::join_key(&key);
        match access.reader.get(&key) {
            Ok(None) => Ok(Ok(None)),
            Ok(Some(rec)) => {
                let mut out = Vec::with_capacity(rec.len());
                access
                    .view
                    .record(&rec, &mut out)
                    .map_err(wasmtime::Error::msg)?;
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
        let keys = match access.reader.index_keys(&index, &value) {
            Ok(k) => k,
            Err(e) => return Ok(Err(e.to_string())),
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
            if let Some(rec) = access
                .reader
                .get(key)
                .map_err(|e| wasmtime::Error::msg(e.to_string()))?
            {
                access
                    .view
                    .record(&rec, &mut data)
                    .map_err(wasmtime::Error::msg)?;
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
        let lead = self.validate_lead(&lead).map_err(wasmtime::Error::new)?;
        if !self.leads.contains_key(&lead.subject)
            && self.leads.len() as u64 >= self.limits.max_leads
        {
            return Err(wasmtime::Error::new(Breach::LeadFlood {
                limit: self.limits.max_leads,
            }));
        }
        self.leads.insert(lead.subject.clone(), lead);
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
            message: crate::leads::shorten(&message, MAX_LOG_LINE_BYTES),
        });
        Ok(())
    }

    fn panicked(&mut self, message: String) -> wasmtime::Result<()> {
        self.panic_message = Some(crate::leads::shorten(&message, MAX_LOG_LINE_BYTES));
        Ok(())
    }
}
