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
//! ```text
//! <store>/leads/<model>/<run>.leads  the model's snapshot: every lead of the
//!                                    model as of run <run>, live and
//!                                    resolved, sorted by subject, one JSON
//!                                    object a line; never modified
//! meta["leads/<model>/current"]      {"file", "sha256", "leads", "run",
//!                                    "written_by"?}: which file is the
//!                                    model's snapshot, and whose leads
//! ```
//!
//! A line is a lead's lifecycle, then what the model said about it:
//!
//! ```text
//! {"subject":"91…","status":"open","first_run":"…","last_run":"…","resolved_by":null,
//!  "updated_at":"…","content":{"model_version":"1.0.0","subject_personal":false,
//!  "title":"…","amount":"12.50","evidence":[["gap","12.50",false],…]}}
//! ```
//!
//! A run's leads become a new snapshot. [`plan`], outside any transaction,
//! merge-joins the current snapshot (read a line at a time, never whole)
//! with the run's leads (sorted by subject already) into `<run>.leads`, and
//! makes the file and its folder durable. [`apply_in`], in the transaction
//! that appends the run's `run-finished` entry, checks that the pointer is
//! still the one the plan was made against and points it at the new file;
//! nothing else is written per lead. Once committed,
//! [`Changes::committed`] deletes the snapshot it replaced.
//!
//! A run that changes nothing (it produces every live lead again with the
//! same content, and no other) writes nothing: it keeps the snapshot, its
//! pointer naming the run that wrote the file (`written_by`) beside its own
//! (`run`). Reading such a snapshot, its live leads are `open`, last
//! produced by `run` (what that run would have written; a lead it kept is
//! not new to it), its resolved ones as written. The plan writes nothing
//! while the run matches the snapshot; at the first change it writes the
//! leads passed so far: from their lines kept ready in memory while they
//! fit in a few MiB (a change among the first leads, as most changes
//! come), else from a second reading of the snapshot, opened when the
//! plan started and checked against the sha256 when read through, so that
//! what is written is what was checked.
//!
//! Why not one sled key per lead, as before: sled keeps a clone of the tree
//! nodes that each insert of a transaction touches until the transaction
//! commits, about 5 KB a lead, so a run's memory grew with its leads (a scan
//! that emitted 100,000 leads peaked at 592 MiB, the scan itself ~35 MiB).
//! A snapshot costs the same memory whatever the number of leads (a buffer
//! each way and one line at a time) and keeps the transaction small. The
//! price is that a run that changes anything rewrites all the leads of its
//! model, resolved ones too, rather than only those that changed:
//! sequential I/O of a few hundred bytes a lead, and a couple of
//! microseconds. To keep that cheap, a
//! lead's content comes last in its line and is found by its key
//! (`,"content":` cannot occur inside a JSON string, whose quotes are
//! escaped): a run compares it as bytes with what it emitted and copies it,
//! decoding only the lifecycle before it. JSON lines rather than a binary
//! format so that a snapshot can be read, diffed and grepped as it is; the
//! sha256 in the pointer catches an edit or damage, and reading refuses such
//! a file, naming it.
//!
//! Within a snapshot, a lead's status is as of its run: `new` when that run
//! first produced it (or produced it again after it was resolved), `open`
//! when earlier runs produced it too, `resolved` when a run no longer
//! produced it (`resolved_by`; `last_run` stays the last run that did).
//! `updated_at` is when the lead last changed: first produced, its content
//! (version, title, amount, evidence) changed, resolved, or produced again
//! after being resolved; a run that produces it unchanged leaves it alone.
//!
//! A run that fails, goes stale or crashes leaves its file unnamed by the
//! pointer: an orphan, which reading ignores and the model's next [`plan`]
//! deletes. A file planned in this process and not yet committed or dropped
//! is never taken for an orphan (sled lets one process open a store, so that
//! process sees every plan in flight), so runs of one model may plan at the
//! same time: the first to commit wins, the other gets [`Applied::Stale`]
//! and plans again on the new snapshot.

use crate::dataset::file::sync_dir;
use crate::dataset::resolve::{Resolver, Reveal};
use crate::hash_behind::{self, HashBehind};
use crate::json_text;
use crate::mask::mask_guess;
use crate::pseudonym;
use crate::{Error, Result, Store};
use jiandu_sdk::encoded_lead::{self, EvidenceBytes, LeadBytes, LeadView};
use jiandu_sdk::LeadData;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::IVec;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;

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
    /// The lead as a person may see it: every pseudonym in it resolved
    /// (masked, or in clear), and the fields a model marked personal
    /// masked unless `reveal` is clear. A model granted clear values can
    /// write them into its leads; a pseudonymous model writes pseudonyms,
    /// wherever in the lead they are.
    pub fn for_people(&self, resolver: &mut Resolver<'_>, reveal: Reveal) -> Result<Lead> {
        let mut l = self.clone();
        let shown = |resolver: &mut Resolver<'_>, text: &str, personal: bool| -> Result<String> {
            if personal && reveal == Reveal::Masked && !resolver.has_personal(text)? {
                return Ok(mask_guess(text));
            }
            if personal && reveal == Reveal::Clear && pseudonym::tokens(text).is_empty() {
                resolver.revealed += 1;
            }
            resolver.display(text, reveal)
        };
        l.subject = shown(resolver, &self.subject, self.subject_personal)?;
        l.title = resolver.display(&self.title, reveal)?;
        for e in &mut l.evidence {
            e.value = shown(resolver, &e.value, e.personal)?;
        }
        Ok(l)
    }
}

/// `leads` as people may see them (see [`Lead::for_people`]), and how many
/// personal values were shown in clear.
pub fn for_people(store: &Store, leads: &[Lead], reveal: Reveal) -> Result<(Vec<Lead>, u64)> {
    let mut resolver = Resolver::new(store);
    let shown = leads
        .iter()
        .map(|l| l.for_people(&mut resolver, reveal))
        .collect::<Result<Vec<_>>>()?;
    Ok((shown, resolver.revealed))
}

/// Puts on the record (a `personal-data-revealed` ledger entry) that a
/// person was shown `disclosure.values` personal values in clear, before
/// they are shown: a value shown in clear that the ledger does not
/// record must not happen, so callers show nothing when this fails. Leads
/// listed or exported in clear that hold no personal value write nothing.
pub fn record_disclosure(
    store: &Store,
    unit: &str,
    operator: &str,
    disclosure: &crate::ledger::Disclosure,
) -> Result<Option<crate::ledger::Entry>> {
    if disclosure.values == 0 {
        return Ok(None);
    }
    let draft = crate::ledger::Draft::disclosure(
        unit.to_string(),
        operator.to_string(),
        disclosure.clone(),
    );
    crate::ledger::append(store, &draft).map(Some)
}

/// Where a model's snapshot pointer is kept in `meta`.
fn pointer_key(model: &str) -> String {
    format!("leads/{model}/current")
}

const POINTER_PREFIX: &str = "leads/";
const POINTER_SUFFIX: &str = "/current";

/// `meta["leads/<model>/current"]`: the model's snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pointer {
    /// The file's name in `<store>/leads/<model>/`.
    file: String,
    /// sha256 of the whole file, hex.
    sha256: String,
    /// How many leads (lines) it holds.
    leads: u64,
    /// The run whose leads these are: the run that wrote the file, or a
    /// later one that produced exactly the leads it holds live (and no
    /// other) and kept it ([`Pointer::written_by`]).
    run: String,
    /// The run that wrote the file, when a later run kept it: its live
    /// leads are then read as `open`, last produced by `run` (what that
    /// run would have written), its resolved ones as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    written_by: Option<String>,
}

impl Pointer {
    /// The run that wrote the file.
    fn writer(&self) -> &str {
        self.written_by.as_deref().unwrap_or(&self.run)
    }

    /// Whether a run after the one that wrote the file kept it.
    fn kept(&self) -> bool {
        self.writer() != self.run
    }
}

/// The folder of a model's snapshots.
pub(crate) fn model_dir(store: &Store, model: &str) -> PathBuf {
    store.leads_dir().join(model)
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Store {
        path: path.to_path_buf(),
        message: format!("cannot {what}: {e}"),
    }
}

/// Checks that a run id can name a file: letters, digits, `-`, `_` and `.`,
/// not starting with `.`.
fn check_run_id(run: &str) -> Result<()> {
    let ok = !run.is_empty()
        && run.len() <= 128
        && !run.starts_with('.')
        && run
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Leads(format!(
            "run id `{run}` cannot name a leads file (letters, digits, -, _ and ., at most 128)"
        )))
    }
}

/// The snapshot file of run `run`.
fn file_name(run: &str) -> String {
    format!("{run}.leads")
}

/// Whether `name` is the name of a snapshot file (the only files in a
/// model's folder that are ever deleted).
fn is_snapshot_name(name: &str) -> bool {
    name.strip_suffix(".leads")
        .is_some_and(|run| check_run_id(run).is_ok())
}

/// The model's pointer, as stored and decoded.
fn read_pointer(store: &Store, model: &str) -> Result<Option<(IVec, Pointer)>> {
    let key = pointer_key(model);
    let Some(raw) = store.meta.get(&key)? else {
        return Ok(None);
    };
    let pointer: Pointer = serde_json::from_slice(&raw)
        .map_err(|e| Error::Leads(format!("meta `{key}` is unreadable: {e}")))?;
    if !is_snapshot_name(&pointer.file) {
        return Err(Error::Leads(format!(
            "meta `{key}` names `{}`, which is not a leads file",
            pointer.file
        )));
    }
    Ok(Some((raw, pointer)))
}

/// Models that have a snapshot, by name.
fn models(store: &Store) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for item in store.meta.scan_prefix(POINTER_PREFIX) {
        let (k, _) = item?;
        let model = std::str::from_utf8(&k)
            .ok()
            .and_then(|k| k.strip_prefix(POINTER_PREFIX)?.strip_suffix(POINTER_SUFFIX));
        if let Some(model) = model {
            out.push(model.to_string());
        }
    }
    // `leads/a-b/current` sorts before `leads/a/current`.
    out.sort();
    Ok(out)
}

/// A model's snapshot as its pointer names it, for `audit verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub model: String,
    pub path: PathBuf,
    /// sha256 of the whole file, as the pointer records it.
    pub sha256: String,
    pub leads: u64,
    /// The run whose leads it holds (the one that wrote it, or a later one
    /// that kept it).
    pub run: String,
}

/// Each model's snapshot, as the pointers in `meta` name them.
pub fn snapshots(store: &Store) -> Result<Vec<Snapshot>> {
    let mut out = Vec::new();
    for model in models(store)? {
        if let Some((_, p)) = read_pointer(store, &model)? {
            out.push(Snapshot {
                path: model_dir(store, &model).join(&p.file),
                model,
                sha256: p.sha256,
                leads: p.leads,
                run: p.run,
            });
        }
    }
    Ok(out)
}

