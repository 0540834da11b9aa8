//! # jiandu-native: the same model code, run natively over the store
//!
//! Owns [`NativeBackend`], the host contract of `jiandu_sdk::Backend`
//! implemented directly over the store's dataset versions, through the
//! same views as a sandboxed run (declared fields only, personal fields as
//! pseudonyms unless granted), and [`run`], which runs a model compiled
//! for the host against it.
//!
//! This is a baseline for benchmarks and a harness for tests, not a way to
//! run models in production: a native model is trusted code with no fuel,
//! no memory cap, no wall-time limit, and its runs are not written to the
//! ledger. `jiandu run` always runs models in the sandbox.
//!
//! Depends on the store and the SDK only: it must never depend on the
//! sandbox (wasmtime), the record or the runs, so that a native runner can
//! be compiled on its own with the models' profile (`jiandu-bench-native`).
//! Which datasets and fields a run may read is decided by its caller
//! (`jiandu_runs::native::prepare` resolves them as `jiandu run` does).

use jiandu_sdk::{Backend, Batch, LeadData, Level, ScanOptions};
use jiandu_store::dataset::access::{Access, Refusal, ScanPlan};
use jiandu_store::dataset::SegmentId;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// The most records one lookup returns, as in the sandbox.
const MAX_LOOKUP_RECORDS: usize = 4096;

/// What a native run produced.
#[derive(Debug, Default)]
pub struct NativeOutput {
    /// Leads by subject (a second lead for a subject ends the run, as in
    /// the sandbox).
    pub leads: BTreeMap<String, LeadData>,
    pub records_read: u64,
    pub logs: Vec<(Level, String)>,
}

enum ScanState {
    /// Batches in key order, as the model's view of the dataset.
    Batches(jiandu_store::dataset::Batches),
    Keys {
        dataset: String,
        keys: Vec<String>,
        next: usize,
    },
}

/// The host contract implemented directly over the store.
pub struct NativeBackend {
    params: BTreeMap<String, String>,
    datasets: HashMap<String, Access>,
    scans: Vec<Option<ScanState>>,
    out: Rc<RefCell<NativeOutput>>,
}

impl NativeBackend {
    /// A backend with resolved parameters and the datasets the model may
    /// read.
    pub fn new(params: BTreeMap<String, String>, datasets: HashMap<String, Access>) -> Self {
        NativeBackend {
            params,
            datasets,
            scans: Vec::new(),
            out: Rc::new(RefCell::new(NativeOutput::default())),
        }
    }

    fn access(&self, dataset: &str) -> std::result::Result<&Access, String> {
        self.datasets
            .get(dataset)
            .ok_or_else(|| format!("dataset `{dataset}` is not declared in model.toml"))
    }

    /// The next batch of an open scan, `None` when it is exhausted.
    fn next_of(&self, state: &mut ScanState) -> std::result::Result<Option<Batch>, String> {
        match state {
            ScanState::Batches(batches) => match batches.next() {
                None => Ok(None),
                Some(batch) => {
                    let (data, offsets) = batch.map_err(|e| e.to_string())?;
                    Ok(Some(Batch { data, offsets }))
                }
            },
            ScanState::Keys {
                dataset,
                keys,
                next,
            } => {
                if *next >= keys.len() {
                    return Ok(None);
                }
                let end = (*next + MAX_LOOKUP_RECORDS).min(keys.len());
                let batch = self.records_of(dataset, &keys[*next..end])?;
                *next = end;
                Ok(Some(batch))
            }
        }
    }

    /// Records of `keys` as the model sees them, in one batch.
    fn records_of(&self, dataset: &str, keys: &[String]) -> std::result::Result<Batch, String> {
        let access = self.access(dataset)?;
        let mut data = Vec::new();
        let mut offsets = vec![0u32];
        for key in keys {
            if let Some(rec) = access.reader.get(key).map_err(|e| e.to_string())? {
                access.view.record(&rec, &mut data)?;
                offsets.push(data.len() as u32);
            }
        }
        Ok(Batch { data, offsets })
    }
}

/// A refused request by key as the native host reports it (a native run
/// has no sandbox to end: every refusal is the model's error).
fn refusal(r: Refusal) -> String {
    match r {
        Refusal::Undeclared(what) => format!("undeclared field: {what}"),
        Refusal::Failed(message) => message,
        Refusal::Deadline => "the run's wall time ran out".into(),
    }
}

