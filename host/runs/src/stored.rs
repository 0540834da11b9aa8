//! `jiandu audit verify`, beyond the chain: the files the ledger points at.
//!
//! The chain proves what was recorded; this checks that what the record
//! describes is still what the store holds:
//!
//! - **Leads.** Every snapshot file `<store>/leads/<model>/<run>.leads`
//!   that its run's `run-finished` entry (`leads_snapshot`) or the model's
//!   pointer in `meta` names is hashed whole and compared with the sha256
//!   recorded there (the entry's, when it has one: `meta` is not signed).
//!   The model's current snapshot is also read lead by lead and the leads
//!   its run produced are digested again, to compare with the entry's
//!   `leads_digest` (entries written before snapshots were named carry
//!   only that). A snapshot a later run kept (it produced the same leads)
//!   is compared with the entry of the run that wrote it, whose digest is
//!   the same. Each model's pointer must name the model's last successful
//!   run on the record (the pointer moves in the transaction that appends
//!   its entry): one set back to an earlier run, or removed, is a fault. A file no record names (a failed run's, left until the
//!   model's next run removes it) is not on the record and is skipped.
//! - **Data.** Every block of every dataset version (records and indexes,
//!   `<store>/data/<dataset>/<version>/<segment>-<run>.blk`) is read and
//!   checked against its CRCs ([`crate::dataset::file`]); then each
//!   version's digest is computed again from its records in key order
//!   ([`crate::dataset::content_digest`], one segment at a time, appended
//!   segments chained as ingest chains them) and compared with the one
//!   `meta` records, the one its `dataset-ingested` entry records, and the
//!   one each run that read it recorded. `--quick` skips the digests (the
//!   CRCs catch damage, not a block rewritten with fresh CRCs).
//!
//! - **Cursors.** A model's `only_new` cursor over a dataset in `meta`
//!   names the segments of the version its last successful run that read
//!   the dataset read (the cursor moves in the transaction that appends
//!   that entry): an edited cursor would make the next incremental run
//!   skip records or read them again, without a word.
//!
//! Every fault is reported, each with the entry it concerns and the file
//! (and block), not only the first.

