//! Leads (线索): one per (model, subject), kept across runs.
//!
//! A run that succeeds updates its model's leads in the same transaction as
//! its ledger entry: leads it produced become `new` (first seen) or stay
//! `open`; leads it no longer produces become `resolved`, naming the run that
//! resolved them. This is how a unit shows rectification (整改) worked.
//!
//! Leads export to CSV and XLSX for case handlers ([`export`]), personal
//! data masked unless the caller asks for it in clear.

use crate::mask::mask_guess;
use crate::{Error, Result, Store};
use jiandu_sdk::LeadData;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
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

/// A lead as stored.
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
    pub first_run: String,
    pub last_run: String,
    #[serde(default)]
    pub resolved_by: Option<String>,
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
    for item in iter {
        let (_, v) = item?;
        let lead: Lead = serde_json::from_slice(&v)
            .map_err(|e| Error::Leads(format!("a stored lead is unreadable: {e}")))?;
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
pub fn digest(leads: &BTreeMap<String, LeadData>) -> String {
    let mut h = Sha256::new();
    for lead in leads.values() {
        let canonical = serde_json::json!({
            "subject": lead.subject,
            "title": lead.title,
            "amount": lead.amount,
            "evidence": lead.evidence.iter().map(|e| [e.name.as_str(), e.value.as_str()]).collect::<Vec<_>>(),
        });
        h.update(serde_json::to_vec(&canonical).expect("json"));
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// The changes a successful run makes to its model's leads.
pub struct Changes {
    writes: Vec<(Vec<u8>, Vec<u8>)>,
    pub new: u64,
    pub open: u64,
    pub resolved: u64,
}

/// Computes the lead updates of a successful run of `model`.
pub fn plan(
    store: &Store,
    model: &str,
    model_version: &str,
    run_id: &str,
    emitted: &BTreeMap<String, LeadData>,
) -> Result<Changes> {
    let now = crate::time::now_text();
    let mut existing: BTreeMap<String, Lead> = BTreeMap::new();
    for lead in list(
        store,
        &Filter {
            model: Some(model.to_string()),
            status: None,
        },
    )? {
        existing.insert(lead.subject.clone(), lead);
    }
    let mut changes = Changes {
        writes: Vec::new(),
        new: 0,
        open: 0,
        resolved: 0,
    };
    for (subject, data) in emitted {
        let prior = existing.remove(subject);
        let status = match &prior {
            Some(p) if p.status != Status::Resolved => Status::Open,
            _ => Status::New,
        };
        match status {
            Status::New => changes.new += 1,
            _ => changes.open += 1,
        }
        let lead = Lead {
            model: model.to_string(),
            model_version: model_version.to_string(),
            subject: subject.clone(),
            subject_personal: data.subject_personal,
            title: data.title.clone(),
            amount: data.amount.clone(),
            evidence: data
                .evidence
                .iter()
                .map(|e| Evidence {
                    name: e.name.clone(),
                    value: e.value.clone(),
                    personal: e.personal,
                })
                .collect(),
            status,
            first_run: match &prior {
                Some(p) if p.status != Status::Resolved => p.first_run.clone(),
                _ => run_id.to_string(),
            },
            last_run: run_id.to_string(),
            resolved_by: None,
            updated_at: now.clone(),
        };
        changes.writes.push((
            key(model, subject),
            serde_json::to_vec(&lead).expect("lead serializes"),
        ));
    }
    for (subject, mut lead) in existing {
        if lead.status == Status::Resolved {
            continue;
        }
        lead.status = Status::Resolved;
        lead.resolved_by = Some(run_id.to_string());
        lead.updated_at = now.clone();
        changes.resolved += 1;
        changes.writes.push((
            key(model, &subject),
            serde_json::to_vec(&lead).expect("lead serializes"),
        ));
    }
    Ok(changes)
}

/// Applies planned changes inside a transaction.
pub fn apply_in(
    tree: &TransactionalTree,
    changes: &Changes,
) -> std::result::Result<(), ConflictableTransactionError<Error>> {
    for (k, v) in &changes.writes {
        tree.insert(k.as_slice(), v.as_slice())?;
    }
    Ok(())
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
