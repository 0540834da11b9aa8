//! `audit log` and `audit report`: the entries and runs of this store's own
//! ledger and of the ledgers it imported, filtered by unit, model, model
//! version, dataset, operator, outcome and time.
//!
//! A run is the set of entries sharing a `run_id`: `run-started`, then
//! `run-finished` (succeeded or failed); or a lone `run-refused`. A run
//! with a start and no finish is *unfinished*: the host stopped while the
//! model ran.

use super::units::{self, RegisteredUnit};
use super::{central, EntryView};
use crate::{Error, Result, Store};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Which ledgers a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// This store's ledger and every imported one.
    #[default]
    All,
    /// This store's own ledger.
    Local,
    /// The imported ledgers.
    Central,
}

/// How a run ended, as a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeFilter {
    /// `started`, `succeeded`, `failed` or `refused`, as the entry records.
    Is(String),
    /// Started entries whose run never finished.
    Unfinished,
}

impl std::str::FromStr for OutcomeFilter {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "started" | "succeeded" | "failed" | "refused" => Ok(OutcomeFilter::Is(s.into())),
            "unfinished" => Ok(OutcomeFilter::Unfinished),
            _ => Err(format!(
                "`{s}` is not an outcome: started, succeeded, failed, refused or unfinished"
            )),
        }
    }
}

/// A time bound; dates and times without an offset are China Standard
/// Time (UTC+8), like the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBound {
    at: DateTime<FixedOffset>,
    /// Whether an entry exactly at `at` is inside the range.
    inclusive: bool,
}

impl TimeBound {
    /// `--since`: `2025-03-01`, `2025-03-01T08:30[:00]` or RFC 3339.
    pub fn since(text: &str) -> std::result::Result<TimeBound, String> {
        Ok(TimeBound {
            at: parse_time(text, false)?,
            inclusive: true,
        })
    }

    /// `--until`: like `--since`; a date alone includes the whole day.
    pub fn until(text: &str) -> std::result::Result<TimeBound, String> {
        let date_only = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").is_ok();
        Ok(TimeBound {
            at: parse_time(text, date_only)?,
            inclusive: !date_only,
        })
    }
}

fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

fn parse_time(text: &str, next_day: bool) -> std::result::Result<DateTime<FixedOffset>, String> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d);
    }
    let local = |n: NaiveDateTime| cst().from_local_datetime(&n).single();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let d = if next_day {
            d.succ_opt().unwrap_or(d)
        } else {
            d
        };
        if let Some(at) = d.and_hms_opt(0, 0, 0).and_then(local) {
            return Ok(at);
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Some(at) = NaiveDateTime::parse_from_str(t, f).ok().and_then(local) {
            return Ok(at);
        }
    }
    Err(format!(
        "`{text}` is not a time: use 2025-03-01, 2025-03-01T08:30 or RFC 3339"
    ))
}

/// What `audit log` and `audit report` select.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub scope: Scope,
    /// A unit: key fingerprint (or its first characters), name or code.
    pub unit: Option<String>,
    pub model: Option<String>,
    pub version: Option<String>,
    pub dataset: Option<String>,
    pub operator: Option<String>,
    pub outcome: Option<OutcomeFilter>,
    pub since: Option<TimeBound>,
    pub until: Option<TimeBound>,
}

impl Filter {
    /// Whether `e` passes every filter but the outcome.
    fn admits(&self, e: &EntryView) -> bool {
        let r = &e.run;
        let disclosed = e.disclosure.as_ref().and_then(|d| d.model.as_ref());
        self.model
            .as_ref()
            .is_none_or(|m| &r.model.name == m || disclosed == Some(m))
            && self.version.as_ref().is_none_or(|v| &r.model.version == v)
            && self.dataset.as_ref().is_none_or(|d| {
                r.datasets.iter().any(|x| &x.name == d)
                    || e.ingest.as_ref().is_some_and(|i| &i.dataset == d)
                    || e.dataset.as_ref().is_some_and(|c| &c.dataset == d)
            })
            && self.operator.as_ref().is_none_or(|o| &e.operator == o)
            && self.in_time(&e.at)
    }

