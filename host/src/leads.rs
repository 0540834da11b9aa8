//! Leads (线索): one per (model, subject), kept across runs.
//!
//! A run that succeeds updates its model's leads in the same transaction as
//! its ledger entry: leads it produced become `new` (first seen) or stay
//! `open`; leads it no longer produces become `resolved`, naming the run that
//! resolved them. This is how a unit shows rectification (整改) worked.
//!
//! Leads export to CSV and XLSX for case handlers ([`export`]), personal
//! data masked unless the caller asks for it in clear.
//!
//! # Storage
//!
//! A lead that is not resolved was, by definition, produced by its model's
//! latest successful run: the first run that does not produce it resolves
//! it. So that run is kept once per model rather than in every lead, and a
//! run writes only the leads that change.
//!
//! - `meta["leads/<model>/latest-run"]`: the id (a JSON string) of the
//!   model's latest successful run, written in the transaction that writes
//!   the run's leads and its `run-finished` ledger entry.
//! - `leads["<model>\0<subject>"]`: one record per lead:
//!
//!   ```text
//!   byte 0         format: 1
//!   byte 1         0 = live (produced by the latest run), 1 = resolved
//!   bytes 2..6     n, the length of the lifecycle, big-endian u32
//!   bytes 6..6+n   lifecycle, JSON: first_run, updated_at and, once
//!                  resolved, last_run and resolved_by
//!   bytes 6+n..    content, JSON: model_version, subject_personal, title,
//!                  amount, evidence as [[name, value, personal], …]: what
//!                  the model said about the subject
//!   ```
//!
//! Read back ([`list`]), a live lead's `last_run` is the model's latest run,
//! and its status is `new` when that run is also its `first_run`, else
//! `open`. A run writes a lead only when it is new, comes back after being
//! resolved, is resolved, or its content bytes differ from what the run
//! emitted; a lead produced again unchanged costs one step of a prefix scan
//! and a byte comparison. `updated_at` is therefore when the lead last
//! changed in one of those ways, not when a run last saw it.
//!
//! Records written before this layout, a whole [`Lead`] as one JSON object
//! (first byte `{`), are still read as they are; a run rewrites every such
//! lead that is not resolved in the current layout (it either produces or
//! resolves each of them).
//!
//! [`plan`] reads outside the transaction; [`apply_in`] writes only if the
//! model's latest run is still the one the plan was made against, so two
//! runs of one model committing at once cannot interleave their changes
//! (the caller plans again).

use crate::mask::mask_guess;
use crate::{Error, Result, Store};
use jiandu_sdk::LeadData;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::IVec;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;

/// Where a lead stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Produced by the latest run for the first time (or again after being resolved).
    New,
    /// Produced by the latest run and by earlier ones.
    Open,
    /// No longer produced by the latest run.
    Resolved,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Open => "open",
            Status::Resolved => "resolved",
        }
    }
}

/// One evidence field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub personal: bool,
}

/// A lead as [`list`] returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lead {
    pub model: String,
    pub model_version: String,
    pub subject: String,
    #[serde(default)]
    pub subject_personal: bool,
    pub title: String,
    #[serde(default)]
    pub amount: Option<String>,
    pub evidence: Vec<Evidence>,
    pub status: Status,
    /// The run that first produced the lead (since it was last resolved).
    pub first_run: String,
    /// The last run that produced the lead: the model's latest successful
    /// run unless the lead is resolved.
    pub last_run: String,
    /// The run that no longer produced the lead, when resolved.
    #[serde(default)]
    pub resolved_by: Option<String>,
    /// When the lead last changed: first produced, its content (version,
    /// title, amount, evidence) changed, resolved, or produced again after
    /// being resolved. A run that produces it unchanged leaves this alone.
    pub updated_at: String,
}

impl Lead {
    /// The lead with personal data masked (subject and personal evidence).
    pub fn masked(&self) -> Lead {
        let mut l = self.clone();
        if l.subject_personal {
            l.subject = mask_guess(&l.subject);
        }
        for e in &mut l.evidence {
            if e.personal {
                e.value = mask_guess(&e.value);
            }
        }
        l
    }
}