use crate::audit::{DatasetChangeView, IngestView, ReviewView, SnapshotView};
use crate::dataset::block::Block;
use crate::dataset::file::{run_path, version_dir, RunFile};
use crate::dataset::{Head, Schema, SegmentInfo, VersionInfo};
use crate::ledger::Verification;
use crate::{Result, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Run 0 of a segment holds its records; runs from 1 its indexes
/// ([`crate::dataset::file::run_path`]).
const RECORDS_RUN: u16 = 0;

/// One file that does not match its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileFault {
    /// The ledger entry that records what the file should hold, if any.
    pub seq: Option<u64>,
    pub path: PathBuf,
    /// The block of a dataset file, counted from 0.
    pub block: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for FileFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(seq) = self.seq {
            write!(f, "entry {seq}: ")?;
        }
        write!(f, "{}", self.path.display())?;
        if let Some(b) = self.block {
            write!(f, " block {b}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What [`verify`] checked and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Files {
    /// Leads snapshot files hashed.
    pub leads_files: u64,
    /// Current snapshots whose leads were digested again.
    pub leads_digests: u64,
    /// Dataset versions checked.
    pub versions: u64,
    /// Block files and blocks read, and their bytes.
    pub block_files: u64,
    pub blocks: u64,
    pub bytes: u64,
    /// Versions whose digest was computed again (none with `quick`).
    pub digests: u64,
    /// Segments whose index and pseudonym runs were built again from
    /// their records and compared (none with `quick`).
    pub derived: u64,
    /// Model versions kept for replay checked against the runs that ran
    /// them.
    pub models: u64,
    pub quick: bool,
    pub faults: Vec<FileFault>,
}

/// What the ledger says about files, read once.
#[derive(Default)]
struct Record {
    /// `run-finished` entries of successful runs by run id: (seq, snapshot
    /// file and sha256, leads digest).
    finished: HashMap<String, Finished>,
    /// `dataset-ingested` entries by (dataset, version).
    ingested: HashMap<(String, u64), Ingested>,
    /// Per dataset, the version the last ingest or rollback on the record
    /// made current, and that entry's seq: what `meta` must name, since
    /// the head moves in the same transaction as the entry.
    current: HashMap<String, (u64, u64)>,
    /// Per (model, subject), the last `lead-reviewed` entry: the review
    /// state `meta` keeps was written with it.
    reviews: HashMap<(String, String), Reviewed>,
    /// The model versions runs ran, by (name@version, wasm sha256, plan
    /// hash), with the first entry that ran each.
    models: HashMap<(String, String, Option<String>), (u64, RanModel)>,
    /// Every (entry, digest) that read (dataset, version).
    read: HashMap<(String, u64), Vec<(u64, String)>>,
    /// `dataset-pruned` entries by the (dataset, version) they removed.
    pruned: HashMap<(String, u64), u64>,
    /// Per model: the last successful run that recorded a snapshot (its
    /// entry's seq and run id), which its pointer in `meta` must name,
    /// since the pointer moves in the same transaction as that entry.
    last_run: HashMap<String, (u64, String)>,
    /// Per cursor key (`cursor/<model>/<dataset>`), the last successful
    /// run that moved it: its entry's seq and the version it read. The
    /// cursor moves in the same transaction as that entry.
    cursors: HashMap<String, (u64, String, u64)>,
}

/// A model version a run ran, as its `run-started` entry names it.
struct RanModel {
    name: String,
    version: String,
    wasm_sha256: String,
    plan_sha256: Option<String>,
}

/// A `dataset-ingested` entry: its seq, who ingested, what it stored.
struct Ingested {
    seq: u64,
    operator: String,
    view: IngestView,
}

/// A `lead-reviewed` entry: its seq, who acted, and the state it left.
struct Reviewed {
    seq: u64,
    operator: String,
    to: String,
    seen_in_run: String,
}

struct Finished {
    seq: u64,
    snapshot: Option<(String, String)>,
    digest: Option<String>,
}

/// The parts of an entry that name files. Every entry is read, so what is
/// not kept is skipped, not copied.
#[derive(Deserialize)]
struct Pointing<'a> {
    #[serde(default, borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    operator: Cow<'a, str>,
    #[serde(default)]
    review: Option<ReviewView>,
    #[serde(default)]
    ingest: Option<IngestView>,
    #[serde(default)]
    dataset: Option<DatasetChangeView>,
    #[serde(default, borrow)]
    run: PointingRun<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PointingRun<'a> {
    #[serde(borrow)]
    run_id: Cow<'a, str>,
    #[serde(borrow)]
    model: PointingModel<'a>,
    #[serde(borrow)]
    datasets: Vec<PointingDataset<'a>>,
    #[serde(borrow)]
    outcome: Cow<'a, str>,
    leads_snapshot: Option<SnapshotView>,
    leads_digest: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PointingModel<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    version: Cow<'a, str>,
    #[serde(borrow)]
    wasm_sha256: Cow<'a, str>,
    plan: Option<PointingPlan>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PointingPlan {
    sha256: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PointingDataset<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    version: u64,
    #[serde(borrow)]
    digest: Cow<'a, str>,
}

/// What one entry says about files, kept from its bytes.
enum Pointer {
    Ingested(IngestView, String),
    Pruned(DatasetChangeView),
    RolledBack(DatasetChangeView),
    Reviewed(ReviewView, String),
    /// A run started: the dataset versions it read, and the model version
    /// it ran.
    Read(Vec<(String, u64, String)>, Option<RanModel>),
    Finished {
        run_id: String,
        model: String,
        snapshot: Option<(String, String)>,
        digest: Option<String>,
        /// The (dataset, version) pairs the run read.
        read: Vec<(String, u64)>,
    },
}

impl Pointer {
    /// What the entry `bytes` points at, if anything. An entry that does
    /// not parse is the chain's fault to report.
    fn of(bytes: &[u8]) -> Option<Pointer> {
        let e = serde_json::from_slice::<Pointing>(bytes).ok()?;
        if let Some(i) = e.ingest {
            return Some(Pointer::Ingested(i, e.operator.into_owned()));
        }
        if let Some(r) = e.review {
            return Some(Pointer::Reviewed(r, e.operator.into_owned()));
        }
        match (&*e.kind, e.dataset) {
            ("dataset-pruned", Some(d)) => return Some(Pointer::Pruned(d)),
            ("dataset-rolled-back", Some(d)) => return Some(Pointer::RolledBack(d)),
            ("run-started", _) => {
                let m = e.run.model;
                let model = (!m.wasm_sha256.is_empty()).then(|| RanModel {
                    name: m.name.into_owned(),
                    version: m.version.into_owned(),
                    wasm_sha256: m.wasm_sha256.into_owned(),
                    plan_sha256: m.plan.map(|p| p.sha256),
                });
                let read = e.run.datasets.into_iter();
                return Some(Pointer::Read(
                    read.map(|d| (d.name.into_owned(), d.version, d.digest.into_owned()))
                        .collect(),
                    model,
                ));
            }
            ("run-finished", _) if e.run.outcome == "succeeded" => {}
            _ => return None,
        }
        Some(Pointer::Finished {
            run_id: e.run.run_id.into_owned(),
            model: e.run.model.name.into_owned(),
            snapshot: e.run.leads_snapshot.map(|s| (s.file, s.sha256)),
            digest: e.run.leads_digest,
            read: e
                .run
                .datasets
                .into_iter()
                .map(|d| (d.name.into_owned(), d.version))
                .collect(),
        })
    }
}

impl Record {
    fn read(store: &Store) -> Result<Record> {
        let mut r = Record::default();
        for item in crate::ledger::entries(store, 1) {
            let (seq, bytes) = item?;
            if let Some(p) = Pointer::of(&bytes) {
                r.add(seq, p);
            }
        }
        Ok(r)
    }

    fn add(&mut self, seq: u64, pointer: Pointer) {
        match pointer {
            Pointer::Ingested(view, operator) => {
                self.current
                    .insert(view.dataset.clone(), (seq, view.version));
                self.ingested.insert(
                    (view.dataset.clone(), view.version),
                    Ingested {
                        seq,
                        operator,
                        view,
                    },
                );
            }
            Pointer::RolledBack(d) => {
                if let Some(to) = d.to {
                    self.current.insert(d.dataset, (seq, to));
                }
            }
            Pointer::Reviewed(r, operator) => {
                self.reviews.insert(
                    (r.model, r.subject),
                    Reviewed {
                        seq,
                        operator,
                        to: r.to,
                        seen_in_run: r.seen_in_run,
                    },
                );
            }
            Pointer::Pruned(d) => {
                for p in &d.pruned {
                    self.pruned.insert((d.dataset.clone(), p.version), seq);
                }
            }
            Pointer::Read(read, model) => {
                if let Some(m) = model {
                    let key = (
                        format!("{}@{}", m.name, m.version),
                        m.wasm_sha256.clone(),
                        m.plan_sha256.clone(),
                    );
                    self.models.entry(key).or_insert((seq, m));
                }
                for (name, version, digest) in read {
                    self.read
                        .entry((name, version))
                        .or_default()
                        .push((seq, digest));
                }
            }
            Pointer::Finished {
                run_id,
                model,
                snapshot,
                digest,
                read,
            } => {
                // Only a run that committed leads (a snapshot) moved its
                // cursors; a dry run keeps none.
                if snapshot.is_some() {
                    for (dataset, version) in read {
                        let key = crate::run::cursor_key(&model, &dataset);
                        self.cursors.insert(key, (seq, dataset, version));
                    }
                    self.last_run.insert(model, (seq, run_id.clone()));
                }
                self.finished.insert(
                    run_id,
                    Finished {
                        seq,
                        snapshot,
                        digest,
                    },
                );
            }
        }
    }
}

/// Checks the leads files and dataset blocks this store's ledger points
/// at; with `quick`, leads files and block CRCs only.
pub fn verify(store: &Store, quick: bool) -> Result<Files> {
    check(store, &Record::read(store)?, quick)
}

fn check(store: &Store, record: &Record, quick: bool) -> Result<Files> {
    let mut files = Files {
        quick,
        ..Files::default()
    };
    leads(store, record, quick, &mut files)?;
    data(store, record, quick, &mut files)?;
    reviews(store, record, &mut files)?;
    kept_models(store, record, &mut files);
    Ok(files)
}

/// `jiandu audit verify` of this store: the chain, then the files its
/// entries point at, reading the ledger once (what the files need is
/// gathered beside the chain's walk). After a fault in the chain the
/// ledger is read again whole, so the files are still checked against
/// every entry.
pub fn verify_with_ledger(store: &Store, quick: bool) -> Result<(Verification, Files)> {
    let (chain, pointers) =
        crate::audit::verify::local_observed(store, &|_, bytes| Pointer::of(bytes))?;
    let record = if chain.problem.is_none() {
        let mut r = Record::default();
        for (seq, p) in pointers {
            r.add(seq, p);
        }
        r
    } else {
        Record::read(store)?
    };
    Ok((chain, check(store, &record, quick)?))
}

/// sha256 of the file at `path`, read in pieces.
fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn leads(store: &Store, record: &Record, quick: bool, files: &mut Files) -> Result<()> {
    let pointers: HashMap<PathBuf, crate::leads::Snapshot> = crate::leads::snapshots(store)?
        .into_iter()
        .map(|s| (s.path.clone(), s))
        .collect();
    rolled_back(store, record, &pointers, files);
    // The files on disk, and those the pointers name (which must exist).
    let mut paths: Vec<PathBuf> = pointers.keys().cloned().collect();
    if let Ok(models) = std::fs::read_dir(store.leads_dir()) {
        for model in models.flatten() {
            let Ok(found) = std::fs::read_dir(model.path()) else {
                continue;
            };
            for f in found.flatten() {
                let path = f.path();
                if path.extension().is_some_and(|e| e == "leads") && !pointers.contains_key(&path) {
                    paths.push(path);
                }
            }
        }
    }
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let run = name.strip_suffix(".leads").unwrap_or(&name);
        let finished = record.finished.get(run);
        let pointer = pointers.get(&path);
        let seq = finished.map(|f| f.seq);
        let fault = |message: String| FileFault {
            seq,
            path: path.clone(),
            block: None,
            message,
        };
        // The entry's record is signed; the pointer's is not.
        let entry_sha = finished.and_then(|f| {
            f.snapshot
                .as_ref()
                .filter(|(file, _)| *file == name)
                .map(|(_, sha)| sha.clone())
        });
        let (expected, by) = match (&entry_sha, pointer) {
            (Some(sha), _) => (sha.clone(), format!("entry {}", seq.unwrap_or(0))),
            (None, Some(p)) => (
                p.sha256.clone(),
                format!("meta `leads/{}/current`", p.model),
            ),
            // Named by no record: a failed or superseded run's leftover.
            (None, None) => continue,
        };
        // A pointer that names a later run as keeping the file: that run's
        // entry names the same file and sha256.
        if let Some((p, Some((file, sha)))) = pointer
            .filter(|p| p.run != run)
            .and_then(|p| Some((p, record.finished.get(p.run.as_str())?.snapshot.as_ref())))
        {
            if *file != name || *sha != p.sha256 {
                files.faults.push(fault(format!(
                    "meta `leads/{}/current` says run {} kept this file, but that run's entry records {file} ({}…): the pointer was edited",
                    p.model,
                    p.run,
                    crate::audit::short(sha)
                )));
            }
        }
        if let (Some(sha), Some(p)) = (&entry_sha, pointer) {
            if *sha != p.sha256 {
                files.faults.push(fault(format!(
                    "meta `leads/{}/current` records sha256 {}… for this file, but its run's entry records {}…: the pointer was edited",
                    p.model,
                    crate::audit::short(&p.sha256),
                    crate::audit::short(sha)
                )));
            }
        }
        files.leads_files += 1;
        let actual = match file_sha256(&path) {
            Ok(sha) => sha,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                files.faults.push(fault(format!(
                    "the leads file {by} names is missing; restore it from a backup of the store"
                )));
                continue;
            }
            Err(e) => {
                files.faults.push(fault(format!("cannot be read: {e}")));
                continue;
            }
        };
        if actual != expected {
            files.faults.push(fault(format!(
                "does not match the sha256 {by} records ({}…; its bytes hash to {}…): damaged or edited; restore it from a backup of the store",
                crate::audit::short(&expected),
                crate::audit::short(&actual)
            )));
            continue;
        }
        // The leads the run produced, digested again from the snapshot.
        if let (false, Some(p), Some(f)) = (quick, pointer, finished) {
            if let Some(digest) = &f.digest {
                files.leads_digests += 1;
                // The run whose leads the snapshot holds: the one that
                // wrote it, or a later one that kept it, having produced
                // exactly the same leads (and so the same digest).
                match leads_digest(store, &p.model, &p.run) {
                    Ok(again) if &again == digest => {}
                    Ok(again) => files.faults.push(fault(format!(
                        "the leads its run produced digest to {}…, but entry {} records {}…",
                        crate::audit::short(&again),
                        f.seq,
                        crate::audit::short(digest)
                    ))),
                    Err(e) => files.faults.push(fault(e.to_string())),
                }
            }
        }
    }
    Ok(())
}