/// A model's snapshot, open.
struct Current {
    /// The pointer as stored, for [`apply_in`] to compare.
    raw: IVec,
    pointer: Pointer,
    path: PathBuf,
    file: File,
}

/// How many times opening a snapshot starts over because a run committed
/// (and deleted the file) between reading the pointer and opening the file.
const OPEN_TRIES: usize = 8;

/// Opens the model's snapshot, if it has one.
fn open_current(store: &Store, model: &str) -> Result<Option<Current>> {
    let key = pointer_key(model);
    for _ in 0..OPEN_TRIES {
        let Some((raw, pointer)) = read_pointer(store, model)? else {
            return Ok(None);
        };
        let path = model_dir(store, model).join(&pointer.file);
        match File::open(&path) {
            Ok(file) => {
                return Ok(Some(Current {
                    raw,
                    pointer,
                    path,
                    file,
                }))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if store.meta.get(&key)?.as_ref() != Some(&raw) {
                    continue;
                }
                return Err(Error::Store {
                    path,
                    message: format!(
                        "the leads of `{model}` (meta `{key}`) are missing; restore the file \
                         from a backup of the store"
                    ),
                });
            }
            Err(e) => return Err(io_error(&path, "open", e)),
        }
    }
    Err(Error::Leads(format!(
        "the leads of `{model}` changed {OPEN_TRIES} times while being opened; try again"
    )))
}

/// The first part of a snapshot's line: the lead's place in its model's
/// life. Its content ([`encode_content`], [`Content`]) follows under
/// `"content"` (see the module doc).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Life<S> {
    subject: S,
    status: Status,
    first_run: S,
    last_run: S,
    resolved_by: Option<S>,
    updated_at: S,
}

impl<S: AsRef<[u8]>> Life<S> {
    /// Appends the life as JSON without its closing brace: what `serde_json`
    /// writes for it, the last byte left out (a test holds the two side by
    /// side). Texts held as bytes are UTF-8 (see [`json_text::push_str`]).
    fn encode_open(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"subject\":");
        json_text::push_str(out, &self.subject);
        out.extend_from_slice(b",\"status\":\"");
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.extend_from_slice(b"\",\"first_run\":");
        json_text::push_str(out, &self.first_run);
        out.extend_from_slice(b",\"last_run\":");
        json_text::push_str(out, &self.last_run);
        out.extend_from_slice(b",\"resolved_by\":");
        json_text::push_opt_str(out, self.resolved_by.as_ref());
        out.extend_from_slice(b",\"updated_at\":");
        json_text::push_str(out, &self.updated_at);
    }
}

impl Life<String> {
    /// A life to read lines into.
    fn empty() -> Life<String> {
        Life {
            subject: String::new(),
            status: Status::New,
            first_run: String::new(),
            last_run: String::new(),
            resolved_by: None,
            updated_at: String::new(),
        }
    }

    /// Reads the life at the start of a line (without its newline and
    /// closing brace) into `self`, reusing its strings, as
    /// [`Life::encode_open`] writes it when no text needs an escape: the
    /// fields in that order, no spaces, then [`CONTENT`]. Returns where
    /// [`CONTENT`] starts. Anything else is `None`, `self` left in an
    /// unspecified state, and `serde_json` reads the life instead (it takes
    /// any JSON for a life).
    fn parse_plain(&mut self, json: &[u8]) -> Option<usize> {
        /// Where a JSON string without escapes ends: its closing quote.
        fn plain_end(bytes: &[u8]) -> Option<usize> {
            let end = memchr::memchr(b'"', bytes)?;
            let text = &bytes[..end];
            (!text.iter().any(|&b| b == b'\\' || b < 0x20)).then_some(end)
        }
        fn text<'a>(rest: &mut &'a [u8], key: &[u8]) -> Option<&'a str> {
            *rest = rest.strip_prefix(key)?.strip_prefix(b"\"")?;
            let end = plain_end(rest)?;
            let text = std::str::from_utf8(&rest[..end]).ok()?;
            *rest = &rest[end + 1..];
            Some(text)
        }
        fn set(to: &mut String, text: &str) {
            to.clear();
            to.push_str(text);
        }
        let mut rest = json;
        set(&mut self.subject, text(&mut rest, b"{\"subject\":")?);
        self.status = match text(&mut rest, b",\"status\":")? {
            "new" => Status::New,
            "open" => Status::Open,
            "resolved" => Status::Resolved,
            _ => return None,
        };
        set(&mut self.first_run, text(&mut rest, b",\"first_run\":")?);
        set(&mut self.last_run, text(&mut rest, b",\"last_run\":")?);
        match rest.strip_prefix(b",\"resolved_by\":null") {
            Some(after) => {
                rest = after;
                self.resolved_by = None;
            }
            None => {
                let by = text(&mut rest, b",\"resolved_by\":")?;
                set(self.resolved_by.get_or_insert_with(String::new), by);
            }
        }
        set(&mut self.updated_at, text(&mut rest, b",\"updated_at\":")?);
        rest.starts_with(CONTENT).then_some(json.len() - rest.len())
    }
}

/// What separates a line's [`Life`] from its content.
const CONTENT: &[u8] = b",\"content\":";

/// What a model said about a subject, as [`encode_content`] encodes it for
/// a line: what `serde_json` writes for this struct (a test holds the two
/// side by side). Equal bytes, same content.
#[cfg(test)]
#[derive(Serialize)]
struct ContentRef<'a> {
    model_version: &'a str,
    subject_personal: bool,
    title: &'a str,
    amount: Option<&'a str>,
    evidence: Vec<(&'a str, &'a str, bool)>,
}

/// A lead's content as [`encode_content`] writes it for a line, with
/// where its title, amount and evidence fields lie in it: the ledger
/// digest's line for the lead ([`LeadsDigest::add_content`]) copies them
/// rather than escaping the same texts again.
#[derive(Default)]
struct EncodedContent {
    bytes: Vec<u8>,
    /// The title as JSON.
    title: std::ops::Range<usize>,
    /// The amount as JSON (`null` when there is none).
    amount: std::ops::Range<usize>,
    /// Each evidence field's `[name,value` as JSON.
    evidence: Vec<std::ops::Range<usize>>,
}

/// Encodes what a run at `model_version` emitted into `out` (cleared
/// first), as a line's content.
fn encode_content(model_version: &str, data: &LeadBytes<'_>, out: &mut EncodedContent) {
    let b = &mut out.bytes;
    b.clear();
    out.evidence.clear();
    b.extend_from_slice(b"{\"model_version\":");
    json_text::push_str(b, model_version);
    b.extend_from_slice(b",\"subject_personal\":");
    json_text::push_bool(b, data.subject_personal);
    b.extend_from_slice(b",\"title\":");
    let title = b.len();
    json_text::push_str(b, data.title);
    out.title = title..b.len();
    b.extend_from_slice(b",\"amount\":");
    let amount = b.len();
    json_text::push_opt_str(b, data.amount);
    out.amount = amount..b.len();
    b.extend_from_slice(b",\"evidence\":[");
    for (i, e) in data.evidence().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        let field = b.len();
        b.push(b'[');
        json_text::push_str(b, e.name);
        b.push(b',');
        json_text::push_str(b, e.value);
        out.evidence.push(field..b.len());
        b.push(b',');
        json_text::push_bool(b, e.personal);
        b.push(b']');
    }
    b.extend_from_slice(b"]}");
}

/// Encodes what a run emitted as a line's content ([`encode_content`])
/// and, with `digest`, adds the lead to the ledger's digest from it.
fn encode_and_digest(
    model_version: &str,
    lead: &LeadBytes<'_>,
    out: &mut EncodedContent,
    digest: Option<&mut LeadsDigest>,
) {
    encode_content(model_version, lead, out);
    if let Some(digest) = digest {
        digest.add_content(lead.subject, out);
    }
}

/// Appends evidence fields as `[[name, value], …]`.
fn push_evidence<'a>(out: &mut Vec<u8>, evidence: impl Iterator<Item = EvidenceBytes<'a>>) {
    out.push(b'[');
    for (i, e) in evidence.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        json_text::push_str(out, e.name);
        out.push(b',');
        json_text::push_str(out, e.value);
        out.push(b']');
    }
    out.push(b']');
}

#[derive(Deserialize)]
struct Content {
    model_version: String,
    subject_personal: bool,
    title: String,
    amount: Option<String>,
    evidence: Vec<(String, String, bool)>,
}

impl Content {
    fn into_lead(self, model: &str, life: Life<String>) -> Lead {
        Lead {
            model: model.to_string(),
            model_version: self.model_version,
            subject: life.subject,
            subject_personal: self.subject_personal,
            title: self.title,
            amount: self.amount,
            evidence: self
                .evidence
                .into_iter()
                .map(|(name, value, personal)| Evidence {
                    name,
                    value,
                    personal,
                })
                .collect(),
            status: life.status,
            first_run: life.first_run,
            last_run: life.last_run,
            resolved_by: life.resolved_by,
            updated_at: life.updated_at,
        }
    }
}

/// Reads a snapshot a line at a time and checks it against its pointer:
/// what it returns is trusted only once [`Reader::finish`] has matched the
/// sha256 (computed behind the reading, [`HashBehind`]).
struct Reader<'a> {
    model: &'a str,
    path: PathBuf,
    expected: Pointer,
    file: File,
    /// The sha256 of what is read, until [`Reader::sha256_matches`].
    hash: Option<HashBehind>,
    /// Bytes read and not yet past: the line at hand first.
    buf: Vec<u8>,
    /// The line at hand in `buf`, with its newline.
    line: std::ops::Range<usize>,
    /// Where its content is, within the line.
    content: std::ops::Range<usize>,
    /// The file is read to its end.
    eof: bool,
    /// Finds [`CONTENT`] in a line.
    content_key: memchr::memmem::Finder<'static>,
    /// The life of the line at hand.
    life: Life<String>,
    /// Its JSON, when `serde_json` reads it.
    life_json: Vec<u8>,
    lines: u64,
    /// The subject of the line before.
    last: String,
    /// The pointer says a later run kept the file ([`Pointer::kept`]).
    kept: bool,
}