    fn in_time(&self, at: &str) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Ok(at) = DateTime::parse_from_rfc3339(at) else {
            return false;
        };
        self.since.is_none_or(|s| at >= s.at)
            && self
                .until
                .is_none_or(|u| at < u.at || (u.inclusive && at == u.at))
    }
}

/// One ledger a query reads.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// The unit's name (for this store's own ledger without a unit, the
    /// unit the entries name).
    pub unit: String,
    pub code: Option<String>,
    pub fingerprint: Option<String>,
    /// Whether this is the store's own ledger.
    pub local: bool,
    /// Entries in order: what audit reads of each, and the entry as stored.
    pub entries: Vec<(EntryView, serde_json::Value)>,
    /// The last checkpoint: the store's own, or the last one accepted from
    /// the unit.
    pub checkpoint: Option<CheckpointRef>,
    /// Redactions on the record, by the entry whose text they removed.
    pub redactions: HashMap<u64, Redacted>,
}

/// A redaction of an entry's model text, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redacted {
    /// The `text-redacted` entry.
    pub by: u64,
    pub operator: String,
    pub at: String,
    pub reason: String,
}

/// The model text of an entry (a panic message, an error, a backtrace),
/// as `audit log` and `audit show` present it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ModelText {
    /// Kept beside the entry in this store.
    Present { text: String },
    /// Removed, on the record.
    Redacted(Redacted),
    /// Kept beside the entry at the unit that wrote it: imports carry
    /// entries, not the text beside them.
    Unit,
    /// Not beside the entry, and no redaction on the record (`audit verify`
    /// names it).
    Missing,
}

impl ModelText {
    /// The text, or what stands in for it.
    pub fn display(&self, len: Option<u64>) -> String {
        match self {
            ModelText::Present { text } => text.clone(),
            ModelText::Redacted(r) => format!("[redacted: {}]", r.reason),
            ModelText::Unit => format!(
                "[{} bytes of model text, kept at the unit]",
                len.unwrap_or(0)
            ),
            ModelText::Missing => "[model text missing: see `jiandu audit verify`]".into(),
        }
    }
}

impl Ledger {
    /// The text kept beside `e` (a model's, or a person's words in a
    /// review), when it has some.
    pub fn text(&self, store: &Store, e: &EntryView) -> Result<Option<ModelText>> {
        let committed = e
            .run
            .error
            .as_ref()
            .is_some_and(|x| x.message_sha256.is_some())
            || e.review.as_ref().is_some_and(|r| r.text_sha256.is_some());
        if !committed {
            return Ok(None);
        }
        if let Some(r) = self.redactions.get(&e.seq) {
            return Ok(Some(ModelText::Redacted(r.clone())));
        }
        if !self.local {
            return Ok(Some(ModelText::Unit));
        }
        Ok(Some(match crate::ledger::aside::read(store, e.seq)? {
            Some(Ok(aside)) => ModelText::Present { text: aside.text },
            Some(Err(_)) | None => ModelText::Missing,
        }))
    }
}

/// The error message of `e` for display: its own, or its model text.
pub fn error_message(e: &EntryView, text: Option<&ModelText>) -> Option<String> {
    let error = e.run.error.as_ref()?;
    Some(match text {
        Some(t) => t.display(error.message_len),
        None => error.message.clone(),
    })
}

fn redactions(entries: &[(EntryView, serde_json::Value)]) -> HashMap<u64, Redacted> {
    entries
        .iter()
        .filter_map(|(e, _)| {
            let r = e.redaction.as_ref()?;
            Some((
                r.seq,
                Redacted {
                    by: e.seq,
                    operator: e.operator.clone(),
                    at: e.at.clone(),
                    reason: r.reason.clone(),
                },
            ))
        })
        .collect()
}

/// Entry count and time of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointRef {
    pub size: u64,
    pub time: String,
}

impl Ledger {
    /// Run ids with a terminal entry.
    fn finished(&self) -> HashSet<&str> {
        self.entries
            .iter()
            .filter(|(e, _)| e.kind != "run-started")
            .map(|(e, _)| e.run.run_id.as_str())
            .collect()
    }
}

fn view(bytes: &[u8], what: &str) -> Result<(EntryView, serde_json::Value)> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::Ledger(format!("{what} is unreadable: {e}")))?;
    let entry = serde_json::from_value(value.clone())
        .map_err(|e| Error::Ledger(format!("{what} is unreadable: {e}")))?;
    Ok((entry, value))
}

