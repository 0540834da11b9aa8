//! The runs a segment derives from its records: its indexes (value →
//! key) and, with personal fields, its pseudonym runs (`#clear`, `#key`,
//! `#<index>`). Compaction builds them from a version's records, and
//! `audit verify` builds them again from a segment's records to compare
//! with the runs stored, entry by entry.
//!
//! The check is needed because a derived run's CRCs prove nothing against
//! someone who can write the store: whoever rewrites an entry can
//! recompute them. The records are held to the digest the ledger signed,
//! and everything derived from them must then be what they give: an index
//! that sends a lookup to another record, or a `#clear` entry that shows
//! a reviewer another person's ID number, is a fault by the file and
//! block it is in. Building the runs takes what compaction takes: a sort
//! per run, spilling under the store's `tmp/`.

use super::block::{Block, BLOCK_RECORDS};
use super::file::{run_path, RunFile};
use super::sort::Sorter;
use super::{sort_failed, PseudonymEntries, Schema, SegmentInfo, RECORDS_RUN};
use crate::pseudonym::Pseudonymizer;
use crate::{Error, Result, Store};
use jiandu_sdk::record::{RecordRef, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The entries of a segment's derived runs, gathered from its records one
/// at a time and sorted as they come.
pub(crate) struct Derived<'p> {
    /// Each index and the position of its field.
    fields: Vec<(String, usize)>,
    pub(crate) indexes: BTreeMap<String, Sorter>,
    pub(crate) pseudonyms: Option<PseudonymEntries<'p>>,
}

impl<'p> Derived<'p> {
    /// Sorts for the runs of `schema`, holding up to `indexes_budget`
    /// bytes among the indexes before they spill to `tmp`;
    /// `pseudonymizer` when the schema has personal fields.
    pub(crate) fn new(
        schema: &Schema,
        pseudonymizer: Option<&'p Pseudonymizer>,
        tmp: &Path,
        indexes_budget: usize,
    ) -> Derived<'p> {
        let fields: Vec<(String, usize)> = schema
            .indexes
            .iter()
            .map(|(index, field)| (index.clone(), schema.field_index(field).expect("checked")))
            .collect();
        let each = indexes_budget / fields.len().max(1);
        let indexes = fields
            .iter()
            .map(|(index, _)| (index.clone(), Sorter::new(tmp, each)))
            .collect();
        Derived {
            fields,
            indexes,
            pseudonyms: pseudonymizer.map(|p| PseudonymEntries::new(schema, p, tmp, true)),
        }
    }

    /// Adds the entries of the record `record` under `key`: one per index
    /// whose field has a value, and its pseudonym entries.
    pub(crate) fn add(&mut self, key: &[u8], record: &[u8]) -> Result<()> {
        if let Some(p) = &mut self.pseudonyms {
            p.add(key, record).map_err(sort_failed)?;
        }
        let rec = RecordRef::new(record).map_err(|e| Error::Other(e.to_string()))?;
        for (index, field) in &self.fields {
            let value = rec.field(*field).map_err(|e| Error::Other(e.to_string()))?;
            if let Some(v) = value.filter(|v| !matches!(v, Value::Null)) {
                self.indexes
                    .get_mut(index)
                    .expect("one sorter per index")
                    .push(v.to_string().as_bytes(), 0, key)
                    .map_err(sort_failed)?;
            }
        }
        Ok(())
    }
}

/// A derived run of a segment that does not hold what the segment's
/// records give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The run's file.
    pub path: PathBuf,
    /// The block where the run first differs, when it is in one.
    pub block: Option<usize>,
    /// What differs, without the values themselves (a pseudonym run holds
    /// personal values in clear).
    pub message: String,
}

