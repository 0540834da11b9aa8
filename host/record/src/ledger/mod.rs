//! The ledger: an append-only, hash-chained, signed record of every run.
//!
//! Entry `n` is stored under its big-endian sequence number as canonical
//! JSON bytes. Its hash is the sha256 of exactly those bytes; entry `n + 1`
//! carries it as `prev_hash`, and `meta["ledger/head"]` carries the hash of
//! the last entry, so editing any byte of any entry — the last one included —
//! breaks a link that `verify` finds and names.
//!
//! When the store has a unit (`jiandu unit init`), each entry names the
//! unit's key fingerprint (`unit_key`, covered by the hash) and is signed:
//! the seal kept beside it in the `ledger_sig` tree holds the entry hash and
//! the unit's Ed25519 signature of it. The seal is written in the same
//! transaction as the entry; the bytes the hash covers are unchanged by it.
//! Entries written before the unit existed stay unsigned; once one entry is
//! signed, every later one must be. The head ([`head`]) carries the Merkle
//! frontier of the entries and the unit's signature; with every
//! [`checkpoint::EVERY`]th entry the same transaction writes
//! a signed checkpoint (see [`crate::audit`]). Appending reads nothing
//! but the head: its cost does not grow with the ledger.
//!
//! A run writes a `run-started` entry before the model runs (if that cannot
//! be written — including when the unit's key cannot be read — the run does
//! not happen) and a `run-finished` entry after, in the same transaction
//! that points the model's leads at the run's snapshot file
//! ([`crate::leads`]); a crash in between stays visible as a run that started and
//! never finished. Each dataset version stored is a `dataset-ingested`
//! entry ([`IngestRecord`]).
//!
//! Text a model chose — a panic message, its error text, a backtrace naming
//! its functions, what its `describe` said — may carry personal data, and
//! the chain is forever. So it is kept beside the entry ([`aside`]): the
//! entry records only a salted sha256 of it and its length, and
//! `jiandu audit redact` can remove it later, on the record (a
//! `text-redacted` entry), without breaking the chain.

pub mod aside;
pub mod checkpoint;
pub mod head;
pub mod merkle;
pub mod view;

use crate::{Error, Result, Store};
use head::{Head, HEAD_KEY};
use jiandu_registry::keys::{PublicKey, UnitKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;
use std::collections::BTreeMap;

/// `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    RunStarted,
    RunFinished,
    RunRefused,
    /// `jiandu serve` loaded a model (`run.model`).
    ModelLoaded,
    /// `jiandu serve` swapped in a new version (`run.model`) for
    /// `run.replaces`.
    ModelReloaded,
    /// `jiandu serve` refused a new version (`run.model`, reason in
    /// `run.error`); `run.replaces` keeps serving.
    ModelRejected,
    /// `jiandu serve` unloaded a removed model (`run.model`).
    ModelUnloaded,
    /// A dataset version was stored by `jiandu dataset ingest` (`ingest`).
    DatasetIngested,
    /// The model text kept beside an earlier entry was removed
    /// (`redaction`).
    TextRedacted,
    /// `jiandu audit replay` is about to run a recorded run again
    /// (`run.replay_of`), on the data it read, keeping no leads.
    ReplayStarted,
    /// The replay ended; `run.reproduced` says whether it matched.
    ReplayFinished,
    /// `jiandu trust add`: a publisher key was trusted (`run.params`:
    /// `fingerprint`, `key`, `unit`, `code`).
    TrustAdded,
    /// `jiandu trust remove`: a publisher key is no longer trusted
    /// (`run.params` as for `trust-added`).
    TrustRemoved,
    /// A person was shown personal values in clear (`disclosure`): not a
    /// run.
    PersonalDataRevealed,
    /// `jiandu dataset rollback` made an earlier version current
    /// (`dataset`).
    DatasetRolledBack,
    /// `jiandu dataset prune` removed old versions (`dataset`).
    DatasetPruned,
    /// A person acted on a lead in the console (`review`): confirmed it
    /// as a case, dismissed, transferred or assigned it, or wrote a note.
    LeadReviewed,
    /// A person logged in to the console (`login`).
    LoginSucceeded,
    /// A login to the console was refused (`login`, with the reason).
    LoginRefused,
}

