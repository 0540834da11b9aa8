//! Datasets: department data under a schema, stored as immutable,
//! block-packed versions.
//!
//! Each ingest writes a new version's blocks and then switches the dataset's
//! current version in one atomic step: a failed or interrupted ingest leaves
//! the previous version current and readable. Older versions stay readable
//! too, so a run can be reproduced on the exact data it read.

pub mod access;
pub mod block;
pub mod compact;
pub mod compare;
pub mod derived;
pub mod file;
pub mod ingest;
pub mod resolve;
pub mod schema;
pub mod sort;
mod split;
pub mod stream;
pub mod view;
pub mod xlsx;
pub mod xlsx_read;

use crate::mask::PersonalKind;
use crate::{Error, Result, Store};
use block::{Block, BlockBuilder, BLOCK_RECORDS};
use file::{BlockCache, OpenFiles, RunFile, RunWriter};
use ingest::Rows;
use jiandu_sdk::record::{RecordRef, Value};
pub use schema::Schema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sort::Sorter;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Run number of the record blocks in a segment; indexes follow from 1.
const RECORDS_RUN: u16 = 0;

/// The runs a model without a clear grant reads instead of the clear ones,
/// written beside a segment's indexes when its schema has personal fields
/// (see [`crate::pseudonym`]). Their names start with `#`, which no schema
/// index name can.
pub mod pseudo {
    /// (primary key with personal parts as pseudonyms → primary key): the
    /// records in pseudonym order, and gets by pseudonymous key. Only when
    /// a primary-key field is personal.
    pub const KEY_ORDER: &str = "#key";
    /// (pseudonym → its kind and clear value), for people reading leads.
    pub const CLEAR: &str = "#clear";

    /// The run of index `index` (over a personal field) by pseudonym.
    pub fn index(index: &str) -> String {
        format!("#{index}")
    }
}

/// A dataset and its versions, as kept in `meta`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Head {
    /// The schema the next ingest validates against.
    pub schema: Schema,
    /// The version runs read.
    pub current: Option<u64>,
    pub versions: Vec<VersionInfo>,
    /// The highest version number ever given, pruned versions included:
    /// a number names one version forever.
    #[serde(default)]
    pub last_version: u64,
}

impl Head {
    /// The current version.
    pub fn current_version(&self) -> Option<&VersionInfo> {
        let v = self.current?;
        self.versions.iter().find(|i| i.version == v)
    }
}

/// One immutable version of a dataset.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: u64,
    /// sha256 over the schema and every record, in key order.
    pub digest: String,
    pub records: u64,
    pub created_at: String,
    pub operator: String,
    /// The file it was ingested from, and that file's sha256.
    pub source: String,
    pub source_sha256: String,
    /// Identifier-check warnings at ingest.
    pub warnings: u64,
    /// The schema these records were encoded with.
    pub schema: Schema,
    pub segments: Vec<SegmentInfo>,
}

/// A sorted run of records and its indexes.
///
/// A version made by `ingest --append` reuses the segments of the version
/// it extends (their blocks stay where they were written: `stored_in`) and
/// adds one; scans merge segments by key, newest winning.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentInfo {
    pub id: u32,
    /// The version under whose key prefix the blocks are stored; `None` for
    /// the version this info belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_in: Option<u64>,
    pub records: u64,
    /// First key of each record block: the sparse index for gets.
    pub first_keys: Vec<String>,
    /// End offset of each record block in the segment's file.
    pub ends: Vec<u64>,
    /// Secondary indexes by name.
    pub indexes: BTreeMap<String, IndexRun>,
}

/// A secondary index: blocks of (indexed value → primary key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexRun {
    pub run: u16,
    pub field: String,
    pub first_values: Vec<String>,
    /// End offset of each block in the index's file.
    pub ends: Vec<u64>,
}

/// The error for a version `name` does not have, naming those it has.
pub fn no_version(name: &str, head: &Head, v: u64) -> Error {
    let have: Vec<String> = head
        .versions
        .iter()
        .map(|i| i.version.to_string())
        .collect();
    Error::dataset(
        name,
        format!(
            "has no version {v} (it has {}; `jiandu audit log --dataset {name}` shows pruned ones)",
            if have.is_empty() {
                "none".to_string()
            } else {
                have.join(", ")
            }
        ),
    )
}

/// The `meta` key of dataset `name`'s head.
pub fn head_key(name: &str) -> String {
    format!("dataset/{name}")
}

/// The head of dataset `name`, if it exists.
pub fn head(store: &Store, name: &str) -> Result<Option<Head>> {
    store.get_meta(&head_key(name))
}

/// The head of `name`, or an error saying how to create it.
pub fn require_head(store: &Store, name: &str) -> Result<Head> {
    head(store, name)?.ok_or_else(|| {
        Error::dataset(
            name,
            "no such dataset; create it with `jiandu dataset ingest <name> <file> --schema <schema.toml>`",
        )
    })
}

/// All datasets, by name.
pub fn list(store: &Store) -> Result<Vec<Head>> {
    let mut out = Vec::new();
    for item in store.meta.scan_prefix("dataset/") {
        let (_, v) = item?;
        let head: Head = serde_json::from_slice(&v)
            .map_err(|e| Error::Other(format!("dataset head unreadable: {e}")))?;
        out.push(head);
    }
    Ok(out)
}

/// Registers or replaces the schema of `schema.name` for future ingests.
pub fn register_schema(store: &Store, schema: Schema) -> Result<Head> {
    let mut head = head(store, &schema.name)?.unwrap_or(Head {
        schema: schema.clone(),
        current: None,
        versions: Vec::new(),
        last_version: 0,
    });
    head.schema = schema;
    store.put_meta(&head_key(&head.schema.name), &head)?;
    Ok(head)
}

/// Rows ready to store: (primary key, encoded record), sorted by key, plus
/// index entries (value, primary key) per index, sorted.
#[derive(Debug)]
pub struct SortedRows {
    pub rows: Vec<(String, Vec<u8>)>,
    pub indexes: BTreeMap<String, Vec<(String, String)>>,
}

/// Provenance of a new version.
pub struct NewVersion<'a> {
    /// Add the rows as a new segment over the current version instead of
    /// replacing it.
    pub append: bool,
    /// The schema the rows were validated against, registered with this
    /// version (a new dataset, or a changed schema); `None`: the one
    /// registered.
    pub schema: Option<&'a Schema>,
    pub source: &'a str,
    pub source_sha256: String,
    pub operator: &'a str,
    pub warnings: u64,
}

/// The digest of a version's content: schema and records in key order.
pub fn content_digest(schema: &Schema, rows: &[(String, Vec<u8>)]) -> String {
    let mut d = ContentDigest::new(schema);
    for (k, r) in rows {
        d.add(k.as_bytes(), r);
    }
    d.finish()
}

/// [`content_digest`], record by record.
pub struct ContentDigest(Sha256);

impl ContentDigest {
    pub fn new(schema: &Schema) -> ContentDigest {
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(schema).expect("schema serializes"));
        ContentDigest(h)
    }

    pub fn add(&mut self, key: &[u8], record: &[u8]) {
        self.0.update((key.len() as u64).to_le_bytes());
        self.0.update(key);
        self.0.update((record.len() as u64).to_le_bytes());
        self.0.update(record);
    }

    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// Identity of a segment across versions: (version holding its blocks, id).
pub type SegmentId = (u64, u32);

/// A new version whose files are written and durable, not yet current:
/// [`Staged::write_in`] makes it current inside a transaction on `meta`
/// (the ingest's, which appends its ledger entry in the same one).
#[derive(Debug)]
pub struct Staged {
    pub info: VersionInfo,
    key: String,
    /// The head as it was read when the version was staged (`None`: a
    /// dataset created by this version).
    read: Option<Vec<u8>>,
    /// The head with the version added and current.
    head: Vec<u8>,
}

impl Staged {
    /// Makes the version current, if the dataset's head is still the one
    /// it was staged on: an ingest, rollback or prune that committed in
    /// between makes this one fail, never undoes that one.
    pub fn write_in(
        &self,
        meta: &sled::transaction::TransactionalTree,
    ) -> std::result::Result<(), sled::transaction::ConflictableTransactionError<Error>> {
        let now = meta.get(self.key.as_bytes())?;
        if now.as_deref() != self.read.as_deref() {
            return Err(sled::transaction::ConflictableTransactionError::Abort(
                Error::dataset(
                    &self.info.schema.name,
                    format!(
                        "changed while version {} was being stored (another ingest, rollback or prune); nothing was ingested, try again",
                        self.info.version
                    ),
                ),
            ));
        }
        meta.insert(self.key.as_bytes(), self.head.as_slice())?;
        Ok(())
    }

    /// Makes the version current on its own, with no ledger entry, and
    /// flushes (what [`write_version`] does; the runs layer commits a
    /// version in the transaction of its ledger entry instead).
    pub fn commit(self, store: &Store) -> Result<VersionInfo> {
        store
            .meta
            .transaction(|meta| self.write_in(meta))
            .map_err(Error::from)?;
        store.flush()?;
        Ok(self.info)
    }

    /// Removes the staged version's files without making it current (a
    /// dry run, or an ingest given up).
    pub fn discard(self, store: &Store) -> Result<()> {
        let dir = file::version_dir(&store.data_dir(), &self.info.schema.name, self.info.version);
        std::fs::remove_dir_all(&dir).map_err(|e| Error::file(&dir, e))
    }
}

/// Writes `rows` as a new version of `name` (whose schema they were
/// validated against) and makes it current, all or nothing; see
/// [`stage_version`].
pub fn write_version(
    store: &Store,
    name: &str,
    rows: Rows,
    new: NewVersion<'_>,
) -> Result<VersionInfo> {
    stage_version(store, name, rows, new)?.commit(store)
}

/// Writes `rows` as a new version of `name`, durably, without making it
/// current. With `new.append`, the version is the current one plus these
/// rows as a new segment (a row whose key already exists replaces it).
pub fn stage_version(store: &Store, name: &str, rows: Rows, new: NewVersion<'_>) -> Result<Staged> {
    let read = store.meta.get(head_key(name))?.map(|v| v.to_vec());
    let mut head = match (head(store, name)?, new.schema) {
        (Some(mut head), Some(schema)) => {
            head.schema = schema.clone();
            head
        }
        (Some(head), None) => head,
        (None, Some(schema)) => Head {
            schema: schema.clone(),
            current: None,
            versions: Vec::new(),
            last_version: 0,
        },
        (None, None) => require_head(store, name)?,
    };
    let version = head
        .versions
        .iter()
        .map(|v| v.version)
        .max()
        .unwrap_or(0)
        .max(head.last_version)
        + 1;
    let base = if new.append {
        head.current_version().cloned()
    } else {
        None
    };
    if let Some(b) = &base {
        if b.schema != head.schema {
            return Err(Error::dataset(
                name,
                "the schema changed since the current version; ingest the whole file instead of appending",
            ));
        }
    }
    let segment_id = base
        .as_ref()
        .and_then(|b| b.segments.iter().map(|s| s.id).max())
        .map_or(0, |m| m + 1);
    let base_reader = base
        .as_ref()
        .map(|b| VersionReader::new(store, name, b.clone()));
    let written = write_segment(
        store,
        name,
        version,
        segment_id,
        &head.schema,
        rows,
        base_reader.as_ref(),
    )?;
    let (segments, records, digest) = match &base {
        None => (vec![written.segment], written.records, written.digest),
        Some(b) => on_top_of(b, written),
    };
    let info = VersionInfo {
        version,
        digest,
        records,
        created_at: crate::time::now_text(),
        operator: new.operator.to_string(),
        source: new.source.to_string(),
        source_sha256: new.source_sha256,
        warnings: new.warnings,
        schema: head.schema.clone(),
        segments,
    };
    head.versions.push(info.clone());
    head.current = Some(version);
    head.last_version = version;
    Ok(Staged {
        info,
        key: head_key(name),
        read,
        head: serde_json::to_vec(&head).expect("heads serialize"),
    })
}

/// A segment as written: its description, its records, those that
/// replace a record of the version it is appended to, and the digest of
/// its content.
struct Written {
    segment: SegmentInfo,
    records: u64,
    replaced: u64,
    digest: String,
}