/// The ledgers `filter.scope` and `filter.unit` select.
pub fn ledgers(store: &Store, filter: &Filter) -> Result<Vec<Ledger>> {
    let mut out = Vec::new();
    if filter.scope != Scope::Central {
        let unit = crate::unit::current(store)?;
        let mut entries = Vec::new();
        for item in crate::ledger::entries(store, 1) {
            let (seq, bytes) = item?;
            entries.push(view(&bytes, &format!("ledger entry {seq}"))?);
        }
        let name = unit
            .as_ref()
            .map(|u| u.name.clone())
            .or_else(|| entries.first().map(|(e, _)| e.unit.clone()))
            .unwrap_or_default();
        let wanted = match (&filter.unit, &unit) {
            (None, _) => true,
            (Some(t), Some(u)) => {
                t == &u.name
                    || t == &u.code
                    || t == &u.fingerprint
                    || (t.len() >= 4 && u.fingerprint.starts_with(t.as_str()))
            }
            (Some(t), None) => entries.iter().any(|(e, _)| e.unit.contains(t.as_str())),
        };
        if wanted && (!entries.is_empty() || filter.scope == Scope::Local) {
            out.push(Ledger {
                redactions: redactions(&entries),
                unit: name,
                code: unit.as_ref().map(|u| u.code.clone()),
                fingerprint: unit.as_ref().map(|u| u.fingerprint.clone()),
                local: true,
                entries,
                checkpoint: super::checkpoint::latest_local(store)?.map(|c| CheckpointRef {
                    size: c.checkpoint.size,
                    time: c.checkpoint.time,
                }),
            });
        }
    }
    if filter.scope != Scope::Local {
        let registered: Vec<RegisteredUnit> = match &filter.unit {
            None => units::list(store)?,
            Some(t) => units::list(store)?
                .into_iter()
                .filter(|u| units::names(u, t))
                .collect(),
        };
        for u in registered {
            let mut entries = Vec::new();
            for item in central::entries(store, &u.fingerprint) {
                let (seq, line) = item?;
                let line = line.map_err(Error::Ledger)?;
                entries.push(view(
                    line.entry.as_bytes(),
                    &format!("entry {seq} imported from {}", u.label()),
                )?);
            }
            out.push(Ledger {
                redactions: redactions(&entries),
                checkpoint: central::last_accepted(store, &u.fingerprint)?.map(|a| CheckpointRef {
                    size: a.checkpoint.checkpoint.size,
                    time: a.checkpoint.checkpoint.time,
                }),
                unit: u.name,
                code: Some(u.code),
                fingerprint: Some(u.fingerprint),
                local: false,
                entries,
            });
        }
    }
    if let (Some(t), true) = (&filter.unit, out.is_empty()) {
        return Err(Error::Other(format!(
            "no ledger here belongs to a unit named `{t}` (by fingerprint, name or code); see `jiandu audit unit list`"
        )));
    }
    Ok(out)
}

/// One line of `audit log`.
#[derive(Debug, Clone, Serialize)]
pub struct LogRow {
    pub unit: String,
    pub fingerprint: Option<String>,
    pub local: bool,
    /// A `run-started` entry whose run has no terminal entry.
    pub unfinished: bool,
    /// The model text beside the entry, if it has some.
    pub text: Option<ModelText>,
    #[serde(skip)]
    pub entry: EntryView,
    /// The entry as stored.
    pub stored: serde_json::Value,
}

/// The entries `filter` selects, ledger by ledger, in order.
pub fn log(store: &Store, filter: &Filter) -> Result<Vec<LogRow>> {
    let mut rows = Vec::new();
    for ledger in ledgers(store, filter)? {
        let finished = ledger.finished();
        for (e, stored) in &ledger.entries {
            if !filter.admits(e) {
                continue;
            }
            let unfinished = e.kind == "run-started" && !finished.contains(e.run.run_id.as_str());
            let outcome_ok = match &filter.outcome {
                None => true,
                Some(OutcomeFilter::Is(o)) => &e.run.outcome == o,
                Some(OutcomeFilter::Unfinished) => unfinished,
            };
            if outcome_ok {
                rows.push(LogRow {
                    unit: ledger.unit.clone(),
                    fingerprint: ledger.fingerprint.clone(),
                    local: ledger.local,
                    unfinished,
                    text: ledger.text(store, e)?,
                    entry: e.clone(),
                    stored: stored.clone(),
                });
            }
        }
    }
    Ok(rows)
}