impl Kind {
    /// Whether the entry is about a run (not a model event of `serve`).
    pub fn is_run(&self) -> bool {
        matches!(
            self,
            Kind::RunStarted | Kind::RunFinished | Kind::RunRefused
        )
    }

    /// The kind as entries spell it (`run-finished`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::RunStarted => "run-started",
            Kind::RunFinished => "run-finished",
            Kind::RunRefused => "run-refused",
            Kind::ModelLoaded => "model-loaded",
            Kind::ModelReloaded => "model-reloaded",
            Kind::ModelRejected => "model-rejected",
            Kind::ModelUnloaded => "model-unloaded",
            Kind::DatasetIngested => "dataset-ingested",
            Kind::TextRedacted => "text-redacted",
            Kind::ReplayStarted => "replay-started",
            Kind::ReplayFinished => "replay-finished",
            Kind::TrustAdded => "trust-added",
            Kind::TrustRemoved => "trust-removed",
            Kind::PersonalDataRevealed => "personal-data-revealed",
            Kind::DatasetRolledBack => "dataset-rolled-back",
            Kind::DatasetPruned => "dataset-pruned",
            Kind::LeadReviewed => "lead-reviewed",
            Kind::LoginSucceeded => "login-succeeded",
            Kind::LoginRefused => "login-refused",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    #[default]
    Started,
    Succeeded,
    Failed,
    Refused,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
        }
    }
}

/// The model a run used.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ModelRef {
    pub name: String,
    pub version: String,
    pub wasm_sha256: String,
    /// Publisher of an imported model; `None` for a locally built one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// A scripted model's plan: `wasm_sha256` is then the interpreter's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanRef>,
}

/// The rule plan a scripted model's run interpreted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRef {
    /// The plan file beside `model.toml`.
    pub file: String,
    /// SHA-256 of the RFC 8785 canonical JSON of the parsed plan: what the
    /// rule is, whatever its layout and comments.
    pub sha256: String,
}

/// A dataset version a run read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRef {
    pub name: String,
    pub version: u64,
    pub digest: String,
    /// Whether the model saw personal fields in clear.
    pub clear_personal: bool,
    /// Whether the dataset's schema marks any field as personal data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub personal: bool,
    /// The personal fields within the model's view (masked unless
    /// `clear_personal`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub personal_fields: Vec<String>,
    /// Segments the model had read in earlier runs (its `scan_new` cursor):
    /// what an incremental scan skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<crate::dataset::SegmentId>,
}

/// Why a run failed, was refused, or a model was rejected.
///
/// Text a model chose is not here but beside the entry ([`aside`]); the
/// entry holds its salted sha256 and length. Entries written before that
/// (and host text, such as a refusal's reason) hold `message` itself.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// `fuel-exhausted`, `wall-time`, `panic`, `trap`, `model-error`,
    /// `load`, `refused`, `rejected`, `host-error`, … (see the README).
    pub kind: String,
    /// Text the host wrote, kept in the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// sha256 of the salt kept beside the text followed by the text
    /// ([`aside::commitment`]): the salt makes a redacted text impossible
    /// to confirm by guessing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_sha256: Option<String>,
    /// Bytes of the text kept beside the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_len: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
}

/// Why a run stopped, as the record takes it from whoever stopped it (the
/// sandbox, the policy, the host): the record's own type, so that the
/// engine's types can change without changing what entries hold.
#[derive(Debug, Clone, Copy)]
pub struct Stopped<'a> {
    pub kind: &'a str,
    pub message: &'a str,
    pub limit: Option<u64>,
    pub used: Option<u64>,
}

