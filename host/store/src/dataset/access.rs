//! One dataset as one model may read it: a version and the model's view of
//! it, and the rules for every way a model asks for records by key.
//!
//! Both hosts of the contract (the sandbox's [`crate::runtime`] and the
//! native baseline [`crate::native`]) ask this module which records a scan,
//! a get or a lookup reaches, so the rules live in one place:
//! - a get, a lookup or an index scan names fields (the primary key, the
//!   index's field): each must be one the model declared;
//! - a model that receives pseudonyms passes pseudonyms for personal key
//!   fields and gets records keyed by a personal field in pseudonym order,
//!   through the runs stored beside the version ([`super::pseudo`]); a clear
//!   value it passes matches nothing.

use super::view::View;
use super::{join_key, pseudo, pseudonymous_key, KeyRange, SegmentId, VersionReader};
use crate::Error;

/// Why a request by key is refused.
#[derive(Debug)]
pub enum Refusal {
    /// The request names a field the model did not declare: this ends the
    /// run (`undeclared-field`).
    Undeclared(String),
    /// Anything else (an unknown index, a damaged file): the model gets an
    /// error it can handle.
    Failed(String),
    /// The run's wall time ran out while the host was serving the request:
    /// this ends the run (`wall-time`).
    Deadline,
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        match e {
            Error::Deadline { .. } => Refusal::Deadline,
            e => Refusal::Failed(e.to_string()),
        }
    }
}

/// How a scan reaches its records.
pub enum ScanPlan {
    /// Blocks in primary-key order, through the view.
    Batches,
    /// Records by primary key, in this order.
    Keys(Vec<String>),
    /// Batches already through the view, in the order the model gets them:
    /// its pseudonymous keys (read sequentially), or key order within one
    /// part's range of a partitioned run.
    Ordered(super::Batches),
}

/// One dataset as one model may read it.
#[derive(Clone)]
pub struct Access {
    pub reader: VersionReader,
    pub view: View,
    /// In one part of a partitioned run: the records its scans reach.
    pub range: Option<KeyRange>,
}

impl Access {
    /// This access with its scans limited to `range` of the first key
    /// field (one part of a partitioned run).
    pub fn restricted(mut self, range: KeyRange) -> Access {
        self.range = Some(range);
        self
    }

    /// Whether a partitioned run may cut this dataset by its first key
    /// field: that field is clear to the model (a personal one reaches it
    /// as pseudonyms, whose order is not the clear values').
    pub fn can_split(&self) -> bool {
        let schema = self.schema();
        match schema.primary_key.first() {
            Some(first) => !(self.pseudonymous() && schema.is_personal(first)),
            None => false,
        }
    }

    fn schema(&self) -> &super::Schema {
        &self.reader.info.schema
    }

    fn pseudonymous(&self) -> bool {
        self.view.pseudonymizer().is_some()
    }

    fn require_declared(&self, field: &str, what: &str) -> Result<(), Refusal> {
        if self.view.sees(field) {
            return Ok(());
        }
        Err(Refusal::Undeclared(format!(
            "{what} of dataset `{}` is on field `{field}`, which the model does not declare; \
             add it to [datasets.{}] fields in model.toml",
            self.reader.name(),
            self.reader.name()
        )))
    }

    /// The field an index is on, checked to be declared.
    fn index_field(&self, index: &str) -> Result<String, Refusal> {
        let field = self.schema().indexes.get(index).cloned().ok_or_else(|| {
            Refusal::Failed(format!(
                "dataset `{}` has no index `{}`",
                self.reader.name(),
                crate::text::shorten(index, 100)
            ))
        })?;
        self.require_declared(&field, &format!("index `{index}`"))?;
        Ok(field)
    }

    fn key_is_personal(&self) -> bool {
        self.schema()
            .primary_key
            .iter()
            .any(|k| self.schema().is_personal(k))
    }

