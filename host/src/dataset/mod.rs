//! Datasets: department data under a schema, stored as immutable,
//! block-packed versions.
//!
//! Each ingest writes a new version's blocks and then switches the dataset's
//! current version in one atomic step: a failed or interrupted ingest leaves
//! the previous version current and readable. Older versions stay readable
//! too, so a run can be reproduced on the exact data it read.

pub mod block;
pub mod ingest;
pub mod schema;
pub mod view;

use crate::{Error, Result, Store};
use block::{Block, BlockBuilder, BLOCK_RECORDS};
pub use schema::Schema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Run number of the record blocks in a segment; indexes follow from 1.
const RECORDS_RUN: u16 = 0;

/// A dataset and its versions, as kept in `meta`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Head {
    /// The schema the next ingest validates against.
    pub schema: Schema,
    /// The version runs read.
    pub current: Option<u64>,
    pub versions: Vec<VersionInfo>,
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentInfo {
    pub id: u32,
    pub records: u64,
    /// First key of each record block: the sparse index for gets.
    pub first_keys: Vec<String>,
    /// Secondary indexes by name.
    pub indexes: BTreeMap<String, IndexRun>,
}

/// A secondary index: blocks of (indexed value → primary key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexRun {
    pub run: u16,
    pub field: String,
    pub first_values: Vec<String>,
}

fn head_key(name: &str) -> String {
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
    pub source: &'a str,
    pub source_sha256: String,
    pub operator: &'a str,
    pub warnings: u64,
}