/// The limits a run ran under, as entries record them. Every field is
/// optional on reading, so entries written with fewer or more limits
/// still parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsRecord {
    pub memory_mib: u64,
    pub fuel: u64,
    pub wall_seconds: u64,
    pub stack_kib: u64,
    pub max_leads: u64,
    pub max_lead_bytes: u64,
    /// Absent from entries written before it existed (their runs counted
    /// lead bytes against `memory_mib`).
    #[serde(skip_serializing_if = "is_zero")]
    pub max_lead_mib: u64,
    pub max_log_lines: u64,
}

/// Failure kinds whose message the host composes from its own decisions
/// (policy, parameters, `model.toml`) before any model code runs: kept in
/// the entry. Every other message may quote the model (its panic, error,
/// backtrace, `describe`, or a lead it emitted, inside a host error).
const HOST_TEXT_KINDS: &[&str] = &["refused"];

impl ErrorRecord {
    /// `failure` as recorded: its kind and limits in the entry, and its
    /// message in the entry when the host alone wrote it, else returned to
    /// be kept beside the entry (as [`Draft::model_text`]).
    pub fn of(failure: Stopped<'_>) -> (ErrorRecord, Option<String>) {
        ErrorRecord::new(
            failure.kind,
            failure.message.to_string(),
            failure.limit,
            failure.used,
        )
    }

    /// A failure of `kind` with `message` (see [`ErrorRecord::of`]).
    pub fn new(
        kind: &str,
        message: String,
        limit: Option<u64>,
        used: Option<u64>,
    ) -> (ErrorRecord, Option<String>) {
        let host = HOST_TEXT_KINDS.contains(&kind);
        let record = ErrorRecord {
            kind: kind.to_string(),
            message: host.then(|| message.clone()),
            message_sha256: None,
            message_len: None,
            limit,
            used,
        };
        (record, (!host).then_some(message))
    }
}

/// The leads snapshot a successful run left (`<store>/leads/<model>/<file>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRef {
    pub file: String,
    /// sha256 of the whole file.
    pub sha256: String,
    /// Leads in it, resolved ones included.
    pub leads: u64,
}

/// The record of one run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub model: ModelRef,
    pub datasets: Vec<DatasetRef>,
    pub params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsRecord>,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_used: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_read: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leads_count: Option<u64>,
    /// sha256 over the run's leads in subject order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leads_digest: Option<String>,
    /// The model's leads snapshot the run wrote (a successful run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leads_snapshot: Option<SnapshotRef>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorRecord>,
    /// For a model event: the version served before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<ModelRef>,
    /// For a replay: the run it replays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<String>,
    /// For a finished replay: whether it reproduced the run's outcome (and
    /// leads digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reproduced: Option<bool>,
    /// A dry run: it read the data and planned its leads, and kept no
    /// lead state (no snapshot, no `scan_new` cursor moved).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// A partitioned run: each part, a self-contained task (this record's
    /// model, parameters and dataset versions, over one range of the key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<PartitionRecord>,
}

/// One part of a partitioned run: the records of the split datasets whose
/// first key field `key` is at least `from` and below `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The datasets cut by the range (the others were read whole).
    pub datasets: Vec<String>,
    pub records_read: u64,
    pub fuel_used: u64,
}

impl RunRecord {
    /// Whether this is the empty record of an entry that is not about a
    /// run or a model (a dataset ingest, a redaction).
    pub fn is_unset(&self) -> bool {
        self.run_id.is_empty()
    }
}

/// A dataset version stored by an ingest: who loaded what, from which file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestRecord {
    pub dataset: String,
    /// The new version, its digest and its records.
    pub version: u64,
    pub digest: String,
    pub records: u64,
    /// Rows the file brought (for an append: the new segment's).
    pub rows: u64,
    /// For `--append`: the version the rows were added to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appended_to: Option<u64>,
    /// The file as the operator named it, and its sha256.
    pub source: String,
    pub source_sha256: String,
    /// Identifier-check warnings at ingest.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warnings: u64,
    /// Whether the dataset's schema marks personal fields.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub personal: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The removal of the model text kept beside entry `seq`; the operator is