/// One entry as `audit show` presents it.
#[derive(Debug, Clone, Serialize)]
pub struct ShownEntry {
    pub seq: u64,
    /// The entry as stored.
    pub entry: serde_json::Value,
    /// The model text beside it, if it has some.
    pub text: Option<ModelText>,
    #[serde(skip)]
    pub view: EntryView,
}

/// An ingest entry that put records into a dataset version.
#[derive(Debug, Clone, Serialize)]
pub struct Loaded {
    pub seq: u64,
    pub at: String,
    pub operator: String,
    pub ingest: super::IngestView,
}

/// A dataset version a run read, and who loaded its records.
#[derive(Debug, Clone, Serialize)]
pub struct DataSeen {
    pub name: String,
    pub version: u64,
    pub digest: String,
    pub personal_fields: Vec<String>,
    pub clear_personal: bool,
    /// The ingests whose rows the version holds, newest first: the one
    /// that made the version, then (for `--append`) those of the versions
    /// it extends. Empty when the version was ingested before ingests were
    /// recorded.
    pub loaded: Vec<Loaded>,
    /// Whether the digest the ingest recorded is the one the run read.
    pub digest_recorded: bool,
}

/// What `audit show` found in one ledger.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    pub unit: String,
    pub fingerprint: Option<String>,
    pub local: bool,
    /// The run's entries in order (or the one entry asked for).
    pub entries: Vec<ShownEntry>,
    /// For a run: every dataset version it read.
    pub data: Vec<DataSeen>,
}

/// `audit show`: the entries of run `target` (a run id), or entry `target`
/// (a sequence number), in every ledger `filter` selects, with the model
/// text beside them and, for a run, the dataset versions it read and the
/// ingest entries that loaded them.
pub fn show(store: &Store, filter: &Filter, target: &str) -> Result<Vec<Shown>> {
    let seq = target.trim().parse::<u64>().ok();
    let mut out = Vec::new();
    for ledger in ledgers(store, filter)? {
        let picked: Vec<&(EntryView, serde_json::Value)> = ledger
            .entries
            .iter()
            .filter(|(e, _)| {
                (!e.run.run_id.is_empty() && e.run.run_id == target) || Some(e.seq) == seq
            })
            .collect();
        if picked.is_empty() {
            continue;
        }
        let mut entries = Vec::new();
        for (e, stored) in &picked {
            entries.push(ShownEntry {
                seq: e.seq,
                entry: stored.clone(),
                text: ledger.text(store, e)?,
                view: e.clone(),
            });
        }
        // The versions a run read are the same in each of its entries.
        let mut data = Vec::new();
        if let Some((e, _)) = picked.iter().find(|(e, _)| !e.run.datasets.is_empty()) {
            for d in &e.run.datasets {
                let loaded = loaded(&ledger, &d.name, d.version);
                data.push(DataSeen {
                    name: d.name.clone(),
                    version: d.version,
                    digest: d.digest.clone(),
                    personal_fields: d.personal_fields.clone(),
                    clear_personal: d.clear_personal,
                    digest_recorded: loaded.first().is_some_and(|l| l.ingest.digest == d.digest),
                    loaded,
                });
            }
        }
        out.push(Shown {
            unit: ledger.unit.clone(),
            fingerprint: ledger.fingerprint.clone(),
            local: ledger.local,
            entries,
            data,
        });
    }
    if out.is_empty() {
        return Err(Error::Other(format!(
            "no run `{target}` and no entry {target} in the ledgers here; `jiandu audit log` lists them"
        )));
    }
    Ok(out)
}