/// Each model's pointer names the last run the ledger records for it: a
/// pointer set back to an earlier run that kept the same file (whose
/// entry names that file and sha256 as well), or removed, hiding the
/// model's leads, is found here; the files are checked after.
fn rolled_back(
    store: &Store,
    record: &Record,
    pointers: &HashMap<PathBuf, crate::leads::Snapshot>,
    files: &mut Files,
) {
    let named: HashMap<&str, &crate::leads::Snapshot> =
        pointers.values().map(|p| (p.model.as_str(), p)).collect();
    let mut models: Vec<(&String, &(u64, String))> = record.last_run.iter().collect();
    models.sort();
    for (model, (seq, run)) in models {
        let key = format!("meta `leads/{model}/current`");
        match named.get(model.as_str()) {
            Some(p) if p.run == *run => {}
            Some(p) => files.faults.push(FileFault {
                seq: Some(*seq),
                path: p.path.clone(),
                block: None,
                message: format!(
                    "{key} names run {} as the last to produce these leads, but the last run of {model} on the record is {run}: the pointer was set back",
                    p.run
                ),
            }),
            None => files.faults.push(FileFault {
                seq: Some(*seq),
                path: crate::leads::model_dir(store, model),
                block: None,
                message: format!(
                    "run {run} of {model} recorded its leads, but {key} is gone: the model's leads are hidden; restore meta from a backup of the store"
                ),
            }),
        }
    }
}