/// the entry's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    pub seq: u64,
    pub reason: String,
}

/// What a person was shown in clear: the command, its filters, and how
/// much (a `personal-data-revealed` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disclosure {
    /// `leads list`, `leads export`.
    pub command: String,
    /// The `--model` filter, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The `--status` filter, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The file written, as named on the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The dataset whose stored rows were shown (`dataset head`), with
    /// its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Leads (or stored rows) shown.
    pub leads: u64,
    /// Personal values in them shown in clear.
    pub values: u64,
}

/// A person's action on one lead (a `lead-reviewed` entry): the review
/// state before and after. Free text (a note, the words of a dismissal's
/// reason) may name people, and the chain is forever: it is kept beside
/// the entry ([`aside`]), which records its salted sha256 and length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub model: String,
    /// The lead's subject as stored (a pseudonym for a person).
    pub subject: String,
    /// `confirm`, `dismiss`, `transfer`, `assign`, `reopen` or `note`.
    pub action: String,
    /// The review state before and after (`pending`, `confirmed`,
    /// `dismissed`, `transferred`).
    pub from: String,
    pub to: String,
    /// A dismissal's reason: `false-positive`, `duplicate`,
    /// `outside-jurisdiction` or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whom the lead is assigned to after an `assign`, or the body it is
    /// transferred to after a `transfer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The run whose leads the person saw the lead in (its `last_run`).
    pub seen_in_run: String,
    /// sha256 of the salt and the free text kept beside the entry, and
    /// the text's length in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_len: Option<u64>,
}

/// A login to the console, accepted or refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    /// The name as typed (it may name nobody).
    pub name: String,
    /// Why it was refused: `unknown-user`, `disabled`, `locked`,
    /// `wrong-password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Wrong passwords in a row, with this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u32>,
    /// Until when this attempt (or an earlier one) locked the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<String>,
    /// The address the request came from.
    pub from: String,
}

/// A dataset version made current again, or versions removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetChange {
    pub dataset: String,
    /// The current version before, and after (the same for a prune).
    pub from: Option<u64>,
    pub to: Option<u64>,
    /// The digest of the version current after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// For a prune: the versions removed, with their digests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<PrunedVersion>,
    /// For a prune: how many recorded runs had read a removed version
    /// (allowed only with `--force`), and the first of their ids.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub runs_read: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
}

/// A version a prune removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunedVersion {
    pub version: u64,
    pub digest: String,
    pub records: u64,
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub prev_hash: String,
    pub at: String,
    pub unit: String,
    /// Fingerprint of the unit key that signs this entry; `None` when the
    /// store had no unit when the entry was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_key: Option<String>,
    pub operator: String,
    pub kind: Kind,
    /// The run (or, for a model event, the model); empty for the other
    /// kinds.
    #[serde(default, skip_serializing_if = "RunRecord::is_unset")]
    pub run: RunRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest: Option<IngestRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<Redaction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosure: Option<Disclosure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<DatasetChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<Login>,
}

/// An entry before it is placed in the chain.
#[derive(Debug, Clone)]
pub struct Draft {
    pub unit: String,
    pub operator: String,
    pub kind: Kind,
    pub run: RunRecord,
    pub ingest: Option<IngestRecord>,
    pub redaction: Option<Redaction>,
    pub disclosure: Option<Disclosure>,
    pub dataset: Option<DatasetChange>,
    pub review: Option<Review>,
    pub login: Option<Login>,
    /// Text a model chose for `run.error`, or a person's words in a
    /// `review`: kept beside the entry, which records its salted sha256
    /// and length (in `run.error`, or in `review`).
    pub model_text: Option<String>,
}

impl Draft {
    /// An entry about a run (or a model event).
    pub fn run(unit: String, operator: String, kind: Kind, run: RunRecord) -> Draft {
        Draft {
            unit,
            operator,
            kind,
            run,
            ingest: None,
            redaction: None,
            disclosure: None,
            dataset: None,
            review: None,
            login: None,
            model_text: None,
        }
    }