/// Writes the rows as segment `segment_id` of `version` (its record run,
/// index runs and pseudonym runs), durable with their folders before
/// anything points at them. A repeated key refuses the rows (every
/// repeat named by line) and removes what was written.
fn write_segment(
    store: &Store,
    name: &str,
    version: u64,
    segment_id: u32,
    schema: &Schema,
    rows: Rows,
    base: Option<&VersionReader>,
) -> Result<Written> {
    // Files of a version whose ingest was interrupted before the switch.
    let data = store.data_dir();
    let dir = file::version_dir(&data, name, version);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| Error::file(&dir, e))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::file(&dir, e))?;
    let target = Target {
        data: &data,
        name,
        version,
        segment_id,
        tmp: store.root().join("tmp"),
    };
    let written = match write_files(&target, schema, rows, base) {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    // The files, and their names in the folders, are durable before the
    // metadata that points at them is written.
    file::sync_dir(&dir)?;
    for d in [dir.parent(), dir.parent().and_then(|p| p.parent())]
        .into_iter()
        .flatten()
    {
        file::sync_dir(d)?;
    }
    Ok(written)
}

/// Where a segment's files go.
struct Target<'a> {
    data: &'a std::path::Path,
    name: &'a str,
    version: u64,
    segment_id: u32,
    /// Where sorted runs spill.
    tmp: PathBuf,
}

impl Target<'_> {
    fn run(&self, run: u16) -> Result<RunOut> {
        RunOut::create(file::run_path(
            self.data,
            self.name,
            self.version,
            self.segment_id,
            run,
        ))
    }
}

/// A run file being written, a block at a time.
struct RunOut {
    out: RunWriter,
    builder: BlockBuilder,
    first_keys: Vec<String>,
}

impl RunOut {
    fn create(path: PathBuf) -> Result<RunOut> {
        Ok(RunOut {
            out: RunWriter::create(path)?,
            builder: BlockBuilder::new(),
            first_keys: Vec::new(),
        })
    }

    fn push(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if self.builder.is_empty() {
            self.first_keys
                .push(String::from_utf8_lossy(key).into_owned());
        }
        self.builder.push(key, value);
        if self.builder.len() == BLOCK_RECORDS {
            self.out.push(&self.builder.finish())?;
        }
        Ok(())
    }

    /// The first key of each block and where each block ends.
    fn finish(mut self) -> Result<(Vec<String>, Vec<u64>)> {
        if !self.builder.is_empty() {
            self.out.push(&self.builder.finish())?;
        }
        Ok((self.first_keys, self.out.finish()?))
    }

    /// Writes every entry of `sorted`, a pseudonym run's (key with packed
    /// pseudonyms, value), its keys' pseudonyms written out as text:
    /// `packed` says which parts of a key (between key separators) are
    /// packed. Drops entries whose key repeats the one before when
    /// `unique_keys`.
    fn write_pseudonyms(
        mut self,
        sorted: Sorter,
        packed: &[bool],
        unique_keys: bool,
    ) -> Result<(Vec<String>, Vec<u64>)> {
        each_pseudonym_entry(sorted, packed, unique_keys, |key, value| {
            self.push(key.as_bytes(), value)
        })?;
        self.finish()
    }
}

/// How pseudonym run `index` of `schema` is written from its sorted
/// entries: which parts of a key (between key separators) are packed
/// pseudonyms (the personal parts of the primary key in `#key`, the one
/// pseudonym of the others), and whether an entry whose key repeats the
/// one before is dropped (`#clear` keeps one entry per pseudonym).
fn pseudonym_run_layout(schema: &Schema, index: &str) -> (Vec<bool>, bool) {
    let packed = if index == pseudo::KEY_ORDER {
        schema
            .primary_key
            .iter()
            .map(|k| schema.is_personal(k))
            .collect()
    } else {
        vec![true]
    };
    (packed, index == pseudo::CLEAR)
}

/// The store's pseudonymizer when `schema` has personal fields (their
/// pseudonym runs need it), else `None`.
pub(crate) fn pseudonymizer_for(
    store: &Store,
    schema: &Schema,
) -> Result<Option<crate::pseudonym::Pseudonymizer>> {
    if schema.has_personal() {
        crate::pseudonym::Pseudonymizer::for_store(store).map(Some)
    } else {
        Ok(None)
    }
}

/// Calls `f` with each entry of a pseudonym run as it is written, from
/// `sorted`, its (key with packed pseudonyms, value) entries: the key's
/// pseudonyms written out as text (`packed` says which parts of a key,
/// between key separators, are packed). Drops entries whose key repeats
/// the one before when `unique_keys`.
fn each_pseudonym_entry(
    sorted: Sorter,
    packed: &[bool],
    unique_keys: bool,
    mut f: impl FnMut(&str, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut merged = sorted.finish().map_err(sort_failed)?;
    let mut last: Vec<u8> = Vec::new();
    let mut text = String::new();
    let mut first = true;
    while let Some(e) = merged.next().map_err(sort_failed)? {
        if unique_keys {
            if !first && last == e.key {
                continue;
            }
            last.clear();
            last.extend_from_slice(e.key);
        }
        first = false;
        text.clear();
        unpack_key(e.key, packed, &mut text)?;
        f(&text, e.value)?;
    }
    Ok(())
}

/// Bytes of a pseudonym as the sorts of the pseudonym runs hold it
/// ([`pack`]).
const PACKED: usize = 19;

/// A binary pseudonym as the sorts of the pseudonym runs hold it: its 128
/// bits seven to a byte, big-endian, each byte's high bit set. Of fixed
/// length and ordered as the pseudonyms' text (`P-` and fixed-width hex)
/// is, so entries sort as they would with the text, in 19 bytes where the
/// text takes 34; and with no zero byte and no key separator, so a key
/// joined from packed and text parts still splits at its separators and
/// sorts by the sorter's byte windows ([`sort`]).
fn pack(bytes: &[u8; crate::pseudonym::BYTES]) -> [u8; PACKED] {
    let bits = u128::from_be_bytes(*bytes);
    std::array::from_fn(|i| 0x80 | ((bits >> (7 * (PACKED - 1 - i))) & 0x7f) as u8)
}

/// Appends the text of `key`, a key whose parts flagged in `packed` are
/// pseudonyms packed by [`pack`] and whose other parts are text.
fn unpack_key(key: &[u8], packed: &[bool], out: &mut String) -> Result<()> {
    let sep = block::KEY_SEP as u8;
    for (n, (part, &is_packed)) in key.split(|&b| b == sep).zip(packed).enumerate() {
        if n > 0 {
            out.push(block::KEY_SEP);
        }
        if is_packed {
            if part.len() != PACKED {
                return Err(Error::Other(
                    "a packed pseudonym of the wrong length".into(),
                ));
            }
            let bits = part
                .iter()
                .fold(0u128, |bits, b| (bits << 7) | u128::from(b & 0x7f));
            crate::pseudonym::push_text(&bits.to_be_bytes(), out);
        } else {
            out.push_str(std::str::from_utf8(part).map_err(|e| Error::Other(e.to_string()))?);
        }
    }
    Ok(())
}

fn sort_failed(e: std::io::Error) -> Error {
    Error::Other(format!("cannot sort the rows being stored: {e}"))
}

/// Memory the sorts of a segment's pseudonym runs may hold together
/// before they spill.
pub(crate) const PSEUDONYMS_BUDGET: usize = 8 << 20;

/// Writes the segment's runs, each by a thread of its own: the records
/// (merged here, digested and written beside), each index, and each
/// pseudonym run.
fn write_files(
    target: &Target,
    schema: &Schema,
    rows: Rows,
    base: Option<&VersionReader>,
) -> Result<Written> {
    let Rows {
        records: sorted,
        indexes: mut index_entries,
        pseudonyms,
        file: source,
        max_errors,
    } = rows;
    let pseudonyms = match pseudonyms {
        Some(p) => p.runs,
        None if schema.has_personal() => {
            return Err(Error::Other(
                "rows of personal fields came without their pseudonyms".into(),
            ))
        }
        None => BTreeMap::new(),
    };
    let (records, written, pseudo_written) = std::thread::scope(|scope| {
        let index_jobs: Vec<_> = schema
            .indexes
            .iter()
            .enumerate()
            .map(|(i, (index, field))| {
                let entries = index_entries
                    .remove(index)
                    .unwrap_or_else(|| Sorter::new(&target.tmp, usize::MAX));
                scope.spawn(move || write_index(target, (i + 1) as u16, field, entries))
            })
            .collect();
        let pseudo_jobs: Vec<_> = pseudonyms
            .into_iter()
            .enumerate()
            .map(|(i, (index, (field, sorter)))| {
                let run = (schema.indexes.len() + 1 + i) as u16;
                let (packed, unique) = pseudonym_run_layout(schema, &index);
                scope.spawn(move || -> Result<_> {
                    let (first_values, ends) =
                        target.run(run)?.write_pseudonyms(sorter, &packed, unique)?;
                    let written = IndexRun {
                        run,
                        field,
                        first_values,
                        ends,
                    };
                    Ok((index, written))
                })
            })
            .collect();
        let records = RecordsOut {
            target,
            schema,
            base,
            source: &source,
            max_errors,
        }
        .write(sorted);
        let written: Vec<_> = index_jobs
            .into_iter()
            .map(|j| j.join().expect("writing an index does not panic"))
            .collect();
        let pseudo_written: Vec<_> = pseudo_jobs
            .into_iter()
            .map(|j| j.join().expect("writing a pseudonym run does not panic"))
            .collect();
        (records, written, pseudo_written)
    });
    let records = records?;
    let mut indexes = BTreeMap::new();
    for (index, written) in schema.indexes.keys().zip(written) {
        indexes.insert(index.clone(), written?);
    }
    for written in pseudo_written {
        let (index, run) = written?;
        indexes.insert(index, run);
    }
    Ok(Written {
        segment: SegmentInfo {
            id: target.segment_id,
            stored_in: None,
            records: records.count,
            first_keys: records.first_keys,
            ends: records.ends,
            indexes,
        },
        records: records.count,
        replaced: records.replaced,
        digest: records.digest,
    })
}

/// Writes index run `run` (on `field`) from its sorted (value, key)
/// entries.
fn write_index(target: &Target, run: u16, field: &str, entries: Sorter) -> Result<IndexRun> {
    let mut out = target.run(run)?;
    let mut merged = entries.finish().map_err(sort_failed)?;
    while let Some(e) = merged.next().map_err(sort_failed)? {
        out.push(e.key, e.value)?;
    }
    let (first_values, ends) = out.finish()?;
    Ok(IndexRun {
        run,
        field: field.to_string(),
        first_values,
        ends,
    })
}

/// Writing the record run of a segment.
struct RecordsOut<'a> {
    target: &'a Target<'a>,
    schema: &'a Schema,
    /// The version appended to, to count the records replaced.
    base: Option<&'a VersionReader>,
    /// The file the rows came from, and how many repeats to describe.
    source: &'a std::path::Path,
    max_errors: usize,
}

/// The record run as written.
struct RecordsWritten {
    first_keys: Vec<String>,
    ends: Vec<u64>,
    count: u64,
    replaced: u64,
    digest: String,
}