/// The digest ([`crate::leads::LeadsDigest`]) of the leads run `run`
/// produced, as the model's current snapshot holds them: those it left
/// live, each naming it as the last run that produced it.
fn leads_digest(store: &Store, model: &str, run: &str) -> Result<String> {
    let leads = crate::leads::list(
        store,
        &crate::leads::Filter {
            model: Some(model.to_string()),
            status: None,
        },
    )?;
    let mut produced: Vec<&crate::leads::Lead> = leads
        .iter()
        .filter(|l| l.status != crate::leads::Status::Resolved && l.last_run == run)
        .collect();
    produced.sort_by(|a, b| a.subject.cmp(&b.subject));
    let mut d = crate::leads::LeadsDigest::default();
    for l in produced {
        d.add(&jiandu_sdk::LeadData {
            subject: l.subject.clone(),
            subject_personal: l.subject_personal,
            title: l.title.clone(),
            amount: l.amount.clone(),
            evidence: l
                .evidence
                .iter()
                .map(|e| jiandu_sdk::EvidenceData {
                    name: e.name.clone(),
                    value: e.value.clone(),
                    personal: e.personal,
                })
                .collect(),
        });
    }
    Ok(d.finish())
}

/// [`crate::dataset::content_digest`] fed one record at a time: the same
/// bytes hashed in the same order (a test holds the two together).
struct ContentDigest {
    h: Sha256,
}

impl ContentDigest {
    fn new(schema: &Schema) -> ContentDigest {
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(schema).expect("schema serializes"));
        ContentDigest { h }
    }

    fn add(&mut self, key: &[u8], record: &[u8]) {
        self.h.update((key.len() as u64).to_le_bytes());
        self.h.update(key);
        self.h.update((record.len() as u64).to_le_bytes());
        self.h.update(record);
    }

    fn finish(self) -> String {
        hex::encode(self.h.finalize())
    }
}

/// What reading one segment's record file gave.
enum SegmentCheck {
    /// Every block passed its CRCs; the segment's digest, unless quick.
    Good(Option<String>),
    /// A fault was reported.
    Bad,
}

fn data(store: &Store, record: &Record, quick: bool, files: &mut Files) -> Result<()> {
    let data = store.data_dir();
    let heads = crate::dataset::list(store)?;
    missing_versions(&data, &heads, record, files);
    cursors(store, &heads, record, files)?;
    let mut derived = Vec::new();
    for head in &heads {
        // Segments shared by versions (appends) are read once.
        let mut segments: HashMap<PathBuf, SegmentCheck> = HashMap::new();
        for info in &head.versions {
            files.versions += 1;
            let mut checks = Checks {
                segments: &mut segments,
                derived: &mut derived,
                files,
            };
            check_version(store, head, info, record, quick, &mut checks);
        }
        current_version(&data, head, record, files);
    }
    derived_runs(store, &derived, files);
    Ok(())
}