    /// How a scan (by `index`, or in key order; of the segments not in
    /// `seen` when given) reaches its records.
    pub fn scan(
        &self,
        index: Option<&str>,
        seen: Option<&[SegmentId]>,
    ) -> Result<ScanPlan, Refusal> {
        match index {
            Some(_) if self.range.is_some() => Err(Refusal::Failed(
                "in a partitioned run a dataset split by key is read in key order: a scan by an index is refused (drop `[partition]` from model.toml, or read this dataset in key order)".into(),
            )),
            Some(index) => {
                let field = self.index_field(index)?;
                let run = self.index_run_for(index, &field);
                let Some(p) = self.pseudonyms_of_keys() else {
                    return Ok(ScanPlan::Keys(self.reader.index_entries(&run, seen)?));
                };
                // Records of one value in pseudonym order, not in the
                // order of their clear keys.
                let pairs = self.reader.index_pairs(&run, seen)?;
                let mut entries: Vec<(String, String, String)> = Vec::with_capacity(pairs.len());
                for (n, (value, key)) in pairs.into_iter().enumerate() {
                    if n % 4096 == 0 {
                        self.reader.check_deadline()?;
                    }
                    let pseudo = pseudonymous_key(self.schema(), p, &key);
                    entries.push((value, pseudo, key));
                }
                entries.sort_unstable();
                Ok(ScanPlan::Keys(
                    entries.into_iter().map(|(_, _, k)| k).collect(),
                ))
            }
            None if self.pseudonymous() && self.key_is_personal() => {
                // Key fields before the first personal one order the
                // pseudonymous keys as they order the clear keys: records
                // are then reordered only within groups of them, reading
                // both runs in order.
                let schema = self.schema();
                let prefix = schema
                    .primary_key
                    .iter()
                    .take_while(|k| !schema.is_personal(k))
                    .count();
                if seen.is_none() {
                    if let Some(batches) =
                        self.reader
                            .pseudonym_ordered_in(&self.view, prefix, self.range.as_ref())
                    {
                        return Ok(ScanPlan::Ordered(batches));
                    }
                }
                let mut keys = self.reader.index_entries(pseudo::KEY_ORDER, seen)?;
                if let Some(range) = &self.range {
                    keys.retain(|k| range.contains(k.as_bytes()));
                }
                Ok(ScanPlan::Keys(keys))
            }
            None => match &self.range {
                Some(range) => Ok(ScanPlan::Ordered(self.reader.batches_in(
                    &self.view,
                    seen,
                    Some(range),
                ))),
                None => Ok(ScanPlan::Batches),
            },
        }
    }

    /// The stored primary key a get for `parts` reads, if any record has it.
    pub fn get_key(&self, parts: &[String]) -> Result<Option<String>, Refusal> {
        let schema = self.schema();
        if parts.len() != schema.primary_key.len() {
            return Err(Refusal::Failed(format!(
                "dataset `{}` has a primary key of {} field(s) ({}); the get passed {}",
                self.reader.name(),
                schema.primary_key.len(),
                schema.primary_key.join(", "),
                parts.len()
            )));
        }
        for k in &schema.primary_key {
            self.require_declared(k, "a get")?;
        }
        // A clear ID number is asked for as ingest stores it, `…X`, however
        // it is written; a version written before ingest did so may hold
        // `…x`, which is read when no `…X` is there.
        // (A pseudonym asked for is left as it is.)
        let is_id =
            |k: &str| schema.is_citizen_id(k) && !(self.pseudonymous() && schema.is_personal(k));
        let spelt = |check: char| -> String {
            let parts: Vec<String> = schema
                .primary_key
                .iter()
                .zip(parts)
                .map(|(k, p)| match crate::ids::citizen_id_spelt(p, check) {
                    Some(id) if is_id(k) => id,
                    _ => p.clone(),
                })
                .collect();
            join_key(&parts)
        };
        // Only a key holding a clear ID number with a check character
        // `X` or `x` is spelt two ways; any other is read as asked.
        let two_ways = schema
            .primary_key
            .iter()
            .zip(parts)
            .any(|(k, p)| is_id(k) && crate::ids::citizen_id_spelt(p, 'X').is_some());
        let (key, older) = if two_ways {
            (spelt('X'), Some(spelt('x')))
        } else {
            (join_key(parts), None)
        };
        if self.pseudonymous() && self.key_is_personal() {
            return Ok(self.reader.index_keys(pseudo::KEY_ORDER, &key)?.pop());
        }
        if let Some(older) = older {
            if self.reader.get(&key)?.is_none() && self.reader.get(&older)?.is_some() {
                return Ok(Some(older));
            }
        }
        Ok(Some(key))
    }