impl RecordsOut<'_> {
    /// Writes the record run from the sorted records, refusing repeated
    /// keys.
    ///
    /// This thread merges the sorted records and packs them into blocks;
    /// a second one takes each block to digest its records and write it,
    /// so that the two halves of the work run side by side.
    fn write(&self, sorted: Sorter) -> Result<RecordsWritten> {
        let schema = self.schema;
        let target = self.target;
        let mut out = RunWriter::create(file::run_path(
            target.data,
            target.name,
            target.version,
            target.segment_id,
            RECORDS_RUN,
        ))?;
        let (blocks, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
        let (merged, written) = std::thread::scope(|scope| {
            let writer = scope.spawn(move || -> Result<_> {
                let mut digest = ContentDigest::new(schema);
                for block in received {
                    let parsed = Block::parse(&block)?;
                    for i in 0..parsed.len() {
                        digest.add(parsed.key(i), parsed.record(i));
                    }
                    out.push(&block)?;
                }
                Ok((out, digest.finish()))
            });
            let merged = self.merge(sorted, &blocks);
            drop(blocks);
            let written = writer
                .join()
                .expect("writing the record run does not panic");
            (merged, written)
        });
        // A block the writer refused (a failed write) stops the merge; its
        // error is the one to report.
        let (out, digest) = written?;
        let merged = merged?;
        let ends = out.finish()?;
        Ok(RecordsWritten {
            first_keys: merged.first_keys,
            ends,
            count: merged.count,
            replaced: merged.replaced,
            digest,
        })
    }

    /// Merges the sorted records into blocks sent to `blocks`, refusing
    /// repeated keys (every repeat named) and counting the records that
    /// replace one of the base version.
    fn merge(
        &self,
        sorted: Sorter,
        blocks: &std::sync::mpsc::SyncSender<Vec<u8>>,
    ) -> Result<MergedRecords> {
        let schema = self.schema;
        let mut builder = BlockBuilder::new();
        let mut first_keys = Vec::new();
        let (mut count, mut replaced) = (0u64, 0u64);
        let mut duplicates: Vec<ingest::RowError> = Vec::new();
        let mut duplicate_count = 0usize;
        // Whether the writer still takes blocks (it stops at an error).
        let mut open = true;
        let mut unique = ingest::Unique::new(
            sorted.finish().map_err(sort_failed)?,
            ingest::key_personal(schema),
        );
        while let Some(step) = unique.next().map_err(sort_failed)? {
            let e = match step {
                ingest::Step::Record(e) => e,
                ingest::Step::Duplicate { line, message } => {
                    duplicate_count += 1;
                    if duplicates.len() < self.max_errors {
                        duplicates.push(ingest::RowError {
                            line,
                            field: Some(schema.primary_key.join("+")),
                            reason: message,
                        });
                    }
                    continue;
                }
            };
            if duplicate_count > 0 || !open {
                // The rows are refused: only repeats are looked for now.
                continue;
            }
            count += 1;
            if builder.is_empty() {
                first_keys.push(String::from_utf8_lossy(e.key).into_owned());
            }
            builder.push(e.key, e.value);
            if let Some(b) = self.base {
                let key = std::str::from_utf8(e.key).map_err(|e| Error::Other(e.to_string()))?;
                if b.get(key)?.is_some() {
                    replaced += 1;
                }
            }
            if builder.len() == BLOCK_RECORDS {
                open = blocks.send(builder.finish()).is_ok();
            }
        }
        if duplicate_count > 0 {
            return Err(Error::IngestRejected {
                file: self.source.to_path_buf(),
                errors: duplicates,
                total: duplicate_count,
                rows: duplicate_count,
                warnings: Vec::new(),
            });
        }
        if !builder.is_empty() && open {
            // A refused block: the writer's error says why.
            let _ = blocks.send(builder.finish());
        }
        Ok(MergedRecords {
            first_keys,
            count,
            replaced,
        })
    }
}

/// The records of a record run as merged: the first key of each block,
/// how many, and how many replace a record of the base version.
struct MergedRecords {
    first_keys: Vec<String>,
    count: u64,
    replaced: u64,
}

/// How many clear entries the [`ClearSeen`] of one gathering of
/// pseudonym runs remember together.
const CLEAR_SEEN: usize = 1 << 15;

/// The clear entries of one field pushed lately. An entry pushed again is
/// the same (pseudonym, clear entry) pair, which the `#clear` run keeps
/// once anyway, so a repeated value (names above all, and a person's ID
/// and certificate in each year's row) skips its HMAC and its sorting.
/// Bounded: forgotten all at once when full. One per field, so that the
/// values of a field that hardly repeat (IDs in a file of one year) do
/// not push out those of a field that does (names); and a field whose
/// values were hardly found again when it filled up rests for a while
/// (its entries all pushed, none remembered), the cost of remembering
/// them being then all there is. An entry pushed more than once costs
/// only sorting: the stored run is the same.
struct ClearSeen {
    entries: std::collections::HashSet<String>,
    limit: usize,
    /// Entries found among `entries` since it was last emptied.
    found: usize,
    /// Entries still to pass without being looked for or remembered.
    resting: usize,
}

/// A [`ClearSeen`] rests when fewer than one in this many of the entries
/// it remembers were found again, for this many times its size.
const CLEAR_SEEN_REST: usize = 8;

impl ClearSeen {
    /// Remembering at most `limit` entries.
    fn new(limit: usize) -> ClearSeen {
        ClearSeen {
            entries: std::collections::HashSet::new(),
            limit: limit.max(1),
            found: 0,
            resting: 0,
        }
    }

    /// Whether `entry` was not pushed lately (remembering it from now on,
    /// unless resting).
    fn first(&mut self, entry: &str) -> bool {
        if self.resting > 0 {
            self.resting -= 1;
            return true;
        }
        if self.entries.contains(entry) {
            self.found += 1;
            return false;
        }
        if self.entries.len() >= self.limit {
            if self.found < self.limit / CLEAR_SEEN_REST {
                self.resting = self.limit * CLEAR_SEEN_REST;
            }
            self.entries.clear();
            self.found = 0;
        }
        self.entries.insert(entry.to_string());
        true
    }
}

/// The entries of a segment's pseudonym runs, gathered from its rows as
/// they are read, each in an external sort, their pseudonyms packed
/// ([`pack`]) until written: what [`Rows`] carries when its schema has
/// personal fields.
pub struct PseudonymRuns {
    /// Run name → (field of an index's run, its entries).
    runs: BTreeMap<String, (String, Sorter)>,
}

/// Gathers a segment's pseudonym runs from its records: `#clear`
/// (pseudonym → clear entry), `#key` (pseudonymous key → key) when a key
/// field is personal, and per index over a personal field its run by
/// pseudonym (pseudonym → key). A record's personal value is
/// pseudonymized once for all of them.
pub struct PseudonymEntries<'p> {
    p: &'p crate::pseudonym::Pseudonymizer,
    /// The personal fields: (place, kind).
    personal: Vec<(usize, PersonalKind)>,
    /// `#clear`, but the entries `seen` lately (per personal field).
    clear: Sorter,
    seen: Vec<ClearSeen>,
    /// `#key`, when a key field is personal.
    key_order: Option<Sorter>,
    /// Per primary-key part: its place in `personal` when personal.
    key_parts: Vec<Option<usize>>,
    /// Per index over a personal field: (run name, field, place in
    /// `personal`, entries).
    indexes: Vec<(String, String, usize, Sorter)>,
    /// Per personal field, the record's value as text (`None`: no value)
    /// and its pseudonym once computed.
    values: Vec<(Option<String>, Option<[u8; PACKED]>)>,
    /// Room for a clear entry and a pseudonymous key.
    entry: String,
    key: Vec<u8>,
}

impl<'p> PseudonymEntries<'p> {
    /// Entries for the rows of `schema` (which has personal fields),
    /// spilling to `tmp` past [`PSEUDONYMS_BUDGET`] when `budget`, else
    /// never (one chunk's entries, appended to ones that do).
    pub fn new(
        schema: &Schema,
        p: &'p crate::pseudonym::Pseudonymizer,
        tmp: &std::path::Path,
        budget: bool,
    ) -> PseudonymEntries<'p> {
        let personal: Vec<(usize, PersonalKind)> = schema
            .fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.personal.map(|kind| (i, kind)))
            .collect();
        let slot_of = |field: &str| {
            let field = schema.field_index(field);
            personal.iter().position(|&(i, _)| Some(i) == field)
        };
        let key_parts: Vec<Option<usize>> = schema.primary_key.iter().map(|k| slot_of(k)).collect();
        let personal_indexes: Vec<(String, String, usize)> = schema
            .indexes
            .iter()
            .filter_map(|(index, field)| {
                slot_of(field).map(|slot| (pseudo::index(index), field.clone(), slot))
            })
            .collect();
        let key_is_personal = key_parts.iter().any(Option::is_some);
        let sorts = 1 + usize::from(key_is_personal) + personal_indexes.len();
        let each = if budget {
            PSEUDONYMS_BUDGET / sorts
        } else {
            usize::MAX
        };
        PseudonymEntries {
            p,
            values: vec![(None, None); personal.len()],
            seen: (0..personal.len())
                .map(|_| ClearSeen::new(CLEAR_SEEN / personal.len()))
                .collect(),
            personal,
            clear: Sorter::new(tmp, each),
            key_order: key_is_personal.then(|| Sorter::new(tmp, each)),
            key_parts,
            indexes: personal_indexes
                .into_iter()
                .map(|(run, field, slot)| (run, field, slot, Sorter::new(tmp, each)))
                .collect(),
            entry: String::new(),
            key: Vec::new(),
        }
    }

    /// The packed pseudonym of the record's personal value `slot`
    /// (computed at most once per record); `None` when it has no value.
    fn pseudonym(&mut self, slot: usize) -> Option<[u8; PACKED]> {
        let (text, pseudonym) = &mut self.values[slot];
        let (text, kind) = (text.as_deref()?, self.personal[slot].1);
        Some(*pseudonym.get_or_insert_with(|| pack(&self.p.pseudonym_bytes(kind, text))))
    }

    /// Adds the entries of the record `record` under `key`.
    pub fn add(&mut self, key: &[u8], record: &[u8]) -> std::io::Result<()> {
        use std::fmt::Write as _;
        let bad = |e: jiandu_sdk::record::DecodeError| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
        };
        let rec = RecordRef::new(record).map_err(bad)?;
        self.set_values(|field, text| {
            Ok(match rec.field(field).map_err(bad)? {
                None | Some(Value::Null) => false,
                Some(Value::Str(s)) => {
                    text.push_str(s);
                    true
                }
                Some(other) => {
                    write!(text, "{other}").expect("writing to a string");
                    true
                }
            })
        })?;
        self.add_values(key)
    }

    /// [`PseudonymEntries::add`] for a record not encoded yet (or not
    /// decoded again): `text(field)` is the text of its value in the
    /// schema's field `field` as the record's value prints, `None` when it
    /// has none.
    pub fn add_texts<'t>(
        &mut self,
        key: &[u8],
        text: impl Fn(usize) -> Option<std::borrow::Cow<'t, str>>,
    ) -> std::io::Result<()> {
        self.set_values(|field, out| Ok(text(field).map(|t| out.push_str(&t)).is_some()))?;
        self.add_values(key)
    }

    /// Sets each personal value of the record at hand: `write(field, text)`
    /// writes the text of the value in the schema's field `field` into
    /// `text` (empty) and says whether it has one.
    fn set_values(
        &mut self,
        mut write: impl FnMut(usize, &mut String) -> std::io::Result<bool>,
    ) -> std::io::Result<()> {
        for slot in 0..self.personal.len() {
            let field = self.personal[slot].0;
            let (value, pseudonym) = &mut self.values[slot];
            *pseudonym = None;
            let text = value.get_or_insert_with(String::new);
            text.clear();
            if !write(field, text)? {
                *value = None;
            }
        }
        Ok(())
    }

    /// Adds the entries of the record under `key` whose personal values
    /// are in `values`.
    fn add_values(&mut self, key: &[u8]) -> std::io::Result<()> {
        self.add_clear()?;
        for i in 0..self.indexes.len() {
            let slot = self.indexes[i].2;
            if let Some(pseudonym) = self.pseudonym(slot) {
                self.indexes[i].3.push(&pseudonym, 0, key)?;
            }
        }
        if self.key_order.is_some() {
            self.add_key(key)?;
        }
        Ok(())
    }

    /// The clear entry of each of the record's personal values, but those
    /// seen lately and empty ones.
    fn add_clear(&mut self) -> std::io::Result<()> {
        for slot in 0..self.personal.len() {
            let kind = self.personal[slot].1;
            let Some(text) = self.values[slot].0.as_deref().filter(|t| !t.is_empty()) else {
                continue;
            };
            self.entry.clear();
            crate::pseudonym::push_clear_entry(kind, text, &mut self.entry);
            if !self.seen[slot].first(&self.entry) {
                continue;
            }
            let pseudonym = self.pseudonym(slot).expect("a value");
            self.clear.push(&pseudonym, 0, self.entry.as_bytes())?;
        }
        Ok(())
    }

    /// The record's entry in `#key`: its key with the personal parts'
    /// pseudonyms in their places.
    fn add_key(&mut self, key: &[u8]) -> std::io::Result<()> {
        let mut order = std::mem::take(&mut self.key);
        order.clear();
        let sep = block::KEY_SEP as u8;
        for (n, part) in key.split(|&b| b == sep).enumerate() {
            let Some(&personal) = self.key_parts.get(n) else {
                break;
            };
            if n > 0 {
                order.push(sep);
            }
            let Some(slot) = personal else {
                order.extend_from_slice(part);
                continue;
            };
            // The part is the record's value but when the value is absent
            // (an empty part).
            let cached = match &self.values[slot].0 {
                Some(text) if text.as_bytes() == part => self.pseudonym(slot),
                _ => None,
            };
            let pseudonym = match cached {
                Some(pseudonym) => pseudonym,
                None => {
                    let part = String::from_utf8_lossy(part);
                    pack(&self.p.pseudonym_bytes(self.personal[slot].1, &part))
                }
            };
            order.extend_from_slice(&pseudonym);
        }
        let key_order = self.key_order.as_mut().expect("checked by the caller");
        let pushed = key_order.push(&order, 0, key);
        self.key = order;
        pushed
    }

    /// Sorts the entries gathered so far in each sort
    /// ([`Sorter::sort_pieces`]).
    pub fn sort_pieces(&mut self) {
        self.clear.sort_pieces();
        if let Some(key_order) = &mut self.key_order {
            key_order.sort_pieces();
        }
        for (_, _, _, entries) in &mut self.indexes {
            entries.sort_pieces();
        }
    }

    /// Adds every entry of `other` (gathered from later rows), leaving it
    /// empty.
    pub fn append(&mut self, other: &mut PseudonymEntries) -> std::io::Result<()> {
        self.clear.append(&mut other.clear, 0)?;
        if let (Some(mine), Some(theirs)) = (&mut self.key_order, &mut other.key_order) {
            mine.append(theirs, 0)?;
        }
        for (mine, theirs) in self.indexes.iter_mut().zip(&mut other.indexes) {
            mine.3.append(&mut theirs.3, 0)?;
        }
        Ok(())
    }

    /// The runs' entries, by run name.
    pub fn finish(self) -> PseudonymRuns {
        let mut runs = BTreeMap::new();
        runs.insert(pseudo::CLEAR.to_string(), (String::new(), self.clear));
        if let Some(key_order) = self.key_order {
            runs.insert(pseudo::KEY_ORDER.to_string(), (String::new(), key_order));
        }
        for (run, field, _, entries) in self.indexes {
            runs.insert(run, (field, entries));
        }
        PseudonymRuns { runs }
    }
}