/// Each `only_new` cursor in `meta` against the run on the record that
/// last moved it: the segments of the version that run read. A cursor
/// whose version was pruned since is not compared (its segments are no
/// longer known); one no run moved, or one removed, is a fault.
fn cursors(store: &Store, heads: &[Head], record: &Record, files: &mut Files) -> Result<()> {
    const PREFIX: &str = "cursor/";
    let mut found = std::collections::BTreeMap::new();
    for item in store.meta.scan_prefix(PREFIX) {
        let (key, value) = item?;
        found.insert(String::from_utf8_lossy(&key).into_owned(), value);
    }
    let mut moved: Vec<(&String, &(u64, String, u64))> = record.cursors.iter().collect();
    moved.sort_by_key(|(key, (seq, ..))| (*seq, *key));
    let fault = |seq: Option<u64>, dataset: &str, message: String| FileFault {
        seq,
        path: store.data_dir().join(dataset),
        block: None,
        message,
    };
    for (key, (seq, dataset, version)) in moved {
        let Some(bytes) = found.remove(key) else {
            files.faults.push(fault(
                Some(*seq),
                dataset,
                format!(
                    "meta `{key}`: the run of this entry read {dataset}@{version} and moved the cursor to it, but meta has no cursor: it was removed (the model's next incremental run would read every record as new)"
                ),
            ));
            continue;
        };
        let Some(segments) = heads
            .iter()
            .find(|h| h.schema.name == *dataset)
            .and_then(|h| h.versions.iter().find(|v| v.version == *version))
            .map(|info| {
                info.segments
                    .iter()
                    .map(|s| (s.stored_in.unwrap_or(info.version), s.id))
                    .collect::<Vec<crate::dataset::SegmentId>>()
            })
        else {
            continue;
        };
        match serde_json::from_slice::<Vec<crate::dataset::SegmentId>>(&bytes) {
            Ok(cursor) if cursor == segments => {}
            Ok(cursor) => files.faults.push(fault(
                Some(*seq),
                dataset,
                format!(
                    "meta `{key}` names segments {cursor:?}, but the run of this entry, the last to move it, read {dataset}@{version}, whose segments are {segments:?}: the cursor was edited (the model's next incremental run would skip records or read them again)"
                ),
            )),
            Err(e) => files.faults.push(fault(
                Some(*seq),
                dataset,
                format!("meta `{key}` is unreadable ({e}): the cursor was edited"),
            )),
        }
    }
    for key in found.keys() {
        let dataset = key[PREFIX.len()..].rsplit('/').next().unwrap_or_default();
        files.faults.push(fault(
            None,
            dataset,
            format!(
                "meta `{key}`: no successful run on the record moved this cursor: it was added"
            ),
        ));
    }
    Ok(())
}

/// Where [`check_version`] puts what it found and what is left to do.
struct Checks<'a> {
    /// Segments already read (appends share them), by record file.
    segments: &'a mut HashMap<PathBuf, SegmentCheck>,
    /// Segments whose derived runs are to be built again, once every
    /// version's blocks are read: [`derived_runs`] does them on every core.
    derived: &'a mut Vec<Derived>,
    files: &'a mut Files,
}

/// A segment whose index and pseudonym runs are to be built again.
struct Derived {
    name: String,
    schema: Schema,
    stored_in: u64,
    seg: SegmentInfo,
    seq: Option<u64>,
}

/// The version `meta` makes current is the one the dataset's last ingest
/// or rollback on the record made current: the head moves in the same
/// transaction as that entry, so another version means an edit, which
/// would have runs read other data than the record says is current.
fn current_version(data: &Path, head: &Head, record: &Record, files: &mut Files) {
    let name = &head.schema.name;
    let Some(&(seq, version)) = record.current.get(name) else {
        return;
    };
    if head.current == Some(version) {
        return;
    }
    let now = head
        .current
        .map_or("no version".to_string(), |v| format!("version {v}"));
    files.faults.push(FileFault {
        seq: Some(seq),
        path: data.join(name),
        block: None,
        message: format!(
            "{name}: meta makes {now} current, but this entry, the last to change it on the record, made version {version} current: the dataset was switched without an entry"
        ),
    });
}

/// Each model version a run on the record ran, where the store keeps it
/// for replay (`models/.versions/`, in a folder named by its hashes),
/// against what the run recorded: the wasm's sha256, the plan's hash,
/// its name and version. A kept version that was edited would replay
/// another rule than the one that ran. A version not kept (built before
/// versions were kept) is not a fault.
fn kept_models(store: &Store, record: &Record, files: &mut Files) {
    let models = store.models_dir();
    let mut ran: Vec<&(u64, RanModel)> = record.models.values().collect();
    ran.sort_by_key(|(seq, _)| *seq);
    for (seq, m) in ran {
        let dir = crate::catalog::kept_dir(
            &models,
            (&m.name, &m.version),
            &m.wasm_sha256,
            m.plan_sha256.as_deref(),
        );
        if !dir.join("model.wasm").is_file() {
            continue;
        }
        files.models += 1;
        let id = format!("{}@{}", m.name, m.version);
        let fault = |path: PathBuf, message: String| FileFault {
            seq: Some(*seq),
            path,
            block: None,
            message: format!("{id}, as this run ran it: {message}"),
        };
        let kept = match crate::catalog::load_dir(&dir) {
            Ok(kept) => kept,
            Err(e) => {
                files
                    .faults
                    .push(fault(dir.clone(), format!("cannot be read: {e}")));
                continue;
            }
        };
        if kept.wasm_sha256 != m.wasm_sha256 {
            files.faults.push(fault(
                dir.join("model.wasm"),
                format!(
                    "hashes to {}…, not to the {}… the run recorded: damaged or edited",
                    crate::audit::short(&kept.wasm_sha256),
                    crate::audit::short(&m.wasm_sha256)
                ),
            ));
        }
        if kept.plan_sha256 != m.plan_sha256 {
            let file = kept
                .manifest
                .plan
                .clone()
                .unwrap_or_else(|| "model.toml".into());
            files.faults.push(fault(
                dir.join(file),
                "the plan kept is not the one the run recorded: damaged or edited".into(),
            ));
        }
        if (&kept.manifest.name, &kept.manifest.version) != (&m.name, &m.version) {
            files.faults.push(fault(
                dir.join("model.toml"),
                format!(
                    "names {}@{}: damaged or edited",
                    kept.manifest.name, kept.manifest.version
                ),
            ));
        }
    }
}