    /// The entry of a person's action on a lead, with the free text that
    /// goes beside it.
    pub fn review(unit: String, operator: String, review: Review, text: Option<String>) -> Draft {
        Draft {
            review: Some(review),
            model_text: text.filter(|t| !t.is_empty()),
            ..Draft::run(unit, operator, Kind::LeadReviewed, RunRecord::default())
        }
    }

    /// The entry of a login to the console; the operator is the name
    /// tried.
    pub fn login(unit: String, login: Login) -> Draft {
        let kind = if login.refusal.is_none() {
            Kind::LoginSucceeded
        } else {
            Kind::LoginRefused
        };
        Draft {
            operator: login.name.clone(),
            login: Some(login),
            ..Draft::run(unit, String::new(), kind, RunRecord::default())
        }
    }

    /// The entry of a dataset's rollback or prune.
    pub fn dataset(unit: String, operator: String, kind: Kind, change: DatasetChange) -> Draft {
        Draft {
            dataset: Some(change),
            ..Draft::run(unit, operator, kind, RunRecord::default())
        }
    }

    /// The entry of personal values shown in clear.
    pub fn disclosure(unit: String, operator: String, disclosure: Disclosure) -> Draft {
        Draft {
            disclosure: Some(disclosure),
            ..Draft::run(
                unit,
                operator,
                Kind::PersonalDataRevealed,
                RunRecord::default(),
            )
        }
    }

    /// The entry of a dataset version stored.
    pub fn ingest(unit: String, operator: String, ingest: IngestRecord) -> Draft {
        Draft {
            ingest: Some(ingest),
            ..Draft::run(unit, operator, Kind::DatasetIngested, RunRecord::default())
        }
    }

    /// With `failure` as the run's error: host text in the entry, a
    /// model's text beside it.
    pub fn failed(mut self, failure: Stopped<'_>) -> Draft {
        let (error, text) = ErrorRecord::of(failure);
        self.run.error = Some(error);
        self.model_text = text;
        self
    }
}

/// What is kept beside entry `n` in the `ledger_sig` tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    /// sha256 hex of the entry's stored bytes, as written.
    pub hash: String,
    /// The unit's signature of the hash; `None` for an unsigned entry.
    pub sig: Option<String>,
}

/// What a unit signs for entry `n`: a fixed prefix (so an entry signature
/// can never pass for a bundle's or a checkpoint's) and the entry hash.
pub const ENTRY_SIGNATURE_PREFIX: &str = "jiandu ledger entry v1\n";

/// The message signed for an entry with this hash.
pub fn entry_message(hash: &str) -> Vec<u8> {
    [ENTRY_SIGNATURE_PREFIX.as_bytes(), hash.as_bytes()].concat()
}

/// The unit's key, ready to sign entries and checkpoints.
pub struct Signer {
    key: UnitKey,
    fingerprint: String,
}

impl Signer {
    /// The signer of `store`, or `None` when it has no unit. Fails when the
    /// store has a unit whose key file cannot be read: entries are then not
    /// written at all rather than written unsigned.
    pub fn for_store(store: &Store) -> Result<Option<Signer>> {
        Ok(crate::unit::signing_key(store)?.map(Signer::new))
    }

    pub fn new(key: UnitKey) -> Signer {
        let fingerprint = key.public().fingerprint();
        Signer { key, fingerprint }
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn public(&self) -> PublicKey {
        self.key.public()
    }

    /// Signs `message` (already carrying its purpose prefix).
    pub fn sign(&self, message: &[u8]) -> String {
        self.key.sign(message)
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.fingerprint)
    }
}

/// sha256 hex of an entry's stored bytes.
pub fn hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn abort(message: String) -> ConflictableTransactionError<Error> {
    ConflictableTransactionError::Abort(Error::Ledger(message))
}