/// An appended version: the base's segments (read from where they are
/// stored) and the new one, the record count with replaced keys counted
/// once, and the digest chained onto the base's.
fn on_top_of(base: &VersionInfo, written: Written) -> (Vec<SegmentInfo>, u64, String) {
    let mut segments: Vec<SegmentInfo> = base
        .segments
        .iter()
        .map(|s| SegmentInfo {
            stored_in: Some(s.stored_in.unwrap_or(base.version)),
            ..s.clone()
        })
        .collect();
    segments.push(written.segment);
    let digest = hex::encode(Sha256::digest(format!(
        "{}\n{}",
        base.digest, written.digest
    )));
    (
        segments,
        base.records + written.records - written.replaced,
        digest,
    )
}

/// `key` (a stored primary key of `schema`) with its personal parts
/// replaced by their pseudonyms: the order a model without a clear grant
/// reads the records in.
pub fn pseudonymous_key(schema: &Schema, p: &crate::pseudonym::Pseudonymizer, key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 32);
    for (i, (part, field)) in key
        .split(block::KEY_SEP)
        .zip(&schema.primary_key)
        .enumerate()
    {
        if i > 0 {
            out.push(block::KEY_SEP);
        }
        let kind = schema
            .field_index(field)
            .and_then(|f| schema.fields[f].personal);
        match kind {
            Some(kind) => p.pseudonym_into(kind, part, &mut out),
            None => out.push_str(part),
        }
    }
    out
}

/// The records of a dataset whose first key field is at least `lo` (when
/// given) and below `hi` (when given): one part of a partitioned run.
///
/// Bounds are values of the first key field. Compared with whole stored
/// keys byte by byte they cut at the same places, since the key separator
/// sorts before every character a value may hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hi: Option<String>,
}

impl KeyRange {
    /// Whether a stored key comes before the range.
    pub fn before(&self, key: &[u8]) -> bool {
        self.lo.as_ref().is_some_and(|lo| key < lo.as_bytes())
    }

    /// Whether a stored key comes after the range.
    pub fn after(&self, key: &[u8]) -> bool {
        self.hi.as_ref().is_some_and(|hi| key >= hi.as_bytes())
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        !self.before(key) && !self.after(key)
    }

    /// The blocks that may hold keys of the range, given the first key of
    /// each block (block `n` holds keys from `first[n]` up to `first[n + 1]`).
    pub fn blocks<S: AsRef<str>>(&self, first: &[S]) -> std::ops::Range<usize> {
        let from = match &self.lo {
            Some(lo) => first
                .partition_point(|k| k.as_ref() < lo.as_str())
                .saturating_sub(1),
            None => 0,
        };
        let to = match &self.hi {
            Some(hi) => first.partition_point(|k| k.as_ref() < hi.as_str()),
            None => first.len(),
        };
        from..to.max(from)
    }

    /// Whether every key of block `n` is in the range (its last key is
    /// below the next block's first).
    fn holds_block<S: AsRef<str>>(&self, first: &[S], n: usize) -> bool {
        let starts_in = !self.before(first[n].as_ref().as_bytes());
        let ends_in = match (&self.hi, first.get(n + 1)) {
            (None, _) => true,
            (Some(hi), Some(next)) => next.as_ref() <= hi.as_str(),
            (Some(_), None) => false,
        };
        starts_in && ends_in
    }
}

/// Reads one version of a dataset.
#[derive(Clone)]
pub struct VersionReader {
    data: PathBuf,
    files: Arc<OpenFiles>,
    cache: Arc<BlockCache>,
    name: String,
    pub info: VersionInfo,
    /// For a run: when its time is up. Reads that walk a whole run or
    /// index (and so may take seconds) stop there with
    /// [`Error::Deadline`], so a model cannot keep the host busy past its
    /// wall-time limit inside one call.
    deadline: Option<std::time::Instant>,
}

impl VersionReader {
    /// The current version of `name`.
    pub fn current(store: &Store, name: &str) -> Result<VersionReader> {
        let head = require_head(store, name)?;
        let info = head
            .current_version()
            .cloned()
            .ok_or_else(|| Error::dataset(name, "has no data yet; ingest a file first"))?;
        Ok(VersionReader::new(store, name, info))
    }

    /// Version `version` of `name`, current or not (old versions stay
    /// readable: a run can be replayed on the data it read).
    pub fn version(store: &Store, name: &str, version: u64) -> Result<VersionReader> {
        let head = require_head(store, name)?;
        let info = head
            .versions
            .iter()
            .find(|v| v.version == version)
            .cloned()
            .ok_or_else(|| no_version(name, &head, version))?;
        Ok(VersionReader::new(store, name, info))
    }

    pub fn new(store: &Store, name: &str, info: VersionInfo) -> VersionReader {
        VersionReader {
            data: store.data_dir(),
            files: Arc::default(),
            cache: store.block_cache(),
            name: name.to_string(),
            info,
            deadline: None,
        }
    }

    /// Stops long reads at `deadline` (see [`Error::Deadline`]).
    pub fn set_deadline(&mut self, deadline: std::time::Instant) {
        self.deadline = Some(deadline);
    }