/// A version's description in `meta` against its `dataset-ingested`
/// entry: who ingested it, from which file (and its sha256), how many
/// records and warnings. `dataset show` prints these; an edit to them is
/// reported through `fault`.
fn provenance(name: &str, info: &VersionInfo, ingested: &Ingested, fault: &mut dyn FnMut(String)) {
    let entry = &ingested.view;
    let pairs: [(&str, String, String); 5] = [
        ("operator", info.operator.clone(), ingested.operator.clone()),
        ("source", info.source.clone(), entry.source.clone()),
        (
            "source_sha256",
            info.source_sha256.clone(),
            entry.source_sha256.clone(),
        ),
        (
            "records",
            info.records.to_string(),
            entry.records.to_string(),
        ),
        (
            "warnings",
            info.warnings.to_string(),
            entry.warnings.to_string(),
        ),
    ];
    for (what, meta, recorded) in pairs {
        if meta != recorded {
            fault(format!(
                "{name}@{}: meta records {what} `{meta}`, but its ingest entry records `{recorded}`: the version's metadata was edited",
                info.version
            ));
        }
    }
}

/// Each lead's review state in `meta` against the last `lead-reviewed`
/// entry for the lead, with which it was written: the state it left, who
/// acted and on which run's leads. A state without an entry, or an entry
/// whose state is gone, is an edit.
fn reviews(store: &Store, record: &Record, files: &mut Files) -> Result<()> {
    let db = store.root().join("db");
    let stored = crate::review::all(store)?;
    let mut faults = Vec::new();
    for (model, by_subject) in &stored {
        for (subject, state) in by_subject {
            let key = (model.clone(), subject.clone());
            let what = format!("the review of lead {subject} of {model}");
            let Some(entry) = record.reviews.get(&key) else {
                faults.push(FileFault {
                    seq: None,
                    path: db.clone(),
                    block: None,
                    message: format!(
                        "{what} is `{}` in meta, but no `lead-reviewed` entry records an action on it",
                        state.state.as_str()
                    ),
                });
                continue;
            };
            let pairs = [
                ("state", state.state.as_str(), entry.to.as_str()),
                ("by", state.by.as_str(), entry.operator.as_str()),
                (
                    "seen_in_run",
                    state.seen_in_run.as_str(),
                    entry.seen_in_run.as_str(),
                ),
            ];
            for (field, meta, recorded) in pairs {
                if meta != recorded {
                    faults.push(FileFault {
                        seq: Some(entry.seq),
                        path: db.clone(),
                        block: None,
                        message: format!(
                            "{what}: meta records {field} `{meta}`, but this entry, the last action on it, left `{recorded}`: the review was edited"
                        ),
                    });
                }
            }
        }
    }
    for ((model, subject), entry) in &record.reviews {
        if !stored.get(model).is_some_and(|s| s.contains_key(subject)) {
            faults.push(FileFault {
                seq: Some(entry.seq),
                path: db.clone(),
                block: None,
                message: format!(
                    "the review of lead {subject} of {model}: this entry left it `{}`, but meta has no review for it: the review was removed",
                    entry.to
                ),
            });
        }
    }
    faults.sort_by(|a, b| (a.seq, &a.message).cmp(&(b.seq, &b.message)));
    files.faults.extend(faults);
    Ok(())
}

/// A version the ledger says was stored is in the store, or a prune on
/// the record removed it.
fn missing_versions(data: &Path, heads: &[Head], record: &Record, files: &mut Files) {
    let present: std::collections::HashSet<(&str, u64)> = heads
        .iter()
        .flat_map(|h| {
            h.versions
                .iter()
                .map(|v| (h.schema.name.as_str(), v.version))
        })
        .collect();
    let mut missing: Vec<_> = record
        .ingested
        .iter()
        .filter(|((name, v), _)| {
            !present.contains(&(name.as_str(), *v))
                && !record.pruned.contains_key(&(name.clone(), *v))
        })
        .collect();
    missing.sort_by_key(|(_, i)| i.seq);
    for ((name, v), i) in missing {
        files.faults.push(FileFault {
            seq: Some(i.seq),
            path: version_dir(data, name, *v),
            block: None,
            message: format!(
                "{name}@{v} was stored by this entry, but the store no longer has it and no `dataset-pruned` entry removed it"
            ),
        });
    }
}