impl<'a> Reader<'a> {
    fn new(model: &'a str, current: Current) -> Reader<'a> {
        Reader {
            kept: current.pointer.kept(),
            model,
            path: current.path,
            expected: current.pointer,
            file: current.file,
            hash: Some(HashBehind::start()),
            buf: Vec::with_capacity(hash_behind::CHUNK),
            line: 0..0,
            content: 0..0,
            eof: false,
            content_key: memchr::memmem::Finder::new(CONTENT),
            life: Life::empty(),
            life_json: Vec::new(),
            lines: 0,
            last: String::new(),
        }
    }

    /// Moves the unread part of `buf` (from the end of the line at hand) to
    /// its front, then reads more of the file after it, hashing what it
    /// reads; false at the end of the file.
    fn read_more(&mut self) -> Result<bool> {
        let from = self.line.end;
        self.buf.copy_within(from.., 0);
        self.buf.truncate(self.buf.len() - from);
        self.line = 0..0;
        if self.eof {
            return Ok(false);
        }
        let held = self.buf.len();
        self.buf.resize(held + hash_behind::CHUNK, 0);
        let n = loop {
            match self.file.read(&mut self.buf[held..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(held);
                    return Err(io_error(&self.path, "read", e));
                }
            }
        };
        self.buf.truncate(held + n);
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        if let Some(hash) = &mut self.hash {
            hash.update_from(&self.buf[held..]);
        }
        Ok(true)
    }

    /// Moves to the next lead, false at the end: [`Reader::life`],
    /// [`Reader::content`] and [`Reader::line`] are then its life, its
    /// content and its line as stored.
    fn next(&mut self) -> Result<bool> {
        let mut start = self.line.end;
        let mut searched = start;
        let end = loop {
            if let Some(at) = memchr::memchr(b'\n', &self.buf[searched..]) {
                break searched + at + 1;
            }
            let held = self.buf.len() - start;
            let more = self.read_more()?;
            // The line at hand is now at the front.
            start = 0;
            searched = held;
            if !more {
                // What is left has no newline: a line cut short, if any.
                break self.buf.len();
            }
        };
        self.line = start..end;
        self.parse_line()
    }

    /// Checks the line at hand and decodes its life.
    fn parse_line(&mut self) -> Result<bool> {
        if self.line.is_empty() {
            return Ok(false);
        }
        self.lines += 1;
        let line = &self.buf[self.line.clone()];
        let Some(json) = line.strip_suffix(b"}\n") else {
            return Err(self.damaged("the line is cut short"));
        };
        let json_len = json.len();
        let at = match self.life.parse_plain(json) {
            Some(at) => at,
            None => self.parse_life_json(json_len)?,
        };
        self.content = at + CONTENT.len()..json_len;
        if self.kept && self.life.status != Status::Resolved {
            // A later run produced the lead again, unchanged.
            self.life.status = Status::Open;
            self.life.last_run.clear();
            self.life.last_run.push_str(&self.expected.run);
        }
        if self.lines > 1 && self.life.subject <= self.last {
            return Err(self.damaged(format!(
                "subject `{}` after `{}`: out of order",
                self.life.subject, self.last
            )));
        }
        self.last.clear();
        self.last.push_str(&self.life.subject);
        Ok(true)
    }

    /// Reads the life of the line at hand with `serde_json` (a life with
    /// escaped texts, or written by other means), its first `json_len`
    /// bytes being JSON; returns where [`CONTENT`] starts. A text of a life
    /// cannot hold [`CONTENT`]: its quotes are escaped.
    fn parse_life_json(&mut self, json_len: usize) -> Result<usize> {
        let json = self.line.start..self.line.start + json_len;
        let Some(at) = self.content_key.find(&self.buf[json.clone()]) else {
            return Err(self.damaged("no content"));
        };
        self.life_json.clear();
        self.life_json
            .extend_from_slice(&self.buf[json.start..json.start + at]);
        self.life_json.push(b'}');
        match serde_json::from_slice(&self.life_json) {
            Ok(life) => self.life = life,
            Err(e) => return Err(self.damaged(e)),
        }
        Ok(at)
    }

    /// The life of the lead last read.
    fn life(&self) -> &Life<String> {
        &self.life
    }

    /// The content of the lead last read, as encoded.
    fn content(&self) -> &[u8] {
        &self.line()[self.content.clone()]
    }

    /// The line of the lead last read, with its newline.
    fn line(&self) -> &[u8] {
        &self.buf[self.line.clone()]
    }

    /// The lead last read, whole.
    fn lead(&mut self) -> Result<Lead> {
        match serde_json::from_slice::<Content>(self.content()) {
            Ok(content) => Ok(content.into_lead(self.model, self.life.clone())),
            Err(e) => Err(self.damaged(format!("content: {e}"))),
        }
    }

    fn mismatch(&self) -> Error {
        Error::Store {
            path: self.path.clone(),
            message: format!(
                "does not match the sha256 that meta `{}` records for the leads of `{}`: the \
                 file was damaged or edited; restore it from a backup of the store",
                pointer_key(self.model),
                self.model
            ),
        }
    }

    /// Why the line just read cannot be used: the file does not match its
    /// sha256 (damaged or edited), or else the line itself.
    fn damaged(&mut self, detail: impl std::fmt::Display) -> Error {
        let line = Error::Store {
            path: self.path.clone(),
            message: format!("line {}: {detail}", self.lines),
        };
        self.line = self.buf.len()..self.buf.len();
        loop {
            match self.read_more() {
                Ok(true) => self.line = self.buf.len()..self.buf.len(),
                Ok(false) => break,
                Err(_) => return line,
            }
        }
        if !self.sha256_matches() {
            return self.mismatch();
        }
        line
    }

    /// Whether the bytes read so far have the sha256 the pointer records;
    /// asked once, when the file is read through.
    fn sha256_matches(&mut self) -> bool {
        let hash = self.hash.take().expect("the sha256 is asked for once");
        hash.finish_hex() == self.expected.sha256
    }

    /// Reads the rest of the file without parsing it (counting its lines),
    /// then checks it as [`Reader::finish`] does.
    fn finish_unparsed(mut self) -> Result<()> {
        let mut from = self.line.end;
        loop {
            self.lines += memchr::memchr_iter(b'\n', &self.buf[from..]).count() as u64;
            self.line = self.buf.len()..self.buf.len();
            if !self.read_more()? {
                break;
            }
            from = 0;
        }
        self.finish()
    }

    /// Checks, once every line is read, the sha256 and the count of leads.
    fn finish(mut self) -> Result<()> {
        if !self.sha256_matches() {
            return Err(self.mismatch());
        }
        if self.lines != self.expected.leads {
            return Err(Error::Store {
                path: self.path,
                message: format!(
                    "holds {} leads where meta `{}` records {}",
                    self.lines,
                    pointer_key(self.model),
                    self.expected.leads
                ),
            });
        }
        Ok(())
    }
}

/// Appends a snapshot's line: the lead's life, then its content as
/// encoded.
fn encode_line(out: &mut Vec<u8>, life: &Life<impl AsRef<[u8]>>, content: &[u8]) {
    life.encode_open(out);
    out.extend_from_slice(CONTENT);
    out.extend_from_slice(content);
    out.extend_from_slice(b"}\n");
}

/// Writes a snapshot a line at a time, hashing what it writes behind the
/// writing ([`HashBehind`]).
struct Writer {
    path: PathBuf,
    file: File,
    /// Bytes written to `file` so far, and their writing back to disk.
    written: u64,
    writeback: crate::fsio::Writeback,
    hash: HashBehind,
    /// Lines not yet written.
    buf: Vec<u8>,
    leads: u64,
}

impl Writer {
    /// Creates (or truncates) the file at `path`.
    fn create(path: PathBuf) -> Result<Writer> {
        let file = crate::fsio::create_private(&path).map_err(|e| io_error(&path, "create", e))?;
        let hash = HashBehind::start();
        Ok(Writer {
            buf: hash.buffer(),
            hash,
            file,
            written: 0,
            writeback: Default::default(),
            path,
            leads: 0,
        })
    }

    /// Appends a lead: its life and its content as encoded.
    fn lead(&mut self, life: &Life<impl AsRef<[u8]>>, content: &[u8]) -> Result<()> {
        encode_line(&mut self.buf, life, content);
        self.ended_line()
    }

    /// Appends `count` lines already encoded, each with its newline.
    fn lines(&mut self, lines: &[u8], count: u64) -> Result<()> {
        self.buf.extend_from_slice(lines);
        self.leads += count;
        if self.buf.len() >= hash_behind::CHUNK {
            self.write_out()?;
        }
        Ok(())
    }

    /// Appends a line (with its newline) as read from another snapshot.
    fn line(&mut self, line: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(line);
        self.ended_line()
    }

    /// Counts the line just put in the buffer, and writes the buffer out
    /// once it holds a chunk.
    fn ended_line(&mut self) -> Result<()> {
        self.leads += 1;
        if self.buf.len() >= hash_behind::CHUNK {
            self.write_out()?;
        }
        Ok(())
    }

    /// Writes the buffer and hands it to the hash.
    fn write_out(&mut self) -> Result<()> {
        self.file
            .write_all(&self.buf)
            .map_err(|e| io_error(&self.path, "write", e))?;
        self.written += self.buf.len() as u64;
        self.writeback.written(&self.file, self.written);
        let next = self.hash.buffer();
        let full = std::mem::replace(&mut self.buf, next);
        self.hash.update(full);
        Ok(())
    }

    /// Makes the file durable; returns its sha256 and how many leads it holds.
    fn finish(mut self) -> Result<(String, u64)> {
        self.write_out()?;
        crate::fsio::sync_new_file(&self.file, &self.path)
            .map_err(|e| io_error(&self.path, "sync", e))?;
        Ok((self.hash.finish_hex(), self.leads))
    }
}

/// A plan's hold on its file, until the plan is committed or dropped.
use jiandu_store::inflight::InFlight;

struct Claim {
    in_flight: Arc<InFlight>,
    path: PathBuf,
    released: AtomicBool,
}

impl Claim {
    fn take(store: &Store, path: PathBuf, model: &str, run_id: &str) -> Result<Claim> {
        let in_flight = store.leads_in_flight().clone();
        if !in_flight.lock().insert(path.clone()) {
            return Err(Error::Leads(format!(
                "run {run_id} of {model} is already planned; drop that plan first"
            )));
        }
        Ok(Claim {
            in_flight,
            path,
            released: AtomicBool::new(false),
        })
    }

    fn release(&self) {
        if !self.released.swap(true, AtomicOrdering::Relaxed) {
            self.in_flight.lock().remove(&self.path);
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.release();
    }
}

/// Deletes the model's snapshot files (all of them, or only `only`) that
/// neither its pointer names nor a plan in flight holds: those of runs that
/// failed, went stale or crashed, and those that commits replaced.
fn remove_orphans(store: &Store, model: &str, only: Option<&Path>) -> Result<()> {
    let dir = model_dir(store, model);
    // Held while deciding and deleting: a plan claims its file under this
    // lock before creating it, and drops its claim only after its commit has
    // set the pointer, so a file neither claimed nor named is an orphan.
    let in_flight = store.leads_in_flight().lock();
    let current = read_pointer(store, model)?.map(|(_, p)| p.file);
    let candidates = match only {
        Some(path) => vec![path.to_path_buf()],
        None => match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(|e| io_error(&dir, "list", e))?,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_error(&dir, "list", e)),
        },
    };
    for path in candidates {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !is_snapshot_name(name) || current.as_deref() == Some(name) || in_flight.contains(&path)
        {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::debug!("removed {}: no longer the leads of {model}", path.display()),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&path, "remove", e)),
        }
    }
    Ok(())
}

/// Creates the model's folder if needed, durably.
fn create_dir(store: &Store, dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, "create", e))?;
    sync_dir(&store.leads_dir())?;
    sync_dir(store.root())
}