/// Builds the derived runs of segment `seg` (stored under version
/// `stored_in` of dataset `name`, written under `schema`) from its record
/// run and compares them with the runs it has, entry by entry. Each run
/// that differs, or is missing, or that the schema does not give, is one
/// [`Mismatch`]. The record run itself is the caller's to check (its
/// digest); an error is a record run that cannot be read.
pub fn check_segment(
    store: &Store,
    name: &str,
    schema: &Schema,
    stored_in: u64,
    seg: &SegmentInfo,
) -> Result<Vec<Mismatch>> {
    let data = store.data_dir();
    let tmp = store.root().join("tmp");
    let pseudonymizer = super::pseudonymizer_for(store, schema)?;
    let mut derived = Derived::new(
        schema,
        pseudonymizer.as_ref(),
        &tmp,
        super::ingest::INDEXES_BUDGET,
    );
    let records = RunFile::open(
        run_path(&data, name, stored_in, seg.id, RECORDS_RUN),
        seg.ends.clone(),
    )?;
    for n in 0..records.len() {
        let bytes = records.read_block(n)?;
        let block = Block::parse(&bytes)?;
        for i in 0..block.len() {
            derived.add(block.key(i), block.record(i))?;
        }
    }
    let mut expected: BTreeMap<String, Expected> = derived
        .indexes
        .into_iter()
        .map(|(index, sorter)| (index, Expected::index(sorter)))
        .collect();
    if let Some(p) = derived.pseudonyms {
        for (index, (_, sorter)) in p.finish().runs {
            let (packed, unique) = super::pseudonym_run_layout(schema, &index);
            expected.insert(index, Expected::pseudonyms(sorter, packed, unique));
        }
    }
    let mut faults = Vec::new();
    let path_of = |run: u16| run_path(&data, name, stored_in, seg.id, run);
    for (index, stored) in &seg.indexes {
        let path = path_of(stored.run);
        let Some(entries) = expected.remove(index) else {
            faults.push(Mismatch {
                path,
                block: None,
                message: format!(
                    "run `{index}` is not one the schema gives this dataset: the version's metadata was edited"
                ),
            });
            continue;
        };
        let file = RunFile::open(path.clone(), stored.ends.clone())?;
        if let Some(fault) = compare(index, entries, &file, &stored.first_values)? {
            faults.push(Mismatch { path, ..fault });
        }
    }
    for index in expected.keys() {
        faults.push(Mismatch {
            path: run_path(&data, name, stored_in, seg.id, RECORDS_RUN),
            block: None,
            message: format!(
                "the records give a run `{index}`, which the segment does not have: the version's metadata was edited"
            ),
        });
    }
    Ok(faults)
}

/// What a derived run should hold, in order.
struct Expected {
    sorter: Sorter,
    /// For a pseudonym run: which parts of a key are packed pseudonyms,
    /// and whether an entry whose key repeats the one before is dropped.
    pseudonyms: Option<(Vec<bool>, bool)>,
}

impl Expected {
    fn index(sorter: Sorter) -> Expected {
        Expected {
            sorter,
            pseudonyms: None,
        }
    }

    fn pseudonyms(sorter: Sorter, packed: Vec<bool>, unique: bool) -> Expected {
        Expected {
            sorter,
            pseudonyms: Some((packed, unique)),
        }
    }