    /// The primary keys of the records whose `index` value is `value`.
    pub fn lookup_keys(&self, index: &str, value: &str) -> Result<Vec<String>, Refusal> {
        let field = self.index_field(index)?;
        let run = self.index_run_for(index, &field);
        // A clear ID number is found written `…x` or `…X`: ingest stores
        // `…X`, a version written before it did so may hold `…x`.
        let keys = match crate::ids::citizen_id_spelt(value, 'X') {
            Some(upper) if run == index && self.schema().is_citizen_id(&field) => {
                let lower = crate::ids::citizen_id_spelt(value, 'x').expect("an ID");
                let mut keys = self.reader.index_keys(&run, &upper)?;
                keys.extend(self.reader.index_keys(&run, &lower)?);
                keys.sort_unstable();
                keys.dedup();
                keys
            }
            _ => self.reader.index_keys(&run, value)?,
        };
        let Some(p) = self.pseudonyms_of_keys() else {
            return Ok(keys);
        };
        // In pseudonym order, not in the order of their clear keys.
        let mut keyed: Vec<(String, String)> = keys
            .into_iter()
            .map(|k| (pseudonymous_key(self.schema(), p, &k), k))
            .collect();
        keyed.sort_unstable();
        Ok(keyed.into_iter().map(|(_, k)| k).collect())
    }

    /// The run a lookup or scan through `index` (on `field`) reads: the
    /// pseudonym run when the model gets pseudonyms for that field.
    fn index_run_for(&self, index: &str, field: &str) -> String {
        if self.pseudonymous() && self.schema().is_personal(field) {
            pseudo::index(index)
        } else {
            index.to_string()
        }
    }

    /// The pseudonymizer, when the model gets pseudonyms and the primary
    /// key has personal parts: then records reach it in the order of their
    /// pseudonymous keys.
    fn pseudonyms_of_keys(&self) -> Option<&crate::pseudonym::Pseudonymizer> {
        self.view.pseudonymizer().filter(|_| self.key_is_personal())
    }
}

impl Access {
    /// The current version of `dataset` through the view of a model that
    /// declared `fields` and may (`clear`) or may not see personal values.
    pub fn current(
        store: &crate::Store,
        dataset: &str,
        fields: Option<&[String]>,
        clear: bool,
    ) -> crate::Result<std::result::Result<Access, String>> {
        Access::of(
            store,
            VersionReader::current(store, dataset)?,
            fields,
            clear,
        )
    }