/// Runs model `M` natively against `backend` and returns what it emitted.
pub fn run<M: jiandu_sdk::Model>(
    backend: NativeBackend,
) -> std::result::Result<NativeOutput, String> {
    let out = backend.out.clone();
    jiandu_sdk::__private::run_model::<M>(Box::new(backend))?;
    // The backend (and its clone of `out`) was dropped with the context.
    let out = Rc::try_unwrap(out).map_err(|_| "the model kept its context".to_string())?;
    Ok(out.into_inner())
}

impl Backend for NativeBackend {
    fn fields(&mut self, dataset: &str) -> std::result::Result<Vec<String>, String> {
        Ok(self.access(dataset)?.view.names().to_vec())
    }

    fn open_scan(
        &mut self,
        dataset: &str,
        options: ScanOptions,
    ) -> std::result::Result<u32, String> {
        if options.only_new && options.index.is_some() {
            return Err("a scan of only new records runs in key order; drop the index".into());
        }
        let access = self.access(dataset)?;
        // A native run keeps no cursor: every run is a first run, to which
        // every segment is new.
        let seen: Option<&[SegmentId]> = options.only_new.then_some(&[]);
        let state = match access
            .scan(options.index.as_deref(), seen)
            .map_err(refusal)?
        {
            ScanPlan::Batches => ScanState::Batches(access.reader.batches(&access.view, seen)),
            ScanPlan::Ordered(batches) => ScanState::Batches(batches),
            ScanPlan::Keys(keys) => ScanState::Keys {
                dataset: dataset.to_string(),
                keys,
                next: 0,
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
        Ok(handle as u32)
    }

    fn close_scan(&mut self, scan: u32) {
        if let Some(state) = self.scans.get_mut(scan as usize) {
            *state = None;
        }
    }

    fn next_batch(&mut self, scan: u32) -> std::result::Result<Option<Batch>, String> {
        let slot = scan as usize;
        let Some(mut state) = self.scans.get_mut(slot).and_then(Option::take) else {
            return Err(format!("no open scan {scan}"));
        };
        let batch = self.next_of(&mut state)?;
        if let Some(batch) = &batch {
            // The scan stays open until it is exhausted.
            self.scans[slot] = Some(state);
            self.out.borrow_mut().records_read += batch.len() as u64;
        }
        Ok(batch)
    }

    fn get(
        &mut self,
        dataset: &str,
        key: &[String],
    ) -> std::result::Result<Option<Vec<u8>>, String> {
        let access = self.access(dataset)?;
        let Some(key) = access.get_key(key).map_err(refusal)? else {
            return Ok(None);
        };
        let Some(rec) = access.reader.get(&key).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(rec.len());
        access.view.record(&rec, &mut out)?;
        self.out.borrow_mut().records_read += 1;
        Ok(Some(out))
    }

    fn lookup(
        &mut self,
        dataset: &str,
        index: &str,
        value: &str,
    ) -> std::result::Result<Batch, String> {
        let keys = self
            .access(dataset)?
            .lookup_keys(index, value)
            .map_err(refusal)?;
        if keys.len() > MAX_LOOKUP_RECORDS {
            return Err(format!(
                "{} records match; a lookup returns at most {MAX_LOOKUP_RECORDS} (scan by the index instead)",
                keys.len()
            ));
        }
        let batch = self.records_of(dataset, &keys)?;
        self.out.borrow_mut().records_read += batch.len() as u64;
        Ok(batch)
    }

    fn param(&mut self, name: &str) -> Option<String> {
        self.params.get(name).cloned()
    }

    fn emit_leads(&mut self, leads: &[u8]) -> std::result::Result<(), String> {
        let mut out = self.out.borrow_mut();
        let mut at = 0;
        while at < leads.len() {
            let (lead, used) = jiandu_sdk::encoded_lead::decode(&leads[at..])
                .map_err(|e| format!("a lead that {e}"))?;
            if out.leads.contains_key(lead.subject) {
                return Err(format!(
                    "a second lead for subject `{}` in one run: a run gives at most one lead per subject",
                    lead.subject
                ));
            }
            out.leads.insert(lead.subject.to_string(), lead.to_data());
            at += used;
        }
        Ok(())
    }

    fn log(&mut self, level: Level, message: &str) {
        self.out
            .borrow_mut()
            .logs
            .push((level, message.to_string()));
    }
}