    /// [`Error::Deadline`] once the deadline has passed.
    pub(crate) fn check_deadline(&self) -> Result<()> {
        match self.deadline {
            Some(d) if std::time::Instant::now() > d => Err(Error::Deadline {
                dataset: self.name.clone(),
            }),
            _ => Ok(()),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Segments in the order they were written.
    pub fn segment_ids(&self) -> Vec<SegmentId> {
        self.info
            .segments
            .iter()
            .map(|s| (s.stored_in.unwrap_or(self.info.version), s.id))
            .collect()
    }

    /// The file of run `run` (records or an index) of `seg`, open.
    fn run_file(&self, seg: &SegmentInfo, run: u16) -> Result<Arc<RunFile>> {
        let ends = if run == RECORDS_RUN {
            &seg.ends
        } else {
            &seg.indexes
                .values()
                .find(|i| i.run == run)
                .ok_or_else(|| Error::dataset(&self.name, format!("has no index run {run}")))?
                .ends
        };
        let stored_in = seg.stored_in.unwrap_or(self.info.version);
        let path = file::run_path(&self.data, &self.name, stored_in, seg.id, run);
        self.files.get(path, ends)
    }

    /// One segment's whole record blocks, in key order, one at a time.
    fn segment_blocks(&self, seg: &SegmentInfo) -> BlockSource {
        self.run_blocks(seg, RECORDS_RUN, None, &seg.first_keys)
    }

    /// The blocks of run `run` of `seg` that may hold keys of `range`
    /// (every block without one), `first` being each block's first key.
    fn run_blocks(
        &self,
        seg: &SegmentInfo,
        run: u16,
        range: Option<&KeyRange>,
        first: &[String],
    ) -> BlockSource {
        match self.run_file(seg, run) {
            Ok(f) => {
                let blocks = match range {
                    Some(r) if first.len() == f.len() => r.blocks(first),
                    _ => 0..f.len(),
                };
                BlockSource {
                    file: Ok(f),
                    blocks,
                    fronts: false,
                }
            }
            Err(e) => BlockSource {
                file: Err(Some(e)),
                blocks: 0..0,
                fronts: false,
            },
        }
    }

    /// One segment's records of `range` as batches through `view`: blocks
    /// wholly inside are read as [`VersionReader::batches`] reads them (keys
    /// left on disk), the blocks at its ends record by record.
    fn segment_range(&self, seg: &SegmentInfo, view: view::View, range: KeyRange) -> Batches {
        let f = match self.run_file(seg, RECORDS_RUN) {
            Ok(f) => f,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let first = seg.first_keys.clone();
        let mut scratch = Vec::new();
        Box::new(
            range
                .blocks(&first)
                .map(move |n| -> Result<(Vec<u8>, Vec<u32>)> {
                    if range.holds_block(&first, n) {
                        if view.is_passthrough() {
                            return f.read_records(n);
                        }
                        let offsets = f.read_records_into(n, &mut scratch)?;
                        return view.project(&scratch, &offsets).map_err(Error::Other);
                    }
                    let bytes = f.read_block(n)?;
                    let block = Block::parse(&bytes)?;
                    let mut data = Vec::new();
                    let mut offsets = vec![0u32];
                    for i in 0..block.len() {
                        if range.contains(block.key(i)) {
                            view.record(block.record(i), &mut data)
                                .map_err(Error::Other)?;
                            offsets.push(data.len() as u32);
                        }
                    }
                    Ok((data, offsets))
                })
                .filter(|b| b.as_ref().map_or(true, |(_, offsets)| offsets.len() > 1)),
        )
    }

    /// The records `view` lets a model see, as flat batches in key order.
    /// With `seen`, only segments not in it (records added since). Several
    /// segments are merged by key, the newest record winning.
    ///
    /// Batches are prepared on the caller's thread, when the model asks for
    /// them. Reading ahead on a thread of its own made a lone run 7–12%
    /// faster on an idle machine but lowered the throughput of runs sharing
    /// the cores (BENCHMARKS.md), and a unit runs many models at once.
    pub fn batches(&self, view: &view::View, seen: Option<&[SegmentId]>) -> Batches {
        self.batches_in(view, seen, None)
    }

    /// [`VersionReader::batches`] of the records of `range` only.
    pub fn batches_in(
        &self,
        view: &view::View,
        seen: Option<&[SegmentId]>,
        range: Option<&KeyRange>,
    ) -> Batches {
        let ids = self.segment_ids();
        let segs: Vec<SegmentInfo> = self
            .info
            .segments
            .iter()
            .zip(&ids)
            .filter(|(_, id)| seen.is_none_or(|s| !s.contains(id)))
            .map(|(s, _)| s.clone())
            .collect();
        let view = view.clone();
        if segs.len() <= 1 {
            // One segment: each block's records area is read (and checked)
            // straight into the batch; the keys stay on disk.
            let Some(seg) = segs.first() else {
                return Box::new(std::iter::empty());
            };
            if let Some(range) = range {
                return self.segment_range(seg, view, range.clone());
            }
            return match self.run_file(seg, RECORDS_RUN) {
                Ok(f) if view.is_passthrough() => {
                    Box::new((0..f.len()).map(move |n| f.read_records(n)))
                }
                Ok(f) => {
                    let mut scratch = Vec::new();
                    Box::new((0..f.len()).map(move |n| {
                        let offsets = f.read_records_into(n, &mut scratch)?;
                        view.project(&scratch, &offsets).map_err(Error::Other)
                    }))
                }
                Err(e) => Box::new(std::iter::once(Err(e))),
            };
        }
        let sources = segs
            .iter()
            .map(|s| {
                SegmentCursor::ranged(
                    self.run_blocks(s, RECORDS_RUN, range, &s.first_keys),
                    range.cloned(),
                )
            })
            .collect();
        Box::new(MergedBatches {
            merge: SegmentMerge::new(sources),
            view,
        })
    }

    /// Batches through `view` in the order of the records' pseudonymous
    /// keys, read sequentially ([`PseudonymOrdered`]), when the version is
    /// one segment with a `#key` run and its first `prefix` key fields are
    /// not personal; `None` otherwise (the caller looks records up by the
    /// `#key` run's order instead).
    pub fn pseudonym_ordered(&self, view: &view::View, prefix: usize) -> Option<Batches> {
        self.pseudonym_ordered_in(view, prefix, None)
    }

    /// [`VersionReader::pseudonym_ordered`] of the records of `range` only
    /// (a range of the first key field, which is not personal).
    pub fn pseudonym_ordered_in(
        &self,
        view: &view::View,
        prefix: usize,
        range: Option<&KeyRange>,
    ) -> Option<Batches> {
        let [seg] = self.info.segments.as_slice() else {
            return None;
        };
        let order = seg.indexes.get(pseudo::KEY_ORDER)?;
        if prefix == 0 {
            return None;
        }
        // The `#key` run's keys, and its records (clear keys), begin with
        // the same clear fields as the records' keys, so a range cuts all
        // alike: the `#key` run is read without its keys.
        let order_blocks = self
            .run_blocks(seg, order.run, range, &order.first_values)
            .fronts_only();
        let records = self.run_blocks(seg, RECORDS_RUN, range, &seg.first_keys);
        Some(Box::new(PseudonymOrdered {
            records: SegmentCursor::ranged(records, range.cloned()),
            order: SegmentCursor::ranged(order_blocks, range.cloned()),
            prefix,
            view: view.clone(),
            group: Vec::new(),
            arena: Vec::new(),
            group_prefix: Vec::new(),
            tails: Vec::new(),
            in_group: false,
        }))
    }

    /// Every record with its key, in key order, the newest record of a
    /// key winning (what a model reads, before any view).
    pub fn records(&self) -> Records {
        Records {
            merge: SegmentMerge::new(
                self.info
                    .segments
                    .iter()
                    .map(|s| SegmentCursor::new(self.segment_blocks(s)))
                    .collect(),
            ),
        }
    }

    /// The version read.
    pub fn info(&self) -> &VersionInfo {
        &self.info
    }

    /// Block `n` of a run, through the store's block cache.
    fn load_block(&self, seg: &SegmentInfo, run: u16, n: usize) -> Result<Arc<Vec<u8>>> {
        let f = self.run_file(seg, run)?;
        if n >= f.len() {
            return Err(Error::dataset(
                &self.name,
                format!(
                    "version {} is missing block {n} of run {run}",
                    self.info.version
                ),
            ));
        }
        self.cache.block(&f, n)
    }

    /// The record with key `key` in one segment only.
    fn segment_get(&self, seg: &SegmentInfo, key: &str) -> Result<Option<Vec<u8>>> {
        let n = seg.first_keys.partition_point(|k| k.as_str() <= key);
        if n == 0 {
            return Ok(None);
        }
        let bytes = self.load_block(seg, RECORDS_RUN, n - 1)?;
        let block = Block::parse(&bytes)?;
        let i = block.lower_bound(key.as_bytes());
        Ok((i < block.len() && block.key(i) == key.as_bytes()).then(|| block.record(i).to_vec()))
    }

    /// The record with primary key `key` (fields joined by
    /// [`block::KEY_SEP`]): the newest segment holding it wins.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        for seg in self.info.segments.iter().rev() {
            if let Some(rec) = self.segment_get(seg, key)? {
                return Ok(Some(rec));
            }
        }
        Ok(None)
    }

    fn index_run<'a>(&self, seg: &'a SegmentInfo, index: &str) -> Result<&'a IndexRun> {
        seg.indexes.get(index).ok_or_else(|| {
            if index.starts_with('#') {
                Error::dataset(
                    &self.name,
                    format!(
                        "version {} was stored without the pseudonym order models without a \
                         clear grant read; ingest its file again to add it",
                        self.info.version
                    ),
                )
            } else {
                Error::dataset(&self.name, format!("has no index `{index}`"))
            }
        })
    }

    /// (value, primary key) entries of one segment's index, in order.
    fn segment_index(&self, seg: &SegmentInfo, run: &IndexRun) -> Result<Vec<(String, String)>> {
        let f = self.run_file(seg, run.run)?;
        let mut out = Vec::new();
        for n in 0..f.len() {
            self.check_deadline()?;
            let bytes = f.read_block(n)?;
            let block = Block::parse(&bytes)?;
            for i in 0..block.len() {
                out.push((
                    String::from_utf8_lossy(block.key(i)).into_owned(),
                    String::from_utf8_lossy(block.record(i)).into_owned(),
                ));
            }
        }
        Ok(out)
    }

    /// The entries of one segment's run whose value is `value`.
    fn segment_lookup(
        &self,
        seg: &SegmentInfo,
        run: &IndexRun,
        value: &str,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let start = run
            .first_values
            .partition_point(|v| v.as_str() < value)
            .saturating_sub(1);
        for n in start..run.first_values.len() {
            if run.first_values[n].as_str() > value {
                break;
            }
            let bytes = self.load_block(seg, run.run, n)?;
            let block = Block::parse(&bytes)?;
            let mut i = block.lower_bound(value.as_bytes());
            while i < block.len() && block.key(i) == value.as_bytes() {
                out.push(String::from_utf8_lossy(block.record(i)).into_owned());
                i += 1;
            }
        }
        Ok(out)
    }

    /// (value, primary key) entries of `index` across the segments not in
    /// `seen` (all without it), in value then key order. An entry from an
    /// older segment is dropped when a newer segment holds the same key:
    /// its record (and value) replaced it.
    fn merged_index(
        &self,
        index: &str,
        seen: Option<&[SegmentId]>,
    ) -> Result<Vec<(String, String)>> {
        let segs = &self.info.segments;
        let ids = self.segment_ids();
        let mut out = Vec::new();
        for (i, seg) in segs.iter().enumerate() {
            if seen.is_some_and(|s| s.contains(&ids[i])) {
                continue;
            }
            let run = self.index_run(seg, index)?;
            for (n, (value, key)) in self.segment_index(seg, run)?.into_iter().enumerate() {
                if n % 1024 == 0 {
                    self.check_deadline()?;
                }
                if !self.held_by_newer(&segs[i + 1..], &key)? {
                    out.push((value, key));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Whether one of the `newer` segments holds a record with `key` (which
    /// then replaces an older segment's).
    fn held_by_newer(&self, newer: &[SegmentInfo], key: &str) -> Result<bool> {
        for seg in newer {
            if self.segment_get(seg, key)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Primary keys whose `index` value is `value`, in key order.
    pub fn index_keys(&self, index: &str, value: &str) -> Result<Vec<String>> {
        if self.info.segments.len() > 1 {
            // Each segment's entries for `value`, kept unless a newer
            // segment holds the key (its record, with whatever value it
            // has now, wins): O(log N) per segment and found key, never a
            // walk over the whole index.
            let segs = &self.info.segments;
            let mut out = Vec::new();
            for (i, seg) in segs.iter().enumerate() {
                let run = self.index_run(seg, index)?;
                for key in self.segment_lookup(seg, run, value)? {
                    if !self.held_by_newer(&segs[i + 1..], &key)? {
                        out.push(key);
                    }
                }
            }
            out.sort_unstable();
            return Ok(out);
        }
        let mut out = Vec::new();
        for seg in &self.info.segments {
            let run = self.index_run(seg, index)?;
            out.extend(self.segment_lookup(seg, run, value)?);
        }
        Ok(out)
    }

    /// Primary keys in the order of `index` (value, then key), of the
    /// segments not in `seen` (all without it).
    pub fn index_entries(&self, index: &str, seen: Option<&[SegmentId]>) -> Result<Vec<String>> {
        Ok(self
            .index_pairs(index, seen)?
            .into_iter()
            .map(|(_, k)| k)
            .collect())
    }

    /// (value, primary key) entries of `index`, in that order, of the
    /// segments not in `seen` (all without it).
    pub fn index_pairs(
        &self,
        index: &str,
        seen: Option<&[SegmentId]>,
    ) -> Result<Vec<(String, String)>> {
        if self.info.segments.len() > 1 || seen.is_some() {
            return self.merged_index(index, seen);
        }
        let mut out = Vec::new();
        for seg in &self.info.segments {
            let run = self.index_run(seg, index)?;
            out.extend(self.segment_index(seg, run)?);
        }
        Ok(out)
    }

    /// The clear-value entry ([`crate::pseudonym::clear_entry`]) behind
    /// `pseudonym`, if this version's records hold it.
    pub fn resolve_pseudonym(&self, pseudonym: &str) -> Result<Option<String>> {
        for seg in self.info.segments.iter().rev() {
            let Some(run) = seg.indexes.get(pseudo::CLEAR) else {
                continue;
            };
            if let Some(entry) = self.segment_lookup(seg, run, pseudonym)?.pop() {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }
}

/// A reader of every stored version of every dataset whose schema has
/// personal fields, newest first: where pseudonyms are resolved.
pub fn all_version_readers(store: &Store) -> Result<Vec<VersionReader>> {
    let mut out = Vec::new();
    for head in list(store)? {
        for info in head.versions.iter().rev() {
            if info.schema.has_personal() {
                out.push(VersionReader::new(store, &head.schema.name, info.clone()));
            }
        }
    }
    Ok(out)
}

/// Joins primary-key field values into one key.
pub fn join_key<S: AsRef<str>>(parts: &[S]) -> String {
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        push_key_part(&mut out, i, p.as_ref());
    }
    out
}

/// Appends field value `n` (from 0) of a primary key to `key`, as
/// [`join_key`] joins them.
pub(crate) fn push_key_part(key: &mut String, n: usize, part: &str) {
    if n > 0 {
        key.push(block::KEY_SEP);
    }
    key.push_str(part);
}

/// Batches of a scan: (records, offsets) as the model receives them.
pub type Batches = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u32>)>> + Send>;

/// The whole blocks of one run, read in turn, each into the buffer the
/// one before was read into (no allocation or zeroing per block).
struct BlockSource {
    /// The run's file, or why it could not be opened (reported once).
    file: std::result::Result<Arc<file::RunFile>, Option<Error>>,
    blocks: std::ops::Range<usize>,
    /// Whether only each block's header and records are read, not its
    /// keys ([`BlockSource::fronts_only`]).
    fronts: bool,
}

impl BlockSource {
    /// The same blocks without their keys: each record then serves as its
    /// key ([`SegmentCursor`] compares records with the range's bounds).
    /// For a `#key` run, whose records (clear keys) begin with the same
    /// clear fields as its keys, and whose keys a pseudonym-ordered read
    /// does not need.
    fn fronts_only(self) -> BlockSource {
        BlockSource {
            fronts: true,
            ..self
        }
    }

    /// Reads the next block into `buf`; `false` when there is none.
    fn next_into(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        let f = match &mut self.file {
            Ok(f) => f,
            Err(e) => return e.take().map_or(Ok(false), Err),
        };
        let Some(n) = self.blocks.next() else {
            return Ok(false);
        };
        if self.fronts {
            f.read_front_into(n, buf)?;
        } else {
            f.read_block_into(n, buf)?;
        }
        Ok(true)
    }
}

/// One segment's records, one at a time, for merging.
struct SegmentCursor {
    blocks: BlockSource,
    /// The current block's bytes, when `loaded`; kept for the next block
    /// to be read into.
    current: Vec<u8>,
    /// Where the current block's parts lie, parsed once when it is read.
    layout: block::Layout,
    loaded: bool,
    /// The next record of the current block, and the end of the range's
    /// records in it.
    next: usize,
    end: usize,
    /// Whether the current block is the range's last.
    last: bool,
    /// Only the records of this range.
    range: Option<KeyRange>,
}

impl SegmentCursor {
    fn new(blocks: BlockSource) -> Self {
        SegmentCursor::ranged(blocks, None)
    }

    fn ranged(blocks: BlockSource, range: Option<KeyRange>) -> Self {
        SegmentCursor {
            blocks,
            current: Vec::new(),
            layout: block::Layout::default(),
            loaded: false,
            next: 0,
            end: 0,
            last: false,
            range,
        }
    }

    /// Whether there is a next record (of the range), loading the next
    /// block when needed; then [`SegmentCursor::entry`] borrows it.
    fn load(&mut self) -> Result<bool> {
        loop {
            if self.loaded && self.next < self.end {
                return Ok(true);
            }
            self.loaded = false;
            if self.last || !self.blocks.next_into(&mut self.current)? {
                return Ok(false);
            }
            self.start()?;
        }
    }

    /// Makes the block just read the current one, its records of the
    /// range found once by binary search rather than by comparing every
    /// key.
    fn start(&mut self) -> Result<()> {
        let fronts = self.blocks.fronts;
        let block = if fronts {
            Block::parse_front(&self.current)?
        } else {
            Block::parse(&self.current)?
        };
        let lower_bound = |bound: &str| {
            if fronts {
                block.lower_bound_records(bound.as_bytes())
            } else {
                block.lower_bound(bound.as_bytes())
            }
        };
        let (mut next, mut end) = (0, block.len());
        if let Some(r) = &self.range {
            if let Some(lo) = &r.lo {
                next = lower_bound(lo);
            }
            if let Some(hi) = &r.hi {
                end = lower_bound(hi).max(next);
                // A key at or past the range's end: no later block holds
                // one of the range.
                self.last = end < block.len();
            }
        }
        self.next = next;
        self.end = end;
        self.layout = block.layout();
        self.loaded = true;
        Ok(())
    }

    /// The current block, parsed when it was read.
    fn block(&self) -> Block<'_> {
        debug_assert!(self.loaded);
        Block::with_layout(&self.current, self.layout)
    }

    /// The next record's key and bytes, borrowed from its block (after
    /// [`SegmentCursor::load`] said there is one); the record twice when
    /// the blocks were read without keys.
    fn entry(&self) -> (&[u8], &[u8]) {
        let block = self.block();
        let record = block.record(self.next);
        if self.blocks.fronts {
            return (record, record);
        }
        (block.key(self.next), record)
    }

    /// Moves past the next record: the one [`SegmentCursor::entry`] lent,
    /// or an older segment's record of a key a newer one holds.
    fn advance(&mut self) {
        self.next += 1;
    }
}

/// Segments merged by key with a heap (O(log S) per record for S
/// segments); of equal keys the newest segment's record is kept. Records
/// are lent from their blocks ([`SegmentMerge::peek`]), not copied: the
/// heap holds the sources' places and compares the keys where they lie.
struct SegmentMerge {
    sources: Vec<SegmentCursor>,
    /// The sources that have a next record: smallest key first, the newer
    /// (later) source first among equal keys ([`SegmentMerge::before`]).
    heap: crate::heap::IndexHeap,
    started: bool,
    /// The key of the record last passed, to pass older segments' records
    /// of it (reused).
    passed: Vec<u8>,
}

impl SegmentMerge {
    fn new(sources: Vec<SegmentCursor>) -> SegmentMerge {
        SegmentMerge {
            sources,
            heap: crate::heap::IndexHeap::new(),
            started: false,
            passed: Vec::new(),
        }
    }

    /// Whether source `a`'s next record comes before source `b`'s.
    fn before(sources: &[SegmentCursor], a: usize, b: usize) -> bool {
        match sources[a].entry().0.cmp(sources[b].entry().0) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => a > b,
        }
    }

    /// Moves the source at the heap's top past its record, keeping the
    /// heap in order.
    fn pass_top(&mut self) -> Result<()> {
        let top = self.heap.first().expect("a top");
        self.sources[top].advance();
        let more = self.sources[top].load()?;
        let sources = &self.sources;
        let before = |a, b| SegmentMerge::before(sources, a, b);
        if more {
            self.heap.first_moved(before);
        } else {
            self.heap.pop(before);
        }
        Ok(())
    }

    /// The next key and its newest record, lent until the next call.
    fn peek(&mut self) -> Result<Option<(&[u8], &[u8])>> {
        if !self.started {
            self.started = true;
            for i in 0..self.sources.len() {
                if self.sources[i].load()? {
                    let sources = &self.sources;
                    self.heap
                        .push(i, |a, b| SegmentMerge::before(sources, a, b));
                }
            }
        }
        Ok(match self.heap.first() {
            Some(top) => Some(self.sources[top].entry()),
            None => None,
        })
    }

    /// Passes the record [`SegmentMerge::peek`] lent, and older
    /// segments' records of its key.
    fn advance(&mut self) -> Result<()> {
        let Some(top) = self.heap.first() else {
            return Ok(());
        };
        if self.heap.len() == 1 {
            return self.pass_top();
        }
        self.passed.clear();
        self.passed.extend_from_slice(self.sources[top].entry().0);
        self.pass_top()?;
        while let Some(next) = self.heap.first() {
            if self.sources[next].entry().0 != self.passed.as_slice() {
                break;
            }
            self.pass_top()?;
        }
        Ok(())
    }

    /// The next key and its newest record, copied.
    fn next_record(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let Some((key, record)) = self.peek()? else {
            return Ok(None);
        };
        let owned = (key.to_vec(), record.to_vec());
        self.advance()?;
        Ok(Some(owned))
    }
}

/// Every record of a version with its key, in key order (segments merged,
/// the newest record of a key winning): [`VersionReader::records`].
pub struct Records {
    merge: SegmentMerge,
}

impl Records {
    /// The next key and record, lent from their block rather than copied
    /// (until [`Records::advance`]); `None` at the end.
    pub fn peek(&mut self) -> Result<Option<(&[u8], &[u8])>> {
        self.merge.peek()
    }

    /// Passes the record [`Records::peek`] lent.
    pub fn advance(&mut self) -> Result<()> {
        self.merge.advance()
    }
}

impl Iterator for Records {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.merge.next_record().transpose()
    }
}

/// The records of a one-segment version in the order of their
/// pseudonymous keys, read sequentially: the `#key` run (pseudonymous key
/// → clear key, sorted) and the records run both group records by the
/// leading `prefix` key fields, which are not personal and so order both
/// alike; within a group, records are handed out in the order the `#key`
/// run lists them. No record is looked up by key.
struct PseudonymOrdered {
    records: SegmentCursor,
    order: SegmentCursor,
    prefix: usize,
    view: view::View,
    /// The group being handed out, in clear key order: for each record,
    /// the rest of its key after the group's prefix and the record as the
    /// view projects it, both ranges of `arena`. Reused from group to
    /// group: no allocation per record.
    group: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
    arena: Vec<u8>,
    /// The leading key fields of the group, without a separator after
    /// them.
    group_prefix: Vec<u8>,
    /// For a group of more than [`LINEAR_GROUP`] records: each record's
    /// [`key_tail`] and its place in `group`, sorted, so that a `#key`
    /// entry finds its record by comparing numbers rather than keys.
    tails: Vec<(u64, u32)>,
    /// Whether the `#key` entries at hand may still belong to the group
    /// (`false` before the first group and once an entry did not).
    in_group: bool,
}

/// The first `n` fields of a stored key, with their separators.
fn key_prefix(key: &[u8], n: usize) -> &[u8] {
    let sep = block::KEY_SEP as u8;
    let mut seen = 0;
    for (i, b) in key.iter().enumerate() {
        if *b == sep {
            seen += 1;
            if seen == n {
                return &key[..i];
            }
        }
    }
    key
}

/// The rest of `key` after `prefix` (a key's first fields, as
/// [`key_prefix`] gives them), if `key` begins with those fields; else
/// `None`. A field holds no separator (keys refuse control characters),
/// so beginning with the bytes and a separator, or being them, is
/// beginning with the fields.
#[inline]
fn after_prefix<'k>(key: &'k [u8], prefix: &[u8]) -> Option<&'k [u8]> {
    let (head, rest) = key.split_at_checked(prefix.len())?;
    if !same_bytes(head, prefix) {
        return None;
    }
    match rest.first() {
        None => Some(rest),
        Some(&b) if b == block::KEY_SEP as u8 => Some(rest),
        Some(_) => None,
    }
}

/// Whether `a` and `b` are equal, compared eight bytes at a time in line
/// (the last eight first: the personal parts of keys in a group differ
/// mostly at their ends): keys and their leading fields are a few dozen
/// bytes, where calling `memcmp` for each, for every record read, cost
/// more than comparing.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (Some(x), Some(y)) = (a.last_chunk::<8>(), b.last_chunk::<8>()) else {
        return a.iter().zip(b).all(|(x, y)| x == y);
    };
    if x != y {
        return false;
    }
    // Eight bytes at a time up to the last eight, which are equal.
    let word = |c: &[u8], i: usize| u64::from_ne_bytes(c[i..i + 8].try_into().expect("8 bytes"));
    let mut i = 0;
    while i + 8 < a.len() {
        if word(a, i) != word(b, i) {
            return false;
        }
        i += 8;
    }
    true
}