/// One version: its segments' blocks against their CRCs, the digest its
/// metadata records against the ledger's, and (unless `quick`) its records
/// digested again.
fn check_version(
    store: &Store,
    head: &Head,
    info: &VersionInfo,
    record: &Record,
    quick: bool,
    checks: &mut Checks<'_>,
) {
    let name = &head.schema.name;
    let key = (name.clone(), info.version);
    // The entry a fault is reported against: the ingest, else the first
    // run that read it.
    let seq = record.ingested.get(&key).map(|i| i.seq).or_else(|| {
        record
            .read
            .get(&key)
            .and_then(|r| r.first().map(|(seq, _)| *seq))
    });
    let data = &store.data_dir();
    let digests = version_segments(store, head, info, seq, quick, checks);
    let files = &mut *checks.files;
    let fault = |message: String, seq: Option<u64>| FileFault {
        seq,
        path: version_dir(data, name, info.version),
        block: None,
        message,
    };
    // What the ledger recorded against what meta records.
    if let Some(ingested) = record.ingested.get(&key) {
        let (seq, digest) = (&ingested.seq, &ingested.view.digest);
        provenance(name, info, ingested, &mut |m| {
            files.faults.push(fault(m, Some(*seq)))
        });
        if *digest != info.digest {
            files.faults.push(fault(
                format!(
                    "{name}@{}: meta records digest {}…, but its ingest entry records {}…: the version's metadata was edited",
                    info.version,
                    crate::audit::short(&info.digest),
                    crate::audit::short(digest)
                ),
                Some(*seq),
            ));
        }
    }
    for (seq, digest) in record.read.get(&key).into_iter().flatten() {
        if *digest != info.digest {
            files.faults.push(fault(
                format!(
                    "{name}@{}: the run of this entry read digest {}…, but meta now records {}…",
                    info.version,
                    crate::audit::short(digest),
                    crate::audit::short(&info.digest)
                ),
                Some(*seq),
            ));
        }
    }
    let Some(again) = digests.filter(|_| !quick).and_then(|d| version_digest(&d)) else {
        return;
    };
    files.digests += 1;
    if again != info.digest {
        files.faults.push(fault(
            format!(
                "{name}@{}: its records digest to {}…, but the version records {}…: a block was rewritten (its CRCs recomputed to match)",
                info.version,
                crate::audit::short(&again),
                crate::audit::short(&info.digest)
            ),
            seq,
        ));
    }
}

/// Checks the blocks of a version's segments (and their indexes), each
/// segment once; the segments' digests, or `None` if one had a fault.
fn version_segments(
    store: &Store,
    head: &Head,
    info: &VersionInfo,
    seq: Option<u64>,
    quick: bool,
    checks: &mut Checks<'_>,
) -> Option<Vec<Option<String>>> {
    let Checks {
        segments,
        derived,
        files,
    } = checks;
    let name = &head.schema.name;
    let data = &store.data_dir();
    let mut digests = Vec::new();
    let mut whole = true;
    for seg in &info.segments {
        let stored_in = seg.stored_in.unwrap_or(info.version);
        let path = run_path(data, name, stored_in, seg.id, RECORDS_RUN);
        if !segments.contains_key(&path) {
            let schema = head
                .versions
                .iter()
                .find(|v| v.version == stored_in)
                .map_or(&info.schema, |v| &v.schema);
            let check = segment(&path, seg, schema, quick, seq, files);
            let mut runs_whole = true;
            for index in seg.indexes.values() {
                let path = run_path(data, name, stored_in, seg.id, index.run);
                runs_whole &= blocks(&path, &index.ends, seq, files, |_| Ok(()));
            }
            if runs_whole && matches!(check, SegmentCheck::Good(Some(_))) {
                derived.push(Derived {
                    name: name.clone(),
                    schema: schema.clone(),
                    stored_in,
                    seg: seg.clone(),
                    seq,
                });
            }
            segments.insert(path.clone(), check);
        }
        match &segments[&path] {
            SegmentCheck::Good(d) => digests.push(d.clone()),
            SegmentCheck::Bad => whole = false,
        }
    }
    whole.then_some(digests)
}

/// Builds each segment's index and pseudonym runs again from its records
/// (whose blocks passed their CRCs and were digested) and compares them
/// with the runs stored: a run rewritten with its CRCs recomputed, which
/// the CRCs cannot show, is named by file and block. The segments are
/// shared out among the cores (each is a sort per run, as compaction
/// does); the faults are reported in the order of the segments.
fn derived_runs(store: &Store, segments: &[Derived], files: &mut Files) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(segments.len());
    let mut found: Vec<(usize, Vec<FileFault>)> = std::thread::scope(|scope| {
        let jobs: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(d) = segments.get(i) else {
                            return out;
                        };
                        out.push((i, derived_segment(store, d)));
                    }
                })
            })
            .collect();
        jobs.into_iter()
            .flat_map(|j| j.join().expect("checking a segment does not panic"))
            .collect()
    });
    found.sort_by_key(|(i, _)| *i);
    files.derived += segments.len() as u64;
    files
        .faults
        .extend(found.into_iter().flat_map(|(_, faults)| faults));
}

/// The faults of one segment's derived runs.
fn derived_segment(store: &Store, d: &Derived) -> Vec<FileFault> {
    let Derived {
        name,
        schema,
        stored_in,
        seg,
        seq,
    } = d;
    match crate::dataset::derived::check_segment(store, name, schema, *stored_in, seg) {
        Ok(mismatches) => mismatches
            .into_iter()
            .map(|m| FileFault {
                seq: *seq,
                path: m.path,
                block: m.block,
                message: format!("{name}@{stored_in}: {}", m.message),
            })
            .collect(),
        Err(e) => vec![FileFault {
            seq: *seq,
            path: run_path(&store.data_dir(), name, *stored_in, seg.id, RECORDS_RUN),
            block: None,
            message: format!(
                "{name}@{stored_in}: its index and pseudonym runs could not be built again from its records: {e}"
            ),
        }],
    }
}

