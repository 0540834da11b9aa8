//! Ledger entries as audit reads them: lenient views that parse entries
//! written by any version of Jiandu (more fields, fewer, or run details of
//! another shape), so old entries answer queries forever.

use serde::{Deserialize, Serialize};

/// The parts of a ledger entry that audit reads. Lenient on purpose: an
/// entry written by another version of Jiandu (more fields, or run details
/// of another shape) still verifies and still answers queries.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct EntryView {
    pub seq: u64,
    #[serde(default)]
    pub prev_hash: String,
    #[serde(default)]
    pub at: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub unit_key: Option<String>,
    #[serde(default)]
    pub operator: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub run: RunView,
    /// A `dataset-ingested` entry's dataset version.
    #[serde(default)]
    pub ingest: Option<IngestView>,
    /// A `text-redacted` entry's target and reason.
    #[serde(default)]
    pub redaction: Option<RedactionView>,
    /// A `dataset-rolled-back` or `dataset-pruned` entry's change.
    #[serde(default)]
    pub dataset: Option<DatasetChangeView>,
    /// What a `personal-data-revealed` entry records in place of `run`.
    #[serde(default)]
    pub disclosure: Option<DisclosureView>,
    /// A `lead-reviewed` entry's action on a lead.
    #[serde(default)]
    pub review: Option<ReviewView>,
    /// A `login-succeeded` or `login-refused` entry's attempt.
    #[serde(default)]
    pub login: Option<LoginView>,
}

/// A person's action on a lead, as audit reads it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ReviewView {
    pub model: String,
    pub subject: String,
    pub action: String,
    pub from: String,
    pub to: String,
    pub reason: Option<String>,
    pub target: Option<String>,
    pub seen_in_run: String,
    /// Set when the person's words are kept beside the entry.
    pub text_sha256: Option<String>,
    pub text_len: Option<u64>,
}

/// A login to the console, as audit reads it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct LoginView {
    pub name: String,
    pub refusal: Option<String>,
    pub failures: Option<u32>,
    pub locked_until: Option<String>,
    pub from: String,
}

/// Personal values shown in clear, as audit reads it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DisclosureView {
    pub command: String,
    pub model: Option<String>,
    /// The dataset (and version) whose rows were shown.
    pub dataset: Option<String>,
    pub status: Option<String>,
    pub output: Option<String>,
    pub leads: u64,
    pub values: u64,
}

/// The run an entry records, as audit reads it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RunView {
    pub run_id: String,
    pub model: ModelView,
    pub datasets: Vec<DatasetView>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub records_read: Option<u64>,
    pub leads_count: Option<u64>,
    pub leads_digest: Option<String>,
    pub leads_snapshot: Option<SnapshotView>,
    pub params: std::collections::BTreeMap<String, String>,
    pub replay_of: Option<String>,
    pub reproduced: Option<bool>,
    pub outcome: String,
    pub error: Option<ErrorView>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SnapshotView {
    pub file: String,
    pub sha256: String,
    pub leads: u64,
}

/// A dataset version an ingest stored, as audit reads it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct IngestView {
    pub dataset: String,
    pub version: u64,
    pub digest: String,
    pub records: u64,
    pub rows: u64,
    pub appended_to: Option<u64>,
    pub source: String,
    pub source_sha256: String,
    pub warnings: u64,
    pub personal: bool,
}

/// A rollback or prune of a dataset, as audit reads it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DatasetChangeView {
    pub dataset: String,
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub digest: Option<String>,
    pub pruned: Vec<PrunedView>,
    pub runs_read: u64,
    pub runs: Vec<String>,
    pub forced: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PrunedView {
    pub version: u64,
    pub digest: String,
    pub records: u64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RedactionView {
    pub seq: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ModelView {
    pub name: String,
    pub version: String,
    pub wasm_sha256: String,
    pub publisher: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DatasetView {
    pub name: String,
    pub version: u64,
    pub digest: String,
    pub clear_personal: bool,
    pub personal: bool,
    pub personal_fields: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ErrorView {
    pub kind: String,
    /// The message when the entry holds it (host text, or an entry written
    /// before model text was kept beside entries).
    pub message: String,
    /// Set when a model's text is kept beside the entry.
    pub message_sha256: Option<String>,
    pub message_len: Option<u64>,
}