/// Groups of at most this many records are searched from the start:
/// most groups are a few records, and comparing a key's last eight bytes
/// first rejects the others cheaply. Larger groups are searched by
/// [`key_tail`].
const LINEAR_GROUP: usize = 16;

/// A key's last eight bytes as a number (fewer, zero-padded, for a
/// shorter key): the keys of a group differ mostly there.
#[inline]
fn key_tail(key: &[u8]) -> u64 {
    match key.last_chunk::<8>() {
        Some(tail) => u64::from_le_bytes(*tail),
        None => key.iter().fold(0, |t, &b| (t << 8) | u64::from(b)),
    }
}

impl PseudonymOrdered {
    /// Reads the records of the group whose first `#key` entry is at
    /// hand, projected; `false` if the `#key` run is done.
    fn start_group(&mut self) -> Result<bool> {
        self.group.clear();
        self.arena.clear();
        if !self.order.load()? {
            return Ok(false);
        }
        let (_, first) = self.order.entry();
        self.group_prefix.clear();
        self.group_prefix
            .extend_from_slice(key_prefix(first, self.prefix));
        while self.records.load()? {
            let (key, record) = self.records.entry();
            let Some(rest) = after_prefix(key, &self.group_prefix) else {
                break;
            };
            let start = self.arena.len();
            self.arena.extend_from_slice(rest);
            let mid = self.arena.len();
            self.view
                .record(record, &mut self.arena)
                .map_err(Error::Other)?;
            self.group.push((start..mid, mid..self.arena.len()));
            self.records.advance();
        }
        self.tails.clear();
        if self.group.len() > LINEAR_GROUP {
            let arena = &self.arena;
            self.tails.extend(
                self.group
                    .iter()
                    .enumerate()
                    .map(|(i, (k, _))| (key_tail(&arena[k.clone()]), i as u32)),
            );
            self.tails.sort_unstable();
        }
        self.in_group = true;
        Ok(true)
    }

    fn fill(&mut self) -> Result<Option<(Vec<u8>, Vec<u32>)>> {
        let mut data = Vec::new();
        let mut offsets = vec![0u32];
        while offsets.len() <= BLOCK_RECORDS {
            if !self.in_group {
                if !self.start_group()? {
                    break;
                }
                continue;
            }
            if !self.order.load()? {
                self.in_group = false;
                continue;
            }
            let (_, clear) = self.order.entry();
            let Some(rest) = after_prefix(clear, &self.group_prefix) else {
                self.in_group = false;
                continue;
            };
            // Every key of the group begins with its prefix: only what
            // follows is compared.
            let arena = &self.arena;
            let found = if self.group.len() <= LINEAR_GROUP {
                self.group
                    .iter()
                    .position(|(k, _)| same_bytes(&arena[k.clone()], rest))
            } else {
                let tail = key_tail(rest);
                let from = self.tails.partition_point(|&(t, _)| t < tail);
                self.tails[from..]
                    .iter()
                    .take_while(|&&(t, _)| t == tail)
                    .map(|&(_, i)| i as usize)
                    .find(|&i| same_bytes(&arena[self.group[i].0.clone()], rest))
            };
            let Some(i) = found else {
                return Err(Error::Other(format!(
                    "the pseudonymous key order names a record the version does not hold ({})",
                    String::from_utf8_lossy(clear)
                )));
            };
            data.extend_from_slice(&arena[self.group[i].1.clone()]);
            offsets.push(data.len() as u32);
            self.order.advance();
        }
        Ok((offsets.len() > 1).then_some((data, offsets)))
    }
}