/// The trees an append writes, inside its transaction.
pub struct Trees<'a> {
    pub ledger: &'a TransactionalTree,
    pub seals: &'a TransactionalTree,
    pub meta: &'a TransactionalTree,
    pub text: &'a TransactionalTree,
    pub checkpoints: &'a TransactionalTree,
}

/// Who signs entries, the head and checkpoints: the unit's key, and the
/// unit as checkpoints name it.
pub struct Signing<'a> {
    pub signer: &'a Signer,
    pub unit: &'a crate::unit::Unit,
}

/// Appends `draft` inside a transaction over the ledger's trees, signing it
/// when the store has a unit. A model's text goes beside the entry; a
/// redaction removes the text it names. The head moves on with the Merkle
/// frontier, and every [`checkpoint::EVERY`]th entry comes
/// with a signed checkpoint over the ledger so far: nothing is read back,
/// whatever the ledger's length.
pub fn append_in(
    trees: &Trees,
    draft: &Draft,
    signing: Option<&Signing>,
) -> std::result::Result<Entry, ConflictableTransactionError<Error>> {
    let signer = signing.map(|s| s.signer);
    let raw = trees.meta.get(HEAD_KEY)?;
    let (last, prev_hash, mut frontier) = head::parse_for_append(raw.as_deref()).map_err(abort)?;
    let seq = last + 1;
    let mut run = draft.run.clone();
    let mut review = draft.review.clone();
    let aside = match &draft.model_text {
        None => None,
        Some(text) => {
            let aside =
                aside::Aside::new(text.clone()).map_err(ConflictableTransactionError::Abort)?;
            if let Some(review) = &mut review {
                review.text_sha256 = Some(aside.commitment());
                review.text_len = Some(text.len() as u64);
            } else {
                let error = run.error.get_or_insert_with(ErrorRecord::default);
                error.message = None;
                error.message_sha256 = Some(aside.commitment());
                error.message_len = Some(text.len() as u64);
            }
            Some(aside)
        }
    };
    if let Some(r) = &draft.redaction {
        if trees.text.remove(&r.seq.to_be_bytes())?.is_none() {
            return Err(abort(format!(
                "entry {} has no model text kept beside it (none, or redacted already)",
                r.seq
            )));
        }
    }
    let entry = Entry {
        seq,
        prev_hash,
        at: crate::time::now_text(),
        unit: draft.unit.clone(),
        unit_key: signer.map(|s| s.fingerprint().to_string()),
        operator: draft.operator.clone(),
        kind: draft.kind,
        run,
        ingest: draft.ingest.clone(),
        redaction: draft.redaction.clone(),
        disclosure: draft.disclosure.clone(),
        dataset: draft.dataset.clone(),
        review,
        login: draft.login.clone(),
    };
    let bytes = serde_json::to_vec(&entry).expect("entries serialize");
    let hash = hash(&bytes);
    let seal = Seal {
        sig: signer.map(|s| s.sign(&entry_message(&hash))),
        hash: hash.clone(),
    };
    frontier.push(merkle::parse_hash(&hash).expect("a sha256 just computed"));
    let head = Head::new(seq, hash, &frontier, signer);
    trees.ledger.insert(&seq.to_be_bytes(), bytes)?;
    trees.seals.insert(
        &seq.to_be_bytes(),
        serde_json::to_vec(&seal).expect("seal serializes"),
    )?;
    if let Some(aside) = &aside {
        trees.text.insert(&seq.to_be_bytes(), aside.to_bytes())?;
    }
    if let (Some(s), 0) = (signing, seq % checkpoint::EVERY) {
        let cp = checkpoint::Checkpoint {
            unit: s.unit.name.clone(),
            code: s.unit.code.clone(),
            fingerprint: s.signer.fingerprint().to_string(),
            size: seq,
            root: head.root.clone().expect("a new head has a root"),
            head_hash: head.hash.clone(),
            time: entry.at.clone(),
        }
        .sign(s.signer);
        trees.checkpoints.insert(
            &seq.to_be_bytes(),
            serde_json::to_vec(&cp).expect("checkpoints serialize"),
        )?;
    }
    trees.meta.insert(HEAD_KEY, head.to_bytes())?;
    Ok(entry)
}