/// The ingest entries of `ledger` whose rows make up `dataset@version`,
/// newest first: the version's own, then those of the versions it was
/// appended to.
fn loaded(ledger: &Ledger, dataset: &str, version: u64) -> Vec<Loaded> {
    let mut out: Vec<Loaded> = Vec::new();
    let mut next = Some(version);
    while let Some(v) = next.take() {
        let found = ledger.entries.iter().rev().find_map(|(e, _)| {
            let i = e.ingest.as_ref()?;
            (i.dataset == dataset && i.version == v).then(|| Loaded {
                seq: e.seq,
                at: e.at.clone(),
                operator: e.operator.clone(),
                ingest: i.clone(),
            })
        });
        let Some(l) = found else { break };
        // Versions only ever extend older ones; a loop would be a forged
        // ledger, which verify names, and must not hang this.
        next = l.ingest.appended_to.filter(|b| *b < v);
        out.push(l);
    }
    out
}

/// Run counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub runs: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub refused: u64,
    pub unfinished: u64,
    /// Runs that did not succeed: failed, refused, or never finished.
    pub failures: u64,
    /// Leads emitted by the runs that succeeded.
    pub leads: u64,
}

/// A dataset the selected runs read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DatasetUse {
    pub name: String,
    pub versions: BTreeSet<u64>,
    /// The dataset holds personal data (its schema marks personal fields).
    pub personal: bool,
    /// Personal fields that were within a model's view.
    pub personal_fields: BTreeSet<String>,
    /// Some run saw personal fields in clear.
    pub clear: bool,
}

/// One model at one unit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModelSummary {
    pub model: String,
    pub versions: BTreeSet<String>,
    /// Publisher key of each imported version; `local build` otherwise.
    pub publishers: BTreeSet<String>,
    pub operators: BTreeSet<String>,
    #[serde(flatten)]
    pub counts: Counts,
    pub datasets: Vec<DatasetUse>,
    pub first_run: String,
    pub last_run: String,
}

/// One unit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UnitSummary {
    pub unit: String,
    pub code: Option<String>,
    pub fingerprint: Option<String>,
    pub local: bool,
    pub entries: u64,
    #[serde(flatten)]
    pub counts: Counts,
    /// Datasets read by any model.
    pub datasets: Vec<DatasetUse>,
    pub models: Vec<ModelSummary>,
    /// The last checkpoint.
    pub checkpoint: Option<CheckpointRef>,
}

/// Local builds have no publisher.
pub const LOCAL_BUILD: &str = "local build";

/// `audit report`: per unit and per model, the runs `filter` selects.
pub fn report(store: &Store, filter: &Filter) -> Result<Vec<UnitSummary>> {
    let mut out = Vec::new();
    for ledger in ledgers(store, filter)? {
        // Group the admitted entries by run, keeping order of first sight.
        let mut order: Vec<&str> = Vec::new();
        let mut runs: BTreeMap<&str, Vec<&EntryView>> = BTreeMap::new();
        for (e, _) in &ledger.entries {
            // Model events of `serve`, ingests, trust changes, redactions
            // and disclosures are not runs.
            if !filter.admits(e) || !e.kind.starts_with("run-") {
                continue;
            }
            let id = e.run.run_id.as_str();
            if !runs.contains_key(id) {
                order.push(id);
            }
            runs.entry(id).or_default().push(e);
        }
        let mut unit = UnitSummary {
            unit: ledger.unit.clone(),
            code: ledger.code.clone(),
            fingerprint: ledger.fingerprint.clone(),
            local: ledger.local,
            entries: ledger.entries.len() as u64,
            checkpoint: ledger.checkpoint.clone(),
            ..Default::default()
        };
        let mut models: BTreeMap<String, ModelSummary> = BTreeMap::new();
        let mut unit_datasets: BTreeMap<String, DatasetUse> = BTreeMap::new();
        for id in order {
            let entries = &runs[id];
            let last = entries.last().expect("a run has an entry");
            let terminal = entries.iter().rev().find(|e| e.kind != "run-started");
            let outcome = terminal.map_or("unfinished", |t| t.run.outcome.as_str());
            let selected = match &filter.outcome {
                None => true,
                Some(OutcomeFilter::Unfinished) => outcome == "unfinished",
                Some(OutcomeFilter::Is(o)) => entries.iter().any(|e| &e.run.outcome == o),
            };
            if !selected {
                continue;
            }
            let r = &terminal.unwrap_or(last).run;
            let m = models
                .entry(r.model.name.clone())
                .or_insert_with(|| ModelSummary {
                    model: r.model.name.clone(),
                    first_run: entries[0].at.clone(),
                    ..Default::default()
                });
            m.last_run = last.at.clone();
            for e in entries {
                m.versions.insert(e.run.model.version.clone());
                m.publishers.insert(
                    e.run
                        .model
                        .publisher
                        .clone()
                        .unwrap_or_else(|| LOCAL_BUILD.to_string()),
                );
                m.operators.insert(e.operator.clone());
            }
            for counts in [&mut m.counts, &mut unit.counts] {
                counts.runs += 1;
                match outcome {
                    "succeeded" => {
                        counts.succeeded += 1;
                        counts.leads += r.leads_count.unwrap_or(0);
                    }
                    "failed" => counts.failed += 1,
                    "refused" => counts.refused += 1,
                    _ => counts.unfinished += 1,
                }
                counts.failures = counts.failed + counts.refused + counts.unfinished;
            }
            let mut model_datasets: BTreeMap<String, DatasetUse> =
                m.datasets.drain(..).map(|d| (d.name.clone(), d)).collect();
            for d in &r.datasets {
                for map in [&mut model_datasets, &mut unit_datasets] {
                    let u = map.entry(d.name.clone()).or_insert_with(|| DatasetUse {
                        name: d.name.clone(),
                        ..Default::default()
                    });
                    u.versions.insert(d.version);
                    u.personal |= d.personal || !d.personal_fields.is_empty();
                    u.personal_fields.extend(d.personal_fields.iter().cloned());
                    u.clear |= d.clear_personal && !d.personal_fields.is_empty();
                }
            }
            m.datasets = model_datasets.into_values().collect();
        }
        unit.models = models.into_values().collect();
        unit.datasets = unit_datasets.into_values().collect();
        out.push(unit);
    }
    Ok(out)
}