    /// Version `reader` through the view of a model that declared `fields`
    /// and may (`clear`) or may not see personal values.
    pub fn of(
        store: &crate::Store,
        reader: VersionReader,
        fields: Option<&[String]>,
        clear: bool,
    ) -> crate::Result<std::result::Result<Access, String>> {
        let personal = if clear || !reader.info.schema.has_personal() {
            super::view::Personal::Clear
        } else {
            super::view::Personal::Pseudonyms(crate::pseudonym::Pseudonymizer::for_store(store)?)
        };
        Ok(
            View::new(&reader.info.schema, fields, personal).map(|view| Access {
                reader,
                view,
                range: None,
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::ingest::{self, Options};
    use crate::dataset::Schema;
    use crate::Store;

    fn schema() -> Schema {
        Schema::parse(
            "e.toml",
            r#"
name = "employees"
department = "残联"
primary_key = ["employer", "year", "person"]
[[fields]]
name = "employer"
type = "string"
[[fields]]
name = "year"
type = "int"
[[fields]]
name = "person"
type = "string"
personal = "id"
[[fields]]
name = "wage"
type = "decimal"
"#,
        )
        .unwrap()
    }

    /// Every record a scan plan hands out, through the view, in order.
    fn scanned(access: &Access, plan: ScanPlan) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        match plan {
            ScanPlan::Ordered(batches) => {
                for (data, offsets) in batches.map(|b| b.unwrap()) {
                    for w in offsets.windows(2) {
                        out.push(data[w[0] as usize..w[1] as usize].to_vec());
                    }
                }
            }
            ScanPlan::Keys(keys) => {
                for k in keys {
                    let rec = access.reader.get(&k).unwrap().unwrap();
                    let mut projected = Vec::new();
                    access.view.record(&rec, &mut projected).unwrap();
                    out.push(projected);
                }
            }
            ScanPlan::Batches => panic!("a personal key is never scanned in clear order"),
        }
        out
    }

    /// The clear access to the dataset `schema` describes, after `csv` was
    /// ingested into a fresh store under `dir`.
    fn ingested_clear(dir: &std::path::Path, schema: &str, csv: &str) -> Access {
        let store = Store::open(dir.join("s")).unwrap();
        let schema = Schema::parse("s.toml", schema).unwrap();
        let name = schema.name.clone();
        let path = dir.join("rows.csv");
        std::fs::write(&path, csv).unwrap();
        let opts = Options {
            schema: Some(schema),
            ..Options::default()
        };
        let (staged, _) = ingest::stage(&store, &name, &path, &opts).unwrap();
        staged.commit(&store).unwrap();
        Access::current(&store, &name, None, true).unwrap().unwrap()
    }

    #[test]
    fn a_clear_lookup_by_an_id_written_with_a_lowercase_check_character_finds_it() {
        let dir = tempfile::tempdir().unwrap();
        // Stored `…X` whichever way the file wrote it.
        let access = ingested_clear(
            dir.path(),
            r#"
name = "people"
department = "公安"
primary_key = ["case_no"]
[[fields]]
name = "case_no"
type = "string"
[[fields]]
name = "id"
type = "string"
check = "citizen_id"
[indexes]
by_id = "id"
"#,
            "case_no,id\nA1,11010519491231002x\nA2,11010519491231002X\n",
        );
        for asked in ["11010519491231002X", "11010519491231002x"] {
            assert_eq!(
                access.lookup_keys("by_id", asked).unwrap(),
                ["A1", "A2"],
                "{asked}"
            );
        }
        // A get by a primary key holding such an ID, as a lookup.
        let dir = tempfile::tempdir().unwrap();
        let access = ingested_clear(
            dir.path(),
            r#"
name = "holders"
department = "公安"
primary_key = ["id", "year"]
[[fields]]
name = "id"
type = "string"
check = "citizen_id"
[[fields]]
name = "year"
type = "int"
"#,
            "id,year\n11010519491231002x,2024\n",
        );
        for asked in ["11010519491231002X", "11010519491231002x"] {
            let key = access
                .get_key(&[asked.to_string(), "2024".to_string()])
                .unwrap()
                .expect("a key");
            assert!(access.reader.get(&key).unwrap().is_some(), "{asked}");
        }
    }

    #[test]
    fn an_id_stored_with_a_lowercase_check_character_before_is_still_found() {
        // A version written before ingest stored `…x` as `…X` holds it as
        // it was written: asked for either way, it is found.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s")).unwrap();
        let schema = Schema::parse(
            "p.toml",
            r#"
name = "people"
department = "公安"
primary_key = ["id"]
[[fields]]
name = "id"
type = "string"
check = "citizen_id"
[[fields]]
name = "case_no"
type = "string"
[indexes]
by_id = "id"
"#,
        )
        .unwrap();
        let old = "11010519491231002x";
        let mut record = Vec::new();
        jiandu_sdk::record::encode_into(
            &mut record,
            &[
                Some(jiandu_sdk::record::Value::Str(old)),
                Some(jiandu_sdk::record::Value::Str("A1")),
            ],
        )
        .unwrap();
        let sorted = crate::dataset::SortedRows {
            rows: vec![(old.to_string(), record)],
            indexes: [(
                "by_id".to_string(),
                vec![(old.to_string(), old.to_string())],
            )]
            .into(),
        };
        let rows = ingest::Rows::from_sorted(
            &schema,
            &sorted,
            std::path::Path::new("old"),
            &dir.path().join("tmp"),
            None,
        )
        .unwrap();
        crate::dataset::write_version(
            &store,
            "people",
            rows,
            crate::dataset::NewVersion {
                append: false,
                schema: Some(&schema),
                source: "old",
                source_sha256: String::new(),
                operator: "t",
                warnings: 0,
            },
        )
        .unwrap();
        let access = Access::current(&store, "people", None, true)
            .unwrap()
            .unwrap();
        for asked in ["11010519491231002X", "11010519491231002x"] {
            assert_eq!(
                access.lookup_keys("by_id", asked).unwrap(),
                [old],
                "{asked}"
            );
            let key = access
                .get_key(&[asked.to_string()])
                .unwrap()
                .expect("a key");
            assert!(access.reader.get(&key).unwrap().is_some(), "{asked}");
        }
    }

    #[test]
    fn a_scan_grouped_by_the_leading_clear_key_fields_matches_the_lookup_order() {
        // Groups of a few people per employer and year (searched from the
        // start), and groups of dozens (searched by halves).
        for per_employer in [7, 97] {
            grouped_scan_matches_the_lookup_order(per_employer);
        }
    }

    fn grouped_scan_matches_the_lookup_order(per_employer: u32) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s")).unwrap();
        let path = dir.path().join("e.csv");
        let mut text = String::from("employer,year,person,wage\n");
        for i in 0..10_000u32 {
            // `per_employer` people per employer over two years, some
            // groups across blocks and across batches (4,096 records each).
            let employer = i / per_employer;
            text.push_str(&format!(
                "E{employer:04},{},P{:05},{}.{:02}\n",
                2023 + i % 2,
                (i * 7919) % 100_000,
                1000 + i,
                i % 100
            ));
        }
        std::fs::write(&path, text).unwrap();
        let opts = Options {
            schema: Some(schema()),
            ..Options::default()
        };
        let (staged, _) = ingest::stage(&store, "employees", &path, &opts).unwrap();
        staged.commit(&store).unwrap();
        let access = Access::current(&store, "employees", None, false)
            .unwrap()
            .unwrap();
        let plan = access.scan(None, None).unwrap();
        assert!(
            matches!(plan, ScanPlan::Ordered(_)),
            "read in order, no lookups"
        );
        let ordered = scanned(&access, plan);
        let by_lookup = scanned(
            &access,
            ScanPlan::Keys(
                access
                    .reader
                    .index_entries(crate::dataset::pseudo::KEY_ORDER, None)
                    .unwrap(),
            ),
        );
        assert_eq!(ordered.len(), 10_000);
        assert_eq!(ordered, by_lookup);
    }

    /// Records of every batch, in order.
    fn records(batches: crate::dataset::Batches) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (data, offsets) in batches.map(|b| b.unwrap()) {
            for w in offsets.windows(2) {
                out.push(data[w[0] as usize..w[1] as usize].to_vec());
            }
        }
        out
    }

    fn ingest_rows(store: &Store, dir: &std::path::Path, rows: std::ops::Range<u32>, append: bool) {
        let path = dir.join(format!("e-{}-{append}.csv", rows.start));
        let mut text = String::from("employer,year,person,wage\n");
        for i in rows {
            text.push_str(&format!(
                "E{:04},{},P{:05},{}.{:02}\n",
                i / 7,
                2023 + i % 2,
                (i * 7919) % 100_000,
                1000 + i + u32::from(append),
                i % 100
            ));
        }
        std::fs::write(&path, text).unwrap();
        let opts = Options {
            schema: Some(schema()),
            append,
            ..Options::default()
        };
        let (staged, _) = ingest::stage(store, "employees", &path, &opts).unwrap();
        staged.commit(store).unwrap();
    }

    /// Ranges cut at a block boundary, inside blocks, and before and after
    /// every key.
    fn ranges(access: &Access) -> Vec<KeyRange> {
        let first = &access.reader.info.segments[0].first_keys;
        let at_block = first[1]
            .split(crate::dataset::block::KEY_SEP)
            .next()
            .unwrap();
        let mut bounds = vec![
            "A".to_string(),
            "E0100".into(),
            "E0100".into(),
            at_block.to_string(),
            "E1000x".into(),
            "F".into(),
        ];
        bounds.sort();
        let mut out = Vec::new();
        let mut lo = None;
        for b in bounds {
            out.push(KeyRange {
                lo: lo.clone(),
                hi: Some(b.clone()),
            });
            lo = Some(b);
        }
        out.push(KeyRange { lo, hi: None });
        out
    }

    fn parts(access: &Access) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for r in ranges(access) {
            let part = access.clone().restricted(r);
            match part.scan(None, None).unwrap() {
                ScanPlan::Batches => panic!("a restricted scan names its batches"),
                plan => out.extend(scanned(&part, plan)),
            }
        }
        out
    }