/// The digest of a version's content: schema and records in key order.
pub fn content_digest(schema: &Schema, rows: &[(String, Vec<u8>)]) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(schema).expect("schema serializes"));
    for (k, r) in rows {
        h.update((k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
        h.update((r.len() as u64).to_le_bytes());
        h.update(r);
    }
    hex::encode(h.finalize())
}

/// Writes `rows` as a new version of `name` (whose schema they were
/// validated against) and makes it current, all or nothing.
pub fn write_version(
    store: &Store,
    name: &str,
    rows: SortedRows,
    new: NewVersion<'_>,
) -> Result<VersionInfo> {
    let mut head = require_head(store, name)?;
    let version = head.versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
    // Blocks of a version whose ingest was interrupted before the switch.
    for item in store
        .blocks
        .scan_prefix(block::version_prefix(name, version))
        .keys()
    {
        store.blocks.remove(item?)?;
    }
    let digest = content_digest(&head.schema, &rows.rows);
    let mut batch = sled::Batch::default();
    let first_keys = write_run(
        &mut batch,
        name,
        version,
        RECORDS_RUN,
        rows.rows.iter().map(|(k, r)| (k.as_bytes(), r.as_slice())),
    );
    let mut indexes = BTreeMap::new();
    for (i, (index, field)) in head.schema.indexes.iter().enumerate() {
        let run = (i + 1) as u16;
        let entries = rows.indexes.get(index).map(Vec::as_slice).unwrap_or(&[]);
        let first_values = write_run(
            &mut batch,
            name,
            version,
            run,
            entries.iter().map(|(v, k)| (v.as_bytes(), k.as_bytes())),
        );
        indexes.insert(
            index.clone(),
            IndexRun {
                run,
                field: field.clone(),
                first_values,
            },
        );
    }
    store.blocks.apply_batch(batch)?;
    store.blocks.flush()?;
    let info = VersionInfo {
        version,
        digest,
        records: rows.rows.len() as u64,
        created_at: crate::time::now_text(),
        operator: new.operator.to_string(),
        source: new.source.to_string(),
        source_sha256: new.source_sha256,
        warnings: new.warnings,
        schema: head.schema.clone(),
        segments: vec![SegmentInfo {
            id: 0,
            records: rows.rows.len() as u64,
            first_keys,
            indexes,
        }],
    };
    head.versions.push(info.clone());
    head.current = Some(version);
    store.put_meta(&head_key(name), &head)?;
    store.flush()?;
    Ok(info)
}

/// Writes one sorted run into blocks; returns the first key of each block.
fn write_run<'a>(
    batch: &mut sled::Batch,
    name: &str,
    version: u64,
    run: u16,
    items: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Vec<String> {
    let mut first_keys = Vec::new();
    let mut builder = BlockBuilder::new();
    let mut flush = |builder: &mut BlockBuilder, first_keys: &mut Vec<String>| {
        let n = first_keys.len() as u32 - 1;
        batch.insert(block::block_key(name, version, 0, run, n), builder.finish());
    };
    for (key, value) in items {
        if builder.is_empty() {
            first_keys.push(String::from_utf8_lossy(key).into_owned());
        }
        builder.push(key, value);
        if builder.len() == BLOCK_RECORDS {
            flush(&mut builder, &mut first_keys);
        }
    }
    if !builder.is_empty() {
        flush(&mut builder, &mut first_keys);
    }
    first_keys
}

/// Reads one version of a dataset.
#[derive(Clone)]
pub struct VersionReader {
    blocks: sled::Tree,
    name: String,
    pub info: VersionInfo,
}

impl VersionReader {
    /// The current version of `name`.
    pub fn current(store: &Store, name: &str) -> Result<VersionReader> {
        let head = require_head(store, name)?;
        let info = head
            .current_version()
            .cloned()
            .ok_or_else(|| Error::dataset(name, "has no data yet; ingest a file first"))?;
        Ok(VersionReader {
            blocks: store.blocks.clone(),
            name: name.to_string(),
            info,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Record blocks in key order (one value per block).
    pub fn blocks(&self) -> impl Iterator<Item = Result<sled::IVec>> + Send + 'static {
        let runs: Vec<Vec<u8>> = self
            .info
            .segments
            .iter()
            .map(|s| block::run_prefix(&self.name, self.info.version, s.id, RECORDS_RUN))
            .collect();
        let tree = self.blocks.clone();
        runs.into_iter()
            .flat_map(move |p| tree.scan_prefix(p).values())
            .map(|v| v.map_err(Error::from))
    }

    fn load_block(&self, segment: u32, run: u16, n: usize) -> Result<sled::IVec> {
        self.blocks
            .get(block::block_key(
                &self.name,
                self.info.version,
                segment,
                run,
                n as u32,
            ))?
            .ok_or_else(|| {
                Error::dataset(
                    &self.name,
                    format!(
                        "version {} is missing block {n} of run {run}",
                        self.info.version
                    ),
                )
            })
    }

    /// The record with primary key `key` (fields joined by
    /// [`block::KEY_SEP`]).
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        for seg in self.info.segments.iter().rev() {
            let n = seg.first_keys.partition_point(|k| k.as_str() <= key);
            if n == 0 {
                continue;
            }
            let bytes = self.load_block(seg.id, RECORDS_RUN, n - 1)?;
            let block = Block::parse(&bytes)?;
            let i = block.lower_bound(key.as_bytes());
            if i < block.len() && block.key(i) == key.as_bytes() {
                return Ok(Some(block.record(i).to_vec()));
            }
        }
        Ok(None)
    }

    /// Primary keys whose `index` value is `value`, in key order.
    pub fn index_keys(&self, index: &str, value: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for seg in &self.info.segments {
            let run = seg
                .indexes
                .get(index)
                .ok_or_else(|| Error::dataset(&self.name, format!("has no index `{index}`")))?;
            let start = run
                .first_values
                .partition_point(|v| v.as_str() < value)
                .saturating_sub(1);
            for n in start..run.first_values.len() {
                if run.first_values[n].as_str() > value {
                    break;
                }
                let bytes = self.load_block(seg.id, run.run, n)?;
                let block = Block::parse(&bytes)?;
                let mut i = block.lower_bound(value.as_bytes());
                while i < block.len() && block.key(i) == value.as_bytes() {
                    out.push(String::from_utf8_lossy(block.record(i)).into_owned());
                    i += 1;
                }
            }
        }
        Ok(out)
    }

    /// All (value, primary key) entries of `index`, in value order.
    pub fn index_entries(&self, index: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for seg in &self.info.segments {
            let run = seg
                .indexes
                .get(index)
                .ok_or_else(|| Error::dataset(&self.name, format!("has no index `{index}`")))?;
            for item in self
                .blocks
                .scan_prefix(block::run_prefix(
                    &self.name,
                    self.info.version,
                    seg.id,
                    run.run,
                ))
                .values()
            {
                let bytes = item?;
                let block = Block::parse(&bytes)?;
                out.extend(
                    (0..block.len()).map(|i| String::from_utf8_lossy(block.record(i)).into_owned()),
                );
            }
        }
        Ok(out)
    }
}

/// Joins primary-key field values into one key.
pub fn join_key<S: AsRef<str>>(parts: &[S]) -> String {
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(block::KEY_SEP);
        }
        out.push_str(p.as_ref());
    }
    out
}