/// Which leads to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub model: Option<String>,
    pub status: Option<Status>,
}

/// Leads matching `filter`, by model then subject.
///
/// Each model's snapshot is read whole and checked against the sha256 its
/// pointer records: a damaged or edited file is an error naming it.
pub fn list(store: &Store, filter: &Filter) -> Result<Vec<Lead>> {
    let models = match &filter.model {
        Some(m) => vec![m.clone()],
        None => models(store)?,
    };
    let mut out = Vec::new();
    for model in &models {
        let Some(current) = open_current(store, model)? else {
            continue;
        };
        let mut reader = Reader::new(model, current);
        while reader.next()? {
            if filter.status.is_none_or(|s| s == reader.life().status) {
                out.push(reader.lead()?);
            }
        }
        reader.finish()?;
    }
    Ok(out)
}

/// Calls `f` with each lead of `model`, in subject order, one at a time:
/// the snapshot is never held whole. Its sha256 is compared with the one
/// its pointer records once the file has been read through, so on a
/// mismatch `f` has seen the leads and `each` returns the error: a caller
/// that keeps them must drop them then.
pub fn each(store: &Store, model: &str, mut f: impl FnMut(Lead)) -> Result<()> {
    let Some(current) = open_current(store, model)? else {
        return Ok(());
    };
    let mut reader = Reader::new(model, current);
    while reader.next()? {
        f(reader.lead()?);
    }
    reader.finish()
}

/// The lead of `model` whose subject is `subject`, if any. The snapshot is
/// read through and checked against its sha256 as [`list`] does, but only
/// the one lead's content is decoded.
pub fn find(store: &Store, model: &str, subject: &str) -> Result<Option<Lead>> {
    let Some(current) = open_current(store, model)? else {
        return Ok(None);
    };
    let mut reader = Reader::new(model, current);
    let mut found = None;
    while reader.next()? {
        if found.is_none() && reader.life().subject == subject {
            found = Some(reader.lead()?);
        }
    }
    reader.finish()?;
    Ok(found)
}

/// File formats of a leads export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// CSV in UTF-8 with a BOM (Excel opens it with the Chinese intact).
    Csv,
    /// An Excel workbook, one sheet.
    Xlsx,
}

/// An evidence value as JSON: a whole or decimal number in canonical form
/// (no leading zeros, at most 15 significant digits, so that it reads back
/// as the same text) as a number, `true`/`false` as a boolean, anything
/// else (identifiers such as credit codes and ID numbers included) as text.
pub fn typed_value(text: &str) -> serde_json::Value {
    match text {
        "true" => return serde_json::Value::Bool(true),
        "false" => return serde_json::Value::Bool(false),
        _ => {}
    }
    if is_plain_number(text) {
        if let Ok(i) = text.parse::<i64>() {
            return serde_json::Value::from(i);
        }
        if let Some(n) = text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return serde_json::Value::Number(n);
        }
    }
    serde_json::Value::String(text.to_string())
}

/// `YYYY-MM-DD`.
fn is_iso_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?` with at most 15 digits in all.
fn is_plain_number(text: &str) -> bool {
    let body = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let int_ok = digits(int) && (int == "0" || !int.starts_with('0'));
    let frac_ok = frac.is_none_or(digits);
    int_ok && frac_ok && int.len() + frac.map_or(0, str::len) <= 15
}

/// A lead as `--format json` shows it: the amount as its exact text (or
/// null), the evidence as an object of typed values ([`typed_value`]).
pub fn lead_json(lead: &Lead) -> serde_json::Value {
    let evidence: serde_json::Map<String, serde_json::Value> = lead
        .evidence
        .iter()
        .map(|e| (e.name.clone(), typed_value(&e.value)))
        .collect();
    serde_json::json!({
        "model": lead.model,
        "model_version": lead.model_version,
        "subject": lead.subject,
        "status": lead.status.as_str(),
        "amount": lead.amount,
        "title": lead.title,
        "evidence": evidence,
        "first_run": lead.first_run,
        "last_run": lead.last_run,
        "resolved_by": lead.resolved_by,
        "updated_at": lead.updated_at,
    })
}

/// The language of an export's column headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Headers {
    /// Chinese, for case handlers (the default of Excel exports).
    Zh,
    /// The English field names, for scripts (the default of CSV exports).
    En,
}

/// The fixed columns' Chinese headers, in [`EXPORT_COLUMNS`] order.
pub const EXPORT_COLUMNS_ZH: &[&str] = &[
    "监督模型",
    "模型版本",
    "线索对象",
    "状态",
    "金额（元）",
    "线索摘要",
    "首次发现（运行）",
    "最近发现（运行）",
    "消除于（运行）",
    "更新时间",
];

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
/// field in the order first met, written as given (pass leads
/// [`for_people`]).
pub fn export_table(leads: &[Lead]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header: Vec<String> = EXPORT_COLUMNS.iter().map(|c| c.to_string()).collect();
    let mut evidence_columns: BTreeMap<String, usize> = BTreeMap::new();
    for l in leads {
        for e in &l.evidence {
            if !evidence_columns.contains_key(&e.name) {
                evidence_columns.insert(e.name.clone(), header.len());
                // An evidence field named as a lead's own column (a model's
                // `amount` beside the lead's) gets a header of its own, so
                // that no two columns share a name.
                header.push(if EXPORT_COLUMNS.contains(&e.name.as_str()) {
                    format!("evidence.{}", e.name)
                } else {
                    e.name.clone()
                });
            }
        }
    }
    let rows = leads
        .iter()
        .cloned()
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

/// Writes `leads` to `path` as CSV or XLSX, as given (pass leads
/// [`for_people`]). Returns how many leads were written.
///
/// Every cell, the header row of evidence names included, comes from a
/// model and goes through [`crate::text::spreadsheet_cell`]: control
/// characters escaped, and a `'` before anything a spreadsheet would run
/// as a formula, in CSV and XLSX alike (an XLSX string cell does not run,
/// but it does once a case handler edits it). Amounts in XLSX are numbers.
pub fn export(
    leads: &[Lead],
    format: ExportFormat,
    headers: Headers,
    path: &Path,
) -> Result<usize> {
    let (mut header, rows) = export_table(leads);
    if headers == Headers::Zh {
        for (h, zh) in header.iter_mut().zip(EXPORT_COLUMNS_ZH) {
            *h = zh.to_string();
        }
    }
    let cells = |r: &[String]| -> Vec<String> {
        r.iter()
            .map(|v| crate::text::spreadsheet_cell(v).into_owned())
            .collect()
    };
    match format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
            w.write_record(cells(&header))
                .map_err(|e| Error::file(path, e))?;
            for r in &rows {
                w.write_record(cells(r)).map_err(|e| Error::file(path, e))?;
            }
            let bytes = w.into_inner().map_err(|e| Error::file(path, e))?;
            crate::fsio::write_atomic(path, &bytes).map_err(|e| Error::file(path, e))?;
        }
        ExportFormat::Xlsx => {
            write_xlsx(path, &header, &rows).map_err(|e| Error::file(path, e))?;
        }
    }
    Ok(rows.len())
}

fn write_xlsx(
    path: &Path,
    header: &[String],
    rows: &[Vec<String>],
) -> std::result::Result<(), rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format("#,##0.00");
    let date = Format::new().set_num_format("yyyy-mm-dd");
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
    let cell = |v: &str| crate::text::spreadsheet_cell(v).into_owned();
    for (c, h) in header.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, cell(h), &bold)?;
        ws.set_column_width(c as u16, if c == title_col { 48 } else { 18 })?;
    }
    ws.set_freeze_panes(1, 0)?;
    for (r, row) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (c, value) in row.iter().enumerate() {
            if value.is_empty() {
                continue;
            }
            // Amounts, and evidence that is a plain number, as numbers so
            // that case handlers can add them up; dates as dates. The exact
            // text stays in CSV exports and in the store. Identifiers (ID
            // numbers, credit codes) are never plain numbers: they stay text.
            let evidence = c >= EXPORT_COLUMNS.len();
            let number = value.parse::<f64>().ok().filter(|n| n.is_finite());
            let day = (evidence && is_iso_date(value))
                .then(|| ExcelDateTime::parse_from_str(value).ok())
                .flatten();
            match (number, day) {
                (Some(n), _) if c == amount_col => {
                    ws.write_number_with_format(r, c as u16, n, &money)?
                }
                (Some(n), _) if evidence && is_plain_number(value) => {
                    ws.write_number(r, c as u16, n)?
                }
                (_, Some(d)) => ws.write_datetime_with_format(r, c as u16, &d, &date)?,
                _ => ws.write_string(r, c as u16, cell(value))?,
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
    let mut d = LeadsDigest::default();
    for lead in leads.values() {
        d.add(lead);
    }
    d.finish()
}

/// [`digest`] a lead at a time: add the leads in subject order. Past a
/// chunk of lines the hashing goes on behind ([`HashBehind`]).
#[derive(Default)]
pub struct LeadsDigest {
    /// Started once the lines fill a chunk.
    hash: Option<HashBehind>,
    /// Lines not yet handed to the hash.
    pending: Vec<u8>,
}

/// Field order is the digest's: do not reorder. [`LeadsDigest::add_view`]
/// writes what `serde_json` would write for it (a test holds the two side
/// by side).
#[cfg(test)]
#[derive(Serialize)]
struct Canonical<'a> {
    amount: Option<&'a str>,
    evidence: Vec<[&'a str; 2]>,
    subject: &'a str,
    title: &'a str,
}

impl LeadsDigest {
    /// Adds a lead as a run emitted it.
    pub fn add_view(&mut self, lead: &LeadView<'_>) {
        self.add_bytes(&lead.bytes())
    }

    /// Adds a lead as a run emitted it, read back as bytes (texts that were
    /// checked for UTF-8 when it was emitted).
    pub fn add_bytes(&mut self, lead: &LeadBytes<'_>) {
        let out = &mut self.pending;
        out.extend_from_slice(b"{\"amount\":");
        json_text::push_opt_str(out, lead.amount);
        out.extend_from_slice(b",\"evidence\":");
        push_evidence(out, lead.evidence());
        out.extend_from_slice(b",\"subject\":");
        json_text::push_str(out, lead.subject);
        out.extend_from_slice(b",\"title\":");
        json_text::push_str(out, lead.title);
        out.extend_from_slice(b"}\n");
        self.line_added();
    }

    /// [`LeadsDigest::add_bytes`] of the lead of `subject` whose content
    /// the plan has just encoded: the line copies the content's JSON texts.
    fn add_content(&mut self, subject: &[u8], content: &EncodedContent) {
        let (out, c) = (&mut self.pending, &content.bytes);
        out.extend_from_slice(b"{\"amount\":");
        out.extend_from_slice(&c[content.amount.clone()]);
        out.extend_from_slice(b",\"evidence\":[");
        for (i, field) in content.evidence.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&c[field.clone()]);
            out.push(b']');
        }
        out.extend_from_slice(b"],\"subject\":");
        json_text::push_str(out, subject);
        out.extend_from_slice(b",\"title\":");
        out.extend_from_slice(&c[content.title.clone()]);
        out.extend_from_slice(b"}\n");
        self.line_added();
    }

    /// Hands the lines to the hash once they fill a chunk.
    fn line_added(&mut self) {
        if self.pending.len() >= hash_behind::CHUNK {
            let hash = self.hash.get_or_insert_with(HashBehind::start);
            let next = hash.buffer();
            hash.update(std::mem::replace(&mut self.pending, next));
        }
    }

    /// Adds a lead held as owned data, in the same encoding a run's leads
    /// are digested from.
    pub fn add(&mut self, lead: &LeadData) {
        let mut encoded = Vec::new();
        encoded_lead::put_data(&mut encoded, lead);
        let (lead, _) = encoded_lead::decode_bytes(&encoded).expect("a lead just encoded decodes");
        self.add_bytes(&lead)
    }

    /// The digest, as hex.
    pub fn finish(self) -> String {
        match self.hash {
            Some(mut hash) => {
                hash.update(self.pending);
                hash.finish_hex()
            }
            None => hex::encode(Sha256::digest(&self.pending)),
        }
    }
}