fn key(model: &str, subject: &str) -> Vec<u8> {
    let mut k = model.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(subject.as_bytes());
    k
}

fn model_prefix(model: &str) -> Vec<u8> {
    key(model, "")
}

/// The model and subject of a key of the `leads` tree.
fn split_key(k: &[u8]) -> Result<(&str, &str)> {
    let text = std::str::from_utf8(k)
        .map_err(|_| Error::Leads(format!("a stored lead key is not UTF-8: {k:?}")))?;
    text.split_once('\0')
        .ok_or_else(|| Error::Leads(format!("stored lead key `{text}` names no subject")))
}

/// Where a model's latest successful run is kept in `meta`.
fn latest_run_key(model: &str) -> String {
    format!("leads/{model}/latest-run")
}

/// The model's latest successful run, if it ever had one.
fn latest_run(store: &Store, model: &str) -> Result<Option<String>> {
    store.get_meta(&latest_run_key(model))
}

const FORMAT: u8 = 1;
const LIVE: u8 = 0;
const RESOLVED: u8 = 1;
const HEADER: usize = 6;

/// The part of a record that the lead's life across runs changes.
#[derive(Debug, Serialize, Deserialize)]
struct Lifecycle<'a> {
    first_run: Cow<'a, str>,
    updated_at: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_run: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resolved_by: Option<Cow<'a, str>>,
}

/// What a model said about a subject, as encoded for comparison: equal
/// bytes, same content.
#[derive(Serialize)]
struct ContentRef<'a> {
    model_version: &'a str,
    subject_personal: bool,
    title: &'a str,
    amount: Option<&'a str>,
    evidence: Vec<EvidenceRef<'a>>,
}

/// An evidence field as `[name, value, personal]`.
#[derive(Serialize)]
struct EvidenceRef<'a>(&'a str, &'a str, bool);

#[derive(Deserialize)]
struct Content {
    model_version: String,
    subject_personal: bool,
    title: String,
    amount: Option<String>,
    evidence: Vec<(String, String, bool)>,
}

impl<'a> ContentRef<'a> {
    fn emitted(model_version: &'a str, data: &'a LeadData) -> ContentRef<'a> {
        ContentRef {
            model_version,
            subject_personal: data.subject_personal,
            title: &data.title,
            amount: data.amount.as_deref(),
            evidence: data
                .evidence
                .iter()
                .map(|e| EvidenceRef(&e.name, &e.value, e.personal))
                .collect(),
        }
    }

    fn of(lead: &'a Lead) -> ContentRef<'a> {
        ContentRef {
            model_version: &lead.model_version,
            subject_personal: lead.subject_personal,
            title: &lead.title,
            amount: lead.amount.as_deref(),
            evidence: lead
                .evidence
                .iter()
                .map(|e| EvidenceRef(&e.name, &e.value, e.personal))
                .collect(),
        }
    }

    /// Replaces `out` with the encoded content.
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.clear();
        serde_json::to_writer(out, self).expect("content serializes");
    }
}

/// A stored record, split but not decoded.
enum Stored<'a> {
    Current {
        resolved: bool,
        lifecycle: &'a [u8],
        content: &'a [u8],
    },
    /// A whole [`Lead`] as JSON, as written before the current layout.
    Legacy(&'a [u8]),
}