/// `employers@1,2` with `[personal…]` marks, for tables.
pub fn describe_datasets(datasets: &[DatasetUse]) -> String {
    datasets
        .iter()
        .map(|d| {
            let versions = d
                .versions
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let mut s = format!("{}@{versions}", d.name);
            if d.personal {
                s.push_str(" [PERSONAL");
                if !d.personal_fields.is_empty() {
                    s.push_str(": ");
                    s.push_str(
                        &d.personal_fields
                            .iter()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(","),
                    );
                    s.push_str(if d.clear { ", in clear" } else { ", masked" });
                }
                s.push(']');
            }
            s
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_bounds_read_dates_times_and_offsets() {
        let since = TimeBound::since("2025-03-01").unwrap();
        assert_eq!(since.at.to_rfc3339(), "2025-03-01T00:00:00+08:00");
        let until = TimeBound::until("2025-03-01").unwrap();
        assert_eq!(until.at.to_rfc3339(), "2025-03-02T00:00:00+08:00");
        assert!(!until.inclusive);
        let t = TimeBound::until("2025-03-01T08:30").unwrap();
        assert!(t.inclusive);
        assert_eq!(t.at.to_rfc3339(), "2025-03-01T08:30:00+08:00");
        assert_eq!(
            TimeBound::since("2025-03-01T00:00:00Z")
                .unwrap()
                .at
                .to_rfc3339(),
            "2025-03-01T00:00:00+00:00"
        );
        assert!(TimeBound::since("yesterday").is_err());
        let f = Filter {
            since: Some(since),
            until: Some(until),
            ..Default::default()
        };
        assert!(f.in_time("2025-03-01T23:59:59.999+08:00"));
        assert!(f.in_time("2025-03-01T00:00:00.000+08:00"));
        assert!(!f.in_time("2025-03-02T00:00:00.000+08:00"));
        assert!(!f.in_time("2025-02-28T23:59:59.999+08:00"));
        assert!(!f.in_time("not a time"));
    }

    #[test]
    fn outcomes_parse_and_unknown_ones_are_named() {
        assert_eq!(
            "failed".parse::<OutcomeFilter>(),
            Ok(OutcomeFilter::Is("failed".into()))
        );
        assert_eq!(
            "unfinished".parse::<OutcomeFilter>(),
            Ok(OutcomeFilter::Unfinished)
        );
        assert!("crashed"
            .parse::<OutcomeFilter>()
            .unwrap_err()
            .contains("crashed"));
    }
}