/// A successful run's new snapshot of its model's leads, planned against
/// the snapshot it replaces, with what changed.
pub struct Changes {
    model: String,
    /// `meta[pointer_key(model)]` when planned.
    base: Option<IVec>,
    /// `meta[pointer_key(model)]` once applied: the new snapshot.
    pointer: IVec,
    /// The new snapshot's file (the one it replaces when the run kept it).
    path: PathBuf,
    /// The snapshot this one replaces, unless kept.
    previous: Option<PathBuf>,
    claim: Claim,
    /// Leads produced for the first time, or again after being resolved.
    pub new: u64,
    /// Leads produced again (changed or not).
    pub open: u64,
    /// Leads no longer produced.
    pub resolved: u64,
    /// Leads whose record changed: new and resolved ones, and those
    /// produced again with a different content. The others keep their
    /// `updated_at`.
    pub changed: u64,
    /// Leads in the new snapshot, resolved ones included.
    pub leads: u64,
}

impl Changes {
    /// The new snapshot: its file name (in `<store>/leads/<model>/`), its
    /// sha256 and how many leads it holds, for the run's ledger entry.
    pub fn snapshot(&self) -> (String, String, u64) {
        let p: Pointer = serde_json::from_slice(&self.pointer).expect("a pointer this plan wrote");
        (p.file, p.sha256, p.leads)
    }

    /// To call once the transaction that applied the changes has committed:
    /// deletes the snapshot they replaced, and leaves the new one to the
    /// pointer's protection (so that a later run may retire it in turn even
    /// while this value lives). Not needed for correctness: the model's next
    /// plan deletes what is left.
    pub fn committed(&self, store: &Store) -> Result<()> {
        self.claim.release();
        if let Some(path) = &self.previous {
            remove_orphans(store, &self.model, Some(path))?;
        }
        if self.path != self.claim.path {
            // Kept: a stale plan of the same run may have written the file
            // this one claimed.
            remove_orphans(store, &self.model, Some(&self.claim.path))?;
        }
        Ok(())
    }

    /// The leads the new snapshot holds, each with the status it would
    /// have (new, open or resolved), read back from the planned file.
    pub fn preview(&self) -> Result<Vec<Lead>> {
        let pointer: Pointer =
            serde_json::from_slice(&self.pointer).expect("a pointer this plan wrote");
        let path = self.path.clone();
        let file = File::open(&path).map_err(|e| io_error(&path, "open", e))?;
        let mut reader = Reader::new(
            &self.model,
            Current {
                raw: self.pointer.clone(),
                pointer,
                path,
                file,
            },
        );
        let mut out = Vec::new();
        while reader.next()? {
            out.push(reader.lead()?);
        }
        reader.finish()?;
        Ok(out)
    }

    /// Drops a plan that is not to be committed (a dry run): its file is
    /// deleted now rather than by the model's next plan.
    pub fn discard(self, store: &Store) -> Result<()> {
        let path = self.claim.path.clone();
        self.claim.release();
        remove_orphans(store, &self.model, Some(&path))
    }
}

/// Writes the new snapshot of `model` for a successful run `run_id` that
/// produced `emitted`, and returns what [`apply_in`] needs to make it the
/// model's (see the module doc).
///
/// A merge of the current snapshot, in subject order, with `emitted`, in
/// subject order: memory does not grow with the number of leads. A lead's
/// content is compared and copied as bytes, never decoded. Deletes the
/// model's orphan files first.
pub fn plan(
    store: &Store,
    model: &str,
    model_version: &str,
    run_id: &str,
    emitted: &BTreeMap<String, LeadData>,
) -> Result<Changes> {
    plan_from(
        store,
        model,
        model_version,
        run_id,
        &mut Encoded {
            leads: emitted.values(),
            buf: Vec::new(),
        },
        None,
    )
}

/// Leads in subject order, each subject once, lent one at a time: a
/// run's leads as [`crate::emitted::Emitted::iter`] reads them back, as
/// bytes ([`crate::emitted::Merge::next_bytes`]).
pub trait LeadSource {
    /// Calls `f` with every lead, in subject order, until it fails.
    fn each(&mut self, f: &mut dyn FnMut(&LeadBytes<'_>) -> Result<()>) -> Result<()>;
}

impl LeadSource for crate::emitted::Merge<'_> {
    fn each(&mut self, f: &mut dyn FnMut(&LeadBytes<'_>) -> Result<()>) -> Result<()> {
        while let Some(lead) = self.next_bytes()? {
            f(&lead)?;
        }
        Ok(())
    }
}

/// Owned leads encoded one at a time, to be lent as views.
struct Encoded<'a, I: Iterator<Item = &'a LeadData>> {
    leads: I,
    buf: Vec<u8>,
}

impl<'a, I: Iterator<Item = &'a LeadData>> LeadSource for Encoded<'a, I> {
    fn each(&mut self, f: &mut dyn FnMut(&LeadBytes<'_>) -> Result<()>) -> Result<()> {
        for lead in self.leads.by_ref() {
            self.buf.clear();
            encoded_lead::put_data(&mut self.buf, lead);
            let (view, _) = encoded_lead::decode_bytes(&self.buf)
                .map_err(|e| Error::Leads(format!("a lead that {e}")))?;
            f(&view)?;
        }
        Ok(())
    }
}

/// [`plan`] from leads in subject order, as [`crate::emitted::Emitted`]
/// reads them back; with `digest`, the ledger's digest of those leads
/// taken on the way (from each lead's content as the plan encodes it;
/// meaningful only if the plan succeeds).
///
/// Two threads share the work: one reads the run's leads, encodes each
/// one's content and adds it to the digest ([`encode_leads`]); this one
/// merges them, a batch at a time, with the current snapshot and writes
/// the new one. Each half is about half the work; a plan on one thread
/// kept one core busy while the hashes behind it left the other idle.
pub fn plan_from(
    store: &Store,
    model: &str,
    model_version: &str,
    run_id: &str,
    emitted: &mut (dyn LeadSource + Send),
    digest: Option<&mut LeadsDigest>,
) -> Result<Changes> {
    let mut plan = Plan::start(store, model, model_version, run_id)?;
    merge_leads(&mut plan.merger, model_version, emitted, digest)?;
    plan.finish()
}

/// A plan ([`plan_from`]) given the run's leads one at a time, in subject
/// order ([`Plan::take`]): a partitioned run's leads as its parts finish.
pub struct Plan<'a> {
    model: &'a str,
    model_version: &'a str,
    dir: PathBuf,
    file: String,
    raw_base: Option<IVec>,
    /// The snapshot replaced: its pointer and file.
    base: Option<(Pointer, PathBuf)>,
    claim: Claim,
    merger: Merger<'a>,
    /// The lead at hand, encoded.
    content: EncodedContent,
}

impl<'a> Plan<'a> {
    /// Starts the plan of run `run_id`'s snapshot of `model`'s leads
    /// against the current one (the model's orphan files deleted first).
    pub fn start(
        store: &Store,
        model: &'a str,
        model_version: &'a str,
        run_id: &'a str,
    ) -> Result<Plan<'a>> {
        crate::catalog::check_name(model).map_err(Error::Leads)?;
        check_run_id(run_id)?;
        let dir = model_dir(store, model);
        let file = file_name(run_id);
        let path = dir.join(&file);
        // Read first: a run that commits from here on changes the pointer,
        // and `apply_in` then refuses this plan.
        let base = open_current(store, model)?;
        if base.as_ref().is_some_and(|b| b.pointer.run == run_id) {
            return Err(Error::Leads(format!(
                "run {run_id} of {model} has committed its leads already"
            )));
        }
        let claim = Claim::take(store, path.clone(), model, run_id)?;
        create_dir(store, &dir)?;
        remove_orphans(store, model, None)?;
        let raw_base = base.as_ref().map(|b| b.raw.clone());
        let previous = base.as_ref().map(|b| (b.pointer.clone(), b.path.clone()));
        // The snapshot opened a second time now, while the pointer names
        // it (a commit may delete it later): without it, or without a
        // snapshot, the new file is written from the start.
        let again = base.as_ref().and_then(|b| {
            Some(Current {
                raw: b.raw.clone(),
                pointer: b.pointer.clone(),
                path: b.path.clone(),
                file: File::open(&b.path).ok()?,
            })
        });
        let out = match again {
            Some(_) => None,
            None => Some(Writer::create(path.clone())?),
        };
        let mut merger = Merger {
            planner: Planner {
                model,
                run_id,
                now: crate::time::now_text(),
                out,
                path,
                new: 0,
                open: 0,
                resolved: 0,
                changed: 0,
            },
            stored: base.map(|b| Reader::new(model, b)),
            at_hand: false,
            early: again.as_ref().map(|_| Vec::new()),
            again,
            matched: 0,
        };
        if let Some(reader) = merger.stored.as_mut() {
            merger.at_hand = reader.next()?;
        }
        Ok(Plan {
            model,
            model_version,
            dir,
            file,
            raw_base,
            base: previous,
            claim,
            merger,
            content: EncodedContent::default(),
        })
    }

    /// Takes the run's next lead, whose subject comes after every one
    /// taken before; with `digest`, adds it to the ledger's digest.
    pub fn take(&mut self, lead: &LeadBytes<'_>, digest: Option<&mut LeadsDigest>) -> Result<()> {
        encode_and_digest(self.model_version, lead, &mut self.content, digest);
        self.merger.take(lead.subject, &self.content.bytes)
    }

    /// Drops the plan, deleting what it wrote.
    pub fn discard(self, store: &Store) -> Result<()> {
        let Plan {
            model,
            claim,
            merger,
            ..
        } = self;
        // The file is closed before it is deleted.
        drop(merger);
        let path = claim.path.clone();
        claim.release();
        remove_orphans(store, model, Some(&path))
    }