impl<'a> Stored<'a> {
    fn parse(value: &'a [u8]) -> std::result::Result<Stored<'a>, String> {
        match value.first() {
            Some(b'{') => Ok(Stored::Legacy(value)),
            Some(&FORMAT) if value.len() >= HEADER => {
                let resolved = match value[1] {
                    LIVE => false,
                    RESOLVED => true,
                    other => return Err(format!("unknown state {other}")),
                };
                let n = u32::from_be_bytes(value[2..HEADER].try_into().expect("4 bytes")) as usize;
                if value.len() - HEADER < n {
                    return Err(format!(
                        "lifecycle of {n} bytes in a record of {} bytes",
                        value.len()
                    ));
                }
                let (lifecycle, content) = value[HEADER..].split_at(n);
                Ok(Stored::Current {
                    resolved,
                    lifecycle,
                    content,
                })
            }
            Some(&FORMAT) => Err(format!("a record of {} bytes", value.len())),
            Some(other) => Err(format!("unknown record format {other}")),
            None => Err("an empty record".to_string()),
        }
    }
}

fn record(resolved: bool, lifecycle: &Lifecycle, content: &[u8]) -> IVec {
    let lifecycle = serde_json::to_vec(lifecycle).expect("lifecycle serializes");
    let n = u32::try_from(lifecycle.len()).expect("a lifecycle is run ids and a time");
    let mut out = Vec::with_capacity(HEADER + lifecycle.len() + content.len());
    out.push(FORMAT);
    out.push(if resolved { RESOLVED } else { LIVE });
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(&lifecycle);
    out.extend_from_slice(content);
    out.into()
}

/// Decodes the stored lead `model`/`subject`; `latest` is the model's
/// latest successful run.
fn decode(model: &str, subject: &str, value: &[u8], latest: Option<&str>) -> Result<Lead> {
    let unreadable =
        |e: String| Error::Leads(format!("stored lead {model}/{subject} is unreadable: {e}"));
    match Stored::parse(value).map_err(unreadable)? {
        Stored::Legacy(json) => serde_json::from_slice(json).map_err(|e| unreadable(e.to_string())),
        Stored::Current {
            resolved,
            lifecycle,
            content,
        } => {
            let life: Lifecycle = serde_json::from_slice(lifecycle)
                .map_err(|e| unreadable(format!("lifecycle: {e}")))?;
            let content: Content =
                serde_json::from_slice(content).map_err(|e| unreadable(format!("content: {e}")))?;
            let (status, last_run, resolved_by) = if resolved {
                let last_run = life
                    .last_run
                    .ok_or_else(|| unreadable("resolved without a last run".into()))?;
                let resolved_by = life
                    .resolved_by
                    .ok_or_else(|| unreadable("resolved by no run".into()))?;
                (
                    Status::Resolved,
                    last_run.into_owned(),
                    Some(resolved_by.into_owned()),
                )
            } else {
                let latest = latest.ok_or_else(|| {
                    Error::Leads(format!(
                        "stored lead {model}/{subject} is open but `{model}` has no latest run \
                         (meta `{}`)",
                        latest_run_key(model)
                    ))
                })?;
                let status = if life.first_run == latest {
                    Status::New
                } else {
                    Status::Open
                };
                (status, latest.to_string(), None)
            };
            Ok(Lead {
                model: model.to_string(),
                model_version: content.model_version,
                subject: subject.to_string(),
                subject_personal: content.subject_personal,
                title: content.title,
                amount: content.amount,
                evidence: content
                    .evidence
                    .into_iter()
                    .map(|(name, value, personal)| Evidence {
                        name,
                        value,
                        personal,
                    })
                    .collect(),
                status,
                first_run: life.first_run.into_owned(),
                last_run,
                resolved_by,
                updated_at: life.updated_at.into_owned(),
            })
        }
    }
}

/// Which leads to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub model: Option<String>,
    pub status: Option<Status>,
}

/// Leads matching `filter`, by model then subject.
pub fn list(store: &Store, filter: &Filter) -> Result<Vec<Lead>> {
    let iter = match &filter.model {
        Some(m) => store.leads.scan_prefix(model_prefix(m)),
        None => store.leads.iter(),
    };
    let mut out = Vec::new();
    // Keys come by model: read each model's latest run once.
    let mut latest: Option<(String, Option<String>)> = None;
    for item in iter {
        let (k, v) = item?;
        if let (Some(want), Ok(Stored::Current { resolved, .. })) =
            (filter.status, Stored::parse(&v))
        {
            if resolved != (want == Status::Resolved) {
                continue;
            }
        }
        let (model, subject) = split_key(&k)?;
        if latest.as_ref().is_none_or(|(m, _)| m != model) {
            latest = Some((model.to_string(), latest_run(store, model)?));
        }
        let run = latest.as_ref().and_then(|(_, run)| run.as_deref());
        let lead = decode(model, subject, &v, run)?;
        if filter.status.is_none_or(|s| s == lead.status) {
            out.push(lead);
        }
    }
    Ok(out)
}

