//! Where a [`crate::Context`] gets its data: the WebAssembly host imports
//! inside the sandbox, or a native implementation (benchmark baselines and
//! tests run the same model code natively against the same store).
//!
//! Model authors never touch this; host authors implement [`Backend`].

/// A flat batch of encoded records: record `i` is
/// `data[offsets[i]..offsets[i + 1]]`.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// The records, one after another.
    pub data: Vec<u8>,
    /// Where each record starts, and one more entry for where the last ends.
    pub offsets: Vec<u32>,
}

impl Batch {
    /// Number of records in the batch.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of record `i`, if the offsets are sound.
    pub fn record(&self, i: usize) -> Option<&[u8]> {
        let start = *self.offsets.get(i)? as usize;
        let end = *self.offsets.get(i + 1)? as usize;
        self.data.get(start..end)
    }
}

/// How to scan a dataset.
#[derive(Debug, Default, Clone)]
pub struct ScanOptions {
    /// Scan in this secondary index's order instead of the primary key's.
    pub index: Option<String>,
    /// Only records added since the model's last successful run.
    pub only_new: bool,
}

/// One evidence field of a lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceData {
    /// The evidence's name.
    pub name: String,
    /// Its value, as text.
    pub value: String,
    /// Personal data: masked in output unless the reader may see it.
    pub personal: bool,
}

/// A lead as it crosses the boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadData {
    /// Stable key of the subject (credit code, case number, ID number).
    pub subject: String,
    /// Whether the subject key itself is personal data.
    pub subject_personal: bool,
    /// One-line description for the reviewer.
    pub title: String,
    /// Exact amount in yuan, e.g. `1234.50`, when the rule computes one.
    pub amount: Option<String>,
    /// The facts that made it a lead.
    pub evidence: Vec<EvidenceData>,
}

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Printed with `-v`.
    Debug,
    /// Printed unless `--quiet`.
    Info,
    /// Printed always.
    Warn,
    /// Printed always.
    Error,
}

/// The backend a context and its scans share.
pub(crate) type Shared = std::rc::Rc<std::cell::RefCell<Box<dyn Backend>>>;

/// The operations of the host contract (`sdk/wit/model.wit`, interface
/// `host`). Errors are messages for the model author.
pub trait Backend {
    /// Names of the fields the model sees in records of `dataset`, in
    /// encoding order.
    fn fields(&mut self, dataset: &str) -> Result<Vec<String>, String>;
    /// Starts a scan; returns its handle for [`Backend::next_batch`].
    fn open_scan(&mut self, dataset: &str, options: ScanOptions) -> Result<u32, String>;
    /// The next batch of a scan, or `None` when it is exhausted (an
    /// exhausted scan is closed by the backend).
    fn next_batch(&mut self, scan: u32) -> Result<Option<Batch>, String>;
    /// Frees a scan the model stopped reading before its end.
    fn close_scan(&mut self, scan: u32);
    /// The record whose primary key is `key` (one value per key field).
    fn get(&mut self, dataset: &str, key: &[String]) -> Result<Option<Vec<u8>>, String>;
    /// All records whose declared secondary `index` has `value`.
    fn lookup(&mut self, dataset: &str, index: &str, value: &str) -> Result<Batch, String>;
    /// A parameter's value as text, its default applied and its type checked.
    fn param(&mut self, name: &str) -> Option<String>;
    /// Emits leads, encoded as [`crate::encoded_lead`] says; leads are kept
    /// only if the whole run succeeds.
    fn emit_leads(&mut self, leads: &[u8]) -> Result<(), String>;
    /// A log line, kept with the run.
    fn log(&mut self, level: Level, message: &str);
    /// The rule plan the interpreter of scripted models runs (see
    /// `plan` in the WIT); `None` for compiled models.
    fn plan(&mut self) -> Option<String> {
        None
    }
}

#[cfg(target_arch = "wasm32")]
pub(crate) mod wit {
    use super::*;
    use crate::bindings::jiandu::model::host;
    use crate::bindings::jiandu::model::types;

    #[derive(Default)]
    pub(crate) struct WitBackend;

    fn batch(b: types::Batch) -> Batch {
        Batch {
            data: b.data,
            offsets: b.offsets,
        }
    }

    impl Backend for WitBackend {
        fn fields(&mut self, dataset: &str) -> Result<Vec<String>, String> {
            host::fields(dataset)
        }

        fn open_scan(&mut self, dataset: &str, options: ScanOptions) -> Result<u32, String> {
            host::open_scan(
                dataset,
                &types::ScanOptions {
                    index: options.index,
                    only_new: options.only_new,
                },
            )
        }

        fn next_batch(&mut self, scan: u32) -> Result<Option<Batch>, String> {
            host::next_batch(scan).map(|b| b.map(batch))
        }

        fn close_scan(&mut self, scan: u32) {
            host::close_scan(scan)
        }

        fn get(&mut self, dataset: &str, key: &[String]) -> Result<Option<Vec<u8>>, String> {
            host::get(dataset, key)
        }

        fn lookup(&mut self, dataset: &str, index: &str, value: &str) -> Result<Batch, String> {
            host::lookup(dataset, index, value).map(batch)
        }

        fn param(&mut self, name: &str) -> Option<String> {
            host::param(name)
        }

        fn emit_leads(&mut self, leads: &[u8]) -> Result<(), String> {
            host::emit_leads(leads)
        }

        fn plan(&mut self) -> Option<String> {
            host::plan()
        }

        fn log(&mut self, level: Level, message: &str) {
            let level = match level {
                Level::Debug => types::Level::Debug,
                Level::Info => types::Level::Info,
                Level::Warn => types::Level::Warn,
                Level::Error => types::Level::Error,
            };
            host::log(level, message)
        }
    }

    /// Sends the panic message to the host before the trap, so the run's
    /// ledger entry says why the model died.
    pub(crate) fn install_panic_hook() {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic with a non-text payload".to_string());
            let place = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            host::panicked(&format!("{msg}{place}"));
        }));
    }
}
