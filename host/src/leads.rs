//! Leads (线索): one per (model, subject), kept across runs.
//!
//! A run that succeeds updates its model's leads in the same transaction as
//! its ledger entry: leads it produced become `new` (first seen) or stay
//! `open`; leads it no longer produces become `resolved`, naming the run that
//! resolved them. This is how a unit shows rectification (整改) worked.

use crate::mask::mask_guess;
use crate::{Error, Result, Store};
use jiandu_sdk::LeadData;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use std::collections::BTreeMap;

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