/// File formats of a leads export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// CSV in UTF-8 with a BOM (Excel opens it with the Chinese intact).
    Csv,
    /// An Excel workbook, one sheet.
    Xlsx,
}

/// The fixed columns of an export; one column per evidence field follows.
pub const EXPORT_COLUMNS: &[&str] = &[
    "model",
    "model_version",
    "subject",
    "status",
    "amount",
    "title",
    "first_run",
    "last_run",
    "resolved_by",
    "updated_at",
];

/// `leads` as a table: the fixed columns, then one column per evidence
/// field in the order first met. Personal data is masked unless `clear`.
pub fn export_table(leads: &[Lead], clear: bool) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header: Vec<String> = EXPORT_COLUMNS.iter().map(|c| c.to_string()).collect();
    let mut evidence_columns: BTreeMap<String, usize> = BTreeMap::new();
    for l in leads {
        for e in &l.evidence {
            if !evidence_columns.contains_key(&e.name) {
                evidence_columns.insert(e.name.clone(), header.len());
                header.push(e.name.clone());
            }
        }
    }
    let rows = leads
        .iter()
        .map(|l| if clear { l.clone() } else { l.masked() })
        .map(|l| {
            let mut row = vec![
                l.model,
                l.model_version,
                l.subject,
                l.status.as_str().to_string(),
                l.amount.unwrap_or_default(),
                l.title,
                l.first_run,
                l.last_run,
                l.resolved_by.unwrap_or_default(),
                l.updated_at,
            ];
            row.resize(header.len(), String::new());
            for e in l.evidence {
                row[evidence_columns[&e.name]] = e.value;
            }
            row
        })
        .collect();
    (header, rows)
}

/// Writes `leads` to `path` as CSV or XLSX, personal data masked unless
/// `clear`. Returns how many leads were written.
pub fn export(leads: &[Lead], format: ExportFormat, path: &Path, clear: bool) -> Result<usize> {
    let (header, rows) = export_table(leads, clear);
    match format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
            w.write_record(&header).map_err(|e| Error::file(path, e))?;
            for r in &rows {
                w.write_record(r.iter().map(|v| csv_safe(v).into_owned()))
                    .map_err(|e| Error::file(path, e))?;
            }
            let bytes = w.into_inner().map_err(|e| Error::file(path, e))?;
            std::fs::write(path, bytes).map_err(|e| Error::file(path, e))?;
        }
        ExportFormat::Xlsx => {
            write_xlsx(path, &header, &rows).map_err(|e| Error::file(path, e))?;
        }
    }
    Ok(rows.len())
}

/// A cell that a spreadsheet would run as a formula (`=…`, `+…`, `@…`, or
/// `-…` that is not a number) gets a leading `'`: lead text comes from
/// models and must not execute when a case handler opens the file.
fn csv_safe(value: &str) -> std::borrow::Cow<'_, str> {
    let risky = match value.chars().next() {
        Some('=' | '+' | '@' | '\t' | '\r') => true,
        Some('-') => value.parse::<f64>().is_err(),
        _ => false,
    };
    if risky {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

fn write_xlsx(
    path: &Path,
    header: &[String],
    rows: &[Vec<String>],
) -> std::result::Result<(), rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format("#,##0.00");
    let ws = book.add_worksheet();
    ws.set_name("线索")?;
    let amount_col = EXPORT_COLUMNS
        .iter()
        .position(|c| *c == "amount")
        .expect("amount column");
    let title_col = EXPORT_COLUMNS
        .iter()
        .position(|c| *c == "title")
        .expect("title column");
    for (c, h) in header.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, h, &bold)?;
        ws.set_column_width(c as u16, if c == title_col { 48 } else { 18 })?;
    }
    ws.set_freeze_panes(1, 0)?;
    for (r, row) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (c, value) in row.iter().enumerate() {
            if value.is_empty() {
                continue;
            }
            // Amounts as numbers so that case handlers can add them up;
            // the exact text stays in CSV exports and in the store.
            match value.parse::<f64>() {
                Ok(n) if c == amount_col => ws.write_number_with_format(r, c as u16, n, &money)?,
                _ => ws.write_string(r, c as u16, value)?,
            };
        }
    }
    book.save(path)
}