    /// The new snapshot, written and durable, once every lead is taken.
    pub fn finish(self) -> Result<Changes> {
        let (
            Planner {
                run_id,
                out,
                new,
                open,
                resolved,
                changed,
                path,
                ..
            },
            kept,
        ) = self.merger.finish()?;
        let (pointer, path, previous) = match (out, self.base) {
            // The run produced what the snapshot holds live: it is kept.
            (None, Some((base, base_path))) if kept => (
                Pointer {
                    written_by: Some(base.writer().to_string()),
                    run: run_id.to_string(),
                    ..base
                },
                base_path,
                None,
            ),
            (Some(out), base) => {
                let (sha256, leads) = out.finish()?;
                sync_dir(&self.dir)?;
                let pointer = Pointer {
                    file: self.file,
                    sha256,
                    leads,
                    run: run_id.to_string(),
                    written_by: None,
                };
                (pointer, path, base.map(|(_, p)| p))
            }
            (None, _) => unreachable!("a plan without a snapshot writes one"),
        };
        let leads = pointer.leads;
        Ok(Changes {
            model: self.model.to_string(),
            base: self.raw_base,
            pointer: serde_json::to_vec(&pointer)
                .expect("a pointer serializes")
                .into(),
            path,
            previous,
            claim: self.claim,
            new,
            open,
            resolved,
            changed,
            leads,
        })
    }
}

/// Leads a batch sent from [`encode_leads`] to the merge holds, at most.
const BATCH_LEADS: usize = 4096;

/// Batches on their way to the merge, at most.
const BATCHES_QUEUED: usize = 2;

/// Encoded leads on their way to the merge: each lead's subject then its
/// content, one after the other in `bytes`.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// Per lead, where its subject ends and its content ends.
    ends: Vec<(usize, usize)>,
}

impl Batch {
    fn push(&mut self, subject: &[u8], content: &[u8]) {
        self.bytes.extend_from_slice(subject);
        let subject_end = self.bytes.len();
        self.bytes.extend_from_slice(content);
        self.ends.push((subject_end, self.bytes.len()));
    }

    /// Each lead's (subject, content).
    fn leads(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut start = 0;
        self.ends.iter().map(move |&(subject, content)| {
            let lead = (&self.bytes[start..subject], &self.bytes[subject..content]);
            start = content;
            lead
        })
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

/// Merges the run's leads, encoded by a thread of their own, into
/// `merger`.
fn merge_leads(
    merger: &mut Merger<'_>,
    model_version: &str,
    emitted: &mut (dyn LeadSource + Send),
    digest: Option<&mut LeadsDigest>,
) -> Result<()> {
    let (to_merge, batches) = std::sync::mpsc::sync_channel::<Result<Batch>>(BATCHES_QUEUED);
    let (give_back, spare) = std::sync::mpsc::channel::<Batch>();
    std::thread::scope(|scope| {
        let encoder = std::thread::Builder::new()
            .name("jiandu-leads".into())
            .spawn_scoped(scope, move || {
                encode_leads(model_version, emitted, digest, &to_merge, &spare)
            })
            .map_err(|e| Error::Leads(format!("cannot start a thread to encode the leads: {e}")))?;
        let merged = (|| {
            for batch in &batches {
                let batch = batch?;
                for (subject, content) in batch.leads() {
                    merger.take(subject, content)?;
                }
                // The encoder may be done already: the batch is dropped.
                let _ = give_back.send(batch);
            }
            Ok(())
        })();
        // A merge that stopped early stops the encoder at its next batch.
        drop(batches);
        encoder.join().expect("encoding leads does not panic");
        merged
    })
}

/// The encoding half of [`merge_leads`]: encodes every lead of `emitted`
/// (and digests it) into batches sent to `to_merge`, taking emptied
/// batches back from `spare`. A failure to read the leads is sent on as
/// the last batch; a merge that stopped (the receiver gone) stops it.
fn encode_leads(
    model_version: &str,
    emitted: &mut (dyn LeadSource + Send),
    mut digest: Option<&mut LeadsDigest>,
    to_merge: &std::sync::mpsc::SyncSender<Result<Batch>>,
    spare: &std::sync::mpsc::Receiver<Batch>,
) {
    let mut content = EncodedContent::default();
    let mut batch = Batch::default();
    let read = emitted.each(&mut |data| {
        encode_and_digest(model_version, data, &mut content, digest.as_deref_mut());
        batch.push(data.subject, &content.bytes);
        if batch.ends.len() == BATCH_LEADS {
            let mut next = spare.try_recv().unwrap_or_default();
            next.clear();
            let full = std::mem::replace(&mut batch, next);
            // The merge stopped: its own error is the one reported.
            to_merge
                .send(Ok(full))
                .map_err(|_| Error::Leads("the merge of the leads stopped".into()))?;
        }
        Ok(())
    });
    let last = match read {
        Ok(()) if batch.ends.is_empty() => return,
        Ok(()) => Ok(batch),
        Err(e) => Err(e),
    };
    let _ = to_merge.send(last);
}

/// The merge of the stored snapshot with the run's leads, both in subject
/// order: the stored leads before each emitted one are no longer produced.
///
/// While the run produces exactly what the snapshot holds live (each live
/// lead again, with the same content, and no other), nothing is written:
/// a run that changes nothing keeps the snapshot ([`Pointer::written_by`])
/// rather than writing it again with only its runs changed. At the first
/// change, the leads passed so far are written from a second reading of
/// the snapshot ([`Merger::write_from_here`]), which is checked against
/// its sha256 like the first.
struct Merger<'a> {
    planner: Planner<'a>,
    stored: Option<Reader<'a>>,
    /// Whether `stored` has a lead at hand.
    at_hand: bool,
    /// While nothing is written: the snapshot opened again, to write the
    /// leads passed (`matched`) once something changes.
    again: Option<Current>,
    matched: u64,
    /// While nothing is written and they fit in [`EARLY_BYTES`]: the lines
    /// of the leads passed, as the new file would hold them. A change
    /// among the first leads, as most changes come, then needs no second
    /// reading.
    early: Option<Vec<u8>>,
}

/// How much of the lines passed while nothing is written [`Merger`] keeps
/// ready: a few thousand leads.
const EARLY_BYTES: usize = 4 << 20;

impl<'a> Merger<'a> {
    /// Whether nothing is written yet.
    fn matching(&self) -> bool {
        self.planner.out.is_none()
    }

    /// The emitted lead of `subject`, encoded as `content`.
    fn take(&mut self, subject: &[u8], content: &[u8]) -> Result<()> {
        if let Some(reader) = self.stored.as_mut() {
            while self.at_hand && reader.life().subject.as_bytes() < subject {
                Self::not_produced(
                    &mut self.planner,
                    &mut self.again,
                    &mut self.early,
                    &mut self.matched,
                    reader,
                )?;
                self.at_hand = reader.next()?;
            }
            if self.at_hand && reader.life().subject.as_bytes() == subject {
                let unchanged =
                    reader.life().status != Status::Resolved && reader.content() == content;
                if self.planner.out.is_none() && unchanged {
                    self.planner.open += 1;
                    self.matched += 1;
                    let life = open_life(reader.life(), self.planner.run_id, true, "");
                    Self::keep_early(&mut self.early, |lines| encode_line(lines, &life, content));
                } else {
                    Self::write_from_here(
                        &mut self.planner,
                        &mut self.again,
                        &mut self.early,
                        self.matched,
                    )?;
                    self.planner.produced_again(reader, content)?;
                }
                self.at_hand = reader.next()?;
                return Ok(());
            }
        }
        Self::write_from_here(
            &mut self.planner,
            &mut self.again,
            &mut self.early,
            self.matched,
        )?;
        self.planner.fresh(subject, content)
    }

    /// A stored lead the run did not produce ([`Planner::not_produced`]):
    /// passed without a word while nothing is written and it stays
    /// resolved as written.
    fn not_produced(
        planner: &mut Planner<'a>,
        again: &mut Option<Current>,
        early: &mut Option<Vec<u8>>,
        matched: &mut u64,
        reader: &Reader,
    ) -> Result<()> {
        if planner.out.is_none() && reader.life().status == Status::Resolved {
            *matched += 1;
            Self::keep_early(early, |lines| lines.extend_from_slice(reader.line()));
            return Ok(());
        }
        Self::write_from_here(planner, again, early, *matched)?;
        planner.not_produced(reader)
    }

    /// Starts writing, if nothing is written yet: creates the new file and
    /// writes the `matched` leads passed so far from the snapshot read
    /// again (`again`): live ones produced again unchanged, resolved ones
    /// as they are; then reads that second reading through, checking it
    /// against the sha256 (so that what is written is what was checked).
    fn write_from_here(
        planner: &mut Planner<'a>,
        again: &mut Option<Current>,
        early: &mut Option<Vec<u8>>,
        matched: u64,
    ) -> Result<()> {
        if planner.out.is_some() {
            return Ok(());
        }
        let mut out = Writer::create(planner.path.clone())?;
        let early = early.take();
        if let Some(lines) = &early {
            // The lines are those of the first reading, which the plan
            // checks against the sha256 when it ends.
            out.lines(lines, matched)?;
        }
        planner.out = Some(out);
        let Some(current) = again.take().filter(|_| matched > 0 && early.is_none()) else {
            return Ok(());
        };
        let model = planner.model;
        let mut reader = Reader::new(model, current);
        for _ in 0..matched {
            if !reader.next()? {
                return Err(reader.damaged("fewer leads on a second reading"));
            }
            if reader.life().status == Status::Resolved {
                created(&mut planner.out).line(reader.line())?;
            } else {
                planner.unchanged(&reader)?;
            }
        }
        reader.finish_unparsed()
    }

    /// Adds a line (`add` appends it) to the lines kept ready, unless they
    /// outgrew [`EARLY_BYTES`] (then none are kept from here on).
    fn keep_early(early: &mut Option<Vec<u8>>, add: impl FnOnce(&mut Vec<u8>)) {
        if let Some(lines) = early {
            add(lines);
            if lines.len() > EARLY_BYTES {
                *early = None;
            }
        }
    }

    /// The stored leads after the last emitted one, no longer produced;
    /// the snapshot's pointer when the run kept it.
    fn finish(mut self) -> Result<(Planner<'a>, bool)> {
        if let Some(mut reader) = self.stored.take() {
            while self.at_hand {
                Self::not_produced(
                    &mut self.planner,
                    &mut self.again,
                    &mut self.early,
                    &mut self.matched,
                    &reader,
                )?;
                self.at_hand = reader.next()?;
            }
            reader.finish()?;
        }
        // Nothing written means a snapshot to keep: without one, the file
        // is written from the start.
        let kept = self.matching();
        Ok((self.planner, kept))
    }
}

/// [`plan`], one lead at a time.
struct Planner<'a> {
    model: &'a str,
    run_id: &'a str,
    now: String,
    /// The new file, once something is written ([`Merger`]).
    out: Option<Writer>,
    path: PathBuf,
    new: u64,
    open: u64,
    resolved: u64,
    changed: u64,
}