impl Iterator for PseudonymOrdered {
    type Item = Result<(Vec<u8>, Vec<u32>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.fill().transpose()
    }
}

/// A merge of segments by key ([`SegmentMerge`]), in batches through a
/// model's view.
struct MergedBatches {
    merge: SegmentMerge,
    view: view::View,
}

impl MergedBatches {
    fn fill(&mut self) -> Result<Option<(Vec<u8>, Vec<u32>)>> {
        let mut data = Vec::new();
        let mut offsets = vec![0u32];
        while offsets.len() <= BLOCK_RECORDS {
            let Some((_, rec)) = self.merge.peek()? else {
                break;
            };
            self.view.record(rec, &mut data).map_err(Error::Other)?;
            self.merge.advance()?;
            offsets.push(data.len() as u32);
        }
        Ok((offsets.len() > 1).then_some((data, offsets)))
    }
}

impl Iterator for MergedBatches {
    type Item = Result<(Vec<u8>, Vec<u32>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.fill().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiandu_sdk::record::encode;

    /// A dataset of sightings keyed by id, indexed by place (the
    /// compaction tests use it too).
    pub(super) fn schema() -> Schema {
        Schema::parse(
            "s.toml",
            r#"
name = "sightings"
department = "公安"
primary_key = ["id"]
[[fields]]
name = "id"
type = "string"
[[fields]]
name = "place"
type = "string"
[indexes]
by_place = "place"
"#,
        )
        .unwrap()
    }

    fn rows(items: &[(&str, &str)]) -> Rows {
        Rows::from_sorted(
            &schema(),
            &sorted_rows(items),
            std::path::Path::new("test"),
            &std::env::temp_dir(),
            None,
        )
        .unwrap()
    }

    fn sorted_rows(items: &[(&str, &str)]) -> SortedRows {
        let mut rows: Vec<(String, Vec<u8>)> = items
            .iter()
            .map(|(k, p)| {
                (
                    k.to_string(),
                    encode(&[Some(Value::Str(k)), Some(Value::Str(p))]).unwrap(),
                )
            })
            .collect();
        rows.sort();
        let mut by_place: Vec<(String, String)> = items
            .iter()
            .map(|(k, p)| (p.to_string(), k.to_string()))
            .collect();
        by_place.sort();
        SortedRows {
            rows,
            indexes: BTreeMap::from([("by_place".to_string(), by_place)]),
        }
    }

    fn write(store: &Store, items: &[(&str, &str)], append: bool) -> VersionInfo {
        write_version(
            store,
            "sightings",
            rows(items),
            NewVersion {
                append,
                schema: None,
                source: "test",
                source_sha256: String::new(),
                operator: "t",
                warnings: 0,
            },
        )
        .unwrap()
    }

    fn places(reader: &VersionReader, seen: Option<&[SegmentId]>) -> Vec<String> {
        let view = view::View::new(&reader.info.schema, None, view::Personal::Clear).unwrap();
        let mut out = Vec::new();
        for batch in reader.batches(&view, seen) {
            let (data, offsets) = batch.unwrap();
            for w in offsets.windows(2) {
                let rec = RecordRef::new(&data[w[0] as usize..w[1] as usize]).unwrap();
                out.push(format!(
                    "{}:{}",
                    rec.field(0).unwrap().unwrap(),
                    rec.field(1).unwrap().unwrap()
                ));
            }
        }
        out
    }

    #[test]
    fn clear_entries_seen_lately_are_skipped_and_forgotten_when_too_many() {
        let mut seen = ClearSeen::new(CLEAR_SEEN);
        assert!(seen.first("n张三"));
        assert!(!seen.first("n张三"));
        assert!(seen.first("i11010519491231002X"));
        for i in 0..CLEAR_SEEN / CLEAR_SEEN_REST {
            assert!(!seen.first("n张三"), "{i}");
        }
        for i in 0..CLEAR_SEEN {
            seen.first(&format!("o{i}"));
        }
        // Full, it forgot everything at once: the entry is pushed again,
        // which the `#clear` run, keeping one per pseudonym, absorbs.
        assert!(seen.first("n张三"));
        assert!(seen.entries.len() <= CLEAR_SEEN);
        assert_eq!(seen.resting, 0, "enough entries were found again");
        assert!(!seen.first("n张三"));
    }

    #[test]
    fn clear_entries_that_hardly_repeat_are_not_remembered_for_a_while() {
        let mut seen = ClearSeen::new(100);
        for i in 0..=100 {
            assert!(seen.first(&format!("i{i}")));
        }
        // Full, none of its entries found again: it rests.
        assert!(seen.first("i100"));
        assert!(seen.first("i100"));
        for i in 0..100 * CLEAR_SEEN_REST - 2 {
            assert!(seen.first(&format!("i{i}")));
        }
        // Rested: it remembers again.
        assert!(seen.first("n张三"));
        assert!(!seen.first("n张三"));
    }

    /// Writes `sorted` as the first version of `name`, a dataset of
    /// personal fields, with the store's pseudonyms.
    fn write_personal(
        store: &Store,
        name: &str,
        schema: &Schema,
        sorted: &SortedRows,
    ) -> (VersionInfo, crate::pseudonym::Pseudonymizer) {
        let p = crate::pseudonym::Pseudonymizer::for_store(store).unwrap();
        let rows = Rows::from_sorted(
            schema,
            sorted,
            std::path::Path::new("test"),
            &store.root().join("tmp"),
            Some(&p),
        )
        .unwrap();
        let info = write_version(
            store,
            name,
            rows,
            NewVersion {
                append: false,
                schema: Some(schema),
                source: "test",
                source_sha256: String::new(),
                operator: "t",
                warnings: 0,
            },
        )
        .unwrap();
        (info, p)
    }

    #[test]
    fn a_version_with_personal_fields_stores_the_digest_and_pseudonyms_of_its_records() {
        // Enough records for several blocks, which the record run's writer
        // digests beside the merge.
        let (_dir, store) = fresh();
        let schema = Schema::parse(
            "p.toml",
            r#"
name = "people"
department = "公安"
primary_key = ["id", "year"]
[[fields]]
name = "id"
type = "string"
personal = "id"
[[fields]]
name = "year"
type = "string"
[[fields]]
name = "name"
type = "string"
personal = "name"
[indexes]
by_name = "name"
"#,
        )
        .unwrap();
        let mut rows: Vec<(String, Vec<u8>)> = (0..3 * BLOCK_RECORDS + 17)
            .map(|i| {
                let (id, year) = (format!("65010{:013}", i * 7), (2020 + i % 3).to_string());
                // Names repeat, so pseudonyms repeat too.
                let name = format!("张{}", i % 50);
                let record = encode(&[
                    Some(Value::Str(&id)),
                    Some(Value::Str(&year)),
                    Some(Value::Str(&name)),
                ])
                .unwrap();
                (join_key(&[id.as_str(), year.as_str()]), record)
            })
            .collect();
        rows.sort();
        let by_name: Vec<(String, String)> = {
            let mut v: Vec<_> = rows
                .iter()
                .map(|(k, r)| {
                    let rec = RecordRef::new(r).unwrap();
                    (rec.field(2).unwrap().unwrap().to_string(), k.clone())
                })
                .collect();
            v.sort();
            v
        };
        let sorted = SortedRows {
            rows: rows.clone(),
            indexes: BTreeMap::from([("by_name".to_string(), by_name)]),
        };
        let (info, p) = write_personal(&store, "people", &schema, &sorted);
        assert_eq!(info.digest, content_digest(&schema, &rows));

        let mut key_order: Vec<(String, String)> = rows
            .iter()
            .map(|(k, _)| (pseudonymous_key(&schema, &p, k), k.clone()))
            .collect();
        key_order.sort();
        let mut clear: Vec<(String, String)> = Vec::new();
        for (_, r) in &rows {
            let rec = RecordRef::new(r).unwrap();
            for (f, kind) in [
                (0, crate::mask::PersonalKind::Id),
                (2, crate::mask::PersonalKind::Name),
            ] {
                let text = rec.field(f).unwrap().unwrap().to_string();
                clear.push((
                    p.pseudonym(kind, &text),
                    crate::pseudonym::clear_entry(kind, &text),
                ));
            }
        }
        clear.sort();
        clear.dedup_by(|a, b| a.0 == b.0);
        let reader = VersionReader::new(&store, "people", info);
        assert_eq!(
            reader.index_pairs(pseudo::KEY_ORDER, None).unwrap(),
            key_order
        );
        assert_eq!(reader.index_pairs(pseudo::CLEAR, None).unwrap(), clear);
        // The index by pseudonym: each (name, key) entry with the name's
        // pseudonym.
        let mut by_pseudonym: Vec<(String, String)> = sorted.indexes["by_name"]
            .iter()
            .map(|(name, k)| {
                (
                    p.pseudonym(crate::mask::PersonalKind::Name, name),
                    k.clone(),
                )
            })
            .collect();
        by_pseudonym.sort();
        assert_eq!(
            reader.index_pairs(&pseudo::index("by_name"), None).unwrap(),
            by_pseudonym
        );
    }

    #[test]
    fn records_come_in_pseudonym_order_within_groups_of_any_size() {
        // Groups (records of one unit) from one record to hundreds, around
        // the size past which a group is searched by key tails; ids of a
        // group that differ only before their last eight bytes share a
        // tail.
        let (_dir, store) = fresh();
        let schema = Schema::parse(
            "e.toml",
            r#"
name = "employees"
department = "人社"
primary_key = ["unit", "id"]
[[fields]]
name = "unit"
type = "string"
[[fields]]
name = "id"
type = "string"
personal = "id"
[[fields]]
name = "wage"
type = "int"
"#,
        )
        .unwrap();
        let mut rows: Vec<(String, Vec<u8>)> = Vec::new();
        for (u, size) in [1usize, 3, 16, 17, 40, 300, 2].into_iter().enumerate() {
            let unit = format!("U{u:03}");
            for i in 0..size {
                // Pairs of ids share their last eight bytes.
                let id = format!("{}{:05}12345678", (b'A' + (i % 2) as u8) as char, i / 2);
                let wage = (u * 1000 + i) as i64;
                let record = encode(&[
                    Some(Value::Str(&unit)),
                    Some(Value::Str(&id)),
                    Some(Value::Int(wage)),
                ])
                .unwrap();
                rows.push((join_key(&[unit.as_str(), id.as_str()]), record));
            }
        }
        rows.sort();
        let sorted = SortedRows {
            rows: rows.clone(),
            indexes: BTreeMap::new(),
        };
        let (info, p) = write_personal(&store, "employees", &schema, &sorted);
        let mut expected: Vec<(String, Vec<u8>)> = rows
            .iter()
            .map(|(k, r)| (pseudonymous_key(&schema, &p, k), r.clone()))
            .collect();
        expected.sort();
        let expected: Vec<Vec<u8>> = expected.into_iter().map(|(_, r)| r).collect();
        let reader = VersionReader::new(&store, "employees", info);
        let view = view::View::new(&schema, None, view::Personal::Clear).unwrap();
        let mut got = Vec::new();
        for batch in reader.pseudonym_ordered(&view, 1).expect("one segment") {
            let (data, offsets) = batch.unwrap();
            for w in offsets.windows(2) {
                got.push(data[w[0] as usize..w[1] as usize].to_vec());
            }
        }
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "records out of pseudonym order");
    }

    #[test]
    fn keys_compare_alike_word_by_word_and_by_bytes() {
        let texts: [&[u8]; 9] = [
            b"",
            b"a",
            b"1234567",
            b"12345678",
            b"123456789",
            b"91350100M000100Y43",
            b"91350100M000100Y44",
            b"81350100M000100Y43",
            b"91350100M000100Y43\x1f2024",
        ];
        for a in texts {
            for b in texts {
                assert_eq!(same_bytes(a, b), a == b, "{a:?} {b:?}");
                if a == b {
                    assert_eq!(key_tail(a), key_tail(b));
                }
                let sep = [block::KEY_SEP as u8];
                let key = [a, &sep[..], b].concat();
                assert_eq!(after_prefix(&key, a), Some(&key[a.len()..]));
                assert_eq!(after_prefix(a, a), Some(&b""[..]));
            }
        }
        assert_eq!(
            after_prefix(b"91350100M000100Y43", b"91350100M000100Y4"),
            None
        );
        assert_eq!(after_prefix(b"9135", b"91350100"), None);
    }