/// sha256 over a run's leads in subject order: the ledger's `leads_digest`.
///
/// Each lead is hashed as the JSON object
/// `{"amount":…,"evidence":[[name,value],…],"subject":…,"title":…}` (keys
/// in this order) followed by a newline.
pub fn digest(leads: &BTreeMap<String, LeadData>) -> String {
    /// Field order is the digest's: do not reorder.
    #[derive(Serialize)]
    struct Canonical<'a> {
        amount: &'a Option<String>,
        evidence: Vec<[&'a str; 2]>,
        subject: &'a str,
        title: &'a str,
    }
    let mut h = Sha256::new();
    for lead in leads.values() {
        let canonical = Canonical {
            amount: &lead.amount,
            evidence: lead
                .evidence
                .iter()
                .map(|e| [e.name.as_str(), e.value.as_str()])
                .collect(),
            subject: &lead.subject,
            title: &lead.title,
        };
        serde_json::to_writer(&mut h, &canonical).expect("json");
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// The changes a successful run makes to its model's leads, and the
/// model's latest run they were planned against.
pub struct Changes {
    latest_key: String,
    /// `meta[latest_key]` when planned.
    base: Option<IVec>,
    /// `meta[latest_key]` once applied: this run.
    run: IVec,
    writes: Vec<(IVec, IVec)>,
    /// Leads produced for the first time, or again after being resolved.
    pub new: u64,
    /// Leads produced again (changed or not).
    pub open: u64,
    /// Leads no longer produced.
    pub resolved: u64,
}

impl Changes {
    /// How many lead records applying the changes writes.
    pub fn writes(&self) -> usize {
        self.writes.len()
    }
}

/// Computes the lead updates of a successful run `run_id` of `model` that
/// produced `emitted`, writing only what changes (see the module doc).
///
/// A merge of the model's stored leads, in key order, with `emitted`, in
/// subject order: the stored content of a lead produced again is compared
/// as bytes, and a record is decoded only when its lead changes.
pub fn plan(
    store: &Store,
    model: &str,
    model_version: &str,
    run_id: &str,
    emitted: &BTreeMap<String, LeadData>,
) -> Result<Changes> {
    let latest_key = latest_run_key(model);
    // Read before the leads: a run that commits while they are scanned
    // changes this value, and `apply_in` then refuses the plan.
    let base = store.meta.get(&latest_key)?;
    let latest: Option<String> = match &base {
        None => None,
        Some(v) => Some(
            serde_json::from_slice(v)
                .map_err(|e| Error::Leads(format!("meta `{latest_key}` is unreadable: {e}")))?,
        ),
    };
    let mut planner = Planner {
        model,
        model_version,
        run_id,
        now: crate::time::now_text(),
        latest,
        content: Vec::new(),
        changes: Changes {
            run: serde_json::to_vec(run_id)
                .expect("run id serializes")
                .into(),
            latest_key,
            base,
            writes: Vec::new(),
            new: 0,
            open: 0,
            resolved: 0,
        },
    };
    let prefix = model_prefix(model);
    let mut stored = store.leads.scan_prefix(&prefix);
    let mut emitted = emitted.iter();
    let mut next_stored = stored.next().transpose()?;
    let mut next_emitted = emitted.next();
    loop {
        let step = match (&next_stored, next_emitted) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((k, _)), Some((subject, _))) => k[prefix.len()..].cmp(subject.as_bytes()),
        };
        match step {
            Ordering::Less => {
                let (k, v) = next_stored.take().expect("a stored lead is next");
                planner.not_produced(k, &v)?;
                next_stored = stored.next().transpose()?;
            }
            Ordering::Greater => {
                let (subject, data) = next_emitted.expect("an emitted lead is next");
                planner.first_seen(subject, data);
                next_emitted = emitted.next();
            }
            Ordering::Equal => {
                let (k, v) = next_stored.take().expect("a stored lead is next");
                let (_, data) = next_emitted.expect("an emitted lead is next");
                planner.produced_again(k, &v, data)?;
                next_stored = stored.next().transpose()?;
                next_emitted = emitted.next();
            }
        }
    }
    Ok(planner.changes)
}