/// The planner's new file, which [`Merger`] creates before anything is
/// written.
fn created(out: &mut Option<Writer>) -> &mut Writer {
    out.as_mut().expect("written only once the file is created")
}

impl Planner<'_> {
    /// Writes the lead of `subject`, encoded as `content`, as first
    /// produced by this run (not in the snapshot, or resolved there).
    fn fresh(&mut self, subject: &[u8], content: &[u8]) -> Result<()> {
        self.new += 1;
        self.changed += 1;
        let life = Life {
            subject,
            status: Status::New,
            first_run: self.run_id.as_bytes(),
            last_run: self.run_id.as_bytes(),
            resolved_by: None,
            updated_at: self.now.as_bytes(),
        };
        created(&mut self.out).lead(&life, content)
    }

    /// A lead in the snapshot that the run did not produce: resolved,
    /// unless it already is (then its line is copied as it is).
    fn not_produced(&mut self, reader: &Reader) -> Result<()> {
        let stored = reader.life();
        if stored.status == Status::Resolved {
            return created(&mut self.out).line(reader.line());
        }
        self.resolved += 1;
        self.changed += 1;
        let life = Life {
            subject: stored.subject.as_str(),
            status: Status::Resolved,
            first_run: &stored.first_run,
            last_run: &stored.last_run,
            resolved_by: Some(self.run_id),
            updated_at: &self.now,
        };
        created(&mut self.out).lead(&life, reader.content())
    }

    /// A lead in the snapshot that the run produced again, encoded as
    /// `content`: open if it was live, else new again; `updated_at` moves
    /// only if its content changed.
    fn produced_again(&mut self, reader: &Reader, content: &[u8]) -> Result<()> {
        let stored = reader.life();
        if stored.status == Status::Resolved {
            return self.fresh(stored.subject.as_bytes(), content);
        }
        self.open += 1;
        let same = reader.content() == content;
        if !same {
            self.changed += 1;
        }
        self.write_open(reader, content, same)
    }

    /// Writes a live lead of the snapshot that the run produced again
    /// unchanged, counted already.
    fn unchanged(&mut self, reader: &Reader) -> Result<()> {
        self.write_open(reader, reader.content(), true)
    }

    fn write_open(&mut self, reader: &Reader, content: &[u8], same: bool) -> Result<()> {
        let life = open_life(reader.life(), self.run_id, same, &self.now);
        created(&mut self.out).lead(&life, content)
    }
}

/// The life of a stored live lead that run `run_id` produced again: open,
/// last produced by that run, updated `now` unless `same` content.
fn open_life<'l>(
    stored: &'l Life<String>,
    run_id: &'l str,
    same: bool,
    now: &'l str,
) -> Life<&'l str> {
    Life {
        subject: stored.subject.as_str(),
        status: Status::Open,
        first_run: &stored.first_run,
        last_run: run_id,
        resolved_by: None,
        updated_at: if same { &stored.updated_at } else { now },
    }
}

/// Whether [`apply_in`] made the planned snapshot the model's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Written,
    /// Another run of the model committed since the changes were planned:
    /// nothing was written; plan again.
    Stale,
}

/// Inside a transaction over `meta`: points the model's leads at the
/// planned snapshot, unless another run of the model committed since
/// [`plan`]. Writes one small value, whatever the number of leads.
pub fn apply_in(
    meta: &TransactionalTree,
    changes: &Changes,
) -> std::result::Result<Applied, ConflictableTransactionError<Error>> {
    let key = pointer_key(&changes.model);
    if meta.get(&key)? != changes.base {
        return Ok(Applied::Stale);
    }
    meta.insert(key.as_bytes(), changes.pointer.clone())?;
    Ok(Applied::Written)
}