    #[test]
    fn key_ranges_cut_every_kind_of_scan_into_parts_that_cover_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s")).unwrap();
        ingest_rows(&store, dir.path(), 0..10_000, false);
        // Pseudonymous key order, one segment.
        let pseudonymous = Access::current(&store, "employees", None, false)
            .unwrap()
            .unwrap();
        assert!(pseudonymous.reader.info.segments[0].first_keys.len() >= 3);
        assert!(pseudonymous.can_split());
        let whole = scanned(&pseudonymous, pseudonymous.scan(None, None).unwrap());
        assert_eq!(whole.len(), 10_000);
        assert_eq!(parts(&pseudonymous), whole);
        // Clear key order, one segment: whole blocks and cut ones, through
        // the view as it is and through a projection.
        for fields in [None, Some(vec!["employer".to_string(), "wage".to_string()])] {
            let clear = Access::current(&store, "employees", fields.as_deref(), true)
                .unwrap()
                .unwrap();
            let whole = records(clear.reader.batches(&clear.view, None));
            assert_eq!(parts(&clear), whole);
        }
        // Two segments merged by key, some keys in both.
        ingest_rows(&store, dir.path(), 9_000..12_000, true);
        let clear = Access::current(&store, "employees", None, true)
            .unwrap()
            .unwrap();
        assert_eq!(clear.reader.info.segments.len(), 2);
        let whole = records(clear.reader.batches(&clear.view, None));
        assert_eq!(whole.len(), 12_000);
        assert_eq!(parts(&clear), whole);
        // Pseudonymous order over two segments: records by key, filtered.
        let pseudonymous = Access::current(&store, "employees", None, false)
            .unwrap()
            .unwrap();
        let whole = scanned(&pseudonymous, pseudonymous.scan(None, None).unwrap());
        assert_eq!(whole.len(), 12_000);
        assert_eq!(parts(&pseudonymous), whole);
        // Scans by an index are refused in a part.
        let part = clear.clone().restricted(KeyRange {
            lo: None,
            hi: Some("E0100".into()),
        });
        assert!(matches!(
            part.scan(Some("anything"), None),
            Err(Refusal::Failed(m)) if m.contains("partitioned run")
        ));
    }
}