/// The digest of a version from its segments' digests, as ingest chains
/// them: the first segment's, then `sha256("<digest so far>\n<next>")`.
fn version_digest(segments: &[Option<String>]) -> Option<String> {
    let mut it = segments.iter();
    let mut digest = it.next()?.clone()?;
    for next in it {
        digest = hex::encode(Sha256::digest(format!("{digest}\n{}", next.as_ref()?)));
    }
    Some(digest)
}

/// Reads the record blocks of `seg` at `path`: CRCs, and unless `quick`
/// the key order and the segment's digest.
fn segment(
    path: &Path,
    seg: &SegmentInfo,
    schema: &Schema,
    quick: bool,
    seq: Option<u64>,
    files: &mut Files,
) -> SegmentCheck {
    let mut digest = (!quick).then(|| ContentDigest::new(schema));
    let mut last: Option<Vec<u8>> = None;
    let mut records = 0u64;
    let ok = blocks(path, &seg.ends, seq, files, |bytes| {
        let Some(d) = digest.as_mut() else {
            return Ok(());
        };
        let block = Block::parse(bytes).map_err(|e| e.to_string())?;
        for i in 0..block.len() {
            let key = block.key(i);
            if last.as_deref().is_some_and(|l| l >= key) {
                return Err("its keys are out of order".to_string());
            }
            d.add(key, block.record(i));
            last = Some(key.to_vec());
        }
        records += block.len() as u64;
        Ok(())
    });
    if !ok {
        return SegmentCheck::Bad;
    }
    if digest.is_some() && records != seg.records {
        files.faults.push(FileFault {
            seq,
            path: path.to_path_buf(),
            block: None,
            message: format!(
                "holds {records} records where the version records {}",
                seg.records
            ),
        });
        return SegmentCheck::Bad;
    }
    SegmentCheck::Good(digest.map(ContentDigest::finish))
}

/// Reads every block of the file at `path` (framed to end at `ends`),
/// checking its CRCs and handing it to `each`; reports the first fault of
/// the file. Returns whether every block passed.
fn blocks(
    path: &Path,
    ends: &[u64],
    seq: Option<u64>,
    files: &mut Files,
    mut each: impl FnMut(&[u8]) -> std::result::Result<(), String>,
) -> bool {
    files.block_files += 1;
    let fault = |block: Option<usize>, message: String| FileFault {
        seq,
        path: path.to_path_buf(),
        block,
        message,
    };
    let file = match RunFile::open(path.to_path_buf(), ends.to_vec()) {
        Ok(f) => f,
        Err(e) => {
            files.faults.push(fault(None, without_path(&e, path)));
            return false;
        }
    };
    for n in 0..file.len() {
        let bytes = match file.read_block(n) {
            Ok(b) => b,
            Err(e) => {
                files.faults.push(fault(Some(n), without_path(&e, path)));
                return false;
            }
        };
        files.blocks += 1;
        files.bytes += bytes.len() as u64;
        if let Err(why) = each(&bytes) {
            files.faults.push(fault(Some(n), why));
            return false;
        }
    }
    true
}

/// An error's message without the path the fault names already.
/// A reader's advice to re-ingest is not an auditor's: the file is
/// evidence of what happened to it, so the fault says to keep it.
fn without_path(e: &crate::Error, path: &Path) -> String {
    let text = match e {
        crate::Error::Store { message, .. } => message.clone(),
        other => other
            .to_string()
            .replace(&format!("store {}: ", path.display()), ""),
    };
    match text.strip_suffix("; re-ingest the dataset") {
        Some(fault) => format!(
            "{fault}: the file is not what this version wrote (damaged, replaced or edited); keep it as it is for the audit and restore the version's files from a backup"
        ),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streaming_digest_is_the_ingest_digest() {
        let schema = Schema::parse(
            "s.toml",
            "name = \"s\"\ndepartment = \"d\"\nprimary_key = [\"id\"]\n[[fields]]\nname = \"id\"\ntype = \"string\"\n",
        )
        .unwrap();
        let rows: Vec<(String, Vec<u8>)> = (0..10_000u32)
            .map(|i| {
                (
                    format!("{i:06}"),
                    i.to_le_bytes().repeat(1 + i as usize % 7),
                )
            })
            .collect();
        let mut d = ContentDigest::new(&schema);
        for (k, r) in &rows {
            d.add(k.as_bytes(), r);
        }
        assert_eq!(d.finish(), crate::dataset::content_digest(&schema, &rows));
        let mut empty = ContentDigest::new(&schema);
        empty.add(b"", b"");
        assert_ne!(empty.finish(), crate::dataset::content_digest(&schema, &[]));
    }

    #[test]
    fn a_version_digest_chains_its_segments_as_ingest_does() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        assert_eq!(version_digest(&[Some(a.clone())]), Some(a.clone()));
        assert_eq!(
            version_digest(&[Some(a.clone()), Some(b.clone())]),
            Some(hex::encode(Sha256::digest(format!("{a}\n{b}"))))
        );
        assert_eq!(version_digest(&[Some(a), None]), None);
        assert_eq!(version_digest(&[]), None);
    }
}