    /// Calls `f` with each entry (key, value) as the run writes it.
    fn each(self, mut f: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()> {
        match self.pseudonyms {
            None => {
                let mut merged = self.sorter.finish().map_err(sort_failed)?;
                while let Some(e) = merged.next().map_err(sort_failed)? {
                    f(e.key, e.value)?;
                }
                Ok(())
            }
            Some((packed, unique)) => {
                super::each_pseudonym_entry(self.sorter, &packed, unique, |key, value| {
                    f(key.as_bytes(), value)
                })
            }
        }
    }
}

/// Compares the entries `expected` gives with run `index`'s file and the
/// first value of each of its blocks as the metadata records them; the
/// first difference, if any.
fn compare(
    index: &str,
    expected: Expected,
    file: &RunFile,
    first_values: &[String],
) -> Result<Option<Mismatch>> {
    let differs = |block: Option<usize>, what: String| {
        Ok(Some(Mismatch {
            path: PathBuf::new(),
            block,
            message: format!(
                "run `{index}` {what}: it was rewritten (its CRCs recomputed to match)"
            ),
        }))
    };
    let mut n = 0usize;
    let mut current: Option<(usize, Vec<u8>)> = None;
    let mut first_difference: Option<(usize, String)> = None;
    expected.each(|key, value| {
        if first_difference.is_some() {
            n += 1;
            return Ok(());
        }
        let (block, at) = (n / BLOCK_RECORDS, n % BLOCK_RECORDS);
        n += 1;
        if block >= file.len() {
            return Ok(());
        }
        if current.as_ref().map(|(b, _)| *b) != Some(block) {
            current = Some((block, file.read_block(block)?));
        }
        let bytes = &current.as_ref().expect("just read").1;
        let stored = Block::parse(bytes)?;
        if at >= stored.len() {
            first_difference = Some((block, format!("has {} entries in this block", stored.len())));
        } else if stored.key(at) != key || stored.record(at) != value {
            first_difference = Some((
                block,
                format!(
                    "entry {} differs from what the records give",
                    block * BLOCK_RECORDS + at
                ),
            ));
        } else if at == 0 && first_values.get(block).map(String::as_bytes) != Some(key) {
            first_difference = Some((
                block,
                "has a first value in the version's metadata other than the block's".into(),
            ));
        }
        Ok(())
    })?;
    if let Some((block, what)) = first_difference {
        return differs(Some(block), what);
    }
    let stored_entries = match file.len() {
        0 => 0,
        blocks => {
            let last = file.read_block(blocks - 1)?;
            (blocks - 1) * BLOCK_RECORDS + Block::parse(&last)?.len()
        }
    };
    if stored_entries != n || first_values.len() != file.len() {
        return differs(
            None,
            format!("holds {stored_entries} entries where the records give {n}"),
        );
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::block::BlockBuilder;
    use crate::dataset::file::RunWriter;
    use crate::dataset::ingest::{self, Options};
    use crate::dataset::VersionReader;

    fn people() -> Schema {
        Schema::parse(
            "p.toml",
            r#"
name = "people"
department = "公安"
primary_key = ["id"]
[[fields]]
name = "id"
type = "string"
personal = "id"
[[fields]]
name = "name"
type = "string"
personal = "name"
[[fields]]
name = "place"
type = "string"
[indexes]
by_name = "name"
by_place = "place"
"#,
        )
        .unwrap()
    }

    /// A store with `people` ingested from rows of equal widths, so that
    /// two entries of a run can trade places without moving a byte.
    fn store_with_people(dir: &Path) -> Store {
        let store = Store::open(dir.join("s")).unwrap();
        let mut csv = String::from("id,name,place\n");
        for i in 0..9000 {
            csv.push_str(&format!("6501{i:04},张{},p{}\n", i % 97, i % 13 + 10));
        }
        let path = dir.join("people.csv");
        std::fs::write(&path, csv).unwrap();
        let opts = Options {
            schema: Some(people()),
            ..Options::default()
        };
        let (staged, _) = ingest::stage(&store, "people", &path, &opts).unwrap();
        staged.commit(&store).unwrap();
        store
    }

    fn check(store: &Store) -> Vec<Mismatch> {
        let reader = VersionReader::current(store, "people").unwrap();
        let info = reader.info().clone();
        check_segment(
            store,
            "people",
            &info.schema,
            info.version,
            &info.segments[0],
        )
        .unwrap()
    }

    /// Rewrites block `n` of run `run` with the values of its entries `a`
    /// and `b` traded (same lengths, so the frame ends do not move), its
    /// CRCs recomputed as the writer computes them.
    fn trade_values(store: &Store, run: &str, n: usize, a: usize, b: usize) -> PathBuf {
        let reader = VersionReader::current(store, "people").unwrap();
        let info = reader.info().clone();
        let seg = &info.segments[0];
        let index = &seg.indexes[run];
        let path = run_path(&store.data_dir(), "people", info.version, seg.id, index.run);
        let file = RunFile::open(path.clone(), index.ends.clone()).unwrap();
        let blocks: Vec<Vec<u8>> = (0..file.len())
            .map(|i| file.read_block(i).unwrap())
            .collect();
        drop(file);
        let mut out = RunWriter::create(path.clone()).unwrap();
        for (i, bytes) in blocks.iter().enumerate() {
            let block = Block::parse(bytes).unwrap();
            let mut entries: Vec<(Vec<u8>, Vec<u8>)> = (0..block.len())
                .map(|j| (block.key(j).to_vec(), block.record(j).to_vec()))
                .collect();
            if i == n {
                let (va, vb) = (entries[a].1.clone(), entries[b].1.clone());
                assert_eq!(va.len(), vb.len(), "entries of equal widths");
                assert_ne!(va, vb);
                entries[a].1 = vb;
                entries[b].1 = va;
            }
            let mut builder = BlockBuilder::new();
            for (k, v) in &entries {
                builder.push(k, v);
            }
            out.push(&builder.finish()).unwrap();
        }
        assert_eq!(
            out.finish().unwrap(),
            index.ends,
            "the frames keep their ends"
        );
        path
    }

    #[test]
    fn derived_runs_built_again_match_and_a_rewritten_entry_is_named_by_run_and_block() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_people(dir.path());
        assert_eq!(check(&store), [], "as ingested");
        let runs: Vec<String> = {
            let reader = VersionReader::current(&store, "people").unwrap();
            reader.info().segments[0].indexes.keys().cloned().collect()
        };
        assert_eq!(runs, ["#by_name", "#clear", "#key", "by_name", "by_place"]);
        // Each run, one entry's value traded with another's: the block's
        // CRCs pass, the run does not.
        for run in &runs {
            let before: Vec<u8> = {
                let reader = VersionReader::current(&store, "people").unwrap();
                let info = reader.info();
                let seg = &info.segments[0];
                std::fs::read(run_path(
                    &store.data_dir(),
                    "people",
                    info.version,
                    seg.id,
                    seg.indexes[run].run,
                ))
                .unwrap()
            };
            let block = usize::from(run != "#clear");
            let path = trade_values(&store, run, block, 5, 4000);
            let faults = check(&store);
            assert_eq!(faults.len(), 1, "{run}: {faults:?}");
            assert_eq!(faults[0].path, path, "{run}");
            assert_eq!(faults[0].block, Some(block), "{run}");
            assert!(
                faults[0].message.contains(&format!("run `{run}` entry "))
                    && faults[0]
                        .message
                        .contains("differs from what the records give"),
                "{run}: {}",
                faults[0].message
            );
            std::fs::write(&path, before).unwrap();
            assert_eq!(check(&store), [], "{run} restored");
        }
    }

    #[test]
    fn a_run_the_metadata_lost_or_gained_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_people(dir.path());
        let reader = VersionReader::current(&store, "people").unwrap();
        let info = reader.info().clone();
        let mut seg = info.segments[0].clone();
        let by_place = seg.indexes.remove("by_place").unwrap();
        let faults = check_segment(&store, "people", &info.schema, info.version, &seg).unwrap();
        assert_eq!(faults.len(), 1, "{faults:?}");
        assert!(
            faults[0].message.contains("give a run `by_place`"),
            "{faults:?}"
        );
        seg.indexes.insert("by_region".into(), by_place);
        let faults = check_segment(&store, "people", &info.schema, info.version, &seg).unwrap();
        assert_eq!(faults.len(), 2, "{faults:?}");
        assert!(
            faults[0]
                .message
                .contains("run `by_region` is not one the schema gives"),
            "{faults:?}"
        );
    }
}