pub use jiandu_store::text::shorten;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_values_are_typed_and_identifiers_stay_text() {
        use serde_json::json;
        assert_eq!(typed_value("120"), json!(120));
        assert_eq!(typed_value("-3.50"), json!(-3.5));
        assert_eq!(typed_value("0.015"), json!(0.015));
        assert_eq!(typed_value("true"), json!(true));
        for text in [
            "11010519491231002X",
            "110105194912310021",
            "007",
            "91350100M000100Y43",
            "1e5",
            "",
            "1,000",
            "2024-03-01",
        ] {
            assert_eq!(typed_value(text), json!(text), "{text}");
        }
        assert!(
            is_iso_date("2024-03-01") && !is_iso_date("2024/03/01") && !is_iso_date("20240301")
        );
    }

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

    /// A run's digest is taken from each lead's content as the plan encodes
    /// it: the same digest as the leads' own, over enough leads to pass
    /// several chunks to the hash, texts with escapes among them.
    #[test]
    fn a_digest_taken_from_the_planned_contents_is_the_leads_digest() {
        let texts = ["91\"A\"", "阿克苏\n宏远", "back\\slash", "", "\u{1}"];
        let leads: BTreeMap<String, LeadData> = (0..4_000)
            .map(|i| {
                let t = texts[i % texts.len()];
                let amount = (i % 3 != 0).then(|| format!("{i}.{:02}", i % 100));
                let mut lead = lead_data(
                    &format!("91{i:06}{t}"),
                    amount.as_deref(),
                    &[("staff", t), (t, "120"), ("名称", "阿克苏")][..i % 4],
                );
                for (k, e) in lead.evidence.iter_mut().enumerate() {
                    e.personal = (i + k) % 2 == 0;
                }
                lead.subject_personal = i % 5 == 0;
                (lead.subject.clone(), lead)
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut taken = LeadsDigest::default();
        let changes = plan_from(
            &store,
            "m",
            "1.0.0",
            "20261206T000000.000-1-0",
            &mut Encoded {
                leads: leads.values(),
                buf: Vec::new(),
            },
            Some(&mut taken),
        )
        .unwrap();
        assert_eq!(changes.new, 4_000);
        assert_eq!(taken.finish(), digest(&leads));
        changes.discard(&store).unwrap();
    }

    /// Commits `changes` as a run would.
    fn commit_plan(store: &Store, changes: &Changes) {
        store
            .meta
            .transaction(|meta| {
                apply_in(meta, changes)?;
                Ok::<_, ConflictableTransactionError<Error>>(())
            })
            .unwrap();
        changes.committed(store).unwrap();
    }

    /// Leads are encoded on one thread and merged with the stored
    /// snapshot on another, in batches: over many batches, every lead of
    /// both sides is accounted for once, in subject order, with its status.
    #[test]
    fn the_leads_passed_before_a_change_are_written_from_memory_or_a_second_reading() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let leads: BTreeMap<String, LeadData> = (0..20_000)
            .map(|i| {
                let l = lead_data(&format!("91{i:08}"), Some("1.00"), &[("i", "1")]);
                (l.subject.clone(), l)
            })
            .collect();
        commit_plan(&store, &plan(&store, "m", "1.0.0", "r1", &leads).unwrap());
        let mut buf = Vec::new();
        let mut take = |plan: &mut Plan, lead: &LeadData| {
            buf.clear();
            encoded_lead::put_data(&mut buf, lead);
            let (view, _) = encoded_lead::decode_bytes(&buf).unwrap();
            plan.take(&view, None).unwrap();
        };
        for (passed, from_memory) in [(100, true), (19_000, false)] {
            let mut p = Plan::start(&store, "m", "1.0.0", "r2").unwrap();
            for lead in leads.values().take(passed) {
                take(&mut p, lead);
            }
            assert!(p.merger.matching());
            assert_eq!(p.merger.early.is_some(), from_memory, "{passed}");
            let mut changed = leads.values().nth(passed).unwrap().clone();
            changed.amount = Some("2.00".into());
            take(&mut p, &changed);
            assert!(!p.merger.matching() && p.merger.early.is_none());
            assert!(p.merger.again.is_none());
            for lead in leads.values().skip(passed + 1) {
                take(&mut p, lead);
            }
            let changes = p.finish().unwrap();
            assert_eq!((changes.open, changes.changed), (20_000, 1));
            let planned = changes.preview().unwrap();
            assert!(planned
                .iter()
                .all(|l| l.status == Status::Open && l.last_run == "r2"));
            changes.discard(&store).unwrap();
        }
    }

    #[test]
    fn a_plan_over_many_batches_merges_every_lead_with_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let leads = |range: std::ops::Range<usize>, step: usize, amount: &str| {
            range
                .step_by(step)
                .map(|i| {
                    let l = lead_data(&format!("91{i:08}"), Some(amount), &[("i", "1")]);
                    (l.subject.clone(), l)
                })
                .collect::<BTreeMap<_, _>>()
        };
        let first = leads(0..3 * BATCH_LEADS, 1, "1.00");
        let changes = plan(&store, "m", "1.0.0", "20261206T000000.000-1-0", &first).unwrap();
        assert_eq!(
            (changes.new, changes.leads),
            (first.len() as u64, first.len() as u64)
        );
        commit_plan(&store, &changes);
        // Every other lead again (half of them changed), the rest resolved,
        // and as many new ones after them.
        let mut second = leads(0..3 * BATCH_LEADS, 2, "1.00");
        second.extend(leads(0..3 * BATCH_LEADS, 4, "2.00"));
        second.extend(leads(3 * BATCH_LEADS..6 * BATCH_LEADS, 1, "3.00"));
        let changes = plan(&store, "m", "1.0.0", "20261206T000001.000-1-0", &second).unwrap();
        let again = (3 * BATCH_LEADS / 2) as u64;
        assert_eq!(changes.open, again);
        assert_eq!(changes.resolved, again);
        assert_eq!(changes.new, 3 * BATCH_LEADS as u64);
        assert_eq!(changes.changed, again / 2 + again + 3 * BATCH_LEADS as u64);
        let planned = changes.preview().unwrap();
        assert_eq!(planned.len(), 6 * BATCH_LEADS);
        let subjects: Vec<&str> = planned.iter().map(|l| l.subject.as_str()).collect();
        assert!(subjects.windows(2).all(|w| w[0] < w[1]));
        for lead in &planned {
            let i: usize = lead.subject[2..].parse().unwrap();
            let (status, amount) = match i {
                i if i >= 3 * BATCH_LEADS => (Status::New, "3.00"),
                i if i % 4 == 0 => (Status::Open, "2.00"),
                i if i % 2 == 0 => (Status::Open, "1.00"),
                _ => (Status::Resolved, "1.00"),
            };
            assert_eq!(
                (lead.status, lead.amount.as_deref()),
                (status, Some(amount)),
                "{i}"
            );
        }
        commit_plan(&store, &changes);
    }

    /// Leads that fail to be read part-way (a spill file gone bad, say).
    struct Failing(usize);

    impl LeadSource for Failing {
        fn each(&mut self, f: &mut dyn FnMut(&LeadBytes<'_>) -> Result<()>) -> Result<()> {
            let mut buf = Vec::new();
            for i in 0..self.0 {
                let lead = lead_data(&format!("91{i:08}"), Some("1.00"), &[]);
                buf.clear();
                encoded_lead::put_data(&mut buf, &lead);
                let (view, _) = encoded_lead::decode_bytes(&buf).unwrap();
                f(&view)?;
            }
            Err(Error::Leads("the spill file is damaged".into()))
        }
    }

    /// A failure to read the run's leads, in whichever batch, is the
    /// plan's error; nothing is left planned, and the next plan succeeds.
    #[test]
    fn a_failure_to_read_the_leads_is_the_plans_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for n in [0, 7, BATCH_LEADS, 2 * BATCH_LEADS + 1] {
            let run = format!("20261206T00000{}.000-1-0", n % 10);
            let failed = plan_from(&store, "m", "1.0.0", &run, &mut Failing(n), None);
            let e = failed.err().expect("the plan fails");
            assert!(e.to_string().contains("the spill file is damaged"), "{e}");
        }
        let one = BTreeMap::from([("91A".to_string(), lead_data("91A", None, &[]))]);
        let changes = plan(&store, "m", "1.0.0", "20261206T000009.000-1-0", &one).unwrap();
        commit_plan(&store, &changes);
        let files = std::fs::read_dir(model_dir(&store, "m")).unwrap().count();
        assert_eq!(files, 1, "only the committed snapshot is left");
    }

    #[test]
    fn hand_written_json_is_what_serde_json_writes() {
        let texts = [
            "",
            "阿克苏宏远医院（610866）",
            "a \"quoted\" \\ back\\slash",
            "tab\there\nnew\r\u{0}\u{1f}\u{7f}",
            "😀 \u{2028} é",
        ];
        for (i, &t) in texts.iter().enumerate() {
            let personal = i % 2 == 1;
            let data = LeadData {
                subject: format!("91{t}"),
                subject_personal: personal,
                title: t.to_string(),
                amount: (i % 3 != 0).then(|| format!("{i}.5{t}")),
                evidence: texts
                    .iter()
                    .take(i)
                    .enumerate()
                    .map(|(j, v)| jiandu_sdk::EvidenceData {
                        name: format!("n{j}{t}"),
                        value: v.to_string(),
                        personal: j % 2 == 0,
                    })
                    .collect(),
            };
            let mut encoded = Vec::new();
            encoded_lead::put_data(&mut encoded, &data);
            let view = encoded_lead::decode(&encoded).unwrap().0;

            let mut ours = EncodedContent::default();
            encode_content(t, &view.bytes(), &mut ours);
            let theirs = ContentRef {
                model_version: t,
                subject_personal: view.subject_personal,
                title: view.title,
                amount: view.amount,
                evidence: view
                    .evidence()
                    .map(|e| (e.name, e.value, e.personal))
                    .collect(),
            };
            assert_eq!(ours.bytes, serde_json::to_vec(&theirs).unwrap());

            let mut digest = LeadsDigest::default();
            digest.add_view(&view);
            assert!(digest.hash.is_none());
            let canonical = Canonical {
                amount: view.amount,
                evidence: view.evidence().map(|e| [e.name, e.value]).collect(),
                subject: view.subject,
                title: view.title,
            };
            let mut line = serde_json::to_vec(&canonical).unwrap();
            line.push(b'\n');
            assert_eq!(digest.pending, line);

            for status in [Status::New, Status::Open, Status::Resolved] {
                let life = Life {
                    subject: view.subject,
                    status,
                    first_run: t,
                    last_run: "20261206T000000.000-1-0",
                    resolved_by: (i % 2 == 0).then_some(t),
                    updated_at: t,
                };
                let mut ours = Vec::new();
                life.encode_open(&mut ours);
                ours.push(b'}');
                assert_eq!(ours, serde_json::to_vec(&life).unwrap());
            }
        }
    }

    #[test]
    fn a_life_reads_back_the_same_with_or_without_serde() {
        let texts = [
            "91A",
            "",
            "阿克苏 😀",
            "with \"quotes\"",
            "back\\slash",
            "new\nline",
        ];
        for (i, &t) in texts.iter().enumerate() {
            for status in [Status::New, Status::Open, Status::Resolved] {
                let life = Life {
                    subject: t,
                    status,
                    first_run: texts[(i + 1) % texts.len()],
                    last_run: "20261206T000000.000-1-0",
                    resolved_by: (i % 2 == 0).then_some(t),
                    updated_at: "2026-12-06T07:47:24.079+08:00",
                };
                let mut json = Vec::new();
                life.encode_open(&mut json);
                // Read over a life with other values, to see each one set.
                let mut plain = Life {
                    subject: "old".to_string(),
                    status: Status::Open,
                    first_run: "old".to_string(),
                    last_run: "old".to_string(),
                    resolved_by: Some("old".to_string()),
                    updated_at: "old".to_string(),
                };
                let life_len = json.len();
                json.extend_from_slice(CONTENT);
                json.extend_from_slice(b"{}");
                let read = match plain.parse_plain(&json) {
                    Some(at) => {
                        assert_eq!(at, life_len, "{t:?}");
                        true
                    }
                    None => false,
                };
                json.truncate(life_len);
                json.push(b'}');
                let by_serde: Life<String> = serde_json::from_slice(&json).unwrap();
                match read {
                    true => assert_eq!(format!("{plain:?}"), format!("{by_serde:?}")),
                    // Only texts with escapes go to serde.
                    false => assert!(
                        [t, life.first_run]
                            .iter()
                            .any(|x| x.contains(['"', '\\', '\n'])),
                        "{t:?}"
                    ),
                }
            }
        }
        // Other shapes serde reads are left to it.
        for other in [
            &br#"{"status":"open","subject":"91A","first_run":"r","last_run":"r","resolved_by":null,"updated_at":"t""#[..],
            br#"{"subject": "91A","status":"open","first_run":"r","last_run":"r","resolved_by":null,"updated_at":"t""#,
            br#"{"subject":"91A","status":"gone","first_run":"r","last_run":"r","resolved_by":null,"updated_at":"t""#,
            br#"{"subject":"91A","status":"open","first_run":"r","last_run":"r","resolved_by":null,"updated_at":"t","x":1"#,
            br#"{"subject":"91A","status":"open","first_run":"r","last_run":"r","resolved_by":null"#,
            b"{\"subject\":\"\xff\",\"status\":\"open\",\"first_run\":\"r\",\"last_run\":\"r\",\"resolved_by\":null,\"updated_at\":\"t\"",
        ] {
            let line = [other, CONTENT, b"{}"].concat();
            assert_eq!(
                Life::empty().parse_plain(&line),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
        // A plain life must be followed by the content.
        let plain = br#"{"subject":"91A","status":"open","first_run":"r","last_run":"r","resolved_by":null,"updated_at":"t""#;
        assert_eq!(
            Life::empty().parse_plain(&[&plain[..], CONTENT, b"{}"].concat()),
            Some(plain.len())
        );
        for after in [&b""[..], b",\"x\":1", b",\"content\"", b" ,\"content\":{}"] {
            let line = [&plain[..], after].concat();
            assert_eq!(Life::empty().parse_plain(&line), None, "{after:?}");
        }
    }

    #[test]
    fn a_line_reads_back_as_the_lead_written_and_keeps_its_content_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r3.leads");
        // Text that looks like the separator stays inside its string.
        let mut data = lead_data("91A,\"content\":{", Some("1.00"), &[("staff", "120")]);
        data.title.push_str(",\"content\":");
        data.evidence[0].personal = true;
        let mut encoded = Vec::new();
        encoded_lead::put_data(&mut encoded, &data);
        let (view, _) = encoded_lead::decode(&encoded).unwrap();
        let mut content = EncodedContent::default();
        encode_content("1.2.0", &view.bytes(), &mut content);
        let content = content.bytes;
        let mut w = Writer::create(path.clone()).unwrap();
        let life = Life {
            subject: data.subject.as_str(),
            status: Status::Resolved,
            first_run: "r1",
            last_run: "r2",
            resolved_by: Some("r3"),
            updated_at: "t",
        };
        w.lead(&life, &content).unwrap();
        let (sha256, leads) = w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains("\"evidence\":[[\"staff\",\"120\",true]]"),
            "{text}"
        );

        let pointer = Pointer {
            file: "r3.leads".into(),
            sha256,
            leads,
            run: "r3".into(),
            written_by: None,
        };
        let current = Current {
            raw: IVec::from(&b""[..]),
            pointer,
            file: File::open(&path).unwrap(),
            path,
        };
        let mut r = Reader::new("m", current);
        assert!(r.next().unwrap());
        assert_eq!(r.content(), content.as_slice());
        assert_eq!(r.line(), text.as_bytes());
        let lead = r.lead().unwrap();
        assert!(!r.next().unwrap());
        r.finish().unwrap();
        assert_eq!(
            (
                lead.model.as_str(),
                lead.subject.as_str(),
                lead.title.as_str()
            ),
            ("m", data.subject.as_str(), data.title.as_str())
        );
        assert_eq!(
            (
                lead.status,
                lead.last_run.as_str(),
                lead.resolved_by.as_deref()
            ),
            (Status::Resolved, "r2", Some("r3"))
        );
        assert_eq!(
            lead.evidence[0],
            Evidence {
                name: "staff".into(),
                value: "120".into(),
                personal: true
            }
        );
    }

    #[test]
    fn only_safe_run_ids_name_files() {
        assert!(check_run_id("20250101T101010.123-4242-0").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(check_run_id(bad).is_err(), "{bad}");
        }
        assert!(is_snapshot_name("r1.leads"));
        assert!(!is_snapshot_name("notes.txt"));
        assert!(!is_snapshot_name(".leads"));
    }

    #[test]
    fn shorten_respects_char_boundaries() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("残保金", 4), "残…");
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
        // Evidence named as a lead's own column keeps a header of its own.
        let (header, _) = export_table(&[lead("x", &[("amount", "2.00", false)])]);
        assert_eq!(&header[EXPORT_COLUMNS.len()..], ["evidence.amount"]);
        assert_eq!(header.iter().filter(|h| *h == "amount").count(), 1);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (masked, revealed) = for_people(&store, &leads, Reveal::Masked).unwrap();
        assert_eq!(revealed, 0);
        let (header, rows) = export_table(&masked);
        assert_eq!(&header[EXPORT_COLUMNS.len()..], ["score", "name"]);
        assert_eq!(rows[0][2], "110105***********X");
        assert_eq!(rows[0][EXPORT_COLUMNS.len() + 1], "");
        assert_eq!(rows[1][EXPORT_COLUMNS.len()..], ["70", "张*"]);
        let (clear, revealed) = for_people(&store, &leads, Reveal::Clear).unwrap();
        assert_eq!(revealed, 3, "two subjects and a name");
        let (_, clear) = export_table(&clear);
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
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = lead
            .for_people(&mut Resolver::new(&store), Reveal::Masked)
            .unwrap();
        assert_eq!(m.subject, "110105***********X");
        assert_eq!(m.evidence[0].value, "张*");
        assert_eq!(m.evidence[1].value, "120");
    }
}