    #[test]
    fn append_merges_by_key_newest_wins_and_only_new_reads_the_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        register_schema(&store, schema()).unwrap();
        let v1 = write(&store, &[("a", "x"), ("c", "x"), ("e", "x")], false);
        let first = VersionReader::current(&store, "sightings").unwrap();
        let seen = first.segment_ids();
        let v2 = write(&store, &[("b", "y"), ("c", "y")], true);
        assert_eq!(v2.records, 4);
        assert_ne!(v2.digest, v1.digest);
        let reader = VersionReader::current(&store, "sightings").unwrap();
        assert_eq!(places(&reader, None), ["a:x", "b:y", "c:y", "e:x"]);
        assert_eq!(places(&reader, Some(&seen)), ["b:y", "c:y"]);
        assert_eq!(
            places(&reader, Some(&reader.segment_ids())),
            Vec::<String>::new()
        );
        let c = reader.get("c").unwrap().unwrap();
        assert_eq!(
            RecordRef::new(&c).unwrap().field(1).unwrap(),
            Some(Value::Str("y"))
        );
        // The index follows the newest record of each key.
        assert_eq!(
            reader.index_entries("by_place", None).unwrap(),
            ["a", "e", "b", "c"]
        );
        assert_eq!(reader.index_keys("by_place", "x").unwrap(), ["a", "e"]);
        assert_eq!(reader.index_keys("by_place", "y").unwrap(), ["b", "c"]);
        // The version before the append still reads as it was.
        assert_eq!(places(&first, None), ["a:x", "c:x", "e:x"]);
        // A full ingest replaces everything: all of it is new again.
        write(&store, &[("z", "z")], false);
        let replaced = VersionReader::current(&store, "sightings").unwrap();
        assert_eq!(places(&replaced, Some(&reader.segment_ids())), ["z:z"]);
    }

    /// Seven appended segments of overlapping keys merge as a map into
    /// which each segment was written in turn: every key once, in order,
    /// with its newest segment's record, through the lent records, the
    /// copied ones and the batches alike.
    #[test]
    fn many_segments_merge_as_their_writes_in_turn() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        register_schema(&store, schema()).unwrap();
        let mut want = BTreeMap::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for segment in 0..7 {
            let size = 1 + next(if segment == 0 { 9000 } else { 600 });
            let mut keys: Vec<String> = (0..size).map(|_| format!("k{:05}", next(12000))).collect();
            keys.sort();
            keys.dedup();
            let place = format!("p{segment}");
            let items: Vec<(&str, &str)> =
                keys.iter().map(|k| (k.as_str(), place.as_str())).collect();
            write(&store, &items, segment > 0);
            for k in &keys {
                want.insert(k.clone(), place.clone());
            }
        }
        let reader = VersionReader::current(&store, "sightings").unwrap();
        assert_eq!(reader.info().segments.len(), 7);
        let want: Vec<String> = want.iter().map(|(k, p)| format!("{k}:{p}")).collect();
        assert_eq!(places(&reader, None), want);
        let show = |key: &[u8], record: &[u8]| {
            let place = RecordRef::new(record).unwrap().field(1).unwrap().unwrap();
            format!("{}:{place}", String::from_utf8_lossy(key))
        };
        let copied: Vec<String> = reader
            .records()
            .map(|r| {
                let (k, rec) = r.unwrap();
                show(&k, &rec)
            })
            .collect();
        assert_eq!(copied, want);
        let mut lent = Vec::new();
        let mut records = reader.records();
        while let Some((k, rec)) = records.peek().unwrap() {
            lent.push(show(k, rec));
            records.advance().unwrap();
        }
        assert_eq!(lent, want);
    }

    #[test]
    fn ranges_of_merged_segments_hold_exactly_their_keys() {
        // Two segments of several blocks each: a range's records are found
        // by binary search in the blocks at its ends, wherever it cuts.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        register_schema(&store, schema()).unwrap();
        let ids: Vec<String> = (0..3 * BLOCK_RECORDS).map(|i| format!("k{i:06}")).collect();
        let first: Vec<(&str, &str)> = ids.iter().step_by(2).map(|k| (k.as_str(), "x")).collect();
        let second: Vec<(&str, &str)> = ids.iter().step_by(3).map(|k| (k.as_str(), "y")).collect();
        write(&store, &first, false);
        write(&store, &second, true);
        let reader = VersionReader::current(&store, "sightings").unwrap();
        let all = places(&reader, None);
        let view = view::View::new(&reader.info.schema, None, view::Personal::Clear).unwrap();
        let bound = |i: usize| Some(format!("k{i:06}"));
        let cuts = [
            (None, None),
            (None, bound(0)),
            (bound(0), bound(1)),
            (bound(1), bound(2)),
            (bound(5), bound(5)),
            (bound(4095), bound(4097)),
            (bound(3), bound(8000)),
            (Some("k".to_string()), bound(5000)),
            (bound(7000), None),
            (bound(3 * BLOCK_RECORDS), None),
            (Some("l".to_string()), None),
            (None, Some("a".to_string())),
        ];
        for (lo, hi) in cuts {
            let range = KeyRange {
                lo: lo.clone(),
                hi: hi.clone(),
            };
            let mut got = Vec::new();
            for batch in reader.batches_in(&view, None, Some(&range)) {
                let (data, offsets) = batch.unwrap();
                for w in offsets.windows(2) {
                    let rec = RecordRef::new(&data[w[0] as usize..w[1] as usize]).unwrap();
                    got.push(format!(
                        "{}:{}",
                        rec.field(0).unwrap().unwrap(),
                        rec.field(1).unwrap().unwrap()
                    ));
                }
            }
            let want: Vec<&String> = all
                .iter()
                .filter(|p| range.contains(p.split(':').next().unwrap().as_bytes()))
                .collect();
            assert_eq!(got.iter().collect::<Vec<_>>(), want, "{lo:?}..{hi:?}");
        }
    }

    #[test]
    fn reads_of_a_whole_index_stop_at_the_runs_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        register_schema(&store, schema()).unwrap();
        write(&store, &[("a", "x"), ("c", "x")], false);
        write(&store, &[("b", "y")], true);
        let mut reader = VersionReader::current(&store, "sightings").unwrap();
        reader.set_deadline(std::time::Instant::now() + std::time::Duration::from_secs(3600));
        assert_eq!(reader.index_entries("by_place", None).unwrap().len(), 3);
        reader.set_deadline(std::time::Instant::now() - std::time::Duration::from_millis(1));
        for result in [
            reader.index_entries("by_place", None),
            reader.index_entries("by_place", Some(&[])),
        ] {
            assert!(
                matches!(result, Err(Error::Deadline { ref dataset }) if dataset == "sightings"),
                "{result:?}"
            );
        }
    }

    /// The pseudonym runs of a file read on threads (more than one chunk)
    /// hold what is computed from its records one by one: a personal key
    /// part between parts of varying length, IDs whose `x` and `X` share
    /// a pseudonym, absent names, and two indexes over personal fields.
    #[test]
    fn pseudonym_runs_of_an_ingested_file_are_those_of_its_records() {
        use crate::mask::PersonalKind::{Id, Name, Phone};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s")).unwrap();
        let schema = Schema::parse(
            "p.toml",
            r#"
name = "people"
department = "公安"
primary_key = ["region", "id", "year"]
[[fields]]
name = "region"
type = "string"
[[fields]]
name = "id"
type = "string"
personal = "id"
[[fields]]
name = "year"
type = "int"
[[fields]]
name = "name"
type = "string"
personal = "name"
[[fields]]
name = "phone"
type = "string"
personal = "phone"
[indexes]
by_id = "id"
by_name = "name"
"#,
        )
        .unwrap();
        let mut text = String::from("region,id,year,name,phone\n");
        for i in 0..150_000u64 {
            let region = "65".repeat(1 + (i % 3) as usize);
            let check = if i % 5 == 0 { 'x' } else { 'X' };
            let id = format!("6501{:06}{check}", i % 40_000);
            let name = if i % 7 == 0 {
                String::new()
            } else {
                format!("张{}", i % 500)
            };
            let phone = format!(" 138{:08} ", i % 1_000);
            text.push_str(&format!(
                "{region},{id},{},{name},{phone}\n",
                2000 + i / 40_000
            ));
        }
        let path = dir.path().join("people.csv");
        std::fs::write(&path, text).unwrap();
        let opts = ingest::Options {
            schema: Some(schema.clone()),
            ..ingest::Options::default()
        };
        let (staged, _) = ingest::stage(&store, "people", &path, &opts).unwrap();
        let info = staged.commit(&store).unwrap();
        let reader = VersionReader::new(&store, "people", info);

        let p = crate::pseudonym::Pseudonymizer::for_store(&store).unwrap();
        let (mut key_order, mut clear) = (Vec::new(), Vec::new());
        let (mut by_id, mut by_name) = (Vec::new(), Vec::new());
        for item in reader.records() {
            let (key, record) = item.unwrap();
            let key = String::from_utf8(key).unwrap();
            key_order.push((pseudonymous_key(&schema, &p, &key), key.clone()));
            let rec = RecordRef::new(&record).unwrap();
            for (f, kind) in [(1, Id), (3, Name), (4, Phone)] {
                let Some(value) = rec.field(f).unwrap().filter(|v| *v != Value::Null) else {
                    continue;
                };
                let text = value.to_string();
                clear.push((
                    p.pseudonym(kind, &text),
                    crate::pseudonym::clear_entry(kind, &text),
                ));
                match f {
                    1 => by_id.push((p.pseudonym(kind, &text), key.clone())),
                    3 => by_name.push((p.pseudonym(kind, &text), key.clone())),
                    _ => {}
                }
            }
        }
        assert_eq!(key_order.len(), 150_000);
        for entries in [&mut key_order, &mut clear, &mut by_id, &mut by_name] {
            entries.sort();
        }
        clear.dedup_by(|a, b| a.0 == b.0);
        assert!(clear.iter().any(|(_, e)| e.ends_with('X')));
        let run = |name: &str| reader.index_pairs(name, None).unwrap();
        assert!(run(pseudo::KEY_ORDER) == key_order);
        assert!(run(pseudo::CLEAR) == clear);
        assert!(run(&pseudo::index("by_id")) == by_id);
        assert!(run(&pseudo::index("by_name")) == by_name);
    }

    fn fresh() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        register_schema(&store, schema()).unwrap();
        (dir, store)
    }

    #[test]
    fn a_version_number_names_one_version_forever() {
        let (_dir, store) = fresh();
        write(&store, &[("a", "1")], false);
        write(&store, &[("a", "2")], false);
        // Version 2 goes (as a prune of it would take it): the next is 3.
        let mut head = require_head(&store, "sightings").unwrap();
        head.versions.retain(|v| v.version != 2);
        head.current = Some(1);
        store.put_meta(&head_key("sightings"), &head).unwrap();
        assert_eq!(write(&store, &[("a", "3")], false).version, 3);
    }

    #[test]
    fn a_staged_version_whose_head_changed_meanwhile_is_not_made_current() {
        let (_dir, store) = fresh();
        write(&store, &[("a", "1")], false);
        let new = || NewVersion {
            append: false,
            schema: None,
            source: "test",
            source_sha256: String::new(),
            operator: "t",
            warnings: 0,
        };
        let staged = stage_version(&store, "sightings", rows(&[("b", "1")]), new()).unwrap();
        // Another ingest commits first.
        let other = write(&store, &[("c", "1")], false);
        let err = store
            .meta
            .transaction(|meta| staged.write_in(meta))
            .map_err(Error::from)
            .unwrap_err();
        assert!(err.to_string().contains("changed while version"), "{err}");
        let head = require_head(&store, "sightings").unwrap();
        assert_eq!(head.current, Some(other.version));
        assert!(head.versions.iter().all(|v| v.digest != staged.info.digest));
    }
}