/// [`plan`], one lead at a time.
struct Planner<'a> {
    model: &'a str,
    model_version: &'a str,
    run_id: &'a str,
    now: String,
    /// The model's latest successful run before this one.
    latest: Option<String>,
    /// The encoded content of the emitted lead at hand.
    content: Vec<u8>,
    changes: Changes,
}

impl Planner<'_> {
    fn unreadable(&self, subject: &str, e: impl std::fmt::Display) -> Error {
        Error::Leads(format!(
            "stored lead {}/{subject} is unreadable: {e}",
            self.model
        ))
    }

    fn lifecycle<'v>(&self, subject: &str, bytes: &'v [u8]) -> Result<Lifecycle<'v>> {
        serde_json::from_slice(bytes)
            .map_err(|e| self.unreadable(subject, format!("lifecycle: {e}")))
    }

    /// The live record of a lead first seen by this run, with the content
    /// at hand.
    fn fresh(&self) -> IVec {
        let life = Lifecycle {
            first_run: Cow::Borrowed(self.run_id),
            updated_at: Cow::Borrowed(&self.now),
            last_run: None,
            resolved_by: None,
        };
        record(false, &life, &self.content)
    }

    /// A lead that was never stored: new.
    fn first_seen(&mut self, subject: &str, data: &LeadData) {
        ContentRef::emitted(self.model_version, data).encode_into(&mut self.content);
        self.changes.new += 1;
        let value = self.fresh();
        self.changes
            .writes
            .push((key(self.model, subject).into(), value));
    }

    /// A stored lead the run did not produce: resolved, unless it already is.
    fn not_produced(&mut self, key: IVec, value: &[u8]) -> Result<()> {
        let subject = split_key(&key)?.1;
        let stored = Stored::parse(value).map_err(|e| self.unreadable(subject, e))?;
        let (first_run, last_run, content) = match stored {
            Stored::Current { resolved: true, .. } => return Ok(()),
            Stored::Current {
                resolved: false,
                lifecycle,
                content,
            } => {
                let life = self.lifecycle(subject, lifecycle)?;
                let last_run = self.latest.clone().ok_or_else(|| {
                    self.unreadable(
                        subject,
                        format!("open, but `{}` has no latest run", self.model),
                    )
                })?;
                (life.first_run, last_run, Cow::Borrowed(content))
            }
            Stored::Legacy(_) => {
                let old = decode(self.model, subject, value, None)?;
                if old.status == Status::Resolved {
                    return Ok(());
                }
                let mut content = Vec::new();
                ContentRef::of(&old).encode_into(&mut content);
                (Cow::Owned(old.first_run), old.last_run, Cow::Owned(content))
            }
        };
        let life = Lifecycle {
            first_run,
            updated_at: Cow::Borrowed(&self.now),
            last_run: Some(Cow::Owned(last_run)),
            resolved_by: Some(Cow::Borrowed(self.run_id)),
        };
        let value = record(true, &life, &content);
        self.changes.resolved += 1;
        self.changes.writes.push((key, value));
        Ok(())
    }

    /// A stored lead the run produced again: open if it was live, else new
    /// again; written only if it was resolved or its content changed (or
    /// to carry a record of an earlier layout over).
    fn produced_again(&mut self, key: IVec, value: &[u8], data: &LeadData) -> Result<()> {
        ContentRef::emitted(self.model_version, data).encode_into(&mut self.content);
        let subject = split_key(&key)?.1;
        let stored = Stored::parse(value).map_err(|e| self.unreadable(subject, e))?;
        let (first_run, updated_at) = match stored {
            Stored::Current {
                resolved: false,
                content,
                ..
            } if content == self.content.as_slice() => {
                self.changes.open += 1;
                return Ok(());
            }
            Stored::Current {
                resolved: false,
                lifecycle,
                ..
            } => {
                let life = self.lifecycle(subject, lifecycle)?;
                (life.first_run.into_owned(), self.now.clone())
            }
            Stored::Current { resolved: true, .. } => {
                self.changes.new += 1;
                let value = self.fresh();
                self.changes.writes.push((key, value));
                return Ok(());
            }
            Stored::Legacy(_) => {
                let old = decode(self.model, subject, value, None)?;
                if old.status == Status::Resolved {
                    self.changes.new += 1;
                    let value = self.fresh();
                    self.changes.writes.push((key, value));
                    return Ok(());
                }
                let mut before = Vec::new();
                ContentRef::of(&old).encode_into(&mut before);
                let updated_at = if before == self.content {
                    old.updated_at
                } else {
                    self.now.clone()
                };
                (old.first_run, updated_at)
            }
        };
        let life = Lifecycle {
            first_run: Cow::Owned(first_run),
            updated_at: Cow::Owned(updated_at),
            last_run: None,
            resolved_by: None,
        };
        let value = record(false, &life, &self.content);
        self.changes.open += 1;
        self.changes.writes.push((key, value));
        Ok(())
    }
}