/// Appends one entry on its own and makes it durable.
pub fn append(store: &Store, draft: &Draft) -> Result<Entry> {
    append_with(store, draft, |_| Ok(()))
}

/// Appends `draft` in one transaction with the writes `with` makes to
/// `meta` (a run's leads pointer and cursors), signing it when the store has
/// a unit, and makes it durable.
pub fn append_with<F>(store: &Store, draft: &Draft, with: F) -> Result<Entry>
where
    F: Fn(&TransactionalTree) -> std::result::Result<(), ConflictableTransactionError<Error>>,
{
    let entry = append_unflushed(store, draft, with)?;
    store.flush()?;
    Ok(entry)
}

/// [`append_with`] short of making the entry durable: the caller flushes,
/// and so can tell an entry that was not written from one written and not
/// yet on disk.
pub fn append_unflushed<F>(store: &Store, draft: &Draft, with: F) -> Result<Entry>
where
    F: Fn(&TransactionalTree) -> std::result::Result<(), ConflictableTransactionError<Error>>,
{
    let signer = Signer::for_store(store)?;
    let unit = match &signer {
        Some(_) => crate::unit::current(store)?,
        None => None,
    };
    let signing = match (&signer, &unit) {
        (Some(signer), Some(unit)) => Some(Signing { signer, unit }),
        _ => None,
    };
    if signer.is_some() && signing.is_none() {
        return Err(Error::Ledger(
            "this store has a unit key but no unit record; run `jiandu unit show`".into(),
        ));
    }
    head::ensure_frontier(store, signer.as_ref())?;
    let entry = (
        &store.ledger,
        &store.ledger_sig,
        &store.meta,
        &store.ledger_text,
        &store.checkpoints,
    )
        .transaction(|(ledger, seals, meta, text, checkpoints)| {
            with(meta)?;
            append_in(
                &Trees {
                    ledger,
                    seals,
                    meta,
                    text,
                    checkpoints,
                },
                draft,
                signing.as_ref(),
            )
        })
        .map_err(Error::from)?;
    Ok(entry)
}

/// The `dataset-ingested` entry of version `info` of `dataset`, stored by
/// `info.operator`: its digest, its records, the rows the file brought, the
/// file's name and sha256 and, for an append, the version it extends.
pub fn dataset_ingested(unit: String, dataset: &str, info: &crate::dataset::VersionInfo) -> Draft {
    let segments = &info.segments;
    // An append keeps the segments of the version it extends and adds
    // one; that version's own segment, the one before the new, is stored
    // under it.
    let appended_to = match segments.len() {
        0 | 1 => None,
        n => segments[n - 2].stored_in,
    };
    let ingest = IngestRecord {
        dataset: dataset.to_string(),
        version: info.version,
        digest: info.digest.clone(),
        records: info.records,
        rows: segments.last().map_or(0, |s| s.records),
        appended_to,
        source: info.source.clone(),
        source_sha256: info.source_sha256.clone(),
        warnings: info.warnings,
        personal: info.schema.has_personal(),
    };
    Draft::ingest(unit, info.operator.clone(), ingest)
}

/// The seal kept beside entry `seq`, if any.
pub fn seal(store: &Store, seq: u64) -> Result<std::result::Result<Option<Seal>, String>> {
    Ok(parse_seal(
        seq,
        store.ledger_sig.get(seq.to_be_bytes())?.as_deref(),
    ))
}

/// The seal of entry `seq` from its stored bytes, if it has any.
pub fn parse_seal(seq: u64, raw: Option<&[u8]>) -> std::result::Result<Option<Seal>, String> {
    match raw {
        None => Ok(None),
        Some(v) => serde_json::from_slice(v)
            .map(Some)
            .map_err(|e| format!("the seal of entry {seq} is unreadable: {e}")),
    }
}