/// Whether [`apply_in`] wrote the changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Written,
    /// Another run of the model committed since the changes were planned:
    /// nothing was written; plan again.
    Stale,
}

/// Applies planned changes inside a transaction over the `leads` and `meta`
/// trees, making the run the model's latest; writes nothing if another run
/// of the model committed since [`plan`].
pub fn apply_in(
    leads: &TransactionalTree,
    meta: &TransactionalTree,
    changes: &Changes,
) -> std::result::Result<Applied, ConflictableTransactionError<Error>> {
    if meta.get(&changes.latest_key)? != changes.base {
        return Ok(Applied::Stale);
    }
    for (k, v) in &changes.writes {
        leads.insert(k.clone(), v.clone())?;
    }
    meta.insert(changes.latest_key.as_bytes(), changes.run.clone())?;
    Ok(Applied::Written)
}

/// Cuts text to at most `max` bytes on a character boundary, marking the cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead_data(subject: &str, amount: Option<&str>, evidence: &[(&str, &str)]) -> LeadData {
        LeadData {
            subject: subject.into(),
            subject_personal: false,
            title: format!("「{subject}」未足额缴纳\n\"引号\""),
            amount: amount.map(str::to_string),
            evidence: evidence
                .iter()
                .map(|(n, v)| jiandu_sdk::EvidenceData {
                    name: n.to_string(),
                    value: v.to_string(),
                    personal: false,
                })
                .collect(),
        }
    }

    #[test]
    fn digest_hashes_the_canonical_json_of_each_lead() {
        let leads: BTreeMap<String, LeadData> = [
            lead_data(
                "91A",
                Some("12.50"),
                &[("staff", "120"), ("名称", "阿克苏")],
            ),
            lead_data("91B", None, &[]),
        ]
        .into_iter()
        .map(|l| (l.subject.clone(), l))
        .collect();
        // The ledger's `leads_digest` of runs already recorded: the bytes
        // must not change.
        let mut h = Sha256::new();
        for lead in leads.values() {
            let canonical = serde_json::json!({
                "subject": lead.subject,
                "title": lead.title,
                "amount": lead.amount,
                "evidence": lead.evidence.iter().map(|e| [e.name.as_str(), e.value.as_str()]).collect::<Vec<_>>(),
            });
            h.update(serde_json::to_vec(&canonical).unwrap());
            h.update(b"\n");
        }
        assert_eq!(digest(&leads), hex::encode(h.finalize()));
    }

    #[test]
    fn a_damaged_record_is_named_not_decoded() {
        let err = |value: &[u8]| match decode("m", "s", value, Some("r")) {
            Err(Error::Leads(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(err(b"").contains("m/s is unreadable: an empty record"));
        assert!(err(&[FORMAT, LIVE, 0]).contains("a record of 3 bytes"));
        assert!(err(&[FORMAT, 7, 0, 0, 0, 0]).contains("unknown state 7"));
        assert!(err(&[FORMAT, LIVE, 0, 0, 1, 0, b'{']).contains("lifecycle of 256 bytes"));
        assert!(err(&[9]).contains("unknown record format 9"));
        let life = Lifecycle {
            first_run: "r".into(),
            updated_at: "t".into(),
            last_run: None,
            resolved_by: None,
        };
        assert!(err(&record(false, &life, b"{}")).contains("content: missing field"));
        assert!(err(&record(true, &life, b"{}")).contains("content"));
    }

    #[test]
    fn a_record_keeps_content_bytes_as_encoded() {
        let data = lead_data("91A", Some("1.00"), &[("staff", "120")]);
        let mut content = Vec::new();
        ContentRef::emitted("1.2.0", &data).encode_into(&mut content);
        let life = Lifecycle {
            first_run: "r1".into(),
            updated_at: "t".into(),
            last_run: None,
            resolved_by: None,
        };
        let value = record(false, &life, &content);
        match Stored::parse(&value).unwrap() {
            Stored::Current {
                resolved: false,
                content: stored,
                ..
            } => assert_eq!(stored, content.as_slice()),
            _ => panic!("not a live record"),
        }
        let lead = decode("m", "91A", &value, Some("r2")).unwrap();
        assert_eq!((lead.status, lead.last_run.as_str()), (Status::Open, "r2"));
        assert_eq!(lead.model_version, "1.2.0");
        assert_eq!(lead.title, data.title);
        assert_eq!(lead.evidence[0].value, "120");
        let mut again = Vec::new();
        ContentRef::of(&lead).encode_into(&mut again);
        assert_eq!(again, content, "a decoded lead encodes to the same bytes");
    }

    #[test]
    fn shorten_respects_char_boundaries() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("残保金", 4), "残…");
    }

    #[test]
    fn csv_cells_that_would_run_as_formulas_are_quoted() {
        assert_eq!(csv_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_safe("-12.50"), "-12.50");
        assert_eq!(csv_safe("-cmd"), "'-cmd");
        assert_eq!(csv_safe("张*"), "张*");
    }

    #[test]
    fn export_table_has_a_column_per_evidence_field_and_masks_by_default() {
        let lead = |subject: &str, evidence: &[(&str, &str, bool)]| Lead {
            model: "m".into(),
            model_version: "1".into(),
            subject: subject.into(),
            subject_personal: true,
            title: "t".into(),
            amount: Some("1.00".into()),
            evidence: evidence
                .iter()
                .map(|(n, v, p)| Evidence {
                    name: n.to_string(),
                    value: v.to_string(),
                    personal: *p,
                })
                .collect(),
            status: Status::New,
            first_run: "r".into(),
            last_run: "r".into(),
            resolved_by: None,
            updated_at: "t".into(),
        };
        let leads = [
            lead("11010519491231002X", &[("score", "60", false)]),
            lead(
                "11010519491231002X",
                &[("name", "张三", true), ("score", "70", false)],
            ),
        ];
        let (header, rows) = export_table(&leads, false);
        assert_eq!(&header[EXPORT_COLUMNS.len()..], ["score", "name"]);
        assert_eq!(rows[0][2], "110105********002X");
        assert_eq!(rows[0][EXPORT_COLUMNS.len() + 1], "");
        assert_eq!(rows[1][EXPORT_COLUMNS.len()..], ["70", "张*"]);
        let (_, clear) = export_table(&leads, true);
        assert_eq!(clear[1][2], "11010519491231002X");
        assert_eq!(clear[1][EXPORT_COLUMNS.len() + 1], "张三");
    }

    #[test]
    fn masked_hides_personal_fields_only() {
        let lead = Lead {
            model: "m".into(),
            model_version: "1".into(),
            subject: "11010519491231002X".into(),
            subject_personal: true,
            title: "t".into(),
            amount: None,
            evidence: vec![
                Evidence {
                    name: "name".into(),
                    value: "张三".into(),
                    personal: true,
                },
                Evidence {
                    name: "staff".into(),
                    value: "120".into(),
                    personal: false,
                },
            ],
            status: Status::New,
            first_run: "r".into(),
            last_run: "r".into(),
            resolved_by: None,
            updated_at: "t".into(),
        };
        let m = lead.masked();
        assert_eq!(m.subject, "110105********002X");
        assert_eq!(m.evidence[0].value, "张*");
        assert_eq!(m.evidence[1].value, "120");
    }
}