/// Every stored seal, in entry order: (sequence number, its bytes).
pub fn seals(store: &Store) -> impl Iterator<Item = Result<(u64, sled::IVec)>> + '_ {
    store.ledger_sig.iter().map(|item| {
        let (k, v) = item?;
        let seq = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| {
            Error::Ledger(format!(
                "a seal key of {} bytes is not a sequence number",
                k.len()
            ))
        })?);
        Ok((seq, v))
    })
}

/// The sequence number and hash of the last entry, per the ledger head.
pub fn head(store: &Store) -> Result<Option<(u64, String)>> {
    Ok(head::read(store)?.map(|h| (h.seq, h.hash)))
}

/// Entries in order, from `from` (1-based) on.
pub fn entries(store: &Store, from: u64) -> impl Iterator<Item = Result<(u64, Vec<u8>)>> + '_ {
    store.ledger.range(from.to_be_bytes()..).map(|item| {
        let (k, v) = item?;
        let seq = u64::from_be_bytes(k.as_ref().try_into().map_err(|_| {
            Error::Ledger(format!(
                "a ledger key of {} bytes is not a sequence number",
                k.len()
            ))
        })?);
        Ok((seq, v.to_vec()))
    })
}

/// All entries, parsed.
pub fn read_all(store: &Store) -> Result<Vec<Entry>> {
    entries(store, 1)
        .map(|item| {
            let (seq, bytes) = item?;
            serde_json::from_slice(&bytes)
                .map_err(|e| Error::Ledger(format!("entry {seq} is unreadable: {e}")))
        })
        .collect()
}

/// The first problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The entry that does not match (for a checkpoint: the entry count it
    /// covers).
    pub seq: u64,
    /// `parse`, `sequence`, `hash`, `signature`, `chain`, `head`,
    /// `checkpoint` or `text`.
    pub check: &'static str,
    pub message: String,
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub entries: u64,
    pub head_hash: Option<String>,
    pub problem: Option<Problem>,
    /// Entries signed with the unit key.
    pub signed: u64,
    /// Entries written before the store had a unit.
    pub unsigned: u64,
    /// Signed checkpoints that matched the entries they cover.
    pub checkpoints: u64,
    /// The unit key fingerprint entries were checked against.
    pub fingerprint: Option<String>,
    /// RFC 6962 Merkle root over the entries (when they all verified).
    pub root: Option<String>,
    /// Model texts removed on the record, in order.
    pub redactions: Vec<RedactionNote>,
}

/// A `text-redacted` entry, as `verify` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedactionNote {
    /// The `text-redacted` entry.
    pub seq: u64,
    /// The entry whose text it removed.
    pub target: u64,
    pub operator: String,
    pub at: String,
    pub reason: String,
}

/// The message a unit signs: a purpose prefix, then the body.
pub fn signed_message(prefix: &str, body: &[u8]) -> Vec<u8> {
    [prefix.as_bytes(), body].concat()
}

/// The RFC 8785 canonical JSON of a signed document.
pub fn canonical_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    jiandu_registry::canonical::to_vec(value)
}

/// Checks `sig` over the message this version signs (`current`) or, for a
/// document signed by an earlier version, the message it signed then
/// (`earlier`); the reason given is the current message's.
pub fn check_signature_either(
    key: &PublicKey,
    current: &[u8],
    earlier: &[u8],
    sig: &str,
) -> Result<(), String> {
    check_signature(key, current, sig)
        .or_else(|why| check_signature(key, earlier, sig).map_err(|_| why))
}

/// Checks `sig` (lowercase hex, as written) over `message` with `key`.
pub fn check_signature(key: &PublicKey, message: &[u8], sig: &str) -> Result<(), String> {
    if sig.len() != 128 || sig.bytes().any(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("the signature is not 128 lowercase hex characters".into());
    }
    match key.verify(message, sig) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "the signature does not verify with key {}",
            key.fingerprint()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Shortens a hash for messages.
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
